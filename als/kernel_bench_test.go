package als

import (
	"fmt"
	"math/rand/v2"
	"slices"
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

// BenchmarkSyrk32 is one panelRows-row float32 panel through syrk32 (the
// normal-equation kernel of the row solves), GFLOP/s counting the useful
// upper triangle, n·k(k+1) flops.
func BenchmarkSyrk32(b *testing.B) {
	benchKernels(b, func(b *testing.B) {
		for _, k := range []int{16, 64, 128} {
			b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) { benchSyrk32(b, k, panelRows) })
		}
		b.Run(fmt.Sprintf("k=64/n=%d", gramChunk), func(b *testing.B) { benchSyrk32(b, 64, gramChunk) })
	})
}

func benchSyrk32(b *testing.B, k, n int) {
	rng := rand.New(rand.NewPCG(1, 1))
	kp := panelStride(k)
	x := randPanel(rng, n, k, kp)
	c := make([]float64, kp*kp)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		syrk32(c, x, x, n, kp, false)
	}
	reportGFLOPS(b, float64(n*k*(k+1)))
}

// BenchmarkGramVsScore measures, in one run, the normal-equation kernel
// (syrk32, useful flops only) beside the batch-scoring kernel ScoreBlock
// (a plain float32 matrix product, 2·m·n·k flops) at k = 64: the scoring
// kernel is the in-repository yardstick of a single-core float32 GEMM.
func BenchmarkGramVsScore(b *testing.B) {
	const k = 64
	b.Run("syrk32/k=64", func(b *testing.B) { benchSyrk32(b, k, gramChunk) })
	b.Run("scoreblock/k=64", func(b *testing.B) { benchScoreBlock(b, k) })
}

// BenchmarkRowSolve is one row solve as UpdateBlock runs it: 128 ratings
// gathered from a 20000×k factor matrix, then the normal equations and
// Cholesky, or 3 conjugate-gradient steps, and the explicit training-loss
// pass. 0 allocations.
func BenchmarkRowSolve(b *testing.B) {
	benchKernels(b, func(b *testing.B) {
		for _, model := range []string{"explicit", "implicit"} {
			for _, solver := range []SolverKind{SolverCholesky, SolverCG} {
				for _, k := range []int{16, 64, 128} {
					b.Run(fmt.Sprintf("%s/%s/k=%d", model, solver, k), func(b *testing.B) {
						other, cols, _, v := gatherBenchData(k)
						cfg := DefaultConfig()
						cfg.Rank, cfg.Lambda, cfg.Solver, cfg.Implicit = k, 0.05, solver, model == "implicit"
						s, err := NewSolver(cfg)
						if err != nil {
							b.Fatal(err)
						}
						var base []float64
						var base32 []float32
						if cfg.Implicit {
							y := other[:2000*k]
							yty := make([]float64, k*k)
							Gram(y, k, 1, yty)
							base = s.implicitBase(yty)
							kp := panelStride(k)
							base32 = make([]float32, k*kp)
							for i := 0; i < k; i++ {
								for j := 0; j < k; j++ {
									base32[i*kp+j] = float32(base[i*k+j])
								}
							}
						}
						rows := Rows{Ptr: []int64{0, int64(len(cols))}, Col: cols, Val: v}
						sc := newRowScratch(k)
						x := make([]float32, k)
						for i := range x {
							x[i] = 0.1
						}
						b.ReportAllocs()
						b.ResetTimer()
						for range b.N {
							if _, err := s.solveRow(sc, rows, 0, other, base, base32, x, !cfg.Implicit); err != nil {
								b.Fatal(err)
							}
						}
						b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/row")
					})
				}
			}
		}
	})
}

// BenchmarkGatherPanel gathers rows of 128 ratings (ascending random
// columns, as a CSR row has them) from a 138,493×k matrix (35 MB at
// k = 64: the user side of the 20M-shaped set, larger than the caches).
func BenchmarkGatherPanel(b *testing.B) {
	benchKernels(b, func(b *testing.B) {
		for _, k := range []int{16, 64} {
			b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(5, 6))
				const nrows, n, nsets = 138_493, 128, 1024
				other := make([]float32, nrows*k)
				for i := range other {
					other[i] = 1
				}
				cols := make([]int32, n*nsets)
				for s := 0; s < nsets; s++ {
					c := cols[s*n : (s+1)*n]
					for j := range c {
						c[j] = int32(rng.IntN(nrows))
					}
					slices.Sort(c)
				}
				kp := panelStride(k)
				g := make([]float32, n*kp)
				b.ResetTimer()
				for i := range b.N {
					s := i % nsets
					gatherPanel(g, nil, kp, other, k, cols[s*n:min((s+1)*n+prefetchAhead, len(cols))], n, nil)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/rating")
			})
		}
	})
}

// BenchmarkTransposePanel transposes a short row's panel (29 ratings at
// k = 64) for the dual path.
func BenchmarkTransposePanel(b *testing.B) {
	benchKernels(b, func(b *testing.B) {
		const n, kp = 29, 64
		np := roundUp(n, rowPad)
		g := randPanel(rand.New(rand.NewPCG(1, 1)), n, kp, kp)
		t := make([]float32, kp*np)
		b.ReportAllocs()
		for range b.N {
			transposePanel(t, g, n, np, kp)
		}
	})
}
