//go:build linux

package als

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// This file is linux-only because TestScoreGuardPages uses the guard-page
// helper of chol_guard_test.go.
//
// Run the benchmarks with e.g.
//
//	go test ./als -run '^$' -bench ScoreBlock -benchtime 1s
//
// Sub-benchmarks are named <path>/k=<k>, path being a kernel set (go, avx2,
// avx512; those the CPU lacks are skipped).

// benchScoreKernels runs f under every scoring kernel set this CPU has.
func benchScoreKernels(b *testing.B, f func(b *testing.B)) {
	for _, name := range allKernels {
		b.Run(name, func(b *testing.B) {
			prev := scoreKernelName
			if !setScoreKernel(name) {
				b.Skipf("kernel path %q not available (have %v)", name, kernelPaths())
			}
			defer setScoreKernel(prev)
			f(b)
		})
	}
}

// BenchmarkScoreBlock scores a block of 256 users against 4096 packed
// items (scores: 4 MiB, written once per op), 2·m·n·k flops.
func BenchmarkScoreBlock(b *testing.B) {
	benchScoreKernels(b, func(b *testing.B) {
		for _, k := range []int{10, 32, 64} {
			b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) { benchScoreBlock(b, k) })
		}
	})
}

// benchScoreBlock scores 256 users against 4096 packed items at rank k.
func benchScoreBlock(b *testing.B, k int) {
	rng := rand.New(rand.NewPCG(41, uint64(k)))
	const m, n = 256, 4096
	x := randFactors(rng, m*k)
	packed := PackItems(nil, randFactors(rng, n*k), k, 0, n)
	dst := make([]float32, m*n)
	b.ResetTimer()
	for range b.N {
		ScoreBlock(dst, n, x, k, 0, m, packed, n)
	}
	reportGFLOPS(b, 2*float64(m*n*k))
}

// BenchmarkScoreBlockL1 is the shape batch recommendation uses: 16 users
// against 1024 items, the scores (64 KiB) staying in L1/L2.
func BenchmarkScoreBlockL1(b *testing.B) {
	benchScoreKernels(b, func(b *testing.B) {
		for _, k := range []int{10, 32, 64} {
			b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(42, uint64(k)))
				const m, n = 16, 1024
				x := randFactors(rng, m*k)
				packed := PackItems(nil, randFactors(rng, n*k), k, 0, n)
				dst := make([]float32, m*n)
				b.ResetTimer()
				for range b.N {
					ScoreBlock(dst, n, x, k, 0, m, packed, n)
				}
				reportGFLOPS(b, 2*float64(m*n*k))
			})
		}
	})
}

// BenchmarkScoreBlockAbove is BenchmarkScoreBlockL1 with thresholds, as
// batch recommendation calls it (a few scores above them).
func BenchmarkScoreBlockAbove(b *testing.B) {
	benchScoreKernels(b, func(b *testing.B) {
		for _, k := range []int{10, 32, 64} {
			b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(42, uint64(k)))
				const m, n = 16, 1024
				x := randFactors(rng, m*k)
				packed := PackItems(nil, randFactors(rng, n*k), k, 0, n)
				dst := make([]float32, m*n)
				thr := make([]float32, m)
				for i := range thr {
					thr[i] = 3 * float32(k)
				}
				hits := make([]uint64, m*HitWords(n))
				b.ResetTimer()
				for range b.N {
					ScoreBlockAbove(dst, n, x, k, 0, m, packed, n, thr, hits)
				}
				reportGFLOPS(b, 2*float64(m*n*k))
			})
		}
	})
}

// TestScoreGuardPages places every slice of ScoreBlockAbove
// against an inaccessible page, before its start or after its end, so that
// a read or write outside it crashes the test binary.
func TestScoreGuardPages(t *testing.T) {
	forEachScoreKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(45, 46))
		for _, atEnd := range []bool{false, true} {
			for _, k := range []int{1, 3, 10, 17, 64} {
				for _, m := range []int{1, 3, 4, 5, 9} {
					for _, n := range []int{1, 15, 16, 17, 63, 64, 65, 100} {
						ldd := n + 3
						x, f1 := guarded[float32](t, m*k, atEnd)
						copy(x, randFactors(rng, m*k))
						y := randFactors(rng, n*k)
						packed, f2 := guarded[float32](t, PackedLen(k, n), atEnd)
						PackItems(packed[:0], y, k, 0, n)
						dst, f3 := guarded[float32](t, (m-1)*ldd+n, atEnd)
						thr, f4 := guarded[float32](t, m, atEnd)
						hits, f5 := guarded[uint64](t, m*HitWords(n), atEnd)
						want := make([]float32, len(dst))
						scoreBlockGo(want, ldd, x, k, m, packed, n, nil, nil)
						ScoreBlock(dst, ldd, x, k, 0, m, packed, n)
						checkScores(t, "guarded", dst, want, ldd, x, k, m, y, n)
						plain := append([]float32(nil), dst...)
						for i := range thr {
							thr[i] = plain[i*ldd+rng.IntN(n)]
						}
						ScoreBlockAbove(dst, ldd, x, k, 0, m, packed, n, thr, hits)
						checkHits(t, "guarded", plain, ldd, m, n, thr, hits)
						f1()
						f2()
						f3()
						f4()
						f5()
					}
				}
			}
		}
	})
}
