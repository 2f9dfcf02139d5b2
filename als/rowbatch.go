package als

import "fmt"

// Explicit Cholesky rows solved in batches (cholbatch.go): each goroutine
// builds a row's system as before — the k×k normal equations from its
// gathered panel, or for a short row its n×n dual system — but instead of
// factoring it alone lays it into a lane of a pending batch of systems of
// the same padded size (a multiple of 8, at most batchMaxN). A full batch
// is factored and solved at once, and its rows finished (the dual rows'
// x = Gᵀz, the training loss) from the panels their lanes kept. At the end
// of the goroutine's share of the block the partial batches are solved.
//
// Which rows take the batched path depends on the row alone (its rating
// count, the rank, λ), and a system's solution does not depend on its
// batch-mates, lane or padding, so the factors stay independent of the
// block and thread layout.

// batchMaxN is the largest system solved in batches: the batch's matrix
// (batchMaxN²·8 float64, 256 KiB) stays in L2.
const batchMaxN = 64

// batchMaxRatings bounds the rows of a primal (k×k) system solved in
// batches: when the training loss is wanted, each lane keeps its row's
// panel until the batch is solved (the loss reads it again), 256 KiB at
// k = 64; for longer rows the k×k factorisation is a small part of the
// row's work anyway.
const batchMaxRatings = 1024

// batchLane is one row waiting in a batch, with the panels it needs after
// the solve.
type batchLane struct {
	r    int       // row in the block
	n    int       // ratings
	dual bool      // solved through its n×n dual system
	g    []float32 // the row's gathered panel (kept for the training loss)
	t    []float32 // dual: the panel transposed (kp×np)
	np   int       // dual: t's row stride
	v    []float32 // the row's ratings
}

// sysBatch is the pending batch of systems of one padded size: each
// lane's matrix is built in its own slot of src (size² float64, row-major,
// upper triangle) and the slots are interleaved into a when the batch is
// solved.
type sysBatch struct {
	size    int
	src     []float64
	a, b, w []float64
	lanes   [batchLanes]batchLane
	count   int
}

// rowBatcher is one goroutine's pending batches, by padded size / rowPad
// − 1.
type rowBatcher struct {
	out   []float32 // the block's factors (BlockUpdate.X)
	sizes [batchMaxN / rowPad]*sysBatch
	t     []float32 // a row's predictions for the loss
	z32   []float32 // a dual row's solution as float32
}

// batchRows reports whether explicit Cholesky rows are solved in batches
// with this configuration and kernel set.
func (s *Solver) batchRows() bool {
	c := s.cfg
	return cholBatch != nil && !c.Implicit && !c.Biases && !c.NonNegative && c.SolverUsed() == SolverCholesky
}

// batchSize is the padded size of the system a row of n ratings is solved
// through in a batch (the panel stride kp for the k×k normal equations,
// n rounded up to rowPad for the dual system: the strides their Gram
// kernel writes), or 0 when the row is solved alone.
func (s *Solver) batchSize(n, kp int) int {
	switch {
	case n == 0:
		return 0
	case s.useDual(n):
		if n <= batchMaxN {
			return (n + rowPad - 1) / rowPad * rowPad
		}
	case kp <= batchMaxN && n <= batchMaxRatings:
		return kp
	}
	return 0
}

// batchAdd builds row r's system (of padded size size, from batchSize)
// into a lane of its pending batch, and solves the batch when it is full.
// sse, when not nil, receives the rows' training losses (by row).
func (s *Solver) batchAdd(sc *rowScratch, rows Rows, r, size int, other []float32, sse []float64) error {
	bt := sc.batch
	sb := bt.sizes[size/rowPad-1]
	if sb == nil {
		sb = &sysBatch{
			size: size,
			src:  make([]float64, size*size*batchLanes),
			a:    make([]float64, size*size*batchLanes),
			b:    make([]float64, size*batchLanes),
			w:    make([]float64, size*batchLanes),
		}
		bt.sizes[size/rowPad-1] = sb
	}
	k, kp := s.cfg.Rank, sc.kp
	lo, hi := rows.Ptr[r], rows.Ptr[r+1]
	n := int(hi - lo)
	lane := sb.count
	ln := &sb.lanes[lane]
	ln.r, ln.n, ln.v = r, n, rows.Val[lo:hi]
	ln.dual = s.useDual(n)
	// The panel is needed after the solve only for the training loss:
	// without it, every row is gathered into the goroutine's one panel.
	rowsUp := (n + rowGroup - 1) / rowGroup * rowGroup
	var g []float32
	if sse != nil {
		if len(ln.g) < rowsUp*kp {
			ln.g = make([]float32, (rowsUp+rowsUp/4)*kp)
		}
		g = ln.g[:rowsUp*kp]
	} else {
		sc.grow(n, false)
		g = sc.g[:rowsUp*kp]
	}
	ahead := rows.Col[lo:min(hi+prefetchAhead, int64(len(rows.Col)))]
	if j := gatherPanel(g[:n*kp], nil, kp, other, k, ahead, n, nil); j >= 0 {
		return fmt.Errorf("row %d of block: %w: column %d outside the %d rows given", r, ErrShape, rows.Col[lo+int64(j)], len(other)/k)
	}
	// The Gram kernels leave the padding rows and columns zero: the
	// diagonal is all the padding needs.
	slot := sb.src[lane*size*size : (lane+1)*size*size]
	m := k
	if ln.dual {
		m = n
		ln.np = size
		if len(ln.t) < kp*size {
			ln.t = make([]float32, kp*batchMaxN)
		}
		t := ln.t[:kp*size]
		transposePanel(t, g, n, size, kp)
		syrk32(slot, t, t, kp, size, true)
		bb := sb.b[:size*batchLanes]
		for i := range size {
			v := 0.0
			if i < n {
				v = float64(ln.v[i])
			}
			bb[i*batchLanes+lane] = v
		}
	} else {
		a64 := sc.a64
		sc.a64 = slot
		clear(sc.b)
		s.accumulate(sc, g, nil, n, ln.v, true)
		sc.a64 = a64
		bb := sb.b[:size*batchLanes]
		for i := range size {
			v := 0.0
			if i < k {
				v = sc.b[i]
			}
			bb[i*batchLanes+lane] = v
		}
	}
	diag := s.cfg.Lambda * float64(n)
	for i := range size {
		if i < m {
			slot[i*size+i] += diag
		} else {
			slot[i*size+i] = 1
		}
	}
	sb.count++
	if sb.count == batchLanes {
		return s.batchSolve(sc, sb, sse)
	}
	return nil
}

// batchSolve solves a pending batch (its empty lanes made identities),
// writes its rows' factors into the block's and empties it.
func (s *Solver) batchSolve(sc *rowScratch, sb *sysBatch, sse []float64) error {
	N := sb.size
	for l := sb.count; l < batchLanes; l++ {
		slot := sb.src[l*N*N : (l+1)*N*N]
		clear(slot)
		for i := range N {
			slot[i*N+i] = 1
			sb.b[i*batchLanes+l] = 0
		}
	}
	interleave(sb.a, sb.src, N)
	fail := cholBatch(sb.a, N, sb.b, sb.w)
	count := sb.count
	sb.count = 0
	for l := range count {
		ln := &sb.lanes[l]
		if fail&(1<<l) != 0 {
			return fmt.Errorf("row %d of block: %w (%d ratings, lambda %g)", ln.r, ErrNotPositiveDefinite, ln.n, s.cfg.Lambda)
		}
		s.batchFinish(sc, sb, l, sse)
	}
	return nil
}

// batchFinish writes lane l's solution into its row of the block's
// factors and its training loss into sse.
func (s *Solver) batchFinish(sc *rowScratch, sb *sysBatch, l int, sse []float64) {
	const L = batchLanes
	k, kp := s.cfg.Rank, sc.kp
	bt, ln := sc.batch, &sb.lanes[l]
	xr := bt.out[ln.r*k : ln.r*k+k]
	x := sc.x
	if ln.dual {
		np := ln.np
		if len(bt.z32) < np {
			bt.z32 = make([]float32, batchMaxN+rowPad)
		}
		z32 := bt.z32[:np]
		for j := range z32 {
			z32[j] = 0
			if j < ln.n {
				z32[j] = float32(sb.b[j*L+l])
			}
		}
		gemv32(x[:kp], ln.t[:kp*np], kp, np, z32)
		clear(x[k:])
		copy(xr, x[:k])
	} else {
		for i := range xr {
			xr[i] = float32(sb.b[i*L+l])
		}
		copy(x, xr)
	}
	if sse == nil {
		return
	}
	n := ln.n
	if len(bt.t) < n {
		bt.t = make([]float32, max(n, batchMaxRatings))
	}
	t := bt.t[:n]
	gemv32(t, ln.g, n, kp, x)
	var e float64
	for j, tj := range t {
		d := float64(ln.v[j]) - float64(tj)
		e += d * d
	}
	sse[ln.r] = e
}

// batchFlush solves every partial batch of the goroutine.
func (s *Solver) batchFlush(sc *rowScratch, sse []float64) error {
	if sc.batch == nil {
		return nil
	}
	for _, sb := range sc.batch.sizes {
		if sb != nil && sb.count > 0 {
			if err := s.batchSolve(sc, sb, sse); err != nil {
				return err
			}
		}
	}
	return nil
}

// batchStart readies sc's batches for a block whose factors are x,
// dropping whatever a cancelled or failed call left pending.
func (sc *rowScratch) batchStart(x []float32) {
	if sc.batch == nil {
		sc.batch = &rowBatcher{}
	}
	sc.batch.out = x
	for _, sb := range sc.batch.sizes {
		if sb != nil {
			sb.count = 0
		}
	}
}

// batchEnd drops sc's references to the block (its factors, its rows'
// ratings), so that the Solver, which lives on, does not keep the caller's
// arrays from being collected.
func (sc *rowScratch) batchEnd() {
	if sc.batch == nil {
		return
	}
	sc.batch.out = nil
	for _, sb := range sc.batch.sizes {
		if sb != nil {
			for l := range sb.lanes {
				sb.lanes[l].v = nil
			}
		}
	}
}
