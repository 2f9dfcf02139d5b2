package partition

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// buildCSR sorts in place (the permutation's cycles, then each row by
// column); against a map of the last value given for each pair, on
// random triplets with many duplicates, rows of every length and empty
// rows, and on several threads against one.
func TestBuildCSRMatchesReference(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	tests := []struct{ rows, cols, n, threads int }{
		{1, 1, 10, 1}, {7, 3, 200, 1}, {300, 50, 20_000, 1}, {50, 5000, 30_000, 1},
		// Enough ratings to be cut into ranges (minParallelRatings each).
		{300, 50, 200_000, 2}, {5000, 800, 400_000, 3}, {20_000, 30_000, 600_000, 8}, {4, 100, 300_000, 8},
	}
	for _, tc := range tests {
		rows := make([]int32, tc.n)
		cols := make([]int32, tc.n)
		vals := make([]float32, tc.n)
		last := map[[2]int32]float32{}
		for j := range rows {
			r, c := int32(rng.IntN(tc.rows)), int32(rng.IntN(tc.cols))
			if r == 2 {
				r = 3 // row 2 stays empty
			}
			rows[j], cols[j], vals[j] = r, c, float32(j)
			last[[2]int32{r, c}] = float32(j)
		}
		// The one-goroutine result, which every thread count must equal.
		serial, serialDups := buildCSR(tc.rows, slices.Clone(rows), slices.Clone(cols), slices.Clone(vals), 1)
		m, dups := buildCSR(tc.rows, rows, cols, vals, tc.threads)
		if int(dups) != tc.n-len(last) || int(m.NNZ()) != len(last) {
			t.Fatalf("%v: %d ratings, %d duplicates; want %d, %d", tc, m.NNZ(), dups, len(last), tc.n-len(last))
		}
		if dups != serialDups || !reflect.DeepEqual(m, serial) {
			t.Fatalf("%v: differs from the one-goroutine result", tc)
		}
		for r := 0; r < tc.rows; r++ {
			c := m.Col[m.Ptr[r]:m.Ptr[r+1]]
			if !slices.IsSorted(c) {
				t.Fatalf("%v: row %d not sorted: %v", tc, r, c)
			}
			for p := m.Ptr[r]; p < m.Ptr[r+1]; p++ {
				if want, ok := last[[2]int32{int32(r), m.Col[p]}]; !ok || m.Val[p] != want {
					t.Fatalf("%v: row %d col %d = %v, want the last given %v (%v)", tc, r, m.Col[p], m.Val[p], want, ok)
				}
			}
		}
	}
}
