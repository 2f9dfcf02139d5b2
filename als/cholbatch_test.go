package als

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// batchOf lays the systems sys (n×n row-major each, at most batchLanes)
// and their right-hand sides rhs into a batch, padding missing lanes with
// the identity; the entries below the diagonal are garbage (never read).
func batchOf(rng *rand.Rand, sys, rhs [][]float64, n int) (a, b []float64) {
	const L = batchLanes
	a = make([]float64, n*n*L)
	b = make([]float64, n*L)
	for l := 0; l < L; l++ {
		for i := 0; i < n; i++ {
			for c := 0; c < n; c++ {
				v := rng.NormFloat64() * 1e3 // below the diagonal: unread
				switch {
				case l < len(sys) && c >= i:
					v = sys[l][i*n+c]
				case c == i:
					v = 1
				case c > i:
					v = 0
				}
				a[(i*n+c)*L+l] = v
			}
			if l < len(rhs) {
				b[i*L+l] = rhs[l][i]
			}
		}
	}
	return a, b
}

// randSystems returns count random SPD n×n systems and right-hand sides.
func randSystems(rng *rand.Rand, n, count int) (sys, rhs [][]float64) {
	for range count {
		sys = append(sys, randSPD(rng, n))
		r := make([]float64, n)
		for i := range r {
			r[i] = rng.NormFloat64()
		}
		rhs = append(rhs, r)
	}
	return sys, rhs
}

// TestCholBatch checks each kernel path's batched Cholesky against
// cholBatchGo to the last bit, and against cholSolveRef to rounding, for
// sizes the vector kernel takes (multiples of 8) and others.
func TestCholBatch(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		cholBatch := cholBatch
		if cholBatch == nil {
			cholBatch = cholBatchGo // the path solves rows one at a time
		}
		rng := rand.New(rand.NewPCG(7, 8))
		for _, n := range []int{0, 1, 3, 8, 16, 24, 29, 40, 56, 64, 72, 128} {
			for _, lanes := range []int{1, 5, batchLanes} {
				sys, rhs := randSystems(rng, n, lanes)
				a, b := batchOf(rng, sys, rhs, n)
				a2, b2 := append([]float64(nil), a...), append([]float64(nil), b...)
				w := make([]float64, n*batchLanes)
				if fail := cholBatch(a, n, b, w); fail != 0 {
					t.Fatalf("n=%d lanes=%d: fail %#x", n, lanes, fail)
				}
				if fail := cholBatchGo(a2, n, b2, w); fail != 0 {
					t.Fatalf("n=%d lanes=%d: reference fail %#x", n, lanes, fail)
				}
				for i := range b {
					if math.Float64bits(b[i]) != math.Float64bits(b2[i]) {
						t.Fatalf("n=%d lanes=%d: x[%d] lane %d = %v, reference %v", n, lanes, i/batchLanes, i%batchLanes, b[i], b2[i])
					}
				}
				for i := 0; i < n; i++ {
					for c := i; c < n; c++ {
						for l := range batchLanes {
							p := (i*n+c)*batchLanes + l
							if math.Float64bits(a[p]) != math.Float64bits(a2[p]) {
								t.Fatalf("n=%d: U[%d][%d] lane %d = %v, reference %v", n, i, c, l, a[p], a2[p])
							}
						}
					}
				}
				for l := range batchLanes {
					want := make([]float64, n)
					if l < lanes {
						ref := append([]float64(nil), sys[l]...)
						want = append(want[:0], rhs[l]...)
						if err := cholSolveRef(ref, n, want); err != nil {
							t.Fatal(err)
						}
					}
					for i := range want {
						got := b[i*batchLanes+l]
						if math.Abs(got-want[i]) > 1e-9*(1+math.Abs(want[i])) {
							t.Fatalf("n=%d lane %d: x[%d] = %v, cholSolveRef %v", n, l, i, got, want[i])
						}
					}
				}
			}
		}
	})
}

// TestCholBatchNotPosDef checks that a lane with a bad pivot is reported
// and leaves the other lanes' results as they are alone.
func TestCholBatchNotPosDef(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		cholBatch := cholBatch
		if cholBatch == nil {
			cholBatch = cholBatchGo
		}
		rng := rand.New(rand.NewPCG(9, 10))
		for _, n := range []int{8, 16, 64} {
			for _, bad := range []float64{-1, 0, math.NaN(), math.Inf(1)} {
				sys, rhs := randSystems(rng, n, batchLanes)
				good := func() []float64 {
					a, b := batchOf(rand.New(rand.NewPCG(1, 1)), sys, rhs, n)
					if f := cholBatch(a, n, b, make([]float64, n*batchLanes)); f != 0 {
						t.Fatalf("fail %#x", f)
					}
					return b
				}()
				sys[2][(n/2)*n+n/2] = bad
				sys[6][0] = bad
				a, b := batchOf(rand.New(rand.NewPCG(1, 1)), sys, rhs, n)
				if f := cholBatch(a, n, b, make([]float64, n*batchLanes)); f != 1<<2|1<<6 {
					t.Fatalf("n=%d pivot %v: fail %#x, want %#x", n, bad, f, 1<<2|1<<6)
				}
				for i := 0; i < n; i++ {
					for l := range batchLanes {
						if l == 2 || l == 6 {
							continue
						}
						if p := i*batchLanes + l; math.Float64bits(b[p]) != math.Float64bits(good[p]) {
							t.Fatalf("n=%d: lane %d changed by a bad lane", n, l)
						}
					}
				}
			}
		}
	})
}

// BenchmarkCholBatch times a batch of eight systems against eight
// one-at-a-time factorisations (cholSolve), per system.
func BenchmarkCholBatch(b *testing.B) {
	for _, n := range []int{16, 32, 64} {
		benchKernels(b, func(b *testing.B) {
			b.Run("batched/k="+strconv.Itoa(n), func(b *testing.B) {
				if cholBatch == nil {
					b.Skip("no batched Cholesky")
				}
				rng := rand.New(rand.NewPCG(1, 2))
				var sys, rhs [][]float64
				for range batchLanes {
					sys = append(sys, randSPD(rng, n))
					rhs = append(rhs, make([]float64, n))
				}
				a0, b0 := batchOf(rng, sys, rhs, n)
				a, bb := make([]float64, len(a0)), make([]float64, len(b0))
				w := make([]float64, n*batchLanes)
				b.ResetTimer()
				for range b.N {
					copy(a, a0)
					copy(bb, b0)
					cholBatch(a, n, bb, w)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchLanes), "ns/system")
			})
			b.Run("single/k="+strconv.Itoa(n), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				a0 := randSPD(rng, n)
				a, bb := make([]float64, len(a0)), make([]float64, n)
				b.ResetTimer()
				for range b.N {
					copy(a, a0)
					clear(bb)
					if err := cholSolve(a, n, bb); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/system")
			})
		})
	}
}

// TestInterleave checks each path's interleave against interleaveGo on
// the upper triangles.
func TestInterleave(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		for _, n := range []int{1, 5, 8, 16, 24, 48, 64} {
			src := make([]float64, n*n*batchLanes)
			for i := range src {
				src[i] = rng.NormFloat64()
			}
			got := make([]float64, len(src))
			want := make([]float64, len(src))
			interleave(got, src, n)
			interleaveGo(want, src, n)
			for i := 0; i < n; i++ {
				for c := i; c < n; c++ {
					for l := range batchLanes {
						if p := (i*n+c)*batchLanes + l; got[p] != want[p] {
							t.Fatalf("n=%d: entry (%d,%d) lane %d = %v, want %v", n, i, c, l, got[p], want[p])
						}
					}
				}
			}
		}
	})
}
