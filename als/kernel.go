package als

// The hot loops of a row solve live behind these function variables so that
// an architecture file can swap in a vector implementation at start-up
// (kernel_amd64.go, chosen by CPU features; COFACTOR_KERNEL=go|avx2|avx512
// forces a path no higher than the CPU supports). The *Go versions are the
// reference: they are always built, always tested, and the fast paths are
// compared against them.
var (
	syrkTiles   = syrkTilesGo
	gatherApply = gatherApplyGo
	// gatherRows fills the panels of normalEq.add (see gatherRowsGo).
	gatherRows = gatherRowsGo
	// symFill writes normalEq.matrix (see symFillGo).
	symFill = symFillGo
	// cholUpdate is the rank-update step of cholSolve (see cholUpdateGo).
	cholUpdate = cholUpdateGo
	// cholPanel factors a block of rows of cholSolve (see cholPanelGo).
	cholPanel = cholPanelGo
	// cholSolveU runs the two triangular solves of cholSolve.
	cholSolveU = cholSolveUGo
	// cholMirror copies the lower triangle into the upper one.
	cholMirror = cholMirrorGo
	// kernelName names the kernel set in use: "go", "avx2" or "avx512".
	kernelName = "go"
)

// kernelEnv is the environment variable that forces a kernel set.
const kernelEnv = "COFACTOR_KERNEL"

// KernelName names the kernel set row solves run on: "go", "avx2" or
// "avx512" — the best the CPU has, or a lower one $COFACTOR_KERNEL forces.
func KernelName() string { return kernelName }

// setKernelGo installs the pure-Go kernels.
func setKernelGo() {
	syrkTiles = syrkTilesGo
	gatherApply = gatherApplyGo
	gatherRows = gatherRowsGo
	symFill = symFillGo
	cholUpdate = cholUpdateGo
	cholPanel = cholPanelGo
	cholSolveU = cholSolveUGo
	cholMirror = cholMirrorGo
	setPanelKernelsGo()
	transposePanel = transposePanelGo
	cgDot, cgAxpy, cgDir = cgDotGo, cgAxpyGo, cgDirGo
	cholBatch = nil
	interleave = interleaveGo
	kernelName = "go"
}

// setPanelKernelsGo installs the pure-Go panel kernels of rowkern.go.
func setPanelKernelsGo() {
	gatherPanel = gatherPanelGo
	syrk32 = syrk32Go
	gemv32 = gemv32Go
	gemvT32 = gemvT32Go
	applyPanel = applyPanelGo
}

// gramPad is the multiple to which the Gram accumulator's leading dimension
// is rounded, so that vector kernels work on whole tiles. Padding columns of
// the panels are zero, so padded rows and columns of the accumulator stay 0.
// The AVX-512 kernel needs a multiple of 16, the AVX2 one a multiple of 8;
// other values make them fall back to syrkTilesGo.
const gramPad = 16

// panelRows is how many ratings are gathered into a panel before the tile
// kernel runs over it: small enough that both panels stay in L1 at k = 64,
// large enough that the kernel's loads and stores of the accumulator tiles
// are amortised over many rank-1 updates.
const panelRows = 32

// gramChunk is how many of a row's gathered ratings syrk32 sums in float32
// before adding the sums into the float64 normal equations: long enough
// that converting and adding the accumulator tiles costs a few percent of
// the multiply-adds, short enough that the float32 sums of at most this
// many products stay far more accurate than the float32 factors
// themselves (relative error ≲ gramChunk·2⁻²⁴ ≈ 8·10⁻⁶ in the worst case,
// ~√gramChunk·2⁻²⁴ typically).
const gramChunk = 128

// syrkTilesGo adds Σ_r x_r ⊗ wx_r to the upper triangle (i ≤ j) of the kp×kp
// row-major matrix c, where x_r and wx_r are row r of the n×kp row-major
// panels x and wx. Entries below the diagonal are left unspecified: a vector
// kernel may update them as part of a diagonal tile.
func syrkTilesGo(c, x, wx []float64, n, kp int) {
	for r := 0; r < n; r++ {
		xr := x[r*kp : (r+1)*kp]
		wr := wx[r*kp : (r+1)*kp]
		for i, xi := range xr {
			if xi == 0 {
				continue
			}
			ci := c[i*kp+i : (i+1)*kp]
			for j, wj := range wr[i:] {
				ci[j] += xi * wj
			}
		}
	}
}

// gatherApplyGo adds Σ_j w_j (y_j·p) y_j to q, where y_j is row cols[j] of
// the row-major matrix other (k columns). A nil w means every weight is 1.
// It is the matrix-free product of the conjugate-gradient solver.
func gatherApplyGo(q, p, other []float32, k int, cols []int32, w []float32) {
	p = p[:k]
	q = q[:k]
	for j, c := range cols {
		y := other[int(c)*k : int(c)*k+k]
		var t float32
		for i, yi := range y {
			t += yi * p[i]
		}
		if w != nil {
			t *= w[j]
		}
		for i, yi := range y {
			q[i] += t * yi
		}
	}
}

// gatherRowsGo copies rows cols[r] (r < n) of the row-major float32 matrix
// other (k columns) as float64 into row r of the panel x (row stride kp),
// adds v[r]·x_r to b and, when w is not nil, writes w[r]·x_r into row r
// of wx. Columns k ≤ i < kp of x and wx are left alone (they stay zero);
// b must have room for k entries, vector kernels may also add zeros to its
// entries up to the next multiple of 8 (b is padded for them). cols, w and
// v may run past n: vector kernels prefetch the rows that come next.
func gatherRowsGo(x, wx, b []float64, kp int, other []float32, k int, cols []int32, n int, w, v []float32) {
	b = b[:k]
	for r, c := range cols[:n] {
		y := other[int(c)*k : int(c)*k+k]
		xr := x[r*kp : r*kp+k]
		vr := float64(v[r])
		for i, yi := range y {
			f := float64(yi)
			xr[i] = f
			b[i] += vr * f
		}
		if w != nil {
			wr := wx[r*kp : r*kp+k]
			wv := float64(w[r])
			for i, f := range xr {
				wr[i] = wv * f
			}
		}
	}
}

// symFillGo writes the full symmetric k×k row-major matrix
//
//	dst[i][j] = dst[j][i] = a[i][j] + base[i][j] (+ diag if i = j)   for i ≤ j
//
// reading only the upper triangles of a (row stride kp) and of base (k×k,
// nil: zero). It goes by 8×8 blocks, so that the column-wise writes of the
// lower triangle touch a few cache lines at a time (at k = 128 a column
// step is 1 KiB and a plain row-by-row loop thrashes L1).
func symFillGo(dst, a, base []float64, k, kp int, diag float64) {
	dst = dst[:k*k]
	const bs = 8
	for i0 := 0; i0 < k; i0 += bs {
		i1 := min(i0+bs, k)
		for j0 := i0; j0 < k; j0 += bs {
			j1 := min(j0+bs, k)
			for i := i0; i < i1; i++ {
				jl := max(j0, i)
				src := a[i*kp+jl : i*kp+j1]
				row := dst[i*k+jl : i*k+j1]
				if base != nil {
					br := base[i*k+jl : i*k+j1]
					for j, v := range src {
						v += br[j]
						row[j] = v
						dst[(jl+j)*k+i] = v
					}
				} else {
					copy(row, src)
					for j, v := range src {
						dst[(jl+j)*k+i] = v
					}
				}
			}
		}
	}
	for i := 0; i < k; i++ {
		dst[i*k+i] += diag
	}
}

// symFillTail is symFillGo for the pairs i ≤ j with j ≥ j0 only.
func symFillTail(dst, a, base []float64, k, kp int, diag float64, j0 int) {
	dst = dst[:k*k]
	for j := j0; j < k; j++ {
		for i := 0; i <= j; i++ {
			v := a[i*kp+j]
			if base != nil {
				v += base[i*k+j]
			}
			if i == j {
				v += diag
			}
			dst[i*k+j] = v
			dst[j*k+i] = v
		}
	}
}
