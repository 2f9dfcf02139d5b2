package als

import "fmt"

// Explainer splits a user's scores into the contributions of the user's
// training ratings. It holds the user's row recomputed from the final item
// factors — the solve of one more user half-iteration — and the Cholesky
// factor of that row's system, as the implicit library's explain does.
//
// The recomputed row is x = A⁻¹ Σ_j v_j d_j (d_j the design row of
// training rating j, v_j its target: r_j for the explicit model, r_j − μ −
// c_j with biases, the confidence 1 + α r_j for the implicit one), so the
// score of an item with design vector e is
//
//	base + e·x = base + Σ_j v_j (eᵀ A⁻¹ d_j)
//
// and the j-th term is rating j's contribution. base is μ + c_i with
// biases, else 0. With non-negative factors the same holds on the passive
// set of the solution (the unknowns not held at zero), where NNLS's answer
// is the unconstrained solve.
type Explainer struct {
	cfg  Config
	kd   int
	mean float32
	d    []float32 // n × kd design rows
	v    []float32 // n targets
	pidx []int     // the passive unknowns (all of them without NonNegative)
	u    []float64 // the Cholesky factor of A on the passive set (upper triangle)
	row  []float32 // the recomputed row, stored layout (Width)
	q    []float64 // scratch: A⁻¹ e on the passive set
}

// NewExplainer recomputes a user's row from the user's training ratings:
// items holds the rated items' stored rows (len(vals) rows of
// cfg.Width()), vals the ratings, yty the items' YᵀY (implicit model),
// mean the global mean (biases). It fails with ErrNotPositiveDefinite
// when the row's system is singular (λ = 0), and ErrShape on bad lengths.
func NewExplainer(cfg Config, items []float32, vals []float32, yty []float64, mean float32) (*Explainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n, k, width := len(vals), cfg.Rank, cfg.Width()
	if len(items) != n*width || (cfg.Implicit && len(yty) != k*k) {
		return nil, fmt.Errorf("%w: %d ratings, %d item values, len(yty)=%d, width %d", ErrShape, n, len(items), len(yty), width)
	}
	sp := newSpecialScratch(cfg)
	cols := make([]int32, n)
	for j := range cols {
		cols[j] = int32(j)
	}
	e := &Explainer{cfg: cfg, kd: sp.kd, mean: mean, row: make([]float32, width)}
	if cfg.Biases {
		setBiasColumns(e.row, k, UserSide, 0)
	}
	if n == 0 {
		return e, nil // the zero row: every score is its base
	}
	d, v, w := sp.design(cfg, UserSide, mean, items, cols, vals)
	e.d, e.v = append([]float32(nil), d...), append([]float32(nil), v...)
	var base []float64
	if cfg.Implicit {
		base = make([]float64, k*k)
		copy(base, yty)
		for i := 0; i < k; i++ {
			base[i*k+i] += cfg.Lambda
		}
	}
	a := make([]float64, e.kd*e.kd)
	diag := 0.0
	if !cfg.Implicit {
		diag = cfg.Lambda * float64(n)
	}
	sp.ne.reset()
	sp.ne.add(d, cols, w, v)
	sp.ne.matrix(a, base, diag)
	b := append([]float64(nil), sp.ne.b...)
	sol := append([]float64(nil), b...)
	if cfg.NonNegative {
		if err := nnls(&sp.nn, a, sol, e.kd, sp.free); err != nil {
			return nil, fmt.Errorf("%w (%d ratings, lambda %g)", ErrNotPositiveDefinite, n, cfg.Lambda)
		}
	}
	for i := 0; i < e.kd; i++ {
		if !cfg.NonNegative || sp.free[i] || sol[i] > 0 {
			e.pidx = append(e.pidx, i)
		}
	}
	// The passive set's system, factored; solved for b it gives the row
	// (again, for NNLS: the same solution on its passive set).
	m := len(e.pidx)
	e.u = make([]float64, m*m)
	rhs := make([]float64, m)
	for p, i := range e.pidx {
		for q, j := range e.pidx {
			e.u[p*m+q] = a[i*e.kd+j]
		}
		rhs[p] = b[i]
	}
	if err := cholSolve(e.u, m, rhs); err != nil {
		return nil, fmt.Errorf("%w (%d ratings, lambda %g)", ErrNotPositiveDefinite, n, cfg.Lambda)
	}
	full := make([]float64, e.kd)
	for p, i := range e.pidx {
		full[i] = rhs[p]
	}
	for i := 0; i < k; i++ {
		e.row[i] = float32(full[i])
	}
	if cfg.Biases {
		setBiasColumns(e.row, k, UserSide, float32(full[k]))
	}
	e.q = make([]float64, m)
	return e, nil
}

// Row is the recomputed user row in the stored layout (Width values):
// score an item by mean + Row()·item. Shared: do not modify.
func (e *Explainer) Row() []float32 { return e.row }

// Contributions writes into dst (one entry per training rating, in the
// order given to NewExplainer) each rating's share of the score of the
// item whose stored row is item, and returns the score's base (μ + c_i
// with biases, else 0): the item's score from Row is base + Σ dst up to
// rounding. It is not safe for concurrent use.
func (e *Explainer) Contributions(item []float32, dst []float64) (base float64) {
	k := e.cfg.Rank
	if e.cfg.Biases {
		base = float64(e.mean) + float64(Bias(item, k, ItemSide))
	}
	n := len(e.v)
	dst = dst[:n]
	if n == 0 {
		return base
	}
	// q = A⁻¹ e on the passive set, e the item's design vector: its
	// factors and, with biases, the 1 that multiplies the user's bias.
	q := e.q
	for p, i := range e.pidx {
		if i < k {
			q[p] = float64(item[i])
		} else {
			q[p] = 1
		}
	}
	cholSolveU(e.u, len(q), q)
	for j := range dst {
		dj := e.d[j*e.kd : j*e.kd+e.kd]
		var s float64
		for p, i := range e.pidx {
			s += q[p] * float64(dj[i])
		}
		dst[j] = float64(e.v[j]) * s
	}
	return base
}
