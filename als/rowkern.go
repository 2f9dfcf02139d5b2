package als

// Kernels of the row solves on a gathered panel.
//
// A row solve first copies the other side's rows that its ratings name into
// one contiguous float32 panel G (n rows, row stride kp = k rounded up to
// rowPad, padding columns zero), so that every later pass over the row's
// ratings — the normal equations, the conjugate-gradient products, the
// training loss — streams through memory that is already in L1 or L2
// instead of gathering rows again. The kernels below work on that panel.
// Like the other kernels they are function variables: kernel_amd64.go
// installs vector versions, the *Go versions are the reference.
var (
	// gatherPanel fills the panel (see gatherPanelGo).
	gatherPanel = gatherPanelGo
	// syrk32 adds one panel of ratings to the float64 normal equations
	// (see syrk32Go).
	syrk32 = syrk32Go
	// gemv32 computes t = G p (see gemv32Go).
	gemv32 = gemv32Go
	// gemvT32 adds Gᵀ s to q (see gemvT32Go).
	gemvT32 = gemvT32Go
	// applyPanel adds Gᵀ diag(w) G p to q (see applyPanelGo).
	applyPanel = applyPanelGo
)

// rowPad is the multiple to which the panel's row stride kp is rounded:
// vector kernels work on whole 16-lane vectors.
const rowPad = 16

// rowGroup is the multiple to which the panel's rows are allocated: gemv32
// works on groups of 16 rows and may read (not use) the rows past n of
// the last group.
const rowGroup = 16

// prefetchAhead is how many ratings ahead the vector gather prefetches
// the other side's rows.
const prefetchAhead = 32

// gatherPanelGo copies row cols[r] of the row-major matrix other (k
// columns) into row r of g (row stride kp ≥ k), for r < n, and zeroes
// columns k ≤ i < kp. When wg is not nil it also writes w[r] times the
// row into row r of wg. cols may run past n: vector kernels prefetch the
// rows named there (the next row's first ratings). It returns the first
// r whose column is not a row of other (rows from r on are not written),
// or -1.
func gatherPanelGo(g, wg []float32, kp int, other []float32, k int, cols []int32, n int, w []float32) int {
	nrows := uint(len(other) / max(k, 1))
	for r, c := range cols[:n] {
		if uint(c) >= nrows {
			return r
		}
		y := other[int(c)*k : int(c)*k+k]
		gr := g[r*kp : r*kp+kp]
		copy(gr, y)
		clear(gr[k:])
		if wg != nil {
			wr := wg[r*kp : r*kp+kp]
			wv := w[r]
			for i, v := range gr {
				wr[i] = wv * v
			}
		}
	}
	return -1
}

// syrk32Go adds, for i ≤ j < kp, the float32 sum Σ_{r<n} x[r][i]·wx[r][j]
// to c[i][j] of the kp×kp row-major float64 matrix c (or, when set is
// true, stores it there), where x and wx are n×kp row-major float32
// panels. Each entry is summed in float32 over the panel's n rows (at most
// panelRows: a few dozen products whose rounding stays far below that of
// the float32 factors themselves) and the panel's sum is then added in
// float64. Entries below the diagonal are left unspecified: a vector
// kernel may write them as part of a diagonal tile.
func syrk32Go(c []float64, x, wx []float32, n, kp int, set bool) {
	var buf [MaxRank + rowPad]float32
	c = c[:kp*kp]
	for i := 0; i < kp; i++ {
		acc := buf[i:kp]
		clear(acc)
		for r := 0; r < n; r++ {
			xi := x[r*kp+i]
			if xi == 0 {
				continue
			}
			wr := wx[r*kp+i : r*kp+kp]
			for j, v := range wr {
				acc[j] += xi * v
			}
		}
		ci := c[i*kp+i : i*kp+kp]
		if set {
			for j, v := range acc {
				ci[j] = float64(v)
			}
			continue
		}
		for j, v := range acc {
			ci[j] += float64(v)
		}
	}
}

// gemv32Go sets t[r] = g_r · p for r < n, where g_r is row r of the n×kp
// row-major panel g and p has kp entries. Vector kernels may read (not
// use) the rows of g past n up to the next multiple of rowGroup.
func gemv32Go(t, g []float32, n, kp int, p []float32) {
	p = p[:kp]
	for r := range t[:n] {
		gr := g[r*kp : r*kp+kp]
		var d0, d1, d2, d3 float32
		i := 0
		for ; i+4 <= len(p); i += 4 {
			d0 += gr[i] * p[i]
			d1 += gr[i+1] * p[i+1]
			d2 += gr[i+2] * p[i+2]
			d3 += gr[i+3] * p[i+3]
		}
		for ; i < len(p); i++ {
			d0 += gr[i] * p[i]
		}
		t[r] = (d0 + d1) + (d2 + d3)
	}
}

// gemvT32Go adds Σ_{r<n} s[r]·g_r to q (kp entries), where g_r is row r
// of the n×kp row-major panel g.
func gemvT32Go(q, g []float32, n, kp int, s []float32) {
	q = q[:kp]
	for r, sr := range s[:n] {
		gr := g[r*kp : r*kp+kp]
		for i, v := range gr {
			q[i] += sr * v
		}
	}
}

// applyPanelGo adds Gᵀ diag(w) G p to q (kp entries; a nil w means every
// weight is 1) and leaves the weighted products w∘(G p) in t[:n]: the
// conjugate-gradient product's panel part, gemv32, the weights, then
// gemvT32. A vector version does both passes 16 rows at a time, while
// those rows are in L1, with the same arithmetic as the two kernels in
// turn (so the same bits as applyPanelWith of its gemv32 and gemvT32).
// g must hold whole groups of rowGroup rows, as gemv32's may be read.
func applyPanelGo(q, t, g []float32, n, kp int, p, w []float32) {
	applyPanelWith(gemv32Go, gemvT32Go, q, t, g, n, kp, p, w)
}

// applyPanelWith is applyPanel made of the two passes gemv and gemvT.
func applyPanelWith(gemv func(t, g []float32, n, kp int, p []float32), gemvT func(q, g []float32, n, kp int, s []float32),
	q, t, g []float32, n, kp int, p, w []float32) {
	t = t[:n]
	gemv(t, g, n, kp, p)
	if w != nil {
		w = w[:n]
		for j, tj := range t {
			t[j] = w[j] * tj
		}
	}
	gemvT(q, g, n, kp, t)
}
