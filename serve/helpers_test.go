package serve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
)

// spec describes a hand-made snapshot.
type spec struct {
	rank                   int
	users, items           []string
	userCounts, itemCounts []int32 // nil: all 1
	x, y                   []float32
	seen                   [][]int32   // each user's training items, ascending; nil: no seen files
	seenValues             [][]float32 // their ratings; nil: none kept
	implicit               bool
	lambda, alpha          float64
	biases, nonnegative    bool
	mean                   float64
}

// ids returns prefix0, prefix1, ….
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func ones(n int) []int32 {
	c := make([]int32, n)
	for i := range c {
		c[i] = 1
	}
	return c
}

// randomSpec is a model of random factors. With ints the factors are small
// integers, so that every score is exact and ties are frequent.
func randomSpec(seed uint64, users, items, rank int, ints bool) spec {
	rng := rand.New(rand.NewPCG(seed, 7))
	val := func() float32 {
		if ints {
			return float32(rng.IntN(7) - 3)
		}
		return float32(rng.NormFloat64())
	}
	sp := spec{rank: rank, users: ids("u", users), items: ids("i", items), lambda: 0.05,
		x: make([]float32, users*rank), y: make([]float32, items*rank), itemCounts: make([]int32, items)}
	for i := range sp.x {
		sp.x[i] = val()
	}
	for i := range sp.y {
		sp.y[i] = val()
	}
	for i := range sp.itemCounts {
		sp.itemCounts[i] = int32(rng.IntN(20))
	}
	return sp
}

// write stores sp as snapshot id of repo (one user block, one item block)
// and commits it.
func (sp spec) write(t testing.TB, repo *checkpoint.Repo, id string) {
	t.Helper()
	ctx := context.Background()
	uc, ic := sp.userCounts, sp.itemCounts
	if uc == nil {
		uc = ones(len(sp.users))
	}
	if ic == nil {
		ic = ones(len(sp.items))
	}
	var files []checkpoint.FileInfo
	for _, b := range []*checkpoint.Block{
		{Side: checkpoint.SideUsers, Rank: sp.rank, IDs: sp.users, Counts: uc, Factors: sp.x},
		{Side: checkpoint.SideItems, Rank: sp.rank, IDs: sp.items, Counts: ic, Factors: sp.y},
	} {
		fi, err := repo.WriteBlock(ctx, id, b)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fi)
	}
	if sp.seen != nil {
		s := &checkpoint.Seen{Ptr: []int64{0}}
		for u, items := range sp.seen {
			s.Items = append(s.Items, items...)
			s.Ptr = append(s.Ptr, int64(len(s.Items)))
			if sp.seenValues != nil {
				s.Values = append(s.Values, sp.seenValues[u]...)
			}
		}
		fi, err := repo.WriteSeen(ctx, id, s)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fi)
	}
	manifestID := id
	if manifestID == "" {
		manifestID = "snapshot"
	}
	err := repo.Commit(ctx, id, &checkpoint.Manifest{
		ID: manifestID, Model: "default", Job: "test", Iteration: 1, Rank: sp.rank,
		Implicit: sp.implicit, Lambda: sp.lambda, Alpha: sp.alpha,
		Users: len(sp.users), Items: len(sp.items), UserBlocks: 1, ItemBlocks: 1,
		Final: true, Created: time.Now().UTC(), Files: files,
		Biases: sp.biases, GlobalMean: sp.mean, NonNegative: sp.nonnegative,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// model writes sp as a snapshot directory and opens it.
func (sp spec) model(t testing.TB) *checkpoint.Model {
	t.Helper()
	dir := t.TempDir()
	repo, id := checkpoint.OpenDir(dir)
	sp.write(t, repo, id)
	m, err := checkpoint.ReadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
