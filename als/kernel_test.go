package als

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// allKernels are the kernel sets the package knows; forEachKernel runs a
// test on every one of them this CPU has and skips, by name, the others.
var allKernels = []string{"go", "avx2", "avx512"}

func forEachKernel(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, name := range allKernels {
		t.Run(name, func(t *testing.T) {
			prev := kernelName
			if !setKernel(name) {
				t.Skipf("kernel path %q not available on this CPU/architecture (have %v)", name, kernelPaths())
			}
			defer setKernel(prev)
			f(t)
		})
	}
}

var testKs = func() []int {
	var ks []int
	for k := 1; k <= 40; k++ {
		ks = append(ks, k)
	}
	return append(ks, 61, 64, 100, 128, 255, 256)
}()

func roundUp(k, m int) int { return (k + m - 1) / m * m }

// panel returns an n×kp panel (exact length) with random values in the
// first k columns and zero padding.
func panel(rng *rand.Rand, n, k, kp int) []float64 {
	x := make([]float64, n*kp)
	for r := 0; r < n; r++ {
		for i := 0; i < k; i++ {
			x[r*kp+i] = rng.NormFloat64()
		}
	}
	return x
}

func TestSyrkTiles(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, k := range testKs {
			// kp is gramPad-aligned as normalEq makes it; a few other
			// multiples of 8 exercise the fallback and the AVX2 tiles.
			kps := []int{roundUp(k, gramPad)}
			if k%8 == 0 && k%16 != 0 {
				kps = append(kps, k)
			}
			for _, kp := range kps {
				for _, n := range []int{0, 1, 7, 32, 33} {
					for _, mode := range []string{"alias", "unweighted", "weighted"} {
						x := panel(rng, n, k, kp)
						var wx []float64
						switch mode {
						case "alias":
							wx = x
						case "unweighted":
							wx = append([]float64(nil), x...)
						default:
							wx = make([]float64, len(x))
							for r := 0; r < n; r++ {
								w := rng.Float64() * 3
								for i := 0; i < k; i++ {
									wx[r*kp+i] = w * x[r*kp+i]
								}
							}
						}
						c := make([]float64, kp*kp)
						for i := range c {
							c[i] = rng.NormFloat64()
						}
						want := append([]float64(nil), c...)
						syrkTilesGo(want, x, wx, n, kp)
						syrkTiles(c, x, wx, n, kp)
						for i := 0; i < kp; i++ {
							for j := i; j < kp; j++ {
								scale := math.Abs(c[i*kp+j] - want[i*kp+j])
								mag := 1.0
								for r := 0; r < n; r++ {
									mag += math.Abs(x[r*kp+i] * wx[r*kp+j])
								}
								if scale > 1e-12*mag {
									t.Fatalf("k=%d kp=%d n=%d %s: c[%d][%d] = %g, want %g", k, kp, n, mode, i, j, c[i*kp+j], want[i*kp+j])
								}
								if (i >= k || j >= k) && c[i*kp+j] != want[i*kp+j] {
									t.Fatalf("k=%d kp=%d n=%d %s: padding c[%d][%d] changed to %g", k, kp, n, mode, i, j, c[i*kp+j])
								}
							}
						}
					}
				}
			}
		}
	})
}

func TestSyrkTilesShortSlicePanics(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		kp, n := 32, 4
		x := make([]float64, n*kp)
		for i := range x {
			x[i] = 1
		}
		c := make([]float64, kp*kp-1)
		defer func() {
			if recover() == nil {
				t.Fatal("short c did not panic")
			}
		}()
		syrkTiles(c, x, x, n, kp)
	})
}

func TestGatherApply(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		const nrows = 50
		for _, k := range testKs {
			other := make([]float32, nrows*k)
			for i := range other {
				other[i] = float32(rng.NormFloat64())
			}
			p := make([]float32, k)
			for i := range p {
				p[i] = float32(rng.NormFloat64())
			}
			for _, n := range []int{0, 1, 7, 32, 33, 100, 9000} {
				if n == 9000 && k%16 != 1 {
					continue // several assembly calls (gatherChunk), a few k
				}
				cols := make([]int32, n)
				for j := range cols {
					cols[j] = int32(rng.IntN(nrows))
				}
				if n > 0 {
					cols[n-1] = nrows - 1 // the last row: reads must stop at the end of other
				}
				for _, weighted := range []bool{false, true} {
					var w []float32
					if weighted {
						w = make([]float32, n)
						for j := range w {
							w[j] = float32(rng.Float64() * 4)
						}
					}
					q := make([]float32, k)
					for i := range q {
						q[i] = float32(rng.NormFloat64())
					}
					want := append([]float32(nil), q...)
					gatherApplyGo(want, p, other, k, cols, w)
					gatherApply(q, p, other, k, cols, w)
					// The magnitude of each output: |q| + Σ_j |w_j| |y_j|·|p| |y_ji|.
					for i := 0; i < k; i++ {
						mag := math.Abs(float64(want[i])) + 1
						for j, c := range cols {
							y := other[int(c)*k : int(c)*k+k]
							var d float64
							for l := range y {
								d += math.Abs(float64(y[l] * p[l]))
							}
							wj := 1.0
							if w != nil {
								wj = float64(w[j])
							}
							mag += wj * d * math.Abs(float64(y[i]))
						}
						if diff := math.Abs(float64(q[i] - want[i])); diff > 1e-4*mag {
							t.Fatalf("k=%d n=%d weighted=%v: q[%d] = %g, want %g (magnitude %g)", k, n, weighted, i, q[i], want[i], mag)
						}
					}
				}
			}
		}
	})
}

func TestGatherApplyBadColumnPanics(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		k := 20
		other := make([]float32, 3*k+5) // 3 whole rows
		p := make([]float32, k)
		q := make([]float32, k)
		for _, bad := range []int32{3, -1} {
			func() {
				defer func() {
					if recover() == nil {
						t.Fatalf("column %d of a 3-row matrix did not panic", bad)
					}
				}()
				gatherApply(q, p, other, k, []int32{0, 2, bad}, nil)
			}()
		}
		// A bad column in a later assembly call (gatherChunk).
		cols := make([]int32, 5000)
		cols[4500] = 7
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("column 7 at position 4500 did not panic")
				}
			}()
			gatherApply(q, p, other, k, cols, nil)
		}()
	})
}

// randSPD returns a random symmetric positive definite k×k matrix, a
// Gram matrix plus a ridge as the trainer builds them.
func randSPD(rng *rand.Rand, k int) []float64 {
	n := k + 8
	y := make([]float64, n*k)
	for i := range y {
		y[i] = rng.NormFloat64()
	}
	a := make([]float64, k*k)
	for r := 0; r < n; r++ {
		yr := y[r*k : r*k+k]
		for i := 0; i < k; i++ {
			for j := 0; j <= i; j++ {
				a[i*k+j] += yr[i] * yr[j]
			}
		}
	}
	for i := 0; i < k; i++ {
		a[i*k+i] += 0.1 * float64(n)
		for j := 0; j < i; j++ {
			a[j*k+i] = a[i*k+j]
		}
	}
	return a
}

func TestCholSolve(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for _, k := range append([]int{0, 300}, testKs...) {
			a := randSPD(rng, k)
			b := make([]float64, k)
			for i := range b {
				b[i] = rng.NormFloat64()
			}
			// Ours sees garbage above the diagonal: only the lower
			// triangle may be read.
			got := append([]float64(nil), a...)
			for i := 0; i < k; i++ {
				for j := i + 1; j < k; j++ {
					got[i*k+j] = math.NaN()
				}
			}
			x := append([]float64(nil), b...)
			if err := cholSolve(got, k, x); err != nil {
				t.Fatalf("k=%d: %v", k, err)
			}
			ref := append([]float64(nil), a...)
			xr := append([]float64(nil), b...)
			if err := cholSolveRef(ref, k, xr); err != nil {
				t.Fatalf("k=%d: reference: %v", k, err)
			}
			var xg []float64
			if k > 0 {
				var ch mat.Cholesky
				if !ch.Factorize(mat.NewSymDense(k, append([]float64(nil), a...))) {
					t.Fatalf("k=%d: gonum says not positive definite", k)
				}
				var v mat.VecDense
				if err := ch.SolveVecTo(&v, mat.NewVecDense(k, append([]float64(nil), b...))); err != nil {
					t.Fatalf("k=%d: gonum: %v", k, err)
				}
				xg = v.RawVector().Data
			}
			norm := 0.0
			for _, v := range xr {
				norm = math.Max(norm, math.Abs(v))
			}
			for i := range x {
				if math.Abs(x[i]-xr[i]) > 1e-10*(norm+1) {
					t.Fatalf("k=%d: x[%d] = %.17g, reference %.17g", k, i, x[i], xr[i])
				}
				if math.Abs(x[i]-xg[i]) > 1e-10*(norm+1) {
					t.Fatalf("k=%d: x[%d] = %.17g, gonum %.17g", k, i, x[i], xg[i])
				}
			}
			// Residual |a x − b| relative to |a| |x|.
			for i := 0; i < k; i++ {
				var s, m float64
				for j := 0; j < k; j++ {
					s += a[i*k+j] * x[j]
					m += math.Abs(a[i*k+j] * x[j])
				}
				if math.Abs(s-b[i]) > 1e-12*(m+math.Abs(b[i])) {
					t.Fatalf("k=%d: residual %g in row %d (scale %g)", k, s-b[i], i, m)
				}
			}
		}
	})
}

func TestCholSolveNotPosDef(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		for _, k := range []int{1, 2, 5, 16, 17, 33, 64, 100, 256} {
			for _, kind := range []string{"indefinite", "negative", "nan", "inf", "singular"} {
				a := randSPD(rng, k)
				switch kind {
				case "indefinite":
					// A large negative eigenvalue along a random direction
					// deep in the matrix: the failing pivot is late.
					v := make([]float64, k)
					var vv float64
					for i := range v {
						v[i] = rng.NormFloat64()
						vv += v[i] * v[i]
					}
					var tr float64
					for i := 0; i < k; i++ {
						tr += a[i*k+i]
					}
					s := 2 * tr / vv
					for i := 0; i < k; i++ {
						for j := 0; j < k; j++ {
							a[i*k+j] -= s * v[i] * v[j]
						}
					}
				case "negative":
					a[(k-1)*k+k-1] = -1
				case "nan":
					a[(k-1)*k] = math.NaN()
				case "inf":
					a[(k/2)*k+k/2] = math.Inf(1)
				case "singular":
					for i := 0; i < k; i++ {
						for j := 0; j < k; j++ {
							a[i*k+j] = 1
						}
					}
					if k == 1 {
						a[0] = 0
					}
				}
				ref := append([]float64(nil), a...)
				b := make([]float64, k)
				errRef := cholSolveRef(ref, k, append([]float64(nil), b...))
				err := cholSolve(a, k, b)
				if !errors.Is(err, errNotPosDef) {
					t.Fatalf("k=%d %s: err = %v, want errNotPosDef (reference: %v)", k, kind, err, errRef)
				}
			}
		}
	})
}

func TestCholUpdate(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 10))
		for iter := 0; iter < 3000; iter++ {
			k := 2 + rng.IntN(80)
			j1 := 1 + rng.IntN(k-1)
			j0 := rng.IntN(j1)
			a := make([]float64, k*k)
			for i := range a {
				a[i] = rng.NormFloat64()
			}
			want := append([]float64(nil), a...)
			cholUpdateGo(want, k, j0, j1)
			cholUpdate(a, k, j0, j1)
			for i := j1; i < k; i++ {
				for c := i; c < k; c++ {
					g, w := a[i*k+c], want[i*k+c]
					if math.Abs(g-w) > 1e-12*(1+float64(j1-j0)*4) {
						t.Fatalf("k=%d j0=%d j1=%d: a[%d][%d] = %g, want %g", k, j0, j1, i, c, g, w)
					}
				}
			}
			// The panel and the rows above it are only read.
			for i := 0; i < j1*k; i++ {
				if a[i] != want[i] {
					t.Fatalf("k=%d j0=%d j1=%d: a[%d] above the trailing matrix changed", k, j0, j1, i)
				}
			}
		}
	})
}

// TestNormalEq checks add + matrix against a direct float64 sum.
func TestNormalEq(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		for _, k := range []int{1, 7, 16, 33, 64, 100} {
			const nrows = 40
			other := make([]float32, nrows*k)
			for i := range other {
				other[i] = float32(rng.NormFloat64())
			}
			e := newNormalEq(k)
			for _, n := range []int{0, 1, 31, 32, 33, 70} {
				for _, weighted := range []bool{false, true} {
					cols := make([]int32, n)
					v := make([]float32, n)
					var w []float32
					if weighted {
						w = make([]float32, n)
					}
					for j := range cols {
						cols[j] = int32(rng.IntN(nrows))
						v[j] = float32(rng.NormFloat64())
						if w != nil {
							w[j] = float32(rng.Float64() * 5)
						}
					}
					e.reset()
					e.add(other, cols[:n/2], slicePrefix(w, n/2), v[:n/2])
					e.add(other, cols[n/2:], sliceSuffix(w, n/2), v[n/2:])
					got := make([]float64, k*k)
					base := make([]float64, k*k)
					for i := range base {
						base[i] = float64(i%5) - 2
					}
					e.matrix(got, base, 0.5)
					for i := 0; i < k; i++ {
						var b float64
						for j, c := range cols {
							b += float64(v[j]) * float64(other[int(c)*k+i])
						}
						if math.Abs(e.b[i]-b) > 1e-9*(1+math.Abs(b)) {
							t.Fatalf("k=%d n=%d: b[%d] = %g, want %g", k, n, i, e.b[i], b)
						}
						for l := 0; l < k; l++ {
							var s float64
							for j, c := range cols {
								wj := 1.0
								if w != nil {
									wj = float64(w[j])
								}
								s += wj * float64(other[int(c)*k+i]) * float64(other[int(c)*k+l])
							}
							if i <= l {
								s += base[i*k+l]
							} else {
								s += base[l*k+i]
							}
							if i == l {
								s += 0.5
							}
							if math.Abs(got[i*k+l]-s) > 1e-9*(1+math.Abs(s)) {
								t.Fatalf("k=%d n=%d weighted=%v: A[%d][%d] = %g, want %g", k, n, weighted, i, l, got[i*k+l], s)
							}
						}
					}
				}
			}
		}
	})
}

func slicePrefix(w []float32, n int) []float32 {
	if w == nil {
		return nil
	}
	return w[:n]
}

func sliceSuffix(w []float32, n int) []float32 {
	if w == nil {
		return nil
	}
	return w[n:]
}

// TestKernelEnv runs the test binary again with COFACTOR_KERNEL set and
// checks which path init chose.
func TestKernelEnv(t *testing.T) {
	if os.Getenv("COFACTOR_KERNEL_CHILD") != "" {
		fmt.Printf("kernel=%s\n", kernelName)
		return
	}
	if testing.Short() {
		t.Skip("spawns the test binary")
	}
	paths := kernelPaths()
	best := paths[len(paths)-1]
	for _, tc := range []struct{ env, want string }{
		{"", best},
		{"go", "go"},
		{"avx2", pick(paths, "avx2", best)},
		{"avx512", pick(paths, "avx512", best)},
		{"bogus", best},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKernelEnv$", "-test.count=1")
		cmd.Env = append(os.Environ(), "COFACTOR_KERNEL_CHILD=1", kernelEnv+"="+tc.env)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s=%s: %v\n%s", kernelEnv, tc.env, err, out)
		}
		if !strings.Contains(string(out), "kernel="+tc.want+"\n") {
			t.Errorf("%s=%q: want kernel %s, child said:\n%s", kernelEnv, tc.env, tc.want, out)
		}
	}
}

// pick is name when the CPU has it, else fallback.
func pick(paths []string, name, fallback string) string {
	for _, p := range paths {
		if p == name {
			return name
		}
	}
	return fallback
}

func TestGatherRows(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(13, 14))
		const nrows = 30
		for _, k := range testKs {
			kp := roundUp(k, gramPad)
			other := make([]float32, nrows*k)
			for i := range other {
				other[i] = float32(rng.NormFloat64())
			}
			for _, n := range []int{1, 7, 32} {
				for _, weighted := range []bool{false, true} {
					// cols, v and w run past n, as in normalEq.add.
					cols := make([]int32, n+5)
					v := make([]float32, n+5)
					var w []float32
					if weighted {
						w = make([]float32, n+5)
					}
					for j := range cols {
						cols[j] = int32(rng.IntN(nrows))
						v[j] = float32(rng.NormFloat64())
						if w != nil {
							w[j] = float32(rng.Float64())
						}
					}
					cols[n-1] = nrows - 1
					x, wx := make([]float64, n*kp), make([]float64, n*kp)
					b := make([]float64, kp)
					for i := range b[:k] {
						b[i] = rng.NormFloat64()
					}
					x0, wx0, b0 := append([]float64(nil), x...), append([]float64(nil), wx...), append([]float64(nil), b...)
					gatherRowsGo(x0, wx0, b0, kp, other, k, cols, n, w, v)
					gatherRows(x, wx, b, kp, other, k, cols, n, w, v)
					for i := range x {
						if x[i] != x0[i] || wx[i] != wx0[i] {
							t.Fatalf("k=%d n=%d weighted=%v: panel element %d: x %g/%g wx %g/%g", k, n, weighted, i, x[i], x0[i], wx[i], wx0[i])
						}
					}
					for i := range b {
						if math.Abs(b[i]-b0[i]) > 1e-12*(1+math.Abs(b0[i])) || (i >= k && b[i] != 0) {
							t.Fatalf("k=%d n=%d: b[%d] = %g, want %g", k, n, i, b[i], b0[i])
						}
					}
				}
			}
		}
	})
}

func TestGatherRowsBadColumnPanics(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		k, kp := 20, 32
		other := make([]float32, 3*k+5)
		x := make([]float64, 4*kp)
		b := make([]float64, kp)
		v := make([]float32, 4)
		for _, bad := range []int32{3, -1} {
			func() {
				defer func() {
					if recover() == nil {
						t.Fatalf("column %d of a 3-row matrix did not panic", bad)
					}
				}()
				gatherRows(x, x, b, kp, other, k, []int32{0, 2, bad, 1}, 4, nil, v)
			}()
		}
	})
}

func TestCholPanel(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(15, 16))
		for iter := 0; iter < 500; iter++ {
			k := 1 + rng.IntN(70)
			j0 := rng.IntN(k)
			j1 := j0 + 1 + rng.IntN(min(20, k-j0))
			// An SPD matrix mirrored into the upper triangle, its rows
			// before j0 factored: the panel then sees what cholSolve gives it.
			a := randSPD(rng, k)
			if j0 > 0 && cholPanelGo(a, k, 0, j0) >= 0 {
				t.Fatal("SPD matrix failed")
			}
			cholUpdateGo(a, k, 0, j0)
			if rng.IntN(4) == 0 {
				// Make a later pivot fail.
				f := j0 + rng.IntN(j1-j0)
				a[f*k+f] = -a[f*k+f]
			}
			want := append([]float64(nil), a...)
			fw := cholPanelGo(want, k, j0, j1)
			f := cholPanel(a, k, j0, j1)
			if f != fw {
				t.Fatalf("k=%d j0=%d j1=%d: failed row %d, want %d", k, j0, j1, f, fw)
			}
			if f >= 0 {
				continue
			}
			for j := j0; j < j1; j++ {
				for c := j; c < k; c++ {
					if g, w := a[j*k+c], want[j*k+c]; math.Abs(g-w) > 1e-12*(1+math.Abs(w)) {
						t.Fatalf("k=%d j0=%d j1=%d: U[%d][%d] = %g, want %g", k, j0, j1, j, c, g, w)
					}
				}
			}
		}
	})
}

func TestCholSolveU(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(17, 18))
		for _, k := range testKs {
			// A well-conditioned U with NaN below the diagonal, which the
			// solves must never let into the result.
			a := make([]float64, k*k)
			for i := 0; i < k; i++ {
				for j := 0; j < k; j++ {
					switch {
					case j < i:
						a[i*k+j] = math.NaN()
					case j == i:
						a[i*k+j] = 1 + rng.Float64()
					default:
						a[i*k+j] = rng.NormFloat64() / float64(k)
					}
				}
			}
			b := make([]float64, k)
			for i := range b {
				b[i] = rng.NormFloat64()
			}
			want := append([]float64(nil), b...)
			cholSolveUGo(a, k, want)
			cholSolveU(a, k, b)
			for i := range b {
				if math.IsNaN(b[i]) || math.Abs(b[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
					t.Fatalf("k=%d: x[%d] = %g, want %g", k, i, b[i], want[i])
				}
			}
		}
	})
}

func TestCholMirror(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(19, 20))
		for _, k := range append([]int{0}, testKs...) {
			a := make([]float64, k*k)
			for i := range a {
				a[i] = rng.NormFloat64()
			}
			orig := append([]float64(nil), a...)
			cholMirror(a, k)
			for i := 0; i < k; i++ {
				for j := 0; j <= i; j++ {
					if a[j*k+i] != orig[i*k+j] {
						t.Fatalf("k=%d: a[%d][%d] = %g, want a[%d][%d] = %g", k, j, i, a[j*k+i], i, j, orig[i*k+j])
					}
				}
			}
		}
	})
}

func TestSymFill(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(23, 24))
		for _, k := range testKs {
			kp := roundUp(k, gramPad)
			// Only the upper triangles may be read: NaN below them.
			a := make([]float64, kp*kp)
			base := make([]float64, k*k)
			for i := range a {
				if i/kp > i%kp {
					a[i] = math.NaN()
				} else {
					a[i] = rng.NormFloat64()
				}
			}
			for i := range base {
				if i/k > i%k {
					base[i] = math.NaN()
				} else {
					base[i] = rng.NormFloat64()
				}
			}
			for _, b := range [][]float64{nil, base} {
				want := make([]float64, k*k)
				symFillGo(want, a, b, k, kp, 0.25)
				got := make([]float64, k*k)
				symFill(got, a, b, k, kp, 0.25)
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("k=%d base=%v: dst[%d][%d] = %g, want %g", k, b != nil, i/k, i%k, got[i], want[i])
					}
				}
				for i := 0; i < k; i++ {
					for j := 0; j < k; j++ {
						if got[i*k+j] != got[j*k+i] || math.IsNaN(got[i*k+j]) {
							t.Fatalf("k=%d: dst not symmetric at %d,%d", k, i, j)
						}
					}
				}
			}
		}
	})
}

// TestCholKernelsRandomSizes checks cholSolveU, cholMirror and symFill of
// every kernel set against the Go versions at random k up to 256 (most of
// them not multiples of the 4- and 8-wide blocks of the vector kernels)
// and, for symFill, random row strides kp ≥ k. The triangles the kernels
// must not read hold NaN.
func TestCholKernelsRandomSizes(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(25, 26))
		for iter := 0; iter < 120; iter++ {
			k := 1 + rng.IntN(256)

			u := make([]float64, k*k)
			for i := 0; i < k; i++ {
				for j := 0; j < k; j++ {
					switch {
					case j < i:
						u[i*k+j] = math.NaN()
					case j == i:
						u[i*k+j] = 1 + rng.Float64()
					default:
						u[i*k+j] = rng.NormFloat64() / float64(k)
					}
				}
			}
			b := make([]float64, k)
			for i := range b {
				b[i] = rng.NormFloat64()
			}
			want := append([]float64(nil), b...)
			cholSolveUGo(u, k, want)
			cholSolveU(u, k, b)
			for i := range b {
				if math.IsNaN(b[i]) || math.Abs(b[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
					t.Fatalf("cholSolveU k=%d: x[%d] = %g, want %g", k, i, b[i], want[i])
				}
			}

			m := make([]float64, k*k)
			for i := range m {
				m[i] = rng.NormFloat64()
			}
			orig := append([]float64(nil), m...)
			cholMirror(m, k)
			for i := 0; i < k; i++ {
				for j := 0; j <= i; j++ {
					if m[j*k+i] != orig[i*k+j] {
						t.Fatalf("cholMirror k=%d: a[%d][%d] = %g, want %g", k, j, i, m[j*k+i], orig[i*k+j])
					}
				}
			}

			kp := []int{k, k + rng.IntN(9), roundUp(k, gramPad)}[rng.IntN(3)]
			a := make([]float64, (k-1)*kp+k) // exact: the last row ends at column k
			for i := range a {
				if i/kp > i%kp {
					a[i] = math.NaN()
				} else {
					a[i] = rng.NormFloat64()
				}
			}
			var base []float64
			if rng.IntN(2) == 0 {
				base = make([]float64, k*k)
				for i := range base {
					if i/k > i%k {
						base[i] = math.NaN()
					} else {
						base[i] = rng.NormFloat64()
					}
				}
			}
			diag := rng.NormFloat64()
			wantS := make([]float64, k*k)
			symFillGo(wantS, a, base, k, kp, diag)
			got := make([]float64, k*k)
			symFill(got, a, base, k, kp, diag)
			for i := range got {
				if got[i] != wantS[i] {
					t.Fatalf("symFill k=%d kp=%d base=%v: dst[%d][%d] = %g, want %g", k, kp, base != nil, i/k, i%k, got[i], wantS[i])
				}
			}
		}
	})
}
