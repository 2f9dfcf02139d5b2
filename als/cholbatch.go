package als

import "math"

// Batched Cholesky: the small systems of many rows solved together, one
// system in each lane of a vector.
//
// A single k = 64 factorisation is latency-bound: each row of U waits for
// the square root and the reciprocal of its pivot, and its update waits on
// the rows before it. Eight systems of the same size laid side by side, so
// that entry (i, j) of all eight is one 64-byte vector, turn every step of
// the factorisation and of the two triangular solves into a vector
// instruction that serves eight independent chains: the work becomes
// throughput-bound, and the per-system cost falls to about its
// multiply-adds.
//
// The lanes never mix, and every entry receives its updates in one fixed
// order (below), so a system's result depends only on the system: not on
// its lane, on the other lanes, or on how far it is padded (a system of n
// rows is padded to the batch's size with identity rows and zero right-
// hand sides, which leave its first n rows untouched). The vector kernel
// reproduces cholBatchGo to the last bit.

// batchLanes is how many systems one batched factorisation solves.
const batchLanes = 8

// cholBatch factors and solves a batch of systems (see cholBatchGo);
// kernel_amd64.go installs the AVX-512 version. A nil cholBatch turns
// batching off and rows are solved one at a time: on the AVX2 path (no
// 4-lane batch kernel yet; its per-row vector kernels stay) and the pure-Go
// one (cholBatchGo, one lane after the other, is slower than the per-row
// Go kernels; tests install it to check the batching against them).
var cholBatch func(a []float64, n int, b, w []float64) int

// cholBatchGo solves batchLanes symmetric positive definite n×n systems
// A_l x_l = b_l at once. a holds them interleaved: entry (i, c) of system
// l is a[(i·n+c)·batchLanes+l]; only the upper triangle (i ≤ c) is read.
// b holds b_l the same way (entry i of lane l at b[i·batchLanes+l]) and is
// overwritten with x_l; w (n·batchLanes) is scratch. On return the upper
// triangle of a holds the factors U_l (A_l = U_lᵀU_l). The result has bit
// l set for each system whose pivot was not positive and finite (its
// lane's results are then meaningless; the other lanes are unaffected).
//
// The order of the arithmetic is part of the contract, so that vector
// versions match it exactly. Row by row, j = 0…n−1 (right-looking): the
// pivot d = a[j][j] is checked, s = √d and r = 1/s (a correctly rounded
// division) computed, a[j][j] = s, a[j][c] = a[j][c]·r for c > j, and
// every later entry is updated with one fused multiply-add,
// a[i][c] = fma(−a[j][i], a[j][c], a[i][c]) for j < i ≤ c; an entry thus
// receives its updates in increasing j. The forward solve Uᵀz = b runs
// z_p = b_p·r_p, then b_i = fma(−U[p][i], z_p, b_i) for i > p, for
// p = 0…n−1; the back solve U x = z runs x_i = b_i·r_i, then
// b_q = fma(−U[q][i], x_i, b_q) for q < i, for i = n−1…0.
func cholBatchGo(a []float64, n int, b, w []float64) int {
	const L = batchLanes
	a = a[:n*n*L]
	b = b[:n*L]
	w = w[:n*L]
	fail := 0
	for l := 0; l < L; l++ {
		at := func(i, c int) *float64 { return &a[(i*n+c)*L+l] }
		for j := 0; j < n; j++ {
			d := *at(j, j)
			if !(d > 0) || d > math.MaxFloat64 {
				fail |= 1 << l
			}
			s := math.Sqrt(d)
			r := 1 / s
			*at(j, j) = s
			w[j*L+l] = r
			for c := j + 1; c < n; c++ {
				*at(j, c) *= r
			}
			for i := j + 1; i < n; i++ {
				u := *at(j, i)
				for c := i; c < n; c++ {
					p := at(i, c)
					*p = math.FMA(-u, *at(j, c), *p)
				}
			}
		}
		for p := 0; p < n; p++ {
			z := b[p*L+l] * w[p*L+l]
			b[p*L+l] = z
			for i := p + 1; i < n; i++ {
				b[i*L+l] = math.FMA(-*at(p, i), z, b[i*L+l])
			}
		}
		for i := n - 1; i >= 0; i-- {
			x := b[i*L+l] * w[i*L+l]
			b[i*L+l] = x
			for q := 0; q < i; q++ {
				b[q*L+l] = math.FMA(-*at(q, i), x, b[q*L+l])
			}
		}
	}
	return fail
}

// interleave lays eight matrices side by side for cholBatch (see
// interleaveGo); kernel_amd64.go installs the AVX-512 version.
var interleave = interleaveGo

// interleaveGo copies the upper triangle (i ≤ c) of the eight n×n
// row-major matrices in src (lane l's at src[l·n²:]) into the batch
// layout of cholBatchGo: dst[(i·n+c)·batchLanes+l]. Entries below the
// diagonal are unspecified: a vector version may copy some.
func interleaveGo(dst, src []float64, n int) {
	const L = batchLanes
	dst = dst[:n*n*L]
	src = src[:n*n*L]
	for l := 0; l < L; l++ {
		m := src[l*n*n : (l+1)*n*n]
		for i := 0; i < n; i++ {
			for c := i; c < n; c++ {
				dst[(i*n+c)*L+l] = m[i*n+c]
			}
		}
	}
}
