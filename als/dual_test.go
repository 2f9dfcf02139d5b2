package als

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The dual path (rows with fewer ratings than the rank) gives the primal
// path's factors, on every kernel set, for every row length below the rank
// and ranks around the vector widths.
func TestDualMatchesPrimal(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		for _, k := range []int{2, 7, 16, 17, 31, 64, 100} {
			t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(k), 3))
				const nOther = 300
				other := make([]float32, nOther*k)
				for i := range other {
					other[i] = float32(rng.NormFloat64() * 0.4)
				}
				// One row of every length 1..k (k itself takes the primal path).
				rows := Rows{Ptr: []int64{0}}
				for n := 1; n <= k; n++ {
					for _, c := range rng.Perm(nOther)[:n] {
						rows.Col = append(rows.Col, int32(c))
					}
					cols := rows.Col[rows.Ptr[len(rows.Ptr)-1]:]
					slices.Sort(cols)
					for range n {
						rows.Val = append(rows.Val, float32(rng.IntN(9)+1)/2)
					}
					rows.Ptr = append(rows.Ptr, int64(len(rows.Col)))
				}
				cfg := DefaultConfig()
				cfg.Rank, cfg.Lambda, cfg.Solver, cfg.Threads = k, 0.05, SolverCholesky, 2
				solve := func(dual bool) ([]float32, BlockStats) {
					prev := dualSolve
					dualSolve = dual
					defer func() { dualSolve = prev }()
					s, err := NewSolver(cfg)
					if err != nil {
						t.Fatal(err)
					}
					x := make([]float32, rows.Len()*k)
					st, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other, X: x, Loss: true})
					if err != nil {
						t.Fatal(err)
					}
					return x, st
				}
				xd, sd := solve(true)
				xp, sp := solve(false)
				for r := 0; r < rows.Len(); r++ {
					lo, hi := rows.Ptr[r], rows.Ptr[r+1]
					want := referenceRow(t, cfg, rows.Col[lo:hi], rows.Val[lo:hi], other, nil)
					for i, w := range want {
						d, p := float64(xd[r*k+i]), float64(xp[r*k+i])
						if math.Abs(d-w) > 2e-5*(1+math.Abs(w)) || math.Abs(d-p) > 2e-5*(1+math.Abs(p)) {
							t.Fatalf("row of %d ratings, factor %d: dual %g, primal %g, gonum %g", hi-lo, i, d, p, w)
						}
					}
				}
				if math.Abs(sd.SSE-sp.SSE) > 1e-5*sp.SSE {
					t.Errorf("SSE dual %g, primal %g", sd.SSE, sp.SSE)
				}
			})
		}
	})
}

// λ = 0 keeps the primal path: a row with fewer ratings than the rank is
// singular there and reported, not solved for a minimum-norm answer.
func TestDualNotUsedWithoutLambda(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rank, cfg.Lambda, cfg.Solver = 8, 0, SolverCholesky
	s, err := NewSolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.useDual(3) {
		t.Fatal("λ = 0 took the dual path")
	}
	rows := Rows{Ptr: []int64{0, 3}, Col: []int32{0, 1, 2}, Val: []float32{1, 2, 3}}
	other := make([]float32, 3*8)
	for i := range other {
		other[i] = float32(i%5) + 1
	}
	_, err = s.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other, X: make([]float32, 8)})
	if err == nil {
		t.Fatal("a singular row solved without error")
	}
}

func TestTransposePanel(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 5))
		for _, kp := range []int{16, 32, 64, 128} {
			for n := 1; n < kp; n += 3 {
				np := roundUp(n, rowPad)
				g := randPanel(rng, n, kp, kp)
				got := make([]float32, kp*np)
				for i := range got {
					got[i] = float32(math.NaN()) // every entry must be written
				}
				want := make([]float32, kp*np)
				transposePanelGo(want, g, n, np, kp)
				transposePanel(got, g, n, np, kp)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("kp=%d n=%d: t[%d][%d] = %g, want %g", kp, n, i/np, i%np, got[i], want[i])
					}
				}
			}
		}
	})
}
