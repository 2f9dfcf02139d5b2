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

// applyPanel (the CG product's panel part) gives the same bits as gemv32,
// the weights and gemvT32 of the same kernel set in turn, and agrees with
// the Go reference to float32 rounding: ranks inside and outside the fused
// kernel's 32 ≤ kp ≤ 64, partial last groups, weighted or not, panels with
// and without the last group's rows past n, and more rows than one
// assembly call takes (gatherChunk).
func TestApplyPanel(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(15, 16))
		for _, tc := range []struct{ k, n int }{
			{16, 17}, {20, 5}, {32, 1}, {32, 33}, {40, 16}, {48, 31}, {61, 2},
			{64, 1}, {64, 15}, {64, 16}, {64, 17}, {64, 100}, {64, 4096 + 35}, {100, 40},
		} {
			for _, weighted := range []bool{false, true} {
				for _, padded := range []bool{true, false} {
					name := fmt.Sprintf("k=%d/n=%d/weighted=%v/padded=%v", tc.k, tc.n, weighted, padded)
					t.Run(name, func(t *testing.T) {
						applyPanelCase(t, rng, tc.k, tc.n, weighted, padded)
					})
				}
			}
		}
	})
}

func applyPanelCase(t *testing.T, rng *rand.Rand, k, n int, weighted, padded bool) {
	kp := panelStride(k)
	rows := n
	if padded {
		rows = (n + rowGroup - 1) / rowGroup * rowGroup
	}
	g := make([]float32, rows*kp)
	for r := 0; r < rows; r++ {
		for i := 0; i < kp; i++ {
			if i < k || r >= n { // rows past n: stale values a scratch panel may hold
				g[r*kp+i] = float32(rng.NormFloat64())
			}
		}
	}
	vec := func(m int) []float32 {
		v := make([]float32, m)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	p := vec(kp)
	clear(p[k:])
	var w []float32
	if weighted {
		w = vec(n)
		for i := range w {
			w[i] = 1 + 3*float32(math.Abs(float64(w[i])))
		}
	}
	q := append(vec(kp), 42)
	clear(q[k:kp])
	tv := make([]float32, n+1)
	tv[n] = 42
	q0 := append([]float32(nil), q[:kp]...)
	qSame, tSame := append([]float32(nil), q[:kp]...), make([]float32, n)
	qRef, tRef := append([]float32(nil), q[:kp]...), make([]float32, n)
	applyPanel(q[:kp], tv[:n], g, n, kp, p, w)
	applyPanelWith(gemv32, gemvT32, qSame, tSame, g, n, kp, p, w)
	applyPanelGo(qRef, tRef, g, n, kp, p, w)
	if q[kp] != 42 || tv[n] != 42 {
		t.Fatalf("applyPanel wrote past kp or n")
	}
	abs := func(v []float32) []float32 {
		a := make([]float32, len(v))
		for i, x := range v {
			a[i] = float32(math.Abs(float64(x)))
		}
		return a
	}
	// |G|ᵀ |w| |G| |p| bounds the rounding of both passes.
	qMag, tMag := abs(q0), make([]float32, n)
	applyPanelGo(qMag, tMag, abs(g), n, kp, abs(p), w)
	const eps = 1.0 / (1 << 23)
	for r := range tRef {
		if math.Float32bits(tv[r]) != math.Float32bits(tSame[r]) {
			t.Fatalf("t[%d] = %g, two kernels %g", r, tv[r], tSame[r])
		}
		if d := math.Abs(float64(tv[r] - tRef[r])); d > 2*float64(kp)*eps*float64(tMag[r]) {
			t.Fatalf("t[%d] = %g, reference %g", r, tv[r], tRef[r])
		}
	}
	for i := range qRef {
		if math.Float32bits(q[i]) != math.Float32bits(qSame[i]) {
			t.Fatalf("q[%d] = %g, two kernels %g", i, q[i], qSame[i])
		}
		if d := math.Abs(float64(q[i] - qRef[i])); d > 4*float64(n+kp)*eps*float64(qMag[i]) {
			t.Fatalf("q[%d] = %g, reference %g", i, q[i], qRef[i])
		}
	}
}
