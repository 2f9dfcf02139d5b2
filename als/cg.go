package als

// cgScratch holds one goroutine's conjugate-gradient vectors.
type cgScratch struct {
	r, p, ap, b []float32
}

func newCGScratch(k int) cgScratch {
	return cgScratch{
		r:  make([]float32, k),
		p:  make([]float32, k),
		ap: make([]float32, k),
		b:  make([]float32, k),
	}
}

// solveCG improves x (the row's previous factors) by a few conjugate-gradient
// steps on A x = b, where
//
//	explicit: A = Y_uᵀY_u + diag·I                b = Y_uᵀ r
//	implicit: A = base + Y_uᵀ diag(w) Y_u         b = Y_uᵀ c
//
// and base = YᵀY + λI in float32. A is never formed: each step applies it
// through the row's ratings (gatherApply), which costs 4·n·k flops against
// the n·k² of building the matrix.
func (s *Solver) solveCG(sc *rowScratch, cols []int32, other []float32, w, v []float32, base32 []float32, diag float64, x []float32) {
	k := s.cfg.Rank
	cg := &sc.cg
	// b = Σ v_j y_j
	b := cg.b
	clear(b)
	for j, c := range cols {
		y := other[int(c)*k : int(c)*k+k]
		vj := v[j]
		for i, yi := range y {
			b[i] += vj * yi
		}
	}
	apply := func(dst, p []float32) {
		if base32 != nil {
			// base is symmetric: accumulate it column by column (= row by
			// row), a chain of independent multiply-adds rather than k
			// dot products each waiting on its own sum.
			clear(dst)
			dst := dst[:k]
			for j, pj := range p[:k] {
				for i, a := range base32[j*k : j*k+k] {
					dst[i] += a * pj
				}
			}
		} else {
			d := float32(diag)
			for i, pi := range p {
				dst[i] = d * pi
			}
		}
		gatherApply(dst, p, other, k, cols, w)
	}
	r, p, ap := cg.r, cg.p, cg.ap
	apply(ap, x)
	var rs float64
	for i := range r {
		r[i] = b[i] - ap[i]
		p[i] = r[i]
		rs += float64(r[i]) * float64(r[i])
	}
	for step := 0; step < s.cfg.CGSteps; step++ {
		if rs <= 1e-30 {
			break
		}
		apply(ap, p)
		var pAp float64
		for i, pi := range p {
			pAp += float64(pi) * float64(ap[i])
		}
		if !(pAp > 0) {
			break // p is (numerically) in A's null space: x cannot improve
		}
		alpha := float32(rs / pAp)
		var rsNew float64
		for i := range x {
			x[i] += alpha * p[i]
			r[i] -= alpha * ap[i]
			rsNew += float64(r[i]) * float64(r[i])
		}
		beta := float32(rsNew / rs)
		for i := range p {
			p[i] = r[i] + beta*p[i]
		}
		rs = rsNew
	}
}
