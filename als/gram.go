package als

// normalEq accumulates one row's normal equations in float64:
//
//	A += Σ_j w_j y_j y_jᵀ   and   b += Σ_j v_j y_j
//
// over the row's ratings. Ratings are gathered in panels of panelRows rows
// (float32 → float64, which is exact) so that the tile kernel streams
// through memory that stays in L1. It is scratch space owned by one
// goroutine; the zero value is not usable, call newNormalEq.
type normalEq struct {
	k, kp int
	a     []float64 // kp×kp, upper triangle accumulates
	b     []float64 // k: bpad[:k]
	bpad  []float64 // kp, so that vector kernels may update whole vectors
	x, wx []float64 // panelRows×kp panels; padding columns stay zero
}

func newNormalEq(k int) *normalEq {
	kp := (k + gramPad - 1) / gramPad * gramPad
	bpad := make([]float64, kp)
	return &normalEq{
		k:    k,
		kp:   kp,
		a:    make([]float64, kp*kp),
		b:    bpad[:k:k],
		bpad: bpad,
		x:    make([]float64, panelRows*kp),
		wx:   make([]float64, panelRows*kp),
	}
}

func (e *normalEq) reset() {
	clear(e.a)
	clear(e.bpad)
}

// add accumulates the ratings at cols (row indices into other, a row-major
// matrix with k columns) with Gram weights w (nil: all 1) and right-hand
// side weights v.
func (e *normalEq) add(other []float32, cols []int32, w, v []float32) {
	kp := e.kp
	for start := 0; start < len(cols); start += panelRows {
		n := min(panelRows, len(cols)-start)
		var ws []float32
		if w != nil {
			ws = w[start:]
		}
		gatherRows(e.x, e.wx, e.bpad, kp, other, e.k, cols[start:], n, ws, v[start:])
		wx := e.wx
		if w == nil {
			wx = e.x
		}
		syrkTiles(e.a, e.x[:n*kp], wx[:n*kp], n, kp)
	}
}

// matrix writes base + A + diag·I into dst as a full symmetric k×k row-major
// matrix (only the lower triangle is read by cholSolve, but the whole matrix
// is written so that dst is a plain symmetric matrix). base may be nil.
func (e *normalEq) matrix(dst []float64, base []float64, diag float64) {
	symFill(dst, e.a, base, e.k, e.kp, diag)
}
