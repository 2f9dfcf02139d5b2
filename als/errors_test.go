package als

import (
	"math/rand/v2"
	"testing"
)

// BlockErrorsThreads computes the predictions on several goroutines and
// must still return BlockErrors's sums bit for bit, whatever the thread
// count, with empty rows, rows across the rounds' boundaries and a block
// whose ratings do not start at 0.
func TestBlockErrorsThreads(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	const k, nOther = 12, 500
	other := make([]float32, nOther*k)
	for i := range other {
		other[i] = rng.Float32() - 0.5
	}
	for _, tc := range []struct {
		name         string
		rows, maxLen int
		offset       int64
		emptyEvery   int
		wantParallel bool
	}{
		{"small, serial", 50, 20, 0, 7, false},
		{"rounds", 4000, 40, 0, 5, true},
		{"long rows across rounds", 30, 9000, 0, 3, true},
		{"offset pointers", 3000, 50, 12345, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ptr := []int64{tc.offset}
			var col []int32
			var val []float32
			col = make([]int32, tc.offset)
			val = make([]float32, tc.offset)
			for r := 0; r < tc.rows; r++ {
				n := rng.IntN(tc.maxLen + 1)
				if tc.emptyEvery > 0 && r%tc.emptyEvery == 0 {
					n = 0
				}
				for range n {
					col = append(col, int32(rng.IntN(nOther)))
					val = append(val, float32(rng.IntN(10))/2)
				}
				ptr = append(ptr, int64(len(col)))
			}
			rows := Rows{Ptr: ptr, Col: col, Val: val}
			x := make([]float32, tc.rows*k)
			for i := range x {
				x[i] = rng.Float32()
			}
			if par := rows.NNZ() >= 2*errorsRound; par != tc.wantParallel {
				t.Fatalf("%d ratings: parallel %v, want %v", rows.NNZ(), par, tc.wantParallel)
			}
			s0, a0, n0 := BlockErrors(rows, x, other, k, 0.25)
			for _, threads := range []int{1, 2, 3, 8} {
				s, a, n := BlockErrorsThreads(rows, x, other, k, 0.25, threads)
				if s != s0 || a != a0 || n != n0 {
					t.Errorf("%d threads: %v %v %d, BlockErrors %v %v %d", threads, s, a, n, s0, a0, n0)
				}
			}
		})
	}
}
