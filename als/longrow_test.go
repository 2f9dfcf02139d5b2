package als

import (
	"context"
	"math/rand/v2"
	"testing"
)

// A Cholesky row of more than longRow ratings is gathered in segments
// (solveLong); its factors and training loss must be those of the whole
// panel (solveChol on one gather) to the last bit, in both models, on
// every kernel path.
func TestLongRowSegments(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		const k, nOther = 24, 40_000
		n := 3*longRow + 77
		other := make([]float32, nOther*k)
		for i := range other {
			other[i] = rng.Float32() - 0.5
		}
		// Two rows: a short one, then the long one (its pointer does not
		// start at 0).
		perm := rng.Perm(nOther)
		cols := make([]int32, 0, n+5)
		for _, c := range perm[:5] {
			cols = append(cols, int32(c))
		}
		long := perm[5 : 5+n]
		for i := range long { // ascending, as a block's rows are
			for j := i; j > 0 && long[j] < long[j-1]; j-- {
				long[j], long[j-1] = long[j-1], long[j]
			}
		}
		for _, c := range long {
			cols = append(cols, int32(c))
		}
		vals := make([]float32, len(cols))
		for i := range vals {
			vals[i] = float32(1 + rng.IntN(5))
		}
		rows := Rows{Ptr: []int64{0, 5, int64(len(cols))}, Col: cols, Val: vals}
		for _, implicit := range []bool{false, true} {
			cfg := Config{Rank: k, Lambda: 0.1, Implicit: implicit, Alpha: 0.5, Solver: SolverCholesky, Threads: 2}
			s, err := NewSolver(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var yty []float64
			var base []float64
			if implicit {
				yty = make([]float64, k*k)
				Gram(other, k, 1, yty)
				base = s.implicitBase(yty)
			}
			x := make([]float32, 2*k)
			st, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other, YtY: yty, X: x, Loss: true})
			if err != nil {
				t.Fatal(err)
			}
			// The whole panel, as solveRow gathers rows up to longRow.
			sc := newRowScratch(k)
			w, v := s.weights(sc, vals[5:])
			sc.grow(n, w != nil)
			kp := sc.kp
			g := sc.g[:(n+rowGroup-1)/rowGroup*rowGroup*kp]
			var wg []float32
			if w != nil {
				wg = sc.wg[:n*kp]
			}
			if j := gatherPanel(g[:n*kp], wg, kp, other, k, cols[5:], n, w); j >= 0 {
				t.Fatal("bad column")
			}
			diag := cfg.Lambda
			if !implicit {
				diag *= float64(n)
			}
			if err := s.solveChol(sc, g, wg, n, v, base, diag); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < k; i++ {
				if want := float32(sc.b[i]); x[k+i] != want {
					t.Fatalf("implicit %v: factor %d = %v, whole panel %v", implicit, i, x[k+i], want)
				}
			}
			if implicit {
				continue
			}
			// The loss of both rows: the short one's, plus the long one's
			// over the whole panel.
			short := make([]float32, 2*k)
			copy(short, x)
			st1, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: Rows{Ptr: rows.Ptr[:2], Col: cols[:5], Val: vals[:5]}, Other: other, X: short[:k], Loss: true})
			if err != nil {
				t.Fatal(err)
			}
			tt := make([]float32, len(g)/kp)
			xp := make([]float32, kp)
			copy(xp, x[k:])
			gemv32(tt, g, n, kp, xp)
			var sse float64
			for j, tj := range tt[:n] {
				e := float64(v[j]) - float64(tj)
				sse += e * e
			}
			if st.SSE != st1.SSE+sse {
				t.Errorf("loss %v, whole panel %v", st.SSE, st1.SSE+sse)
			}
		}
	})
}
