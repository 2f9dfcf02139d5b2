package als

import "fmt"

// Models with biases or non-negative factors solve each row on its own
// path: the row's design rows are gathered into a small matrix D (one row
// per rating), the normal equations DᵀWD + λ·n·I (explicit) or
// YᵀY + λI + DᵀWD (implicit) are accumulated in float64 by the normalEq
// kernels, and the system is solved by Cholesky, or by non-negative least
// squares (nnls.go).
//
// With biases a user row is stored as [x_u, b_u, 1] and an item row as
// [y_i, 1, c_i] (Config.Width), so that any code that takes dot products
// of stored rows (exchange, scoring, top-K) needs no change: x·y over the
// full width is b_u + c_i + x_u·y_i, and a prediction adds μ. Solving a
// user row, the unknowns are (x_u, b_u) and the design row of rating
// (u, i) is [y_i, 1] with target r_ui − μ − c_i; solving an item row, the
// unknowns are (y_i, c_i), the design row [x_u, 1] and the target
// r_ui − μ − b_u. The bias is regularised like the factors (λ·n_u).

// InitRow fills dst (Width() values) with the initial row of external ID
// id: InitRow's values for the factors and, with biases, zero biases and
// the constant column at 1.
func (c Config) InitRow(dst []float32, seed uint64, side Side, id string) {
	InitRow(dst[:c.Rank], seed, side, id)
	if c.Biases {
		setBiasColumns(dst, c.Rank, side, 0)
	}
}

// setBiasColumns writes the bias columns of a row of rank k: [.., b, 1]
// for a user, [.., 1, b] for an item.
func setBiasColumns(row []float32, k int, side Side, b float32) {
	if side == UserSide {
		row[k], row[k+1] = b, 1
	} else {
		row[k], row[k+1] = 1, b
	}
}

// Bias returns the bias stored in a row of a model with biases of rank k.
func Bias(row []float32, k int, side Side) float32 {
	if side == UserSide {
		return row[k]
	}
	return row[k+1]
}

// unknowns is the number of unknowns of one row's solve.
func (c Config) unknowns() int {
	if c.Biases {
		return c.Rank + 1
	}
	return c.Rank
}

// specialScratch is one goroutine's space for the rows of biased or
// non-negative models. Its slices grow to the longest row seen.
type specialScratch struct {
	kd   int
	d    []float32 // n × kd design rows
	v, w []float32 // per rating: target (right-hand side weight) and Gram weight
	cols []int32   // 0, 1, …: the design rows in order
	ne   *normalEq
	a    []float64 // kd×kd system
	b    []float64 // kd: right-hand side, then solution
	free []bool    // kd: unknowns without the sign constraint (the bias)
	nn   nnlsScratch
}

func newSpecialScratch(c Config) *specialScratch {
	kd := c.unknowns()
	sp := &specialScratch{kd: kd, ne: newNormalEq(kd), a: make([]float64, kd*kd), b: make([]float64, kd), free: make([]bool, kd)}
	if c.Biases {
		sp.free[c.Rank] = true
	}
	sp.nn = newNNLSScratch(kd)
	return sp
}

// design fills the scratch with a row's design rows, targets and weights
// (weights only for the implicit model) and returns them.
func (sp *specialScratch) design(c Config, side Side, mean float32, other []float32, cols []int32, vals []float32) (d, v, w []float32) {
	n, k, kd, width := len(cols), c.Rank, sp.kd, c.Width()
	if cap(sp.v) < n {
		m := n + n/4
		sp.d, sp.v, sp.w, sp.cols = make([]float32, m*kd), make([]float32, m), make([]float32, m), make([]int32, m)
		for j := range sp.cols {
			sp.cols[j] = int32(j)
		}
	}
	d, v = sp.d[:n*kd], sp.v[:n]
	for j, col := range cols {
		o := other[int(col)*width : int(col)*width+width]
		dj := d[j*kd : j*kd+kd]
		copy(dj[:k], o[:k])
		switch {
		case c.Biases:
			// The other side's bias moves to the target; its constant
			// column multiplies this row's bias.
			dj[k] = 1
			v[j] = vals[j] - mean - Bias(o, k, otherSide(side))
		case c.Implicit:
			v[j] = 1 + float32(c.Alpha)*vals[j]
		default:
			v[j] = vals[j]
		}
	}
	if c.Implicit {
		w = sp.w[:n]
		for j, r := range vals {
			w[j] = float32(c.Alpha) * r
		}
	}
	return d, v, w
}

func otherSide(s Side) Side { return 1 - s }

// specialRows returns UpdateBlock's row solver for models with biases or
// non-negative factors. base is YᵀY + λI (implicit), else nil.
func (s *Solver) specialRows(u *BlockUpdate, base []float64) func(sc *rowScratch, r int) (float64, error) {
	c := s.cfg
	width := c.Width()
	nOther := len(u.Other) / width
	return func(sc *rowScratch, r int) (float64, error) {
		if sc.sp == nil {
			sc.sp = newSpecialScratch(c)
		}
		sp := sc.sp
		lo, hi := u.Rows.Ptr[r], u.Rows.Ptr[r+1]
		cols, vals := u.Rows.Col[lo:hi], u.Rows.Val[lo:hi]
		xr := u.X[r*width : r*width+width]
		for _, col := range cols {
			if col < 0 || int(col) >= nOther {
				return 0, fmt.Errorf("%w: column %d outside the %d rows given", ErrShape, col, nOther)
			}
		}
		if len(cols) == 0 {
			clear(xr)
			if c.Biases {
				setBiasColumns(xr, c.Rank, u.Side, 0)
			}
			return 0, nil
		}
		d, v, w := sp.design(c, u.Side, u.Mean, u.Other, cols, vals)
		if err := sp.solve(c, base, d, v, w); err != nil {
			return 0, err
		}
		sol := sp.b
		for i := range c.Rank {
			xr[i] = float32(sol[i])
		}
		if c.Biases {
			setBiasColumns(xr, c.Rank, u.Side, float32(sol[c.Rank]))
		}
		if c.Implicit || !u.Loss {
			return 0, nil
		}
		var sse float64
		for j := range v {
			e := float64(v[j]) - dot32(d[j*sp.kd:j*sp.kd+sp.kd], sol)
			sse += e * e
		}
		return sse, nil
	}
}

// solve builds the normal equations of the design rows d (targets v,
// weights w) and leaves the solution in sp.b.
func (sp *specialScratch) solve(c Config, base []float64, d, v, w []float32) error {
	n := len(v)
	diag := c.Lambda
	if !c.Implicit {
		diag *= float64(n)
	} else {
		diag = 0 // in base
	}
	sp.ne.reset()
	sp.ne.add(d, sp.cols[:n], w, v)
	sp.ne.matrix(sp.a, base, diag)
	copy(sp.b, sp.ne.b)
	var err error
	if c.NonNegative {
		err = nnls(&sp.nn, sp.a, sp.b, sp.kd, sp.free)
	} else {
		err = cholSolve(sp.a, sp.kd, sp.b)
	}
	if err != nil {
		return fmt.Errorf("%w (%d ratings, lambda %g)", ErrNotPositiveDefinite, n, c.Lambda)
	}
	return nil
}

func dot32(a []float32, b []float64) float64 {
	var s float64
	for i, x := range a {
		s += float64(x) * b[i]
	}
	return s
}
