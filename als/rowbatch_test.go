package als

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
)

// TestBatchedRowsMatchOneAtATime checks, on every kernel path, explicit
// Cholesky rows solved in batches (the path's batch kernel, or
// cholBatchGo where the path solves rows alone) against the same rows
// solved one at a time: factors and training loss agree to rounding, and
// the batched factors do not depend on threads or on how rows are cut
// into blocks. (The loss's chunked sum depends on the thread count, with
// or without batches.)
func TestBatchedRowsMatchOneAtATime(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		prev := cholBatch
		defer func() { cholBatch = prev }()
		kernel := cholBatch
		if kernel == nil {
			kernel = cholBatchGo
		}
		var calls atomic.Int64
		batched := func(a []float64, n int, b, w []float64) int {
			calls.Add(1)
			return kernel(a, n, b, w)
		}
		cases := []struct {
			k, perRow int
		}{
			{10, 8},   // dual rows and 10×10 systems padded to 16
			{16, 12},  // both paths at kp = k
			{64, 40},  // dual rows of every size class and 64×64 systems
			{64, 700}, // rows longer than batchMaxRatings (solved alone)
			{100, 30}, // k above batchMaxN: only dual rows of ≤ 64 ratings
		}
		if testing.Short() && kernelName == "go" {
			cases = cases[:3] // the reference kernels are slow under -race
		}
		for _, tc := range cases {
			rows, other, x0 := randomBlock(uint64(tc.k*1000+tc.perRow), 150, 1500, tc.perRow, tc.k, false)
			solve := func(kernel func([]float64, int, []float64, []float64) int, threads int, split int) ([]float32, float64) {
				cholBatch = kernel
				cfg := DefaultConfig()
				cfg.Rank, cfg.Lambda, cfg.Threads, cfg.Solver = tc.k, 0.05, threads, SolverCholesky
				s, err := NewSolver(cfg)
				if err != nil {
					t.Fatal(err)
				}
				x := append([]float32(nil), x0...)
				var sse float64
				for _, part := range [][2]int{{0, split}, {split, rows.Len()}} {
					sub := Rows{Ptr: rows.Ptr[part[0] : part[1]+1], Col: rows.Col, Val: rows.Val}
					st, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: sub, Other: other, X: x[part[0]*tc.k : part[1]*tc.k], Loss: true})
					if err != nil {
						t.Fatal(err)
					}
					sse += st.SSE
				}
				return x, sse
			}
			want, wantSSE := solve(nil, 1, rows.Len())
			calls.Store(0)
			got, gotSSE := solve(batched, 1, rows.Len())
			if calls.Load() == 0 {
				t.Fatalf("k=%d perRow=%d: no batch solved", tc.k, tc.perRow)
			}
			var num, den float64
			for i := range want {
				d := float64(got[i]) - float64(want[i])
				num += d * d
				den += float64(want[i]) * float64(want[i])
			}
			if rel := math.Sqrt(num / den); rel > 1e-5 || math.IsNaN(rel) {
				t.Errorf("k=%d perRow=%d: batched factors differ from one-at-a-time by %.3g (relative RMS)", tc.k, tc.perRow, rel)
			}
			if d := math.Abs(gotSSE-wantSSE) / wantSSE; d > 1e-5 {
				t.Errorf("k=%d perRow=%d: loss %v batched, %v one at a time", tc.k, tc.perRow, gotSSE, wantSSE)
			}
			for _, lay := range [][2]int{{2, rows.Len()}, {3, 37}, {5, 101}} {
				x, _ := solve(batched, lay[0], lay[1])
				for i := range x {
					if x[i] != got[i] {
						t.Fatalf("k=%d: threads=%d split at %d: element %d differs from one thread's", tc.k, lay[0], lay[1], i)
					}
				}
			}
		}
	})
}
