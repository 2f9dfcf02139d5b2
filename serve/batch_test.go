package serve

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
)

// batchModel writes a one-block snapshot with factors x, y and, if seen is
// not nil, each user's training items, and opens it.
func batchModel(t testing.TB, rank int, x, y []float32, seen [][]int32) *checkpoint.Model {
	t.Helper()
	ctx := context.Background()
	nu, ni := len(x)/rank, len(y)/rank
	name := func(p string, n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf("%s%d", p, i)
		}
		return s
	}
	dir := t.TempDir()
	repo, id := checkpoint.OpenDir(dir)
	var files []checkpoint.FileInfo
	for _, b := range []*checkpoint.Block{
		{Side: checkpoint.SideUsers, Rank: rank, IDs: name("u", nu), Counts: make([]int32, nu), Factors: x},
		{Side: checkpoint.SideItems, Rank: rank, IDs: name("i", ni), Counts: make([]int32, ni), Factors: y},
	} {
		fi, err := repo.WriteBlock(ctx, id, b)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fi)
	}
	if seen != nil {
		s := &checkpoint.Seen{Ptr: []int64{0}}
		for _, items := range seen {
			s.Items = append(s.Items, items...)
			s.Ptr = append(s.Ptr, int64(len(s.Items)))
		}
		fi, err := repo.WriteSeen(ctx, id, s)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fi)
	}
	err := repo.Commit(ctx, id, &checkpoint.Manifest{
		ID: "batch", Model: "default", Job: "test", Iteration: 1, Rank: rank, Lambda: 0.1,
		Users: nu, Items: ni, UserBlocks: 1, ItemBlocks: 1,
		Final: true, Created: time.Now().UTC(), Files: files,
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := checkpoint.ReadDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// batchFactors returns n random factors: small integers with ints (every
// score exact, many ties), else normal.
func batchFactors(rng *rand.Rand, n int, ints bool) []float32 {
	v := make([]float32, n)
	for i := range v {
		if ints {
			v[i] = float32(rng.IntN(5) - 2)
		} else {
			v[i] = float32(rng.NormFloat64())
		}
	}
	return v
}

// batchSeen returns each user's training items (ascending): none, a few,
// all of them, or all but one.
func batchSeen(rng *rand.Rand, users, items int) [][]int32 {
	seen := make([][]int32, users)
	for u := range seen {
		var s []int32
		switch u % 7 {
		case 0: // none
		case 3: // every item
			for i := range items {
				s = append(s, int32(i))
			}
		case 5: // all but one
			skip := rng.IntN(items)
			for i := range items {
				if i != skip {
					s = append(s, int32(i))
				}
			}
		default:
			for i := range items {
				if rng.IntN(4) == 0 {
					s = append(s, int32(i))
				}
			}
		}
		seen[u] = s
	}
	return seen
}

type batchResult struct {
	items  [][]int32
	scores [][]float32
}

// runBatch runs BatchTopK and collects its results, checking that emit is
// called once per user, in order.
func runBatch(t *testing.T, m *checkpoint.Model, k int, excludeSeen bool, threads int) batchResult {
	t.Helper()
	var r batchResult
	err := BatchTopK(context.Background(), m, k, excludeSeen, threads, func(u int32, items []int32, scores []float32) error {
		if int(u) != len(r.items) {
			return fmt.Errorf("emit for user %d, want %d", u, len(r.items))
		}
		if len(items) != len(scores) {
			return fmt.Errorf("user %d: %d items, %d scores", u, len(items), len(scores))
		}
		r.items = append(r.items, slices.Clone(items))
		r.scores = append(r.scores, slices.Clone(scores))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if users := len(m.X) / m.Rank; len(r.items) != users {
		t.Fatalf("%d users emitted, want %d", len(r.items), users)
	}
	return r
}

// TestBatchTopKExact compares BatchTopK with als.Recommend per user on
// models of small integer factors, where every score is exact whatever the
// summation order, so the answers must be identical, ties included.
func TestBatchTopKExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	for _, c := range []struct{ users, items, rank int }{
		{1, 1, 1},
		{5, 3, 2},
		{17, 63, 3},
		{64, 64, 10},
		{65, 65, 10},
		{130, 1030, 7},
		{70, 2100, 16},
		{33, 500, 64},
	} {
		x := batchFactors(rng, c.users*c.rank, true)
		y := batchFactors(rng, c.items*c.rank, true)
		seen := batchSeen(rng, c.users, c.items)
		m := batchModel(t, c.rank, x, y, seen)
		for _, k := range []int{1, 3, 10, c.items, c.items + 5} {
			for _, excl := range []bool{false, true} {
				threads := 1 + rng.IntN(3)
				name := fmt.Sprintf("users=%d items=%d rank=%d k=%d exclude=%v threads=%d", c.users, c.items, c.rank, k, excl, threads)
				got := runBatch(t, m, k, excl, threads)
				for u := 0; u < c.users; u++ {
					var exclude []int32
					if excl {
						exclude = seen[u]
					}
					wi, ws := als.Recommend(x[u*c.rank:(u+1)*c.rank], y, exclude, k)
					if !slices.Equal(got.items[u], wi) || !slices.Equal(got.scores[u], ws) {
						t.Fatalf("%s: user %d:\n got %v %v\nwant %v %v", name, u, got.items[u], got.scores[u], wi, ws)
					}
				}
			}
		}
	}
}

// TestBatchTopKManyChunks checks results and order over many chunks
// finishing out of order, with small and large k (chunks of fewer users,
// not a multiple of the scoring group).
func TestBatchTopKManyChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	const users, items, rank = 5000, 300, 4
	x := batchFactors(rng, users*rank, true)
	y := batchFactors(rng, items*rank, true)
	seen := batchSeen(rng, users, items)
	m := batchModel(t, rank, x, y, seen)
	for _, c := range []struct {
		k       int
		excl    bool
		threads int
	}{{7, true, 3}, {40, false, 2}, {200, true, 4}} {
		got := runBatch(t, m, c.k, c.excl, c.threads)
		for u := 0; u < users; u++ {
			var exclude []int32
			if c.excl {
				exclude = seen[u]
			}
			wi, ws := als.Recommend(x[u*rank:(u+1)*rank], y, exclude, c.k)
			if !slices.Equal(got.items[u], wi) || !slices.Equal(got.scores[u], ws) {
				t.Fatalf("k=%d exclude=%v: user %d:\n got %v %v\nwant %v %v", c.k, c.excl, u, got.items[u], got.scores[u], wi, ws)
			}
		}
	}
}

// TestBatchTopKFloat compares BatchTopK with als.Recommend on normal
// factors: the scores may differ in the last bits (fused multiply-adds), so
// items may swap only where the reference's scores nearly tie.
func TestBatchTopKFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	const users, items, rank, k = 150, 3000, 24, 20
	x := batchFactors(rng, users*rank, false)
	y := batchFactors(rng, items*rank, false)
	seen := batchSeen(rng, users, items)
	m := batchModel(t, rank, x, y, seen)
	for _, excl := range []bool{false, true} {
		got := runBatch(t, m, k, excl, 0)
		for u := 0; u < users; u++ {
			var exclude []int32
			if excl {
				exclude = seen[u]
			}
			wi, ws := als.Recommend(x[u*rank:(u+1)*rank], y, exclude, k)
			if len(got.items[u]) != len(wi) {
				t.Fatalf("exclude=%v user %d: %d items, want %d", excl, u, len(got.items[u]), len(wi))
			}
			const tol = 1e-4
			for p := range wi {
				if math.Abs(float64(got.scores[u][p]-ws[p])) > tol {
					t.Fatalf("exclude=%v user %d rank %d: score %g, want %g", excl, u, p, got.scores[u][p], ws[p])
				}
				if got.items[u][p] != wi[p] {
					// Allowed only in a near tie with a neighbour.
					near := (p > 0 && ws[p-1]-ws[p] < tol) || (p+1 < len(ws) && ws[p]-ws[p+1] < tol) || p == len(ws)-1
					if !near {
						t.Fatalf("exclude=%v user %d rank %d: item %d, want %d (scores %v, want %v)", excl, u, p, got.items[u][p], wi[p], got.scores[u], ws)
					}
				}
			}
		}
	}
}

// TestBatchTopKDirectModel runs on models built in memory (no IDs, no seen
// items), including one without items and excludeSeen asked for on a model
// without seen items.
func TestBatchTopKDirectModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(55, 56))
	const users, items, rank = 300, 700, 5
	m := &checkpoint.Model{Rank: rank, X: batchFactors(rng, users*rank, true), Y: batchFactors(rng, items*rank, true)}
	for _, threads := range []int{0, 1, 2, 7} {
		got := runBatch(t, m, 8, true, threads)
		for u := 0; u < users; u++ {
			wi, ws := als.Recommend(m.X[u*rank:(u+1)*rank], m.Y, nil, 8)
			if !slices.Equal(got.items[u], wi) || !slices.Equal(got.scores[u], ws) {
				t.Fatalf("threads=%d user %d: got %v %v, want %v %v", threads, u, got.items[u], got.scores[u], wi, ws)
			}
		}
	}
	empty := &checkpoint.Model{Rank: rank, X: m.X}
	got := runBatch(t, empty, 3, false, 2)
	for u, it := range got.items {
		if len(it) != 0 {
			t.Fatalf("no items: user %d got %v", u, it)
		}
	}
	none := &checkpoint.Model{Rank: rank, Y: m.Y}
	if err := BatchTopK(context.Background(), none, 3, false, 2, func(int32, []int32, []float32) error {
		return errors.New("emit called")
	}); err != nil {
		t.Fatal(err)
	}
}

func TestBatchTopKBadArguments(t *testing.T) {
	m := &checkpoint.Model{Rank: 2, X: make([]float32, 4), Y: make([]float32, 6)}
	emit := func(int32, []int32, []float32) error { return nil }
	for _, c := range []struct {
		name string
		m    *checkpoint.Model
		k    int
	}{
		{"nil model", nil, 3},
		{"k=0", m, 0},
		{"k<0", m, -1},
		{"rank 0", &checkpoint.Model{}, 3},
		{"ragged X", &checkpoint.Model{Rank: 2, X: make([]float32, 3), Y: make([]float32, 6)}, 3},
	} {
		if err := BatchTopK(context.Background(), c.m, c.k, false, 1, emit); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

// batchBigModel is large enough that BatchTopK cannot finish before a
// cancellation or an error: many chunks.
func batchBigModel() *checkpoint.Model {
	rng := rand.New(rand.NewPCG(57, 58))
	const users, items, rank = 20000, 3000, 8
	return &checkpoint.Model{Rank: rank, X: batchFactors(rng, users*rank, false), Y: batchFactors(rng, items*rank, false)}
}

func TestBatchTopKCancel(t *testing.T) {
	m := batchBigModel()
	users := len(m.X) / m.Rank
	for _, threads := range []int{1, 2, 4} {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		start := time.Now()
		err := BatchTopK(ctx, m, 10, false, threads, func(u int32, _ []int32, _ []float32) error {
			calls++
			if u == 100 {
				cancel()
			}
			return nil
		})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("threads=%d: err = %v, want context.Canceled", threads, err)
		}
		if calls >= users/2 {
			t.Fatalf("threads=%d: %d of %d users emitted after cancelling at user 100", threads, calls, users)
		}
		t.Logf("threads=%d: stopped after %d users in %v", threads, calls, time.Since(start))
	}

	// Cancelled before the start.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	err := BatchTopK(ctx, m, 10, false, 2, func(int32, []int32, []float32) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) || calls >= users/2 {
		t.Fatalf("pre-cancelled: err = %v after %d users", err, calls)
	}

	// A deadline in the middle.
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	err = BatchTopK(ctx, m, 10, false, 2, func(int32, []int32, []float32) error {
		time.Sleep(10 * time.Microsecond)
		return nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: err = %v", err)
	}
}

func TestBatchTopKEmitError(t *testing.T) {
	m := batchBigModel()
	boom := errors.New("boom")
	for _, threads := range []int{1, 3} {
		calls := 0
		err := BatchTopK(context.Background(), m, 5, false, threads, func(u int32, _ []int32, _ []float32) error {
			calls++
			if u == 777 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("threads=%d: err = %v, want boom", threads, err)
		}
		if calls != 778 {
			t.Fatalf("threads=%d: emit called %d times after its error at user 777", threads, calls)
		}
	}
}

// TestBatchTopKEmitSlices checks that the slices handed to emit cannot be
// appended into the next user's results.
func TestBatchTopKEmitSlices(t *testing.T) {
	rng := rand.New(rand.NewPCG(59, 60))
	m := &checkpoint.Model{Rank: 3, X: batchFactors(rng, 50*3, true), Y: batchFactors(rng, 40*3, true)}
	want := runBatch(t, m, 4, false, 1)
	u := 0
	err := BatchTopK(context.Background(), m, 4, false, 1, func(_ int32, items []int32, scores []float32) error {
		if cap(items) != len(items) || cap(scores) != len(scores) {
			return fmt.Errorf("emit slices have room past their length")
		}
		if !slices.Equal(items, want.items[u]) {
			return fmt.Errorf("user %d changed", u)
		}
		u++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBatchScanHelpers covers the heap keys, unsorted seen lists and seen
// items outside the model, which snapshots do not produce.
func TestBatchScanHelpers(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	inf := float32(math.Inf(1))
	vals := []float32{-inf, -3e38, -1, -1e-45, negZero, 0, 1e-45, 0.5, 1, 3e38, inf}
	for _, a := range vals {
		for _, b := range vals {
			for _, ia := range []int32{0, 1, 1 << 30} {
				for _, ib := range []int32{0, 1, 1 << 30} {
					ka, kb := batchKey(a, ia), batchKey(b, ib)
					above := a > b || (a == b && ia < ib)
					if (ka > kb) != above {
						t.Fatalf("key(%g, %d) > key(%g, %d) = %v, want %v", a, ia, b, ib, ka > kb, above)
					}
					if keyScore(ka) != a || keyItem(ka) != ia {
						t.Fatalf("key(%g, %d) decodes to %g, %d", a, ia, keyScore(ka), keyItem(ka))
					}
				}
			}
		}
	}

	w := &batchWorker{sorted: make([][]int32, 1)}
	s := w.sortedSeen(0, []int32{9, 2, 5})
	if !slices.Equal(s, []int32{2, 5, 9}) {
		t.Fatalf("sortedSeen = %v", s)
	}
	asc := []int32{1, 4}
	if s := w.sortedSeen(0, asc); &s[0] != &asc[0] {
		t.Fatal("sortedSeen copied an ascending list")
	}
	hits := []uint64{^uint64(0), ^uint64(0)}
	p := unmarkSeen(hits, []int32{-3, 11, 12, 75, 137, 138, 200}, 0, 10, 128)
	if p != 5 || hits[0] != ^uint64(0b110) || hits[1] != ^uint64(1<<1|1<<63) {
		t.Fatalf("unmarkSeen: p=%d hits=%x", p, hits)
	}
}
