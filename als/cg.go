package als

// The vector steps of a conjugate-gradient iteration on kp-entry vectors
// (the zero padding stays zero), behind function variables like the other
// kernels: kernel_amd64.go installs vector versions, the *Go versions are
// the reference.
var (
	// cgDot is Σ a_i b_i, summed in float64.
	cgDot = cgDotGo
	// cgAxpy sets x += α p and r −= α ap and returns Σ r_i² (float64).
	cgAxpy = cgAxpyGo
	// cgDir sets p = r + β p.
	cgDir = cgDirGo
)

func cgDotGo(a, b []float32) float64 {
	b = b[:len(a)]
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}

func cgAxpyGo(x, r, p, ap []float32, alpha float32) float64 {
	r, p, ap = r[:len(x)], p[:len(x)], ap[:len(x)]
	var s float64
	for i := range x {
		x[i] += alpha * p[i]
		r[i] -= alpha * ap[i]
		s += float64(r[i]) * float64(r[i])
	}
	return s
}

func cgDirGo(p, r []float32, beta float32) {
	r = r[:len(p)]
	for i, v := range r {
		p[i] = v + beta*p[i]
	}
}

// cgScratch holds one goroutine's conjugate-gradient vectors (kp entries,
// padding zero).
type cgScratch struct {
	r, p, ap []float32
}

func newCGScratch(kp int) cgScratch {
	return cgScratch{
		r:  make([]float32, kp),
		p:  make([]float32, kp),
		ap: make([]float32, kp),
	}
}

// solveCG improves sc.x (the row's previous factors, zero padded to kp) by
// a few conjugate-gradient steps on A x = b, where
//
//	explicit: A = GᵀG + diag·I                b = Gᵀ v
//	implicit: A = base + Gᵀ diag(w) G         b = Gᵀ v
//
// G is the row's gathered panel (n rows), and base32 = YᵀY + λI in float32
// (k rows of stride kp). A is never formed: each product A p is G p (a
// matrix–vector product over the panel), weighted, then Gᵀ times that,
// plus base·p or diag·p: 4·n·k flops against the n·k² of building the
// matrix. The right-hand side is never formed either: the first residual
// b − A x is one such product, Gᵀ (v − w∘(G x)) − base·x.
func (s *Solver) solveCG(sc *rowScratch, g []float32, n int, w, v []float32, base32 []float32, diag float64) {
	k, kp := s.cfg.Rank, sc.kp
	cg := &sc.cg
	x, r, p, ap := sc.x, cg.r, cg.p, cg.ap
	t, st := sc.t[:n], sc.s[:n]
	// applyBase sets dst = base·src (implicit) or diag·src (explicit).
	applyBase := func(dst, src []float32) {
		if base32 != nil {
			clear(dst)
			gemvT32(dst, base32, k, kp, src) // base is symmetric: rows = columns
			return
		}
		d := float32(diag)
		for i, v := range src {
			dst[i] = d * v
		}
	}
	// r = Gᵀ (v − w∘(G x)) − base·x
	gemv32(t, g, n, kp, x)
	if w != nil {
		for j, tj := range t {
			st[j] = v[j] - w[j]*tj
		}
	} else {
		for j, tj := range t {
			st[j] = v[j] - tj
		}
	}
	applyBase(r, x)
	for i := range r {
		r[i] = -r[i]
	}
	gemvT32(r, g, n, kp, st)
	copy(p, r)
	rs := cgDot(r, r)
	for step := 0; step < s.cfg.CGSteps; step++ {
		if rs <= 1e-30 {
			break
		}
		// ap = A p
		applyBase(ap, p)
		applyPanel(ap, t, g, n, kp, p, w)
		pAp := cgDot(p, ap)
		if !(pAp > 0) {
			break // p is (numerically) in A's null space: x cannot improve
		}
		rsNew := cgAxpy(x, r, p, ap, float32(rs/pAp))
		cgDir(p, r, float32(rsNew/rs))
		rs = rsNew
	}
}
