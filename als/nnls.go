package als

import "math"

// nnlsScratch is the reusable space of nnls for systems of up to n
// unknowns.
type nnlsScratch struct {
	sub, rhs []float64 // the passive set's system
	x, z, g  []float64
	passive  []bool
	idx      []int
}

func newNNLSScratch(n int) nnlsScratch {
	return nnlsScratch{
		sub: make([]float64, n*n), rhs: make([]float64, n),
		x: make([]float64, n), z: make([]float64, n), g: make([]float64, n),
		passive: make([]bool, n), idx: make([]int, 0, n),
	}
}

// nnls solves min ½ xᵀAx − bᵀx subject to x_i ≥ 0 for every i that is not
// free, for a symmetric positive definite n×n row-major A (only its lower
// triangle is read) — the least-squares problem whose normal equations are
// A x = b, with a sign constraint. It is the active-set method of Lawson
// and Hanson: unknowns enter the passive (unconstrained) set by largest
// gradient, the passive set's system is solved exactly by Cholesky, and
// when that solution leaves the feasible region the step is cut back to
// its edge and the unknowns that reached zero leave the set. The result
// overwrites b. A is not modified.
//
// Each passive-set solve costs (n³/3); the iterations are bounded by
// 3n+10 outer and inner steps, after which the last feasible point is
// returned (never reached on the systems of ALS rows, which are well
// conditioned by the regularisation).
func nnls(sc *nnlsScratch, a, b []float64, n int, free []bool) error {
	x, z, g, passive := sc.x[:n], sc.z[:n], sc.g[:n], sc.passive[:n]
	clear(x)
	anyFree := false
	for i := range passive {
		passive[i] = free != nil && free[i]
		anyFree = anyFree || passive[i]
	}
	if anyFree {
		if err := sc.solvePassive(a, b, n, z); err != nil {
			return err
		}
		copy(x, z)
	}
	scale := 0.0
	for _, v := range b[:n] {
		scale = max(scale, math.Abs(v))
	}
	tol := 1e-12 * max(scale, 1e-300)
	limit := 3*n + 10
	for outer := 0; outer < limit; outer++ {
		// g = b − A x: the negative gradient.
		for i := range g {
			s := b[i]
			for j, xj := range x {
				s -= sym(a, n, i, j) * xj
			}
			g[i] = s
		}
		j, best := -1, tol
		for i, gi := range g {
			if !passive[i] && gi > best {
				j, best = i, gi
			}
		}
		if j < 0 {
			break
		}
		passive[j] = true
		for inner := 0; inner < limit; inner++ {
			if err := sc.solvePassive(a, b, n, z); err != nil {
				return err
			}
			alpha, feasible := 1.0, true
			for i, p := range passive {
				if p && (free == nil || !free[i]) && z[i] <= 0 {
					feasible = false
					if d := x[i] - z[i]; d > 0 {
						alpha = min(alpha, x[i]/d)
					} else {
						alpha = 0
					}
				}
			}
			if feasible {
				copy(x, z)
				break
			}
			if inner == 0 && z[j] <= 0 {
				// Rounding made the entering unknown's step point out of
				// the feasible region: no progress is possible from here.
				passive[j] = false
				copy(b[:n], x)
				return nil
			}
			xmax := 0.0
			for i := range x {
				x[i] += alpha * (z[i] - x[i])
				xmax = max(xmax, math.Abs(x[i]))
			}
			// The unknowns the step was cut at are zero up to rounding.
			for i, p := range passive {
				if p && (free == nil || !free[i]) && x[i] <= 1e-14*xmax {
					x[i], passive[i] = 0, false
				}
			}
		}
	}
	copy(b[:n], x)
	return nil
}

// sym reads A[i][j] of a symmetric matrix from its lower triangle.
func sym(a []float64, n, i, j int) float64 {
	if j > i {
		i, j = j, i
	}
	return a[i*n+j]
}

// solvePassive solves the passive unknowns' system A_PP z_P = b_P into z
// (zero outside P).
func (sc *nnlsScratch) solvePassive(a, b []float64, n int, z []float64) error {
	idx := sc.idx[:0]
	for i, p := range sc.passive[:n] {
		if p {
			idx = append(idx, i)
		}
	}
	m := len(idx)
	sub, rhs := sc.sub[:m*m], sc.rhs[:m]
	for p, i := range idx {
		for q, j := range idx {
			sub[p*m+q] = sym(a, n, i, j)
		}
		rhs[p] = b[i]
	}
	clear(z)
	if err := cholSolve(sub, m, rhs); err != nil {
		return err
	}
	for p, i := range idx {
		z[i] = rhs[p]
	}
	sc.idx = idx
	return nil
}
