package coordinator

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cofactor-ml/cofactor/internal/wire"
)

// memoryNeed is the estimate of what one worker holds for an assignment
// (docs/runbook.md, "Sizing"): its blocks' ratings, two versions of its
// rows' factors, and the other side's rows its blocks fetch in the larger
// of the two phases. The Go heap's headroom is not included: --memory is
// what the worker offers for blocks, not the process limit.
type memoryNeed struct {
	Worker  string
	Blocks  int64 // encoded bytes of the owned blocks
	Factors int64
	Fetched int64
	Offered int64
}

func (m memoryNeed) total() int64 { return m.Blocks + m.Factors + m.Fetched }

// memoryNeeds estimates each owner's memory for assignment a of a job
// partitioned as sum, at the given rank, sorted by worker ID.
func memoryNeeds(sum *wire.PartitionSummary, a *Assignment, rank int) []memoryNeed {
	row := int64(rank) * 4
	needs := map[string]*memoryNeed{}
	get := func(id string) *memoryNeed {
		if needs[id] == nil {
			needs[id] = &memoryNeed{Worker: id}
		}
		return needs[id]
	}
	fetched := map[string][2]int64{} // rows fetched per phase: users, items
	for s, side := range []struct {
		owners []string
		needs  [][]int64
		total  int
		offset int // of the side's blocks in BlockBytes and BlockRows
	}{
		{a.Users, sum.UserNeeds, sum.Users, 0},
		{a.Items, sum.ItemNeeds, sum.Items, sum.UserBlocks},
	} {
		for b, id := range side.owners {
			m := get(id)
			if i := side.offset + b; i < len(sum.BlockBytes) {
				m.Blocks += sum.BlockBytes[i]
			}
			rows := ceilDiv(int64(side.total), int64(len(side.owners)))
			if i := side.offset + b; i < len(sum.BlockRows) {
				rows = sum.BlockRows[i]
			}
			m.Factors += 2 * rows * row
			if b < len(side.needs) {
				f := fetched[id]
				for _, n := range side.needs[b] {
					f[s] += n
				}
				fetched[id] = f
			}
		}
	}
	out := make([]memoryNeed, 0, len(needs))
	for id, m := range needs {
		f := fetched[id]
		m.Fetched = max(f[0], f[1]) * row
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Worker < out[j].Worker })
	return out
}

func ceilDiv(a, b int64) int64 {
	if b <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// checkMemory returns an error naming every worker of assignment a whose
// estimated need exceeds the memory it offers (--memory; 0 offers no
// limit), or nil when the assignment fits.
func checkMemory(sum *wire.PartitionSummary, a *Assignment, rank int, offered map[string]int64) error {
	var over []string
	for _, m := range memoryNeeds(sum, a, rank) {
		m.Offered = offered[m.Worker]
		if m.Offered <= 0 || m.total() <= m.Offered {
			continue
		}
		over = append(over, fmt.Sprintf("worker %s needs %d bytes (%s) but offers %d (--memory %s)",
			m.Worker, m.total(), fmt.Sprintf("blocks %s + factors %s + fetched rows %s",
				sizeText(m.Blocks), sizeText(m.Factors), sizeText(m.Fetched)), m.Offered, sizeText(m.Offered)))
	}
	if len(over) == 0 {
		return nil
	}
	return fmt.Errorf("the job's blocks do not fit the live workers' memory: %s; add workers, raise --memory, or lower --rank",
		strings.Join(over, "; "))
}

// sizeText is n bytes in the largest binary unit that keeps it ≥ 1.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n), 0
	for v >= unit && u < 4 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.1f %s", v, []string{"B", "KiB", "MiB", "GiB", "TiB"}[u])
}

// lowerBound is the fewest factor bytes an iteration of assignment a can
// move between workers: every block receives exactly the rows it needs
// from blocks on other workers, width float32 each.
func lowerBound(sum *wire.PartitionSummary, a *Assignment, width int) int64 {
	var rows int64
	for u, needs := range sum.UserNeeds {
		for i, n := range needs {
			if i < len(a.Items) && u < len(a.Users) && a.Items[i] != a.Users[u] {
				rows += n
			}
		}
	}
	for i, needs := range sum.ItemNeeds {
		for u, n := range needs {
			if i < len(a.Items) && u < len(a.Users) && a.Users[u] != a.Items[i] {
				rows += n
			}
		}
	}
	return rows * int64(width) * 4
}
