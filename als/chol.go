package als

import (
	"errors"
	"math"
)

// errNotPosDef reports a matrix that is not (numerically) positive definite.
var errNotPosDef = errors.New("als: matrix is not positive definite")

// cholBlock is the number of rows of U factored together before the
// trailing matrix is updated with one rank-cholBlock cholUpdate call.
const cholBlock = 16

// cholSolve solves a·x = b for a symmetric positive definite k×k row-major
// matrix a, overwriting b with x. Only the lower triangle of a is read; all
// of a is used as scratch (on return its upper triangle holds the Cholesky
// factor U = Lᵀ, a = UᵀU, and its strict lower triangle is unspecified). It
// returns errNotPosDef, with a and b in an unspecified state, when a pivot
// is not positive and finite.
//
// The factorisation works on U in the upper triangle so that every inner
// loop runs along contiguous rows. The lower triangle is first mirrored
// into the upper one (cholMirror); then, block by block of cholBlock rows,
// each row of the block is brought up to date against the block's earlier
// rows and divided by the square root of its pivot (cholPanel), and the
// trailing upper triangle receives the block's rank-cholBlock update
// (cholUpdate); finally the two triangular solves run (cholSolveU). Each
// step is a function variable with a vector kernel where the CPU has one
// (kernel_amd64.go); the AVX-512 kernels also write, as scratch, entries
// below the diagonal. Rounding differs from cholSolveRef's (sums are taken
// in another order, reciprocals are multiplied), not the result beyond it.
func cholSolve(a []float64, k int, b []float64) error {
	if k <= 0 {
		return nil
	}
	a = a[:k*k]
	cholMirror(a, k)
	return cholSolveUpper(a, k, b)
}

// cholSolveUpper is cholSolve for a matrix given by its upper triangle
// (i ≤ j): the lower one is not read (it is scratch on return), so a
// matrix accumulated in its upper triangle is factored in place.
func cholSolveUpper(a []float64, k int, b []float64) error {
	if k <= 0 {
		return nil
	}
	a = a[:k*k]
	b = b[:k]
	for j0 := 0; j0 < k; j0 += cholBlock {
		j1 := min(j0+cholBlock, k)
		if cholPanel(a, k, j0, j1) >= 0 {
			return errNotPosDef
		}
		if j1 < k {
			cholUpdate(a, k, j0, j1)
		}
	}
	cholSolveU(a, k, b)
	return nil
}

// cholSolveUGo overwrites b with U⁻¹U⁻ᵀb, where U is the upper triangle of
// the k×k row-major a: forward substitution Uᵀz = b, row by row of U (an
// axpy per row), then back substitution U x = z as dot products along the
// rows of U.
func cholSolveUGo(a []float64, k int, b []float64) {
	a = a[:k*k]
	b = b[:k]
	for p := 0; p < k; p++ {
		row := a[p*k+p : p*k+k]
		zp := b[p] * (1 / row[0]) // the division is off the dependency chain
		b[p] = zp
		axpyNeg(b[p+1:], row[1:], zp)
	}
	for i := k - 1; i >= 0; i-- {
		row := a[i*k+i : i*k+k]
		b[i] = (b[i] - dot64(row[1:], b[i+1:])) * (1 / row[0])
	}
}

// cholMirrorGo copies the strict lower triangle of the k×k row-major a into
// the upper one (a[j][i] = a[i][j] for j < i), by 8×8 blocks so that the
// strided writes stay within a few cache lines. Vector versions may also
// overwrite the strict lower triangle.
func cholMirrorGo(a []float64, k int) {
	cholMirrorRows(a, k, 0)
}

// cholMirrorRows is cholMirrorGo for rows i0 ≤ i < k only.
func cholMirrorRows(a []float64, k, i0 int) {
	a = a[:k*k]
	for ; i0 < k; i0 += 8 {
		i1 := min(i0+8, k)
		for j0 := 0; j0 <= i0; j0 += 8 {
			for i := i0; i < i1; i++ {
				src := a[i*k+j0 : i*k+min(j0+8, i)]
				for j, v := range src {
					a[(j0+j)*k+i] = v
				}
			}
		}
	}
}

// axpyNeg sets y -= s·x (len(y) ≥ len(x)).
func axpyNeg(y, x []float64, s float64) {
	y = y[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		y[i] -= s * x[i]
		y[i+1] -= s * x[i+1]
		y[i+2] -= s * x[i+2]
		y[i+3] -= s * x[i+3]
	}
	for ; i < len(x); i++ {
		y[i] -= s * x[i]
	}
}

// dot64 is x·y (len(y) ≥ len(x)) with four partial sums.
func dot64(x, y []float64) float64 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// cholPanelGo factors rows j0 ≤ j < j1 of U (upper triangle of the k×k
// matrix a, rows j0.. brought up to date with all rows before j0): each
// row is first updated with the panel's earlier rows,
//
//	a[j][j:k] -= Σ_{j0 ≤ r < j} a[r][j] · a[r][j:k]
//
// then its pivot d = a[j][j] is checked, replaced by √d, and the rest of
// the row divided by √d. It returns the first row whose pivot is not
// positive and finite, or -1.
func cholPanelGo(a []float64, k, j0, j1 int) int {
	for j := j0; j < j1; j++ {
		if j > j0 {
			cholUpdateRel(a, j*k+j, j0*k+j, k, 1, k-j, j-j0)
		}
		row := a[j*k+j : j*k+k]
		d := row[0]
		if !(d > 0) || d > math.MaxFloat64 {
			return j
		}
		d = math.Sqrt(d)
		row[0] = d
		inv := 1 / d
		row = row[1:]
		for i := range row {
			row[i] *= inv
		}
	}
	return -1
}

// cholUpdateGo is the trailing update of cholSolve's block of rows
// j0 ≤ r < j1 of U on the k×k matrix a:
//
//	a[i][c] -= Σ_{j0 ≤ r < j1} a[r][i] · a[r][c]   for j1 ≤ i ≤ c < k
//
// Vector kernels may also write a[i][c] for c < i (scratch by then).
func cholUpdateGo(a []float64, k, j0, j1 int) {
	if j1 < k {
		cholUpdateRel(a, j1*k+j1, j0*k+j1, k, k-j1, k-j1, j1-j0)
	}
}

// cholUpdateRel applies a rank-depth update to an upper trapezoid of a:
//
//	a[co+i*ld+j] -= Σ_{r<depth} a[uo+r*ld+i] · a[uo+r*ld+j]   for 0 ≤ i < mr, i ≤ j < mc
//
// (mr ≤ mc). The AVX2 kernel (cholUpdateAVX2) also writes entries with
// j < i of rows in the same 4-row strip.
func cholUpdateRel(a []float64, co, uo, ld, mr, mc, depth int) {
	for i := 0; i < mr; i++ {
		c := a[co+i*ld+i : co+i*ld+mc]
		r := 0
		for ; r+2 <= depth; r += 2 {
			u0 := a[uo+r*ld+i : uo+r*ld+mc]
			u1 := a[uo+(r+1)*ld+i : uo+(r+1)*ld+mc]
			s0, s1 := u0[0], u1[0]
			u0 = u0[:len(c)]
			u1 = u1[:len(c)]
			for j := range c {
				c[j] -= s0*u0[j] + s1*u1[j]
			}
		}
		if r < depth {
			u0 := a[uo+r*ld+i : uo+r*ld+mc]
			s0 := u0[0]
			u0 = u0[:len(c)]
			for j := range c {
				c[j] -= s0 * u0[j]
			}
		}
	}
}

// cholSolveRef is the textbook row-by-row (Cholesky–Banachiewicz) version
// of cholSolve, kept as the reference the fast version is tested against.
// It overwrites the lower triangle of a with L (a = L Lᵀ).
func cholSolveRef(a []float64, k int, b []float64) error {
	a = a[:k*k]
	b = b[:k]
	for j := 0; j < k; j++ {
		rj := a[j*k : j*k+j+1]
		d := rj[j]
		for _, v := range rj[:j] {
			d -= v * v
		}
		if !(d > 0) || math.IsInf(d, 0) {
			return errNotPosDef
		}
		d = math.Sqrt(d)
		rj[j] = d
		inv := 1 / d
		for i := j + 1; i < k; i++ {
			ri := a[i*k : i*k+j+1]
			s := ri[j]
			for p, v := range rj[:j] {
				s -= ri[p] * v
			}
			ri[j] = s * inv
		}
	}
	for i := 0; i < k; i++ {
		ri := a[i*k : i*k+i+1]
		s := b[i]
		for p, v := range ri[:i] {
			s -= v * b[p]
		}
		b[i] = s / ri[i]
	}
	for i := k - 1; i >= 0; i-- {
		s := b[i]
		for p := i + 1; p < k; p++ {
			s -= a[p*k+i] * b[p]
		}
		b[i] = s / a[i*k+i]
	}
	return nil
}
