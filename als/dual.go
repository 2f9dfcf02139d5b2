package als

import "fmt"

// Rows with fewer ratings than the rank are solved through the row's dual
// system. The explicit normal equations of a row with n ratings,
//
//	(GᵀG + d I) x = Gᵀ v        (k×k, d = λ n > 0)
//
// have the same solution as
//
//	(G Gᵀ + d I) z = v,   x = Gᵀ z        (n×n)
//
// because Gᵀ(G Gᵀ + d I) = (GᵀG + d I)Gᵀ. For n < k the dual system is the
// smaller one: forming it costs n²k/2 multiply-adds against nk²/2 and
// factoring it n³/6 against k³/6, so a row with a handful of ratings (most
// users of a Netflix-shaped set, the long tail of items everywhere) costs a
// fraction of a k×k Cholesky. The arithmetic is the same as the primal
// path's (float32 products summed in float32 over at most k terms, a
// float64 Cholesky); the two agree to rounding, which the tests check
// against the primal path and against gonum.

// dualSolve enables the dual path; tests switch it off to compare with
// the primal one.
var dualSolve = true

// useDual reports whether a row of n ratings takes the dual path: the
// explicit model with a positive λ (the dual system needs d > 0 to be
// definite; the primal one reports a singular row the same way it always
// has) and fewer ratings than the rank.
func (s *Solver) useDual(n int) bool {
	return dualSolve && !s.cfg.Implicit && s.cfg.Lambda > 0 && n < s.cfg.Rank &&
		s.cfg.SolverUsed() == SolverCholesky
}

// solveDual solves the row's normal equations through the dual system and
// leaves x in sc.x (float32, zero padded to kp). g is the row's gathered
// panel (n rows of stride kp), v its ratings, d = λ n.
func (s *Solver) solveDual(sc *rowScratch, g []float32, n int, v []float32, d float64) error {
	k, kp := s.cfg.Rank, sc.kp
	np := (n + rowPad - 1) / rowPad * rowPad
	// t = Gᵀ (kp rows of stride np, the columns past n zero), so that
	// syrk32, which sums over a panel's rows, sums over the factors.
	t := sc.gt[:kp*np]
	transposePanel(t, g, n, np, kp)
	syrk32(sc.a64[:np*np], t, t, kp, np, true)
	a := sc.a[:n*n]
	symFill(a, sc.a64, nil, n, np, d)
	z := sc.b[:n]
	for j, vj := range v[:n] {
		z[j] = float64(vj)
	}
	if err := cholSolve(a, n, z); err != nil {
		return fmt.Errorf("%w (%d ratings, lambda %g)", ErrNotPositiveDefinite, n, s.cfg.Lambda)
	}
	// x = Gᵀ z, the rows of t dotted with z.
	z32 := sc.s[:np]
	for j := range z32 {
		z32[j] = 0
		if j < n {
			z32[j] = float32(z[j])
		}
	}
	x := sc.x
	gemv32(x[:kp], t, kp, np, z32)
	clear(x[k:])
	return nil
}

// transposePanel transposes a short row's panel (see transposePanelGo);
// kernel_amd64.go installs gather-based vector versions.
var transposePanel = transposePanelGo

// transposePanelGo writes the n×kp row-major panel g transposed into t
// (kp×np row-major), zeroing t's columns n ≤ j < np.
func transposePanelGo(t, g []float32, n, np, kp int) {
	t = t[:kp*np]
	g = g[:n*kp]
	for i := 0; i < kp; i++ {
		row := t[i*np : i*np+np]
		for r := range row[:n] {
			row[r] = g[r*kp+i]
		}
		clear(row[n:])
	}
}
