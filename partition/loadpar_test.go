package partition

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
)

// randomCSR builds a CSR of rows × cols with about n ratings (duplicates
// dropped), some rows and columns empty, through buildCSR.
func randomCSR(rng *rand.Rand, rows, cols, n int) CSR {
	r, c, v := make([]int32, n), make([]int32, n), make([]float32, n)
	for j := range n {
		// Skewed rows and columns, as ratings are; row 1 and column 1
		// stay empty.
		r[j] = int32(rng.IntN(rows) * rng.IntN(rows) / rows)
		c[j] = int32(rng.IntN(cols) * rng.IntN(cols) / cols)
		if r[j] == 1 {
			r[j] = 0
		}
		if c[j] == 1 {
			c[j] = 0
		}
		v[j] = rng.Float32()
	}
	m, _ := buildCSR(rows, r, c, v, 1)
	return m
}

// transposeThreads against the one-pass transpose, on shapes from tiny
// (one range) to more columns than ratings allow ranges for, with 1-8
// threads; the cases marked parallel must have been cut into ranges.
func TestTransposeThreadsMatchesSerial(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		rows, cols, n int
		threads       int
		parallel      bool
	}{
		{"empty", 3, 4, 0, 4, false},
		{"tiny", 7, 5, 40, 8, false},
		{"one thread", 2000, 300, 300_000, 1, false},
		{"two threads", 2000, 300, 300_000, 2, true},
		{"three threads", 2000, 300, 300_000, 3, true},
		{"eight threads", 5000, 1000, 700_000, 8, true},
		{"few rows", 50, 4000, 1_000_000, 8, true},
		{"wide: column counts bound the ranges", 4000, 60_000, 300_000, 8, false},
		{"long columns", 100_000, 10, 500_000, 4, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.threads)))
			m := randomCSR(rng, tc.rows, tc.cols, tc.n)
			if got := transposeParts(m, tc.cols, tc.threads) > 1; got != tc.parallel {
				t.Fatalf("cut into ranges: %v, want %v (%d ratings)", got, tc.parallel, m.NNZ())
			}
			want := transpose(m, tc.cols)
			got := transposeThreads(m, tc.cols, tc.threads)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("transposeThreads differs from transpose (%d ratings)", m.NNZ())
			}
		})
	}
}

// mapTestTwoSorts is mapTest as it was before it sorted once: the raw
// pairs sorted and deduplicated, mapped, and sorted again in canonical
// indices. It is the reference mapTest must equal.
func mapTestTwoSorts(u, i []int32, r []float32, um, im []int32, nUsers int) TestSet {
	raw, dups := buildCSR(len(um), u, i, r, 1)
	ts := TestSet{Duplicates: dups, Total: raw.NNZ()}
	var cu, ci []int32
	var cr []float32
	for row := 0; row < raw.Rows(); row++ {
		for p := raw.Ptr[row]; p < raw.Ptr[row+1]; p++ {
			a, b := um[row], im[raw.Col[p]]
			if a < 0 || b < 0 {
				ts.Skipped++
				continue
			}
			cu, ci, cr = append(cu, a), append(ci, b), append(cr, raw.Val[p])
		}
	}
	csr, _ := buildCSR(nUsers, cu, ci, cr, 1)
	ts.U = []int32{}
	for row := 0; row < csr.Rows(); row++ {
		for p := csr.Ptr[row]; p < csr.Ptr[row+1]; p++ {
			ts.U = append(ts.U, int32(row))
		}
	}
	ts.I, ts.R = csr.Col, csr.Val
	return ts
}

// randomMap maps n raw indices onto a shuffled subset of canonical ones,
// the others (about absent of each 10) to -1, and returns the canonical
// count.
func randomMap(rng *rand.Rand, n, absent int) ([]int32, int) {
	m := make([]int32, n)
	canon := 0
	for j := range m {
		if rng.IntN(10) < absent {
			m[j] = -1
			continue
		}
		m[j] = int32(canon)
		canon++
	}
	perm := rng.Perm(canon)
	for j, x := range m {
		if x >= 0 {
			m[j] = int32(perm[x])
		}
	}
	return m, canon
}

// The one-sort mapTest against the two-sort one: the same test set
// (users, items, values, their order), counts of duplicates, skipped and
// total, on raw triplets with duplicates, IDs absent from training on
// either side, input in raw order and in canonical order.
func TestMapTestMatchesTwoSorts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                  string
		users, items, n       int
		absentUsers, absentIt int // of 10
		canonicalOrder        bool
	}{
		{"empty", 3, 3, 0, 0, 0, false},
		{"one pair", 1, 1, 1, 0, 0, false},
		{"all absent", 20, 20, 200, 10, 3, false},
		{"many duplicates", 30, 20, 5000, 2, 2, false},
		{"sparse", 3000, 2000, 20_000, 1, 3, false},
		{"no absent IDs", 500, 400, 30_000, 0, 0, false},
		{"canonical order input", 800, 600, 40_000, 2, 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(tc.n), 7))
			um, nUsers := randomMap(rng, tc.users, tc.absentUsers)
			im, nItems := randomMap(rng, tc.items, tc.absentIt)
			u, i, r := make([]int32, tc.n), make([]int32, tc.n), make([]float32, tc.n)
			for j := range tc.n {
				u[j], i[j], r[j] = int32(rng.IntN(tc.users)), int32(rng.IntN(tc.items)), float32(j)
			}
			if tc.canonicalOrder {
				// Sorted by canonical user, then item (absent ones last), as a
				// sorted input file gives them.
				key := func(j int) (int32, int32) {
					a, b := um[u[j]], im[i[j]]
					if a < 0 {
						a = int32(nUsers) + u[j]
					}
					if b < 0 {
						b = int32(nItems) + i[j]
					}
					return a, b
				}
				idx := make([]int, tc.n)
				for j := range idx {
					idx[j] = j
				}
				slices.SortStableFunc(idx, func(x, y int) int {
					ax, bx := key(x)
					ay, by := key(y)
					if ax != ay {
						return int(ax - ay)
					}
					return int(bx - by)
				})
				su, si := make([]int32, tc.n), make([]int32, tc.n)
				for j, k := range idx {
					su[j], si[j] = u[k], i[k]
				}
				u, i = su, si
			}
			want := mapTestTwoSorts(slices.Clone(u), slices.Clone(i), slices.Clone(r), um, im, nUsers)
			got := mapTest(u, i, r, um, im, nUsers, nItems, 2)
			if got.Total != want.Total || got.Skipped != want.Skipped || got.Duplicates != want.Duplicates {
				t.Fatalf("total %d skipped %d duplicates %d, want %d %d %d", got.Total, got.Skipped, got.Duplicates,
					want.Total, want.Skipped, want.Duplicates)
			}
			if !slices.Equal(got.U, want.U) || !slices.Equal(got.I, want.I) || !slices.Equal(got.R, want.R) {
				t.Fatalf("test set differs: %d pairs, want %d", len(got.R), len(want.R))
			}
		})
	}
}

// forRanges covers [0, n) once, in at most threads ranges of at least
// minParallelRatings (or one range).
func TestForRanges(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, minParallelRatings - 1, 2 * minParallelRatings, 5*minParallelRatings + 3} {
		for _, threads := range []int{0, 1, 2, 3, 8} {
			t.Run(fmt.Sprintf("n=%d,threads=%d", n, threads), func(t *testing.T) {
				t.Parallel()
				seen := make([]int32, n)
				var mu sync.Mutex
				var lens []int
				forRanges(n, threads, func(lo, hi int) {
					mu.Lock()
					lens = append(lens, hi-lo)
					mu.Unlock()
					for j := lo; j < hi; j++ {
						seen[j]++
					}
				})
				if len(lens) > max(threads, 1) {
					t.Errorf("%d ranges for %d threads", len(lens), threads)
				}
				if len(lens) > 1 && slices.Min(lens) < minParallelRatings {
					t.Errorf("ranges %v: one shorter than %d", lens, minParallelRatings)
				}
				for j, s := range seen {
					if s != 1 {
						t.Fatalf("index %d covered %d times", j, s)
					}
				}
			})
		}
	}
}

// mergeParts on several threads against one, on parts long enough to be
// cut into ranges: the same Builder.
func TestMergePartsThreads(t *testing.T) {
	t.Parallel()
	ids := make([][]byte, 5000)
	for j := range ids {
		ids[j] = fmt.Appendf(nil, "%d", j)
	}
	makeParts := func() []rangePart {
		rng := rand.New(rand.NewPCG(1, 2))
		parts := make([]rangePart, 3)
		for k := range parts {
			b := NewBuilder()
			for range (k + 1) * 70_000 {
				if err := b.Add(ids[rng.IntN(5000)], ids[rng.IntN(800)], rng.Float32()); err != nil {
					t.Fatal(err)
				}
			}
			parts[k].b = b
		}
		return parts
	}
	want := mergeParts(makeParts(), 1)
	for _, threads := range []int{2, 3, 8} {
		got := mergeParts(makeParts(), threads)
		if !slices.Equal(got.Users.IDs(), want.Users.IDs()) || !slices.Equal(got.Items.IDs(), want.Items.IDs()) {
			t.Fatalf("%d threads: dictionaries differ", threads)
		}
		if !slices.Equal(got.U, want.U) || !slices.Equal(got.I, want.I) || !slices.Equal(got.R, want.R) {
			t.Fatalf("%d threads: ratings differ", threads)
		}
	}
}

// permute against an out-of-place scatter, on permutations random, near
// sorted, reversed and sorted, with buckets from 2 ratings to more than
// the input and 1-8 threads.
func TestPermuteMatchesScatter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		n       int
		shift   uint
		threads int
		order   string
	}{
		{"empty", 0, 4, 2, "random"},
		{"one", 1, 1, 2, "random"},
		{"one bucket", 1000, 16, 2, "random"},
		{"tiny buckets", 1000, 1, 1, "random"},
		{"partial last bucket", 1001, 3, 3, "random"},
		{"reversed", 5000, 5, 2, "reversed"},
		{"sorted", 5000, 5, 2, "sorted"},
		{"near sorted", 300_000, 10, 2, "near"},
		{"random, threads", 300_000, 12, 8, "random"},
		{"random, default buckets", 400_000, permuteShift, 2, "random"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.shift)))
			dest := make([]int32, tc.n)
			for j := range dest {
				dest[j] = int32(j)
			}
			switch tc.order {
			case "random":
				rng.Shuffle(tc.n, func(a, b int) { dest[a], dest[b] = dest[b], dest[a] })
			case "reversed":
				slices.Reverse(dest)
			case "near":
				for range tc.n / 100 {
					a, b := rng.IntN(tc.n), rng.IntN(tc.n)
					dest[a], dest[b] = dest[b], dest[a]
				}
			}
			cols, vals := make([]int32, tc.n), make([]float32, tc.n)
			for j := range cols {
				cols[j], vals[j] = rng.Int32(), rng.Float32()
			}
			wantC, wantV := make([]int32, tc.n), make([]float32, tc.n)
			for j, d := range dest {
				wantC[d], wantV[d] = cols[j], vals[j]
			}
			permute(dest, cols, vals, tc.shift, tc.threads)
			if !slices.Equal(cols, wantC) || !slices.Equal(vals, wantV) {
				t.Fatal("ratings not at their positions")
			}
		})
	}
}
