//go:build amd64

package als

import (
	"os"

	"golang.org/x/sys/cpu"
)

// Assembly kernels (kernel_amd64.s). They take pointers and sizes; the Go
// wrappers below check the slice bounds first, so that a bad call panics
// like the reference instead of touching memory outside the slices.

//go:noescape
func syrkAVX512(c, x, wx *float64, n, kp int)

//go:noescape
func transposeAVX512(t, pan *float32, n, np, kp int)

//go:noescape
func transposeAVX2(t, pan *float32, n, np, kp int)

//go:noescape
func fmaPeakAVX512(n int)

//go:noescape
func fmaPeakAVX2(n int)

// fmaPeakKernel is FMAPeak's loop for the installed kernel set and its
// flops an iteration.
func fmaPeakKernel() (func(n int), float64) {
	switch kernelName {
	case "avx512":
		return fmaPeakAVX512, 384
	case "avx2":
		return fmaPeakAVX2, 192
	}
	return fmaPeakGo, 16
}

//go:noescape
func syrkAVX2(c, x, wx *float64, n, kp int)

//go:noescape
func gatherApplyAVX512(q, p, other *float32, k int, cols *int32, ncols int, w *float32, nrows int) (bad int)

//go:noescape
func gatherApplyAVX2(q, p, other *float32, k int, cols *int32, ncols int, w *float32, nrows int) (bad int)

//go:noescape
func cholTrailAVX512(a *float64, k, j0, j1 int)

//go:noescape
func cholPanelAlAVX512(a *float64, k, j0, j1 int) (fail int)

//go:noescape
func cholUpdateAVX2(c, u *float64, ld, mr, mc, depth int)

//go:noescape
func cholPanelAVX2(a *float64, k, j0, j1 int) (fail int)

//go:noescape
func gatherRowsAVX512(x, wx, b *float64, kp int, other *float32, k int, cols *int32, n, ncols int, w, v *float32, nrows int) (bad int)

//go:noescape
func gatherRowsAVX2(x, wx, b *float64, kp int, other *float32, k int, cols *int32, n, ncols int, w, v *float32, nrows int) (bad int)

//go:noescape
func cholSolveUAVX512(a *float64, k int, b *float64)

//go:noescape
func cholMirrorAVX512(a *float64, k int)

//go:noescape
func symFillAVX512(dst, a, base *float64, k, kp, kb int, diag float64)

//go:noescape
func cholSolveUAVX2(a *float64, k int, b *float64)

//go:noescape
func cholMirrorAVX2(a *float64, k int)

//go:noescape
func symFillAVX2(dst, a, base *float64, k, kp, kb int, diag float64)

var (
	haveAVX2   = cpu.X86.HasAVX && cpu.X86.HasAVX2 && cpu.X86.HasFMA
	haveAVX512 = haveAVX2 && cpu.X86.HasAVX512F
)

func init() {
	best := kernelPaths()
	name := best[len(best)-1]
	if forced := os.Getenv(kernelEnv); forced != "" {
		// A forced path is honoured only when the CPU has it.
		for _, p := range best {
			if p == forced {
				name = forced
			}
		}
	}
	setKernel(name)
}

// kernelPaths lists the kernel sets this CPU can run, best last.
func kernelPaths() []string {
	paths := []string{"go"}
	if haveAVX2 {
		paths = append(paths, "avx2")
	}
	if haveAVX512 {
		paths = append(paths, "avx512")
	}
	return paths
}

// setKernel installs the named kernel set and reports whether this CPU
// supports it (on false nothing changes).
func setKernel(name string) bool {
	switch {
	case name == "go":
		setKernelGo()
	case name == "avx2" && haveAVX2:
		syrkTiles = syrkTilesAVX2
		gatherApply = gatherApplyAVX2Go
		gatherRows = gatherRowsAVX2Go
		symFill = symFillAVX2Go
		cholUpdate = cholUpdateAVX2Go
		cholPanel = cholPanelAVX2Go
		cholSolveU = cholSolveUAVX2Go
		cholMirror = cholMirrorAVX2Go
		gatherPanel = gatherPanelAVX2Go
		syrk32 = syrk32AVX2Go
		gemv32 = gemv32AVX2Go
		gemvT32 = gemvT32AVX2Go
		applyPanel = applyPanelAVX2Go
		transposePanel = transposeAVX2Go
		cgDot, cgAxpy, cgDir = cgDotAVX2Go, cgAxpyAVX2Go, cgDirAVX2Go
		cholBatch = nil
		interleave = interleaveGo
		kernelName = name
	case name == "avx512" && haveAVX512:
		syrkTiles = syrkTilesAVX512
		gatherApply = gatherApplyAVX512Go
		gatherRows = gatherRowsAVX512Go
		symFill = symFillAVX512Go
		cholUpdate = cholUpdateAVX512Go
		cholPanel = cholPanelAVX512Go
		cholSolveU = cholSolveUAVX512Go
		cholMirror = cholMirrorAVX512Go
		gatherPanel = gatherPanelAVX512Go
		syrk32 = syrk32AVX512Go
		gemv32 = gemv32AVX512Go
		gemvT32 = gemvT32AVX512Go
		applyPanel = applyPanelAVX512Go
		transposePanel = transposeAVX512Go
		cgDot, cgAxpy, cgDir = cgDotAVX512Go, cgAxpyAVX512Go, cgDirAVX512Go
		cholBatch = cholBatchAVX512Go
		interleave = interleaveAVX512Go
		kernelName = name
	default:
		return false
	}
	return true
}

// checkSyrk reports whether the tile kernels, which work on whole tiles of
// pad columns, can run (n > 0 and kp a positive multiple of pad), and
// panics like syrkTilesGo would if a slice is too short.
func checkSyrk(c, x, wx []float64, n, kp, pad int) bool {
	if n <= 0 || kp <= 0 || kp%pad != 0 {
		return false
	}
	_ = c[kp*kp-1]
	_ = x[n*kp-1]
	_ = wx[n*kp-1]
	return true
}

func syrkTilesAVX512(c, x, wx []float64, n, kp int) {
	if !checkSyrk(c, x, wx, n, kp, 16) {
		syrkTilesGo(c, x, wx, n, kp)
		return
	}
	syrkAVX512(&c[0], &x[0], &wx[0], n, kp)
}

func syrkTilesAVX2(c, x, wx []float64, n, kp int) {
	if !checkSyrk(c, x, wx, n, kp, 8) {
		syrkTilesGo(c, x, wx, n, kp)
		return
	}
	syrkAVX2(&c[0], &x[0], &wx[0], n, kp)
}

// gatherArgs checks the arguments of gatherApply and returns false when
// there is nothing to do; it panics where gatherApplyGo would, except for
// out-of-range cols, which the kernels report back (gatherBad).
func gatherArgs(q, p, other []float32, k int, cols []int32, w []float32) (wp *float32, ok bool) {
	if len(cols) == 0 {
		return nil, false
	}
	_ = p[:k]
	_ = q[:k]
	if k == 0 {
		return nil, false
	}
	if w != nil {
		_ = w[len(cols)-1]
		wp = &w[0]
	}
	if len(other) < k {
		_ = other[int(cols[0])*k : int(cols[0])*k+k] // panics
	}
	return wp, true
}

// gatherBad panics with the index error of cols[j], which the kernel found
// out of range for other.
func gatherBad(other []float32, k int, c int32) {
	_ = other[int(c)*k : int(c)*k+k]
	panic("als: gatherApply: bad column index") // not reached
}

// gatherChunk bounds the ratings per assembly call: assembly functions
// cannot be preempted, and a popular item's ratings at a large k would
// otherwise hold the CPU for milliseconds.
const gatherChunk = 4096

func gatherApplyAVX512Go(q, p, other []float32, k int, cols []int32, w []float32) {
	gatherApplyChunks(gatherApplyAVX512, q, p, other, k, cols, w)
}

func gatherApplyAVX2Go(q, p, other []float32, k int, cols []int32, w []float32) {
	gatherApplyChunks(gatherApplyAVX2, q, p, other, k, cols, w)
}

// gatherApplyChunks checks the arguments and runs an assembly gatherApply
// kernel over at most gatherChunk ratings per call. The kernel returns the
// position of a column index outside other, or -1.
func gatherApplyChunks(kernel func(q, p, other *float32, k int, cols *int32, n int, w *float32, rows int) int,
	q, p, other []float32, k int, cols []int32, w []float32) {
	wp, ok := gatherArgs(q, p, other, k, cols, w)
	if !ok {
		return
	}
	for start := 0; start < len(cols); start += gatherChunk {
		n := min(gatherChunk, len(cols)-start)
		var ws *float32
		if wp != nil {
			ws = &w[start]
		}
		if j := kernel(&q[0], &p[0], &other[0], k, &cols[start], n, ws, len(other)/k); j >= 0 {
			gatherBad(other, k, cols[start+j])
		}
	}
}

// checkCholUpdate reports whether the trailing update has any work and
// panics if a does not hold k×k or j0 < j1 does not hold.
func checkCholUpdate(a []float64, k, j0, j1 int) bool {
	if j1 >= k {
		return false
	}
	if j0 < 0 || j1 <= j0 {
		panic("als: cholUpdate: bad arguments")
	}
	_ = a[k*k-1]
	return true
}

func cholUpdateAVX512Go(a []float64, k, j0, j1 int) {
	if checkCholUpdate(a, k, j0, j1) {
		cholTrailAVX512(&a[0], k, j0, j1)
	}
}

func cholUpdateAVX2Go(a []float64, k, j0, j1 int) {
	if checkCholUpdate(a, k, j0, j1) {
		cholUpdateAVX2(&a[j1*k+j1], &a[j0*k+j1], k, k-j1, k-j1, j1-j0)
	}
}

// checkCholPanel reports whether rows j0..j1-1 exist and a holds k×k.
func checkCholPanel(a []float64, k, j0, j1 int) bool {
	if j0 >= j1 {
		return false
	}
	if j0 < 0 || j1 > k {
		panic("als: cholPanel: bad arguments")
	}
	_ = a[k*k-1]
	return true
}

func cholPanelAVX512Go(a []float64, k, j0, j1 int) int {
	if !checkCholPanel(a, k, j0, j1) {
		return -1
	}
	return cholPanelAlAVX512(&a[0], k, j0, j1)
}

func cholPanelAVX2Go(a []float64, k, j0, j1 int) int {
	if !checkCholPanel(a, k, j0, j1) {
		return -1
	}
	return cholPanelAVX2(&a[0], k, j0, j1)
}

// gatherRowsArgs checks the arguments of gatherRows for the vector kernels,
// which need kp ≥ k rounded up to 8 and a padded b; it returns false when
// there is nothing to do or the Go version must run (panicking where it
// would).
func gatherRowsArgs(x, wx, b []float64, kp int, other []float32, k int, cols []int32, n int, w, v []float32) (wp *float32, ok bool) {
	if n <= 0 || k <= 0 {
		return nil, false
	}
	k8 := (k + 7) &^ 7
	if kp%8 != 0 || kp < k8 || len(b) < k8 || len(other) < k {
		return nil, false
	}
	_ = cols[n-1]
	_ = v[n-1]
	_ = x[n*kp-1]
	if w != nil {
		_ = w[n-1]
		_ = wx[n*kp-1]
		wp = &w[0]
	}
	return wp, true
}

func gatherRowsAVX512Go(x, wx, b []float64, kp int, other []float32, k int, cols []int32, n int, w, v []float32) {
	wp, ok := gatherRowsArgs(x, wx, b, kp, other, k, cols, n, w, v)
	if !ok {
		gatherRowsGo(x, wx, b, kp, other, k, cols, n, w, v)
		return
	}
	wxp := &x[0] // unused without weights
	if w != nil {
		wxp = &wx[0]
	}
	if j := gatherRowsAVX512(&x[0], wxp, &b[0], kp, &other[0], k, &cols[0], n, len(cols), wp, &v[0], len(other)/k); j >= 0 {
		gatherBad(other, k, cols[j])
	}
}

func gatherRowsAVX2Go(x, wx, b []float64, kp int, other []float32, k int, cols []int32, n int, w, v []float32) {
	wp, ok := gatherRowsArgs(x, wx, b, kp, other, k, cols, n, w, v)
	if !ok {
		gatherRowsGo(x, wx, b, kp, other, k, cols, n, w, v)
		return
	}
	wxp := &x[0]
	if w != nil {
		wxp = &wx[0]
	}
	if j := gatherRowsAVX2(&x[0], wxp, &b[0], kp, &other[0], k, &cols[0], n, len(cols), wp, &v[0], len(other)/k); j >= 0 {
		gatherBad(other, k, cols[j])
	}
}

func cholSolveUAVX2Go(a []float64, k int, b []float64) {
	if k <= 0 {
		return
	}
	_ = a[k*k-1]
	_ = b[k-1]
	cholSolveUAVX2(&a[0], k, &b[0])
}

func cholMirrorAVX2Go(a []float64, k int) { cholMirrorVec(cholMirrorAVX2, 4, a, k) }
func symFillAVX2Go(dst, a, base []float64, k, kp int, diag float64) {
	symFillVec(symFillAVX2, 4, dst, a, base, k, kp, diag)
}

func cholSolveUAVX512Go(a []float64, k int, b []float64) {
	if k <= 0 {
		return
	}
	_ = a[k*k-1]
	_ = b[k-1]
	cholSolveUAVX512(&a[0], k, &b[0])
}

func cholMirrorAVX512Go(a []float64, k int) { cholMirrorVec(cholMirrorAVX512, 8, a, k) }
func symFillAVX512Go(dst, a, base []float64, k, kp int, diag float64) {
	symFillVec(symFillAVX512, 8, dst, a, base, k, kp, diag)
}

// cholMirrorVec mirrors the whole lanes×lanes blocks with the vector
// kernel mirror and the rows from k rounded down to lanes (a power of 2)
// in Go.
func cholMirrorVec(mirror func(a *float64, k int), lanes int, a []float64, k int) {
	if k <= 0 {
		return
	}
	_ = a[k*k-1]
	if k >= lanes {
		mirror(&a[0], k)
	}
	cholMirrorRows(a, k, k&^(lanes-1))
}

// symFillVec fills the whole lanes×lanes blocks with the vector kernel
// fill and the columns from k rounded down to lanes (a power of 2) in Go.
func symFillVec(fill func(dst, a, base *float64, k, kp, kb int, diag float64), lanes int, dst, a, base []float64, k, kp int, diag float64) {
	kb := k &^ (lanes - 1)
	if kb == 0 || kp < k {
		symFillGo(dst, a, base, k, kp, diag)
		return
	}
	_ = dst[k*k-1]
	_ = a[(k-1)*kp+k-1]
	var bp *float64
	if base != nil {
		_ = base[k*k-1]
		bp = &base[0]
	}
	fill(&dst[0], &a[0], bp, k, kp, kb, diag)
	symFillTail(dst, a, base, k, kp, diag, kb)
}

//go:noescape
func syrk32AVX512(c *float64, x, wx *float32, n, kp int, set bool)

//go:noescape
func syrk32AVX2(c *float64, x, wx *float32, n, kp int, set bool)

//go:noescape
func gemv32AVX512(t, pan, p *float32, n, kp int)

//go:noescape
func gemv32AVX2(t, pan, p *float32, n, kp int)

//go:noescape
func gemvT32AVX512(q, pan, s *float32, n, kp int)

//go:noescape
func gemvT32AVX2(q, pan, s *float32, n, kp int)

//go:noescape
func applyPanelAVX512(q, t, pan, p, w *float32, n, kp int)

//go:noescape
func gatherPanelAVX512(pan, wg *float32, kp int, other *float32, k int, cols *int32, n, ncols int, w *float32, nrows int) (bad int)

//go:noescape
func gatherPanelAVX2(pan, wg *float32, kp int, other *float32, k int, cols *int32, n, ncols int, w *float32, nrows int) (bad int)

// The wrappers of the panel kernels check the slices (panicking where the
// Go versions would), fall back to the Go versions for shapes the kernels
// do not handle (kp not a multiple of 16), and cut long panels into
// gatherChunk rows per assembly call (which cannot be preempted).

func syrk32AVX512Go(c []float64, x, wx []float32, n, kp int, set bool) {
	syrk32Asm(syrk32AVX512, c, x, wx, n, kp, set)
}

func syrk32AVX2Go(c []float64, x, wx []float32, n, kp int, set bool) {
	syrk32Asm(syrk32AVX2, c, x, wx, n, kp, set)
}

func gemv32AVX512Go(t, g []float32, n, kp int, p []float32) {
	gemv32Asm(gemv32AVX512, t, g, n, kp, p)
}

func gemv32AVX2Go(t, g []float32, n, kp int, p []float32) {
	gemv32Asm(gemv32AVX2, t, g, n, kp, p)
}

func gemvT32AVX512Go(q, g []float32, n, kp int, s []float32) {
	gemvT32Asm(gemvT32AVX512, q, g, n, kp, s)
}

func gemvT32AVX2Go(q, g []float32, n, kp int, s []float32) {
	gemvT32Asm(gemvT32AVX2, q, g, n, kp, s)
}

func applyPanelAVX2Go(q, t, g []float32, n, kp int, p, w []float32) {
	applyPanelWith(gemv32AVX2Go, gemvT32AVX2Go, q, t, g, n, kp, p, w)
}

// applyPanelAVX512Go runs the fused kernel for 32 ≤ kp ≤ 64 (its gemvT32
// accumulators are one set of 4 vectors), cut at gatherChunk rows like
// gemvT32Asm so that q sees the same additions; other shapes, and panels
// without the last group's rows past n, take the two kernels in turn.
func applyPanelAVX512Go(q, t, g []float32, n, kp int, p, w []float32) {
	if n <= 0 || kp < 32 || kp > 64 || kp%16 != 0 || len(g) < (n+rowGroup-1)/rowGroup*rowGroup*kp {
		applyPanelWith(gemv32AVX512Go, gemvT32AVX512Go, q, t, g, n, kp, p, w)
		return
	}
	_ = q[kp-1]
	_ = t[n-1]
	_ = p[kp-1]
	if w != nil {
		_ = w[n-1]
	}
	for start := 0; start < n; start += gatherChunk {
		m := min(gatherChunk, n-start)
		var ws *float32
		if w != nil {
			ws = &w[start]
		}
		applyPanelAVX512(&q[0], &t[start], &g[start*kp], &p[0], ws, m, kp)
	}
}

func gatherPanelAVX512Go(g, wg []float32, kp int, other []float32, k int, cols []int32, n int, w []float32) int {
	return gatherPanelAsm(gatherPanelAVX512, g, wg, kp, other, k, cols, n, w)
}

func gatherPanelAVX2Go(g, wg []float32, kp int, other []float32, k int, cols []int32, n int, w []float32) int {
	return gatherPanelAsm(gatherPanelAVX2, g, wg, kp, other, k, cols, n, w)
}

// syrk32Asm runs an assembly syrk32 kernel. It does not cut the panel:
// the row solves pass at most panelRows rows.
func syrk32Asm(kernel func(c *float64, x, wx *float32, n, kp int, set bool),
	c []float64, x, wx []float32, n, kp int, set bool) {
	if n <= 0 || kp <= 0 || kp%16 != 0 {
		syrk32Go(c, x, wx, n, kp, set)
		return
	}
	_ = c[kp*kp-1]
	_ = x[n*kp-1]
	_ = wx[n*kp-1]
	kernel(&c[0], &x[0], &wx[0], n, kp, set)
}

func gemv32Asm(kernel func(t, pan, p *float32, n, kp int),
	t, g []float32, n, kp int, p []float32) {
	if n <= 0 || kp <= 0 || kp%16 != 0 {
		gemv32Go(t, g, n, kp, p)
		return
	}
	_ = t[n-1]
	_ = p[kp-1]
	_ = g[n*kp-1]
	// The kernels read whole groups of rows (16 for AVX-512, 8 for AVX2):
	// the rows past n of the last group of rowGroup must be inside g, or
	// the Go version takes them.
	whole := n
	if len(g) < (n+rowGroup-1)/rowGroup*rowGroup*kp {
		whole = n &^ (rowGroup - 1)
	}
	for start := 0; start < whole; start += gatherChunk {
		m := min(gatherChunk, whole-start)
		kernel(&t[start], &g[start*kp], &p[0], m, kp)
	}
	if whole < n {
		gemv32Go(t[whole:n], g[whole*kp:], n-whole, kp, p)
	}
}

func gemvT32Asm(kernel func(q, pan, s *float32, n, kp int),
	q, g []float32, n, kp int, s []float32) {
	if n <= 0 || kp <= 0 || kp%16 != 0 {
		gemvT32Go(q, g, n, kp, s)
		return
	}
	_ = q[kp-1]
	_ = s[n-1]
	_ = g[n*kp-1]
	for start := 0; start < n; start += gatherChunk {
		m := min(gatherChunk, n-start)
		kernel(&q[0], &g[start*kp], &s[start], m, kp)
	}
}

func gatherPanelAsm(kernel func(pan, wg *float32, kp int, other *float32, k int, cols *int32, n, ncols int, w *float32, nrows int) int,
	g, wg []float32, kp int, other []float32, k int, cols []int32, n int, w []float32) int {
	if n <= 0 || k <= 0 || kp != (k+15)&^15 || len(other) < k {
		return gatherPanelGo(g, wg, kp, other, k, cols, n, w)
	}
	_ = cols[n-1]
	_ = g[n*kp-1]
	var wgp *float32
	if wg != nil {
		_ = wg[n*kp-1]
		_ = w[n-1]
		wgp = &wg[0]
	}
	for start := 0; start < n; start += gatherChunk {
		m := min(gatherChunk, n-start)
		var wgs, ws *float32
		if wgp != nil {
			wgs, ws = &wg[start*kp], &w[start]
		}
		if j := kernel(&g[start*kp], wgs, kp, &other[0], k, &cols[start], m, len(cols)-start, ws, len(other)/k); j >= 0 {
			return start + j
		}
	}
	return -1
}

// transposeAsm checks the slices (panicking where transposePanelGo
// would) and runs a transpose kernel on whole vectors of lanes, falling
// back to the Go version for other shapes.
func transposeAsm(kernel func(t, g *float32, n, np, kp int), lanes int, t, g []float32, n, np, kp int) {
	if n <= 0 || np < n || np%lanes != 0 || kp <= 0 || kp%16 != 0 {
		transposePanelGo(t, g, n, np, kp)
		return
	}
	_ = t[kp*np-1]
	_ = g[n*kp-1]
	kernel(&t[0], &g[0], n, np, kp)
}

func transposeAVX512Go(t, g []float32, n, np, kp int) {
	transposeAsm(transposeAVX512, 16, t, g, n, np, kp)
}
func transposeAVX2Go(t, g []float32, n, np, kp int) { transposeAsm(transposeAVX2, 8, t, g, n, np, kp) }

//go:noescape
func cgDotAVX512(a, b *float32, n int) float64

//go:noescape
func cgAxpyAVX512(x, r, p, ap *float32, n int, alpha float32) float64

//go:noescape
func cgDirAVX512(p, r *float32, n int, beta float32)

//go:noescape
func cgDotAVX2(a, b *float32, n int) float64

//go:noescape
func cgAxpyAVX2(x, r, p, ap *float32, n int, alpha float32) float64

//go:noescape
func cgDirAVX2(p, r *float32, n int, beta float32)

// The CG vector wrappers run the kernels on whole vectors (n > 0 a
// multiple of lanes) and the Go versions otherwise; the slices are checked
// first, so a short one panics as in Go.

func cgDotAVX512Go(a, b []float32) float64 { return cgDotVec(cgDotAVX512, 16, a, b) }
func cgDotAVX2Go(a, b []float32) float64   { return cgDotVec(cgDotAVX2, 8, a, b) }

func cgDotVec(kernel func(a, b *float32, n int) float64, lanes int, a, b []float32) float64 {
	n := len(a)
	if n == 0 || n%lanes != 0 {
		return cgDotGo(a, b)
	}
	_ = b[n-1]
	return kernel(&a[0], &b[0], n)
}

func cgAxpyAVX512Go(x, r, p, ap []float32, alpha float32) float64 {
	return cgAxpyVec(cgAxpyAVX512, 16, x, r, p, ap, alpha)
}

func cgAxpyAVX2Go(x, r, p, ap []float32, alpha float32) float64 {
	return cgAxpyVec(cgAxpyAVX2, 8, x, r, p, ap, alpha)
}

func cgAxpyVec(kernel func(x, r, p, ap *float32, n int, alpha float32) float64, lanes int, x, r, p, ap []float32, alpha float32) float64 {
	n := len(x)
	if n == 0 || n%lanes != 0 {
		return cgAxpyGo(x, r, p, ap, alpha)
	}
	_, _, _ = r[n-1], p[n-1], ap[n-1]
	return kernel(&x[0], &r[0], &p[0], &ap[0], n, alpha)
}

func cgDirAVX512Go(p, r []float32, beta float32) { cgDirVec(cgDirAVX512, 16, p, r, beta) }
func cgDirAVX2Go(p, r []float32, beta float32)   { cgDirVec(cgDirAVX2, 8, p, r, beta) }

func cgDirVec(kernel func(p, r *float32, n int, beta float32), lanes int, p, r []float32, beta float32) {
	n := len(p)
	if n == 0 || n%lanes != 0 {
		cgDirGo(p, r, beta)
		return
	}
	_ = r[n-1]
	kernel(&p[0], &r[0], n, beta)
}

//go:noescape
func cholBatchAVX512(a *float64, n int, b, w *float64) (fail int)

// cholBatchAVX512Go runs the AVX-512 batched Cholesky on sizes that are a
// positive multiple of 8 (the kernel's blocks of rows) and cholBatchGo on
// others, checking the slices first.
func cholBatchAVX512Go(a []float64, n int, b, w []float64) int {
	if n <= 0 || n%8 != 0 {
		return cholBatchGo(a, n, b, w)
	}
	_ = a[n*n*batchLanes-1]
	_ = b[n*batchLanes-1]
	_ = w[n*batchLanes-1]
	return cholBatchAVX512(&a[0], n, &b[0], &w[0])
}

//go:noescape
func interleaveAVX512(dst, src *float64, n int)

// interleaveAVX512Go runs the AVX-512 interleave on sizes that are a
// positive multiple of 8 and interleaveGo on others.
func interleaveAVX512Go(dst, src []float64, n int) {
	if n <= 0 || n%8 != 0 {
		interleaveGo(dst, src, n)
		return
	}
	_ = dst[n*n*batchLanes-1]
	_ = src[n*n*batchLanes-1]
	interleaveAVX512(&dst[0], &src[0], n)
}
