package als

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The CG vector kernels agree with their Go versions to float32 rounding
// (the vector sums run in another order), for vector lengths with and
// without a partial vector.
func TestCGVectorKernels(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 9))
		for _, n := range []int{1, 7, 8, 16, 24, 64, 128, 1024} {
			t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
				vec := func() []float32 {
					v := make([]float32, n)
					for i := range v {
						v[i] = float32(rng.NormFloat64())
					}
					return v
				}
				a, b := vec(), vec()
				if got, want := cgDot(a, b), cgDotGo(a, b); math.Abs(got-want) > 1e-12*float64(n)*(1+math.Abs(want)) {
					t.Fatalf("cgDot = %g, want %g", got, want)
				}
				x, r, p, ap := vec(), vec(), vec(), vec()
				x2, r2 := append([]float32(nil), x...), append([]float32(nil), r...)
				got := cgAxpy(x, r, p, ap, 0.37)
				want := cgAxpyGo(x2, r2, p, ap, 0.37)
				if math.Abs(got-want) > 1e-5*(1+want) {
					t.Fatalf("cgAxpy returned %g, want %g", got, want)
				}
				for i := range x {
					if d := math.Abs(float64(x[i] - x2[i])); d > 1e-6*(1+math.Abs(float64(x2[i]))) {
						t.Fatalf("x[%d] = %g, want %g", i, x[i], x2[i])
					}
					if d := math.Abs(float64(r[i] - r2[i])); d > 1e-6*(1+math.Abs(float64(r2[i]))) {
						t.Fatalf("r[%d] = %g, want %g", i, r[i], r2[i])
					}
				}
				p2 := append([]float32(nil), p...)
				cgDir(p, r, -1.25)
				cgDirGo(p2, r, -1.25)
				for i := range p {
					if d := math.Abs(float64(p[i] - p2[i])); d > 1e-6*(1+math.Abs(float64(p2[i]))) {
						t.Fatalf("p[%d] = %g, want %g", i, p[i], p2[i])
					}
				}
			})
		}
	})
}
