package als

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// Run with e.g.
//
//	go test ./als -run '^$' -bench 'Syrk|GatherApply|CholSolve|NormalEq' -benchtime 1s
//
// Sub-benchmarks are named <path>/k=<k>, path being a kernel set (go, avx2,
// avx512; those the CPU lacks are skipped) or, for CholSolve, the textbook
// reference cholSolveRef ("ref") and gonum's mat.Cholesky ("gonum-mat")
// and lapack64.Potrf+Potrs ("gonum-lapack").

// benchKernels runs f under every kernel set this CPU has.
func benchKernels(b *testing.B, f func(b *testing.B)) {
	for _, name := range allKernels {
		b.Run(name, func(b *testing.B) {
			prev := kernelName
			if !setKernel(name) {
				b.Skipf("kernel path %q not available (have %v)", name, kernelPaths())
			}
			defer setKernel(prev)
			f(b)
		})
	}
}

func reportGFLOPS(b *testing.B, flopsPerOp float64) {
	b.ReportMetric(flopsPerOp*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkSyrk is one panelRows-row panel through syrkTiles: the useful
// work is the upper triangle, n·k(k+1)/2 multiply-adds.
func BenchmarkSyrk(b *testing.B) {
	benchKernels(b, func(b *testing.B) {
		for _, k := range []int{16, 64, 128} {
			b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 1))
				kp := roundUp(k, gramPad)
				n := panelRows
				x := panel(rng, n, k, kp)
				c := make([]float64, kp*kp)
				b.ResetTimer()
				for range b.N {
					syrkTiles(c, x, x, n, kp)
				}
				reportGFLOPS(b, float64(n*k*(k+1)))
			})
		}
	})
}

// gatherBenchData is a 20000×k factor matrix and 128 random rows of it.
func gatherBenchData(k int) (other []float32, cols []int32, w, v []float32) {
	rng := rand.New(rand.NewPCG(2, uint64(k)))
	const nrows, n = 20000, 128
	other = make([]float32, nrows*k)
	for i := range other {
		other[i] = float32(rng.NormFloat64() * 0.1)
	}
	cols = make([]int32, n)
	w = make([]float32, n)
	v = make([]float32, n)
	for j := range cols {
		cols[j] = int32(rng.IntN(nrows))
		w[j] = 1 + float32(rng.IntN(5))
		v[j] = float32(1 + rng.IntN(5))
	}
	return other, cols, w, v
}

// BenchmarkGatherApply is one conjugate-gradient product over 128 ratings
// (4·n·k flops).
func BenchmarkGatherApply(b *testing.B) {
	benchKernels(b, func(b *testing.B) {
		for _, k := range []int{16, 64, 128} {
			b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
				other, cols, w, _ := gatherBenchData(k)
				p := make([]float32, k)
				q := make([]float32, k)
				for i := range p {
					p[i] = 0.01 * float32(i%7)
				}
				b.ResetTimer()
				for range b.N {
					gatherApply(q, p, other, k, cols, w)
				}
				reportGFLOPS(b, float64(4*len(cols)*k))
			})
		}
	})
}

var cholBenchKs = []int{16, 32, 64, 128, 256}

// BenchmarkCholSolve factors and solves one k×k system, ours (per kernel
// set) against gonum's two entry points. Each op includes copying the
// matrix and right-hand side in, since all solvers overwrite them.
func BenchmarkCholSolve(b *testing.B) {
	benchKernels(b, func(b *testing.B) {
		for _, k := range cholBenchKs {
			b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
				a0, b0 := cholBenchData(k)
				a := make([]float64, k*k)
				x := make([]float64, k)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					copy(a, a0)
					copy(x, b0)
					if err := cholSolve(a, k, x); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
	b.Run("ref", func(b *testing.B) {
		for _, k := range cholBenchKs {
			b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
				a0, b0 := cholBenchData(k)
				a := make([]float64, k*k)
				x := make([]float64, k)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					copy(a, a0)
					copy(x, b0)
					if err := cholSolveRef(a, k, x); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
	b.Run("gonum-mat", func(b *testing.B) {
		for _, k := range cholBenchKs {
			b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
				a0, b0 := cholBenchData(k)
				a := mat.NewSymDense(k, make([]float64, k*k))
				rhs := mat.NewVecDense(k, make([]float64, k))
				var ch mat.Cholesky
				var x mat.VecDense
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					copy(a.RawSymmetric().Data, a0)
					copy(rhs.RawVector().Data, b0)
					if !ch.Factorize(a) {
						b.Fatal("not positive definite")
					}
					if err := ch.SolveVecTo(&x, rhs); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
	b.Run("gonum-lapack", func(b *testing.B) {
		for _, k := range cholBenchKs {
			b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
				a0, b0 := cholBenchData(k)
				a := blas64.Symmetric{N: k, Stride: k, Uplo: blas.Lower, Data: make([]float64, k*k)}
				x := blas64.General{Rows: k, Cols: 1, Stride: 1, Data: make([]float64, k)}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					copy(a.Data, a0)
					copy(x.Data, b0)
					t, ok := lapack64.Potrf(a)
					if !ok {
						b.Fatal("not positive definite")
					}
					lapack64.Potrs(t, x)
				}
			})
		}
	})
}

func cholBenchData(k int) (a, b []float64) {
	rng := rand.New(rand.NewPCG(3, uint64(k)))
	a = randSPD(rng, k)
	b = make([]float64, k)
	for i := range b {
		b[i] = rng.NormFloat64()
	}
	return a, b
}

// BenchmarkNormalEq is one explicit-feedback row solve: 128 ratings
// gathered from a 20000×k factor matrix into the normal equations, the
// full matrix written out, and the Cholesky solve. GFLOP/s counts the
// Gram matrix's upper triangle (n·k(k+1)), the right-hand side (2·n·k) and
// the factorisation and solves (k³/3 + 2k²).
func BenchmarkNormalEq(b *testing.B) {
	benchKernels(b, func(b *testing.B) {
		for _, k := range []int{16, 64, 128} {
			b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
				other, cols, _, v := gatherBenchData(k)
				e := newNormalEq(k)
				a := make([]float64, k*k)
				x := make([]float64, k)
				diag := 0.05 * float64(len(cols))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					e.reset()
					e.add(other, cols, nil, v)
					e.matrix(a, nil, diag)
					copy(x, e.b)
					if err := cholSolve(a, k, x); err != nil {
						b.Fatal(err)
					}
				}
				n, kf := float64(len(cols)), float64(k)
				reportGFLOPS(b, n*kf*(kf+1)+2*n*kf+kf*kf*kf/3+2*kf*kf)
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/row")
			})
		}
	})
}
