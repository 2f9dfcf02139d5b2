package als

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Rows is one block of rows in compressed sparse row form: row r's ratings
// are Col[Ptr[r]:Ptr[r+1]] with values Val[Ptr[r]:Ptr[r+1]]. Col indexes
// the rows of the other side that the block was given (its gathered
// "needed" rows), in ascending order within each row.
type Rows struct {
	Ptr []int64
	Col []int32
	Val []float32
}

// Len is the number of rows.
func (r Rows) Len() int { return max(len(r.Ptr)-1, 0) }

// NNZ is the number of ratings.
func (r Rows) NNZ() int64 {
	if len(r.Ptr) == 0 {
		return 0
	}
	return r.Ptr[len(r.Ptr)-1] - r.Ptr[0]
}

// BlockStats describe one UpdateBlock call.
type BlockStats struct {
	Rows    int64
	Ratings int64
	// SSE is Σ (r − x·y)² over the block's ratings with the new rows, in
	// the explicit model when BlockUpdate.Loss is set (else 0). Summed over
	// the item side's blocks after a full iteration it is the training
	// loss's data term.
	SSE float64
}

// Solver updates blocks of rows. It keeps per-goroutine scratch space
// between calls, so a row solve allocates nothing. Use one Solver per
// concurrent UpdateBlock call.
type Solver struct {
	cfg     Config
	scratch []*rowScratch
}

// NewSolver checks cfg and returns a Solver for it.
func NewSolver(cfg Config) (*Solver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Solver{cfg: cfg}, nil
}

// Config returns the solver's configuration.
func (s *Solver) Config() Config { return s.cfg }

// chunkRows is how many rows a goroutine claims at a time: small enough to
// balance skewed row lengths, large enough that the atomic counter is cold.
const chunkRows = 32

// BlockUpdate is one block's input to UpdateBlock.
type BlockUpdate struct {
	// Rows are the block's ratings; Col indexes Other.
	Rows Rows
	// Other holds the other side's rows named by Rows.Col (row-major, k
	// columns), gathered in the block's routing order.
	Other []float32
	// YtY is the other side's full Gram matrix YᵀY (k×k, from Gram),
	// required by the implicit model and ignored by the explicit one.
	YtY []float64
	// X holds the block's factors (Rows.Len()×k, row-major): the previous
	// ones on entry (the CG solver starts from them), the new ones on
	// return.
	X []float32
	// Loss asks for BlockStats.SSE (explicit model): an extra pass over
	// the ratings, wanted only on the side that finishes an iteration.
	Loss bool
}

// UpdateBlock solves every row of u.Rows and writes the new factors into
// u.X. A failed call (context cancelled, singular row) may have
// overwritten some rows of u.X.
func (s *Solver) UpdateBlock(ctx context.Context, u BlockUpdate) (BlockStats, error) {
	rows, other, yty, x := u.Rows, u.Other, u.YtY, u.X
	k := s.cfg.Rank
	n := rows.Len()
	if len(x) != n*k || len(other)%k != 0 || (s.cfg.Implicit && len(yty) != k*k) || int64(len(rows.Col)) < rows.NNZ() {
		return BlockStats{}, fmt.Errorf("%w: %d rows, len(x)=%d, len(other)=%d, len(yty)=%d, rank %d",
			ErrShape, n, len(x), len(other), len(yty), k)
	}
	nOther := int32(len(other) / k)
	for _, c := range rows.Col[rows.Ptr[0]:rows.Ptr[n]] {
		if c < 0 || c >= nOther {
			return BlockStats{}, fmt.Errorf("%w: column %d outside the %d rows given", ErrShape, c, nOther)
		}
	}
	threads := min(s.cfg.threads(), (n+chunkRows-1)/chunkRows)
	for len(s.scratch) < threads {
		s.scratch = append(s.scratch, newRowScratch(k))
	}
	var base []float64
	var base32 []float32
	if s.cfg.Implicit {
		base = s.implicitBase(yty)
		base32 = make([]float32, len(base))
		for i, v := range base {
			base32[i] = float32(v)
		}
	}
	nChunks := (n + chunkRows - 1) / chunkRows
	sse := make([]float64, nChunks) // per chunk, summed in order: deterministic
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		sc := s.scratch[t]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c := int(next.Add(1) - 1)
				if c >= nChunks {
					return
				}
				if ctx.Err() != nil {
					errOnce.Do(func() { firstErr = ctx.Err() })
					return
				}
				lo, hi := c*chunkRows, min((c+1)*chunkRows, n)
				for r := lo; r < hi; r++ {
					e, err := s.solveRow(sc, rows, r, other, base, base32, x[r*k:r*k+k], u.Loss)
					if err != nil {
						errOnce.Do(func() { firstErr = fmt.Errorf("row %d of block: %w", r, err) })
						next.Store(int64(nChunks))
						return
					}
					sse[c] += e
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return BlockStats{}, firstErr
	}
	st := BlockStats{Rows: int64(n), Ratings: rows.NNZ()}
	for _, e := range sse {
		st.SSE += e
	}
	return st, nil
}

// implicitBase returns YᵀY + λI, the part of every implicit row's matrix
// that does not depend on the row.
func (s *Solver) implicitBase(yty []float64) []float64 {
	k := s.cfg.Rank
	base := make([]float64, k*k)
	copy(base, yty)
	for i := 0; i < k; i++ {
		base[i*k+i] += s.cfg.Lambda
	}
	return base
}

// rowScratch is one goroutine's reusable space for row solves.
type rowScratch struct {
	ne   *normalEq
	a    []float64 // k×k system
	b    []float64 // k
	w, v []float32 // per-rating weights, grown to the longest row
	cg   cgScratch
}

func newRowScratch(k int) *rowScratch {
	return &rowScratch{
		ne: newNormalEq(k),
		a:  make([]float64, k*k),
		b:  make([]float64, k),
		cg: newCGScratch(k),
	}
}

// weights fills sc.w and sc.v for a row's ratings: the Gram weights w and
// right-hand-side weights v of the row's normal equations. Explicit: w = 1
// (returned as nil), v = r. Implicit: w = α r (= c − 1), v = 1 + α r (= c).
func (s *Solver) weights(sc *rowScratch, vals []float32) (w, v []float32) {
	if !s.cfg.Implicit {
		return nil, vals
	}
	if cap(sc.w) < len(vals) {
		sc.w = make([]float32, len(vals), len(vals)+len(vals)/4)
		sc.v = make([]float32, len(vals), len(vals)+len(vals)/4)
	}
	w, v = sc.w[:len(vals)], sc.v[:len(vals)]
	alpha := float32(s.cfg.Alpha)
	for j, r := range vals {
		w[j] = alpha * r
		v[j] = 1 + alpha*r
	}
	return w, v
}

// solveRow computes row r's new factors into xr and returns the row's
// explicit squared error with them.
func (s *Solver) solveRow(sc *rowScratch, rows Rows, r int, other []float32, base []float64, base32 []float32, xr []float32, loss bool) (float64, error) {
	k := s.cfg.Rank
	lo, hi := rows.Ptr[r], rows.Ptr[r+1]
	cols, vals := rows.Col[lo:hi], rows.Val[lo:hi]
	if len(cols) == 0 {
		// A row without ratings has no data term: the regularised optimum
		// is zero in both models.
		clear(xr)
		return 0, nil
	}
	w, v := s.weights(sc, vals)
	diag := s.cfg.Lambda
	if !s.cfg.Implicit {
		diag *= float64(len(cols))
	}
	switch s.cfg.Solver {
	case SolverCG:
		s.solveCG(sc, cols, other, w, v, base32, diag, xr)
	default:
		ne := sc.ne
		ne.reset()
		ne.add(other, cols, w, v)
		if s.cfg.Implicit {
			ne.matrix(sc.a, base, 0)
		} else {
			ne.matrix(sc.a, nil, diag)
		}
		copy(sc.b, ne.b)
		if err := cholSolve(sc.a, k, sc.b); err != nil {
			return 0, fmt.Errorf("%w (%d ratings, lambda %g)", ErrNotPositiveDefinite, len(cols), s.cfg.Lambda)
		}
		for i := range xr {
			xr[i] = float32(sc.b[i])
		}
	}
	if s.cfg.Implicit || !loss {
		return 0, nil
	}
	return rowSSE(xr, other, k, cols, vals), nil
}

// rowSSE is Σ_j (v_j − x·y_j)² over a row's ratings. Four partial sums
// break the dependency chain of one long dot product.
func rowSSE(x, other []float32, k int, cols []int32, vals []float32) float64 {
	var sse float64
	for j, c := range cols {
		y := other[int(c)*k : int(c)*k+k]
		y = y[:len(x)]
		var d0, d1, d2, d3 float32
		i := 0
		for ; i+4 <= len(x); i += 4 {
			d0 += x[i] * y[i]
			d1 += x[i+1] * y[i+1]
			d2 += x[i+2] * y[i+2]
			d3 += x[i+3] * y[i+3]
		}
		for ; i < len(x); i++ {
			d0 += x[i] * y[i]
		}
		e := float64(vals[j]) - float64((d0+d1)+(d2+d3))
		sse += e * e
	}
	return sse
}

// Gram computes YᵀY of the row-major matrix y (k columns) into dst (k×k),
// with float64 accumulation. Rows are summed in fixed chunks whose partial
// sums are added in order, so the result does not depend on the thread
// count. Owners of blocks call it on their rows; the implicit model adds the
// partial results in block order.
func Gram(y []float32, k int, threads int, dst []float64) {
	if threads < 1 {
		threads = 1
	}
	n := len(y) / k
	const chunk = 1024
	nChunks := (n + chunk - 1) / chunk
	partial := make([][]float64, nChunks)
	var next atomic.Int64
	var wg sync.WaitGroup
	for t := 0; t < min(threads, nChunks); t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ne := newNormalEq(k)
			cols := make([]int32, chunk)
			ones := make([]float32, chunk)
			for i := range ones {
				ones[i] = 1
			}
			for {
				c := int(next.Add(1) - 1)
				if c >= nChunks {
					return
				}
				lo, hi := c*chunk, min((c+1)*chunk, n)
				for i := range cols[:hi-lo] {
					cols[i] = int32(i)
				}
				ne.reset()
				ne.add(y[lo*k:hi*k], cols[:hi-lo], nil, ones[:hi-lo])
				m := make([]float64, k*k)
				ne.matrix(m, nil, 0)
				partial[c] = m
			}
		}()
	}
	wg.Wait()
	clear(dst[:k*k])
	for _, m := range partial {
		for i, v := range m {
			dst[i] += v
		}
	}
}
