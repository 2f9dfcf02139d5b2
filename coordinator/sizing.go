package coordinator

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
)

// memoryNeed is the estimate of what one worker holds for an assignment
// (docs/runbook.md, "Sizing") in the heavier of the two phases: its
// blocks' ratings; its factor rows, two versions of the side being solved
// (the previous iteration's and the new one) and one of the other side (a
// phase drops the versions older than the one it reads); and the other
// side's rows that the largest of its blocks on the solved side fetches
// (a worker solves its blocks of a side one after another, into one
// buffer). The Go heap's headroom is not included.
type memoryNeed struct {
	Worker  string
	Blocks  int64 // encoded bytes of the owned blocks
	Factors int64
	Fetched int64
	Offered int64
}

func (m memoryNeed) total() int64 { return m.Blocks + m.Factors + m.Fetched }

// sizing is what the estimate takes besides the partition and the
// assignment.
type sizing struct {
	Rank int // the factor rows' width
	// InPlace: the job's solves write over the old version
	// (als.Config.InPlace), so the solved side is held once.
	InPlace bool
	// Gather is each worker's bound on an item block's gather (worker
	// --gather-bytes; absent or 0: whole gathers). A bounded worker holds
	// at most that much of a group's rows and one streamed segment.
	Gather map[string]int64
}

// memoryNeeds estimates each owner's memory for assignment a of a job
// partitioned as sum, sorted by worker ID.
func memoryNeeds(sum *wire.PartitionSummary, a *Assignment, sz sizing) []memoryNeed {
	row := int64(sz.Rank) * 4
	versions := int64(2)
	if sz.InPlace {
		versions = 1
	}
	type held struct {
		blocks  int64
		rows    [2]int64 // owned rows: users, items
		fetched [2]int64 // most rows one owned block fetches: user phase, item phase
	}
	workers := map[string]*held{}
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
			h := workers[id]
			if h == nil {
				h = &held{}
				workers[id] = h
			}
			if i := side.offset + b; i < len(sum.BlockBytes) {
				h.blocks += sum.BlockBytes[i]
			}
			rows := ceilDiv(int64(side.total), int64(len(side.owners)))
			if i := side.offset + b; i < len(sum.BlockRows) {
				rows = sum.BlockRows[i]
			}
			h.rows[s] += rows
			if b < len(side.needs) {
				var n int64
				for _, m := range side.needs[b] {
					n += m
				}
				h.fetched[s] = max(h.fetched[s], n)
			}
		}
	}
	out := make([]memoryNeed, 0, len(workers))
	for id, h := range workers {
		var best memoryNeed
		for s := range 2 { // the phase solving side s
			m := memoryNeed{Worker: id, Blocks: h.blocks,
				Factors: (versions*h.rows[s] + h.rows[1-s]) * row, Fetched: h.fetched[s] * row}
			if g := sz.Gather[id]; s == 1 && g > 0 {
				m.Fetched = min(m.Fetched, g+als.SegmentRows*row)
			}
			if s == 0 || m.total() > best.total() {
				best = m
			}
		}
		out = append(out, best)
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
func checkMemory(sum *wire.PartitionSummary, a *Assignment, sz sizing, offered map[string]int64) error {
	var over []string
	for _, m := range memoryNeeds(sum, a, sz) {
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

// maxBlocksPerWorker bounds how many blocks a worker gets on the side
// that autoBlocks splits finer.
const maxBlocksPerWorker = 12

// autoBlocks picks the block counts of a job that does not set them
// (--blocks), from the live worker count and the size of its training
// part: one block a worker on each side, except that the side with fewer
// rows gets up to maxBlocksPerWorker blocks a worker when that shrinks
// what one of its blocks gathers from the other side.
//
// A worker solves its blocks of a side one after another and holds one
// block's gathered rows at a time, so smaller blocks lower its peak: on
// Netflix-shaped data (8M ratings, 3 workers) an item block of 3 needs
// 96% of all users, one of 33 blocks 31%. The price is the exchange: a
// user row needed by several of a worker's item blocks is sent once for
// each (there, 245 MB an iteration becomes 840 MB).
// So the smallest split is taken whose block gathers at most a worker's
// share of the other side's rows; when none within the bound does, the
// finest is taken if it at least halves the gather, and none otherwise
// (on dense data every block needs nearly every row whatever its size).
//
// The estimate spreads a block's ratings uniformly over the other side's
// rows: other × (1 − e^(−ratings/(blocks × other))) distinct rows. Skewed
// activity reaches fewer rows, so it errs towards more blocks. The result
// does not depend on the layout.
func autoBlocks(workers int, users, items, ratings int64) (p, q int) {
	if workers < 1 {
		workers = 1
	}
	small, other := items, users
	if users < items {
		small, other = users, items
	}
	m := splitFactor(workers, small, other, ratings)
	p, q = workers, workers
	if users < items {
		p *= m
	} else {
		q *= m
	}
	return p, q
}

// splitFactor is autoBlocks' blocks per worker for the side of small rows.
func splitFactor(workers int, small, other, ratings int64) int {
	if workers == 1 || small < 2 || other < 1 || ratings < 1 {
		return 1
	}
	gathered := func(m int) float64 {
		blocks := float64(min(int64(m*workers), small))
		return float64(other) * -math.Expm1(-float64(ratings)/(blocks*float64(other)))
	}
	share := float64(other) / float64(workers)
	top := max(min(maxBlocksPerWorker, job.MaxBlocks/workers), 1)
	for m := 1; m <= top; m++ {
		if gathered(m) <= share {
			return m
		}
	}
	if gathered(top) <= gathered(1)/2 {
		return top
	}
	return 1
}
