package serve

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cofactor-ml/cofactor/checkpoint"
)

// handModel is rank 2 with items chosen for ties:
//
//	item   i0     i1     i2     i3     i4     i5
//	y      (1,0)  (0,1)  (1,1)  (2,0)  (1,0)  (0,0)
//	count  5      9      5      1      9      0
//
// u0 = (1,0) scores 1 0 1 2 1 0; u1 = (0,1) scores 0 1 1 0 0 0;
// u2 = (−1,−1) scores −1 −1 −2 −2 −1 0. u0 trained on i2 and i3.
func handModel(t testing.TB) *checkpoint.Model {
	return spec{
		rank: 2, users: ids("u", 3), items: ids("i", 6), lambda: 0.1,
		x:          []float32{1, 0, 0, 1, -1, -1},
		y:          []float32{1, 0, 0, 1, 1, 1, 2, 0, 1, 0, 0, 0},
		itemCounts: []int32{5, 9, 5, 1, 9, 0},
		seen:       [][]int32{{2, 3}, {1}, {}},
	}.model(t)
}

func sc(pairs ...float32) []Scored {
	out := []Scored{}
	for j := 0; j < len(pairs); j += 2 {
		out = append(out, Scored{Item: int32(pairs[j]), Score: pairs[j+1]})
	}
	return out
}

func TestRecommendHandMade(t *testing.T) {
	t.Parallel()
	m := handModel(t)
	tests := []struct {
		name string
		user int32
		k    int
		f    Filter
		want []Scored
	}{
		{"top 3, ties to the lower index", 0, 3, Filter{}, sc(3, 2, 0, 1, 2, 1)},
		{"k above the item count", 0, 10, Filter{}, sc(3, 2, 0, 1, 2, 1, 4, 1, 1, 0, 5, 0)},
		{"k 0", 0, 0, Filter{}, sc()},
		{"negative k", 0, -1, Filter{}, sc()},
		{"second user", 1, 3, Filter{}, sc(1, 1, 2, 1, 0, 0)},
		{"negative scores", 2, 4, Filter{}, sc(5, 0, 0, -1, 1, -1, 4, -1)},
		{"exclude", 0, 3, Filter{Exclude: []int32{3, 2}}, sc(0, 1, 4, 1, 1, 0)},
		{"exclude out of range is ignored", 0, 2, Filter{Exclude: []int32{-1, 6, 99}}, sc(3, 2, 0, 1)},
		{"restrict, duplicates once", 0, 5, Filter{Restrict: []int32{4, 1, 0, 4}}, sc(0, 1, 4, 1, 1, 0)},
		{"restrict and exclude", 0, 5, Filter{Restrict: []int32{4, 1, 0}, Exclude: []int32{0}}, sc(4, 1, 1, 0)},
		{"restrict cut at k", 0, 1, Filter{Restrict: []int32{1, 4, 0}}, sc(0, 1)},
		{"empty restrict returns nothing", 0, 3, Filter{Restrict: []int32{}}, sc()},
		{"restrict out of range is ignored", 0, 3, Filter{Restrict: []int32{7, -2, 5}}, sc(5, 0)},
		{"exclude seen", 0, 3, Filter{ExcludeSeen: true}, sc(0, 1, 4, 1, 1, 0)},
		{"exclude seen and restrict", 0, 3, Filter{ExcludeSeen: true, Restrict: []int32{3, 5}}, sc(5, 0)},
		{"exclude seen of a user without any", 2, 2, Filter{ExcludeSeen: true}, sc(5, 0, 0, -1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := RecommendUser(m, tc.user, tc.k, tc.f)
			if !slices.Equal(got, tc.want) {
				t.Errorf("RecommendUser = %v, want %v", got, tc.want)
			}
			if !tc.f.ExcludeSeen {
				if got := Recommend(m, m.UserRow(tc.user), tc.k, tc.f); !slices.Equal(got, tc.want) {
					t.Errorf("Recommend = %v, want %v", got, tc.want)
				}
			}
		})
	}
	// A bare row has no training items: ExcludeSeen does nothing.
	if got, want := Recommend(m, m.UserRow(0), 2, Filter{ExcludeSeen: true}), sc(3, 2, 0, 1); !slices.Equal(got, want) {
		t.Errorf("Recommend with ExcludeSeen = %v, want %v", got, want)
	}
}

func TestPopular(t *testing.T) {
	t.Parallel()
	m := handModel(t)
	for _, tc := range []struct {
		name string
		k    int
		f    Filter
		want []Scored
	}{
		{"all, ties to the lower index", 10, Filter{}, sc(1, 9, 4, 9, 0, 5, 2, 5, 3, 1, 5, 0)},
		{"top 3", 3, Filter{}, sc(1, 9, 4, 9, 0, 5)},
		{"exclude", 2, Filter{Exclude: []int32{1}}, sc(4, 9, 0, 5)},
		{"restrict", 2, Filter{Restrict: []int32{5, 3, 2}}, sc(2, 5, 3, 1)},
		{"exclude seen is not a user's", 1, Filter{ExcludeSeen: true}, sc(1, 9)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Popular(m, tc.k, tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("Popular = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSimilarHandMade(t *testing.T) {
	t.Parallel()
	m := handModel(t)
	ix, err := NewIndex(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := float32(1 / math.Sqrt(2))
	for _, tc := range []struct {
		name string
		item int32
		k    int
		want []Scored
	}{
		{"never the item itself", 0, 10, sc(3, 1, 4, 1, 2, r, 1, 0, 5, 0)},
		{"cut at k", 1, 1, sc(2, r)},
		{"a zero row is similar to nothing", 5, 3, sc(0, 0, 1, 0, 2, 0)},
		{"k 0", 2, 0, sc()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, got := range map[string][]Scored{"Similar": Similar(m, tc.item, tc.k), "Index.Similar": ix.Similar(tc.item, tc.k)} {
				if len(got) != len(tc.want) {
					t.Fatalf("%s = %v, want %v", name, got, tc.want)
				}
				for j := range got {
					if got[j].Item != tc.want[j].Item || math.Abs(float64(got[j].Score-tc.want[j].Score)) > 1e-6 {
						t.Errorf("%s = %v, want %v", name, got, tc.want)
						break
					}
				}
			}
		})
	}
}

// reference ranks by brute force: every score, a full sort, then the
// filters.
func reference(scores []float32, k int, f Filter, seen []int32) []Scored {
	drop := map[int32]bool{}
	for _, i := range append(slices.Clone(f.Exclude), seen...) {
		drop[i] = true
	}
	var cand []Scored
	if f.Restrict != nil {
		in := map[int32]bool{}
		for _, i := range f.Restrict {
			if int(i) >= 0 && int(i) < len(scores) && !in[i] {
				in[i] = true
				cand = append(cand, Scored{i, scores[i]})
			}
		}
	} else {
		for i, s := range scores {
			cand = append(cand, Scored{int32(i), s})
		}
	}
	cand = slices.DeleteFunc(cand, func(s Scored) bool { return drop[s.Item] })
	slices.SortFunc(cand, func(a, b Scored) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.Item, b.Item)
	})
	out := []Scored{}
	if k > 0 {
		out = cand[:min(k, len(cand))]
	}
	return out
}

// Integer factors make every score exact, whatever the summation order,
// and ties frequent: the answers must equal the brute-force ones exactly.
func TestRecommendMatchesBruteForce(t *testing.T) {
	t.Parallel()
	for _, rank := range []int{1, 3, 16, 17, 64} {
		sp := randomSpec(uint64(rank), 20, 1500, rank, true)
		rng := rand.New(rand.NewPCG(uint64(rank), 1))
		sp.seen = make([][]int32, len(sp.users))
		for u := range sp.seen {
			for i := 0; i < len(sp.items); i += 1 + rng.IntN(40) {
				sp.seen[u] = append(sp.seen[u], int32(i))
			}
		}
		m := sp.model(t)
		for u := int32(0); u < int32(len(sp.users)); u++ {
			scores := make([]float32, len(sp.items))
			for i := range scores {
				var s float32
				for c := 0; c < rank; c++ {
					s += m.UserRow(u)[c] * m.ItemRow(int32(i))[c]
				}
				scores[i] = s
			}
			var f Filter
			switch u % 4 {
			case 1:
				f.Exclude = []int32{int32(rng.IntN(1500)), int32(rng.IntN(1500)), 3000}
			case 2:
				f.Restrict = []int32{}
				for range 100 {
					f.Restrict = append(f.Restrict, int32(rng.IntN(1600)))
				}
			case 3:
				f.ExcludeSeen = true
			}
			var seen []int32
			if f.ExcludeSeen {
				seen = m.Seen(u)
			}
			for _, k := range []int{1, 10, 600, 2000} {
				got, want := RecommendUser(m, u, k, f), reference(scores, k, f, seen)
				if !slices.Equal(got, want) {
					t.Fatalf("rank %d user %d k %d filter %+v:\n got %v\nwant %v", rank, u, k, f, got, want)
				}
			}
		}
		counts := make([]float32, len(sp.items))
		for i, c := range m.ItemCounts {
			counts[i] = float32(c)
		}
		if got, want := Popular(m, 50, Filter{}), reference(counts, 50, Filter{}, nil); !slices.Equal(got, want) {
			t.Fatalf("Popular:\n got %v\nwant %v", got, want)
		}
	}
}

func TestRecommendAllocatesOnlyTheResult(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	m := randomSpec(1, 4, 5000, 32, false).model(t)
	f := Filter{Exclude: []int32{1, 2, 3}}
	RecommendUser(m, 0, 10, f) // warm the pool
	if n := testing.AllocsPerRun(100, func() { RecommendUser(m, 1, 10, f) }); n > 1 {
		t.Errorf("%v allocations per query, want 1 (the result)", n)
	}
}

func TestDotKernel(t *testing.T) {
	t.Parallel()
	t.Logf("kernel %s", dotKernel)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, k := range []int{1, 2, 7, 15, 16, 17, 31, 32, 33, 64, 100, 128} {
		for _, n := range []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 600} {
			x := make([]float32, k)
			y := make([]float32, n*k)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			for i := range y {
				y[i] = float32(rng.NormFloat64())
			}
			want := make([]float32, n)
			dotRowsGo(want, x, y)
			got := make([]float32, n+1)
			got[n] = 42
			dotRows(got[:n], x, y)
			if got[n] != 42 {
				t.Fatalf("k %d n %d: wrote past the output", k, n)
			}
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*float64(k) {
					t.Fatalf("k %d n %d row %d: %v, reference %v", k, n, i, got[i], want[i])
				}
			}
		}
	}
}
