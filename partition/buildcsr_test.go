package partition

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// buildCSR sorts in place (the permutation's cycles, then each row by
// column); against a map of the last value given for each pair, on
// random triplets with many duplicates, rows of every length and empty
// rows.
func TestBuildCSRMatchesReference(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct{ rows, cols, n int }{{1, 1, 10}, {7, 3, 200}, {300, 50, 20_000}, {50, 5000, 30_000}} {
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
		m, dups := buildCSR(tc.rows, rows, cols, vals)
		if int(dups) != tc.n-len(last) || int(m.NNZ()) != len(last) {
			t.Fatalf("%v: %d ratings, %d duplicates; want %d, %d", tc, m.NNZ(), dups, len(last), tc.n-len(last))
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
