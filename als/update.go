package als

import (
	"cmp"
	"context"
	"fmt"
	"slices"
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

// chunkRows is how many rows a goroutine claims at a time at most: small
// enough to balance skewed row lengths, large enough that the atomic
// counter is cold.
const chunkRows = 32

// chunkCost is the cost of a row in ratings, for cutting chunks: the
// per-row work (the k×k solve) next to the per-rating work.
const chunkCost = 128

// chunks cuts rows [0, n) into chunks of at most chunkRows rows and about
// at most 1/(64·threads) of the block's work, so that a few rows with many
// ratings (popular items) do not leave one goroutine working alone at the
// end. It returns the chunk starts followed by n, and the order in which
// to claim the chunks: the most work first. Both depend only on the rows.
func chunks(rows Rows, n, threads int) (bounds []int, order []int32) {
	work := func(lo, hi int) int64 { return rows.Ptr[hi] - rows.Ptr[lo] + chunkCost*int64(hi-lo) }
	limit := max(work(0, n)/int64(64*threads), 1)
	bounds = []int{0}
	for lo := 0; lo < n; {
		hi := lo + 1
		for hi < n && hi-lo < chunkRows && work(lo, hi+1) <= limit {
			hi++
		}
		bounds = append(bounds, hi)
		lo = hi
	}
	order = make([]int32, len(bounds)-1)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int {
		return cmp.Compare(work(bounds[b], bounds[b+1]), work(bounds[a], bounds[a+1]))
	})
	return bounds, order
}

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
	// Side and Mean are used by models with biases only: which side's
	// rows are solved (their layout differs, see Config.Width) and the
	// global mean μ of the training ratings.
	Side Side
	Mean float32
}

// UpdateBlock solves every row of u.Rows and writes the new factors into
// u.X. A failed call (context cancelled, singular row) may have
// overwritten some rows of u.X.
func (s *Solver) UpdateBlock(ctx context.Context, u BlockUpdate) (BlockStats, error) {
	rows, other, yty, x := u.Rows, u.Other, u.YtY, u.X
	k := s.cfg.Width()
	n := rows.Len()
	if len(x) != n*k || len(other)%k != 0 || (s.cfg.Implicit && len(yty) != k*k) || int64(len(rows.Col)) < rows.NNZ() {
		return BlockStats{}, fmt.Errorf("%w: %d rows, len(x)=%d, len(other)=%d, len(yty)=%d, rank %d",
			ErrShape, n, len(x), len(other), len(yty), k)
	}
	threads := max(min(s.cfg.threads(), (n+chunkRows-1)/chunkRows), 1)
	bounds, order := chunks(rows, n, threads)
	for len(s.scratch) < threads {
		s.scratch = append(s.scratch, newRowScratch(k))
	}
	var base []float64
	var base32 []float32
	if s.cfg.Implicit {
		base = s.implicitBase(yty)
		// The CG solver's copy: float32, rows padded to the panel stride.
		kp := panelStride(k)
		base32 = make([]float32, k*kp)
		for i := 0; i < k; i++ {
			for j, v := range base[i*k : i*k+k] {
				base32[i*kp+j] = float32(v)
			}
		}
	}
	solve := func(sc *rowScratch, r int) (float64, error) {
		return s.solveRow(sc, rows, r, other, base, base32, x[r*k:r*k+k], u.Loss)
	}
	if s.cfg.Biases || s.cfg.NonNegative {
		solve = s.specialRows(&u, base) // bias.go
	}
	nChunks := len(order)
	sse := make([]float64, nChunks) // per chunk, summed in order: deterministic
	// Batched rows finish out of order: their losses are kept per row and
	// summed per chunk afterwards, in the same order.
	batch := s.batchRows()
	var rowSSE []float64
	if batch {
		for _, sc := range s.scratch[:threads] {
			sc.batchStart(x)
		}
		if u.Loss {
			rowSSE = make([]float64, n)
		}
	}
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		next.Store(int64(nChunks))
	}
	for t := 0; t < threads; t++ {
		sc := s.scratch[t]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if batch {
				defer func() {
					if ctx.Err() == nil {
						if err := s.batchFlush(sc, rowSSE); err != nil {
							fail(err)
						}
					}
				}()
			}
			for {
				ci := int(next.Add(1) - 1)
				if ci >= nChunks {
					return
				}
				c := int(order[ci])
				if ctx.Err() != nil {
					errOnce.Do(func() { firstErr = ctx.Err() })
					return
				}
				lo, hi := bounds[c], bounds[c+1]
				for r := lo; r < hi; r++ {
					if batch {
						if m := s.batchSize(int(rows.Ptr[r+1]-rows.Ptr[r]), sc.kp); m > 0 {
							if err := s.batchAdd(sc, rows, r, m, other, rowSSE); err != nil {
								fail(err)
								return
							}
							continue
						}
					}
					e, err := solve(sc, r)
					if err != nil {
						fail(fmt.Errorf("row %d of block: %w", r, err))
						return
					}
					if rowSSE != nil {
						rowSSE[r] = e
					} else {
						sse[c] += e
					}
				}
			}
		}()
	}
	wg.Wait()
	if batch {
		for _, sc := range s.scratch[:threads] {
			sc.batchEnd()
		}
	}
	if firstErr != nil {
		return BlockStats{}, firstErr
	}
	if rowSSE != nil {
		for c := range sse {
			for _, e := range rowSSE[bounds[c]:bounds[c+1]] {
				sse[c] += e
			}
		}
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

// panelStride is the row stride of a row's gathered panel: k rounded up
// to rowPad.
func panelStride(k int) int { return (k + rowPad - 1) / rowPad * rowPad }

// rowScratch is one goroutine's reusable space for row solves. The
// per-rating slices grow to the longest row seen and are kept.
type rowScratch struct {
	k, kp int
	g, wg []float32 // the row's gathered panel (and its weighted copy), n×kp
	gt    []float32 // kp×kp: a short row's panel transposed (dual.go)
	t, s  []float32 // per rating: products G p and their weights
	w, v  []float32 // per-rating weights
	a64   []float64 // kp×kp: the normal equations, upper triangle
	bpart []float32 // kp: one panel's right-hand side
	a     []float64 // k×k system
	b     []float64 // k
	x     []float32 // kp: the row's factors, zero padded
	cg    cgScratch
	sp    *specialScratch // biased and non-negative rows (bias.go)
	batch *rowBatcher     // explicit rows solved in batches (rowbatch.go)
	// A streamed row's segment of other-side rows, and the identity
	// columns that gather it into the panel (SolveStreamed).
	seg   []float32
	ident []int32
}

func newRowScratch(k int) *rowScratch {
	kp := panelStride(k)
	return &rowScratch{
		k:     k,
		kp:    kp,
		a64:   make([]float64, kp*kp),
		gt:    make([]float32, kp*kp),
		bpart: make([]float32, kp),
		a:     make([]float64, k*k),
		b:     make([]float64, k),
		x:     make([]float32, kp),
		cg:    newCGScratch(kp),
	}
}

// grow makes room for a row of n ratings (weighted: also the weighted
// panel). Capacity grows by a quarter beyond the need, so that a stream
// of slightly longer rows does not reallocate each time.
func (sc *rowScratch) grow(n int, weighted bool) {
	rows := (n + rowGroup - 1) / rowGroup * rowGroup
	if len(sc.t) < rows {
		c := rows + rows/4
		sc.t = make([]float32, c)
		sc.s = make([]float32, c)
	}
	if len(sc.g) < rows*sc.kp {
		sc.g = make([]float32, (rows+rows/4)*sc.kp)
	}
	if weighted && len(sc.wg) < rows*sc.kp {
		sc.wg = make([]float32, (rows+rows/4)*sc.kp)
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
// explicit squared error with them (when loss is set).
//
// The row's ratings' rows of other are gathered once into the panel G;
// then either the normal equations are accumulated from it panel by panel
// (float32 sums of gramChunk ratings added into float64) and solved by
// Cholesky — through the row's dual system when it has fewer ratings
// than the rank (dual.go) — or a few conjugate-gradient steps run on it;
// the loss pass reads it once more.
func (s *Solver) solveRow(sc *rowScratch, rows Rows, r int, other []float32, base []float64, base32 []float32, xr []float32, loss bool) (float64, error) {
	k, kp := s.cfg.Rank, sc.kp
	lo, hi := rows.Ptr[r], rows.Ptr[r+1]
	cols, vals := rows.Col[lo:hi], rows.Val[lo:hi]
	n := len(cols)
	if n == 0 {
		// A row without ratings has no data term: the regularised optimum
		// is zero in both models.
		clear(xr)
		return 0, nil
	}
	w, v := s.weights(sc, vals)
	diag := s.cfg.Lambda
	if !s.cfg.Implicit {
		diag *= float64(n)
	}
	chol := s.cfg.SolverUsed() != SolverCG
	if s.Streams(n) {
		return s.solveLong(sc, rows, r, other, w, v, base, diag, xr, loss)
	}
	weighted := chol && w != nil
	sc.grow(n, weighted)
	// The panel with its rows up to the next multiple of rowGroup: gemv32
	// may read (not use) the last group's rows past n.
	g := sc.g[:(n+rowGroup-1)/rowGroup*rowGroup*kp]
	var wg []float32
	if weighted {
		wg = sc.wg[:n*kp]
	}
	// The gather's prefetches run on into the first ratings of the next
	// row, whose rows then arrive while this one is solved. The gather
	// also checks the columns.
	ahead := rows.Col[lo:min(hi+prefetchAhead, int64(len(rows.Col)))]
	if j := gatherPanel(g[:n*kp], wg, kp, other, k, ahead, n, w); j >= 0 {
		return 0, fmt.Errorf("%w: column %d outside the %d rows given", ErrShape, cols[j], len(other)/k)
	}
	x := sc.x
	switch {
	case s.useDual(n):
		if err := s.solveDual(sc, g, n, v, diag); err != nil {
			return 0, err
		}
		copy(xr, x[:k])
	case chol:
		if err := s.solveChol(sc, g, wg, n, v, base, diag); err != nil {
			return 0, err
		}
		for i := range xr {
			xr[i] = float32(sc.b[i])
		}
		copy(x, xr)
	default:
		copy(x, xr)
		s.solveCG(sc, g, n, w, v, base32, diag)
		copy(xr, x[:k])
	}
	if s.cfg.Implicit || !loss {
		return 0, nil
	}
	// Training loss: t = G x, Σ (v − t)².
	t := sc.t[:n]
	gemv32(t, g, n, kp, x)
	var sse float64
	for j, tj := range t {
		e := float64(v[j]) - float64(tj)
		sse += e * e
	}
	return sse, nil
}

// solveChol accumulates the row's normal equations from the panel g (wg:
// the weighted panel, nil for weight 1), solves them and leaves the
// solution in sc.b.
func (s *Solver) solveChol(sc *rowScratch, g, wg []float32, n int, v []float32, base []float64, diag float64) error {
	clear(sc.b)
	s.accumulate(sc, g, wg, n, v, true)
	return s.factor(sc, n, base, diag)
}

// accumulate adds the normal equations of the n ratings of the panel g
// (wg: the weighted panel, nil for weight 1; v: the right-hand sides'
// weights) to sc.a64 and sc.b, in chunks of gramChunk ratings; first
// makes the first chunk overwrite the previous row's matrix.
func (s *Solver) accumulate(sc *rowScratch, g, wg []float32, n int, v []float32, first bool) {
	k, kp := s.cfg.Rank, sc.kp
	b, bp := sc.b, sc.bpart
	for start := 0; start < n; start += gramChunk {
		m := min(gramChunk, n-start)
		xs := g[start*kp : (start+m)*kp]
		ws := xs
		if wg != nil {
			ws = wg[start*kp : (start+m)*kp]
		}
		syrk32(sc.a64, xs, ws, m, kp, first && start == 0)
		clear(bp)
		gemvT32(bp, xs, m, kp, v[start:start+m])
		for i, bi := range bp[:k] {
			b[i] += float64(bi)
		}
	}
}

// longRow is the rating count above which a Cholesky row solve gathers
// its panel in segments of longRow ratings instead of whole (solveLong):
// a goroutine's panel then stays at 2 MiB at k = 64 instead of growing to
// the most popular item's ratings (35 MB for 138k ratings). It is a
// multiple of gramChunk, so the normal equations are summed in the same
// chunks and the factors are the same to the last bit.
const longRow = 64 * gramChunk

// solveLong is solveRow's Cholesky path for a row of more than longRow
// ratings (w, v: the row's weights), one panel segment at a time; the
// training loss gathers the segments again.
func (s *Solver) solveLong(sc *rowScratch, rows Rows, r int, other, w, v []float32, base []float64, diag float64, xr []float32, loss bool) (float64, error) {
	k, kp := s.cfg.Rank, sc.kp
	lo := rows.Ptr[r]
	n := int(rows.Ptr[r+1] - lo)
	return s.solveSegments(sc, n, func(start, m int, ws, wg []float32) error {
		p := lo + int64(start)
		ahead := rows.Col[p:min(p+int64(m)+prefetchAhead, int64(len(rows.Col)))]
		if j := gatherPanel(sc.g[:m*kp], wg, kp, other, k, ahead, m, ws); j >= 0 {
			return fmt.Errorf("%w: column %d outside the %d rows given", ErrShape, rows.Col[p+int64(j)], len(other)/k)
		}
		return nil
	}, w, v, base, diag, xr, loss)
}

// Streams reports whether UpdateBlock solves a row of n ratings in
// segments of longRow ratings, so that SolveStreamed can solve it from
// rows fetched one segment at a time.
func (s *Solver) Streams(n int) bool {
	return s.cfg.SolverUsed() == SolverCholesky && !s.cfg.Biases && !s.cfg.NonNegative && n > longRow && !s.useDual(n)
}

// SegmentRows is the most ratings a segment of SolveStreamed holds.
const SegmentRows = longRow

// SolveStreamed solves one row of len(vals) ratings (Streams must hold)
// into xr, the other side's row of each rating coming from segment:
// segment(start, dst) fills dst (len(dst)/k ratings, at most SegmentRows)
// with the rows of ratings start, start+1, …. The factors are those
// UpdateBlock computes from a whole array, to the last bit; only a
// segment's rows are held at a time. With loss, the training loss reads
// every segment a second time. yty is the other side's YᵀY (implicit).
func (s *Solver) SolveStreamed(vals []float32, yty []float64, segment func(start int, dst []float32) error, xr []float32, loss bool) (float64, error) {
	k := s.cfg.Rank
	n := len(vals)
	if !s.Streams(n) || len(xr) != k || (s.cfg.Implicit && len(yty) != k*k) {
		return 0, fmt.Errorf("%w: a streamed row of %d ratings, len(xr)=%d, len(yty)=%d, rank %d", ErrShape, n, len(xr), len(yty), k)
	}
	if len(s.scratch) == 0 {
		s.scratch = append(s.scratch, newRowScratch(k))
	}
	sc := s.scratch[0]
	kp := sc.kp
	var base []float64
	if s.cfg.Implicit {
		base = s.implicitBase(yty)
	}
	diag := s.cfg.Lambda
	if !s.cfg.Implicit {
		diag *= float64(n)
	}
	if len(sc.seg) < longRow*k {
		sc.seg = make([]float32, longRow*k)
		sc.ident = make([]int32, longRow)
		for i := range sc.ident {
			sc.ident[i] = int32(i)
		}
	}
	w, v := s.weights(sc, vals)
	return s.solveSegments(sc, n, func(start, m int, ws, wg []float32) error {
		if err := segment(start, sc.seg[:m*k]); err != nil {
			return err
		}
		gatherPanel(sc.g[:m*kp], wg, kp, sc.seg[:m*k], k, sc.ident[:m], m, ws)
		return nil
	}, w, v, base, diag, xr, loss)
}

// solveSegments solves a row of n ratings by Cholesky, gathering its
// panel in segments of longRow ratings: gather(start, m, ws, wg) fills
// sc.g (and with ws, the weighted panel wg) with ratings [start, start+m).
func (s *Solver) solveSegments(sc *rowScratch, n int, gather func(start, m int, ws, wg []float32) error, w, v []float32, base []float64, diag float64, xr []float32, loss bool) (float64, error) {
	kp := sc.kp
	weighted := w != nil
	sc.grow(longRow, weighted)
	clear(sc.b)
	for start := 0; start < n; start += longRow {
		m := min(longRow, n-start)
		var ws, wg []float32
		if weighted {
			ws, wg = w[start:start+m], sc.wg[:m*kp]
		}
		if err := gather(start, m, ws, wg); err != nil {
			return 0, err
		}
		s.accumulate(sc, sc.g[:m*kp], wg, m, v[start:start+m], start == 0)
	}
	if err := s.factor(sc, n, base, diag); err != nil {
		return 0, err
	}
	for i := range xr {
		xr[i] = float32(sc.b[i])
	}
	copy(sc.x, xr)
	if s.cfg.Implicit || !loss {
		return 0, nil
	}
	var sse float64
	for start := 0; start < n; start += longRow {
		m := min(longRow, n-start)
		if err := gather(start, m, nil, nil); err != nil {
			return 0, err
		}
		t := sc.t[:m]
		gemv32(t, sc.g[:(m+rowGroup-1)/rowGroup*rowGroup*kp], m, kp, sc.x)
		for j, tj := range t {
			e := float64(v[start+j]) - float64(tj)
			sse += e * e
		}
	}
	return sse, nil
}

// factor solves the accumulated normal equations of a row of n ratings
// (base: the implicit model's YᵀY + λI, else nil; diag: the explicit
// model's λ·n) into sc.b.
func (s *Solver) factor(sc *rowScratch, n int, base []float64, diag float64) error {
	k, kp, b := s.cfg.Rank, sc.kp, sc.b
	var err error
	switch {
	case k == kp && base == nil:
		// The accumulated upper triangle is the system: factor it in place.
		for i := 0; i < k; i++ {
			sc.a64[i*kp+i] += diag
		}
		err = cholSolveUpper(sc.a64, k, b)
	case base != nil:
		symFill(sc.a, sc.a64, base, k, kp, 0)
		err = cholSolve(sc.a, k, b)
	default:
		symFill(sc.a, sc.a64, nil, k, kp, diag)
		err = cholSolve(sc.a, k, b)
	}
	if err != nil {
		return fmt.Errorf("%w (%d ratings, lambda %g)", ErrNotPositiveDefinite, n, s.cfg.Lambda)
	}
	return nil
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
