package als

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// randPanel returns an n×kp float32 panel (rows up to the next multiple of
// rowGroup allocated, as rowScratch does) with random values in the first
// k columns and zero padding.
func randPanel(rng *rand.Rand, n, k, kp int) []float32 {
	rows := (n + rowGroup - 1) / rowGroup * rowGroup
	x := make([]float32, rows*kp)
	for r := 0; r < n; r++ {
		for i := 0; i < k; i++ {
			x[r*kp+i] = float32(rng.NormFloat64())
		}
	}
	return x[:n*kp]
}

// TestSyrk32 checks the float32-panel normal-equation kernel against a
// float64 sum of the same products: the error must stay within a few
// float32 roundings of the panel's magnitude, and the padding untouched.
func TestSyrk32(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(31, 32))
		for _, k := range testKs {
			kp := panelStride(k)
			for _, n := range []int{1, 7, 31, 32} {
				for _, weighted := range []bool{false, true} {
					x := randPanel(rng, n, k, kp)
					wx := x
					if weighted {
						wx = make([]float32, len(x))
						for r := 0; r < n; r++ {
							w := float32(rng.Float64() * 3)
							for i := 0; i < k; i++ {
								wx[r*kp+i] = w * x[r*kp+i]
							}
						}
					}
					c := make([]float64, kp*kp)
					for i := range c {
						c[i] = rng.NormFloat64()
					}
					set := n == 7 // store rather than add
					c0 := append([]float64(nil), c...)
					syrk32(c, x, wx, n, kp, set)
					for i := 0; i < kp; i++ {
						for j := i; j < kp; j++ {
							want, mag := c0[i*kp+j], 0.0
							if set {
								want = 0
								c0[i*kp+j] = 0 // padding is stored as 0
							}
							for r := 0; r < n; r++ {
								p := float64(x[r*kp+i]) * float64(wx[r*kp+j])
								want += p
								mag += math.Abs(p)
							}
							if (i >= k || j >= k) && c[i*kp+j] != c0[i*kp+j] {
								t.Fatalf("k=%d n=%d: padding c[%d][%d] changed", k, n, i, j)
							}
							if d := math.Abs(c[i*kp+j] - want); d > 1e-6*mag+1e-12 {
								t.Fatalf("k=%d n=%d weighted=%v: c[%d][%d] = %.9g, want %.9g (magnitude %g)", k, n, weighted, i, j, c[i*kp+j], want, mag)
							}
						}
					}
				}
			}
		}
	})
}

func TestGemv32(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(33, 34))
		for _, k := range testKs {
			kp := panelStride(k)
			p := make([]float32, kp)
			for i := range p[:k] {
				p[i] = float32(rng.NormFloat64())
			}
			for _, n := range []int{1, 5, 16, 17, 33, 100, 4100} {
				if n == 4100 && k%16 != 1 {
					continue
				}
				g := randPanel(rng, n, k, kp)
				for _, exact := range []bool{false, true} {
					gg := g[:cap(g)] // the last group's rows past n allocated, as rowScratch has them
					if exact {
						// No room for the last group's rows past n.
						gg = append([]float32(nil), g...)
					}
					got := make([]float32, n+1)
					got[n] = 42
					gemv32(got[:n], gg, n, kp, p)
					if got[n] != 42 {
						t.Fatalf("k=%d n=%d: wrote past n", k, n)
					}
					for r := 0; r < n; r++ {
						var want, mag float64
						for i := 0; i < k; i++ {
							v := float64(g[r*kp+i]) * float64(p[i])
							want += v
							mag += math.Abs(v)
						}
						if d := math.Abs(float64(got[r]) - want); d > 1e-6*mag+1e-12 {
							t.Fatalf("k=%d n=%d: t[%d] = %g, want %g", k, n, r, got[r], want)
						}
					}
				}
			}
		}
	})
}

func TestGemvT32(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(35, 36))
		for _, k := range testKs {
			kp := panelStride(k)
			for _, n := range []int{1, 2, 5, 32, 33, 4099} {
				if n == 4099 && k%16 != 1 {
					continue
				}
				g := randPanel(rng, n, k, kp)
				s := make([]float32, n)
				for r := range s {
					s[r] = float32(rng.NormFloat64())
				}
				q := make([]float32, kp+1)
				for i := range q[:k] {
					q[i] = float32(rng.NormFloat64())
				}
				q[kp] = 42
				q0 := append([]float32(nil), q...)
				gemvT32(q[:kp], g, n, kp, s)
				if q[kp] != 42 {
					t.Fatalf("k=%d n=%d: wrote past kp", k, n)
				}
				for i := 0; i < kp; i++ {
					want, mag := float64(q0[i]), math.Abs(float64(q0[i]))
					for r := 0; r < n; r++ {
						v := float64(s[r]) * float64(g[r*kp+i])
						want += v
						mag += math.Abs(v)
					}
					if i >= k && q[i] != 0 {
						t.Fatalf("k=%d n=%d: padding q[%d] = %g", k, n, i, q[i])
					}
					if d := math.Abs(float64(q[i]) - want); d > 1e-5*mag+1e-12 {
						t.Fatalf("k=%d n=%d: q[%d] = %g, want %g", k, n, i, q[i], want)
					}
				}
			}
		}
	})
}

func TestGatherPanel(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(37, 38))
		const nrows = 40
		for _, k := range testKs {
			kp := panelStride(k)
			other := make([]float32, nrows*k)
			for i := range other {
				other[i] = float32(rng.NormFloat64())
			}
			for _, n := range []int{1, 8, 9, 50, 5000} {
				if n == 5000 && k%16 != 3 {
					continue
				}
				cols := make([]int32, n)
				w := make([]float32, n)
				for r := range cols {
					cols[r] = int32(rng.IntN(nrows))
					w[r] = float32(rng.Float64() * 4)
				}
				cols[n-1] = nrows - 1
				for _, weighted := range []bool{false, true} {
					g := make([]float32, n*kp)
					for i := range g {
						g[i] = float32(math.NaN()) // every entry must be written
					}
					var wg []float32
					if weighted {
						wg = append([]float32(nil), g...)
					}
					if j := gatherPanel(g, wg, kp, other, k, cols, n, w); j != -1 {
						t.Fatalf("k=%d n=%d: bad column %d reported", k, n, j)
					}
					for r, c := range cols {
						for i := 0; i < kp; i++ {
							want := float32(0)
							if i < k {
								want = other[int(c)*k+i]
							}
							if g[r*kp+i] != want {
								t.Fatalf("k=%d n=%d: g[%d][%d] = %g, want %g", k, n, r, i, g[r*kp+i], want)
							}
							if weighted && wg[r*kp+i] != w[r]*want {
								t.Fatalf("k=%d n=%d: wg[%d][%d] = %g, want %g", k, n, r, i, wg[r*kp+i], w[r]*want)
							}
						}
					}
				}
			}
		}
	})
}

func TestGatherPanelBadColumn(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		k := 20
		kp := panelStride(k)
		other := make([]float32, 3*k+5) // 3 whole rows
		g := make([]float32, 5000*kp)
		for _, bad := range []int32{3, -1} {
			if j := gatherPanel(g[:3*kp], nil, kp, other, k, []int32{0, 2, bad}, 3, nil); j != 2 {
				t.Fatalf("column %d of a 3-row matrix: reported %d, want 2", bad, j)
			}
		}
		cols := make([]int32, 5000)
		cols[4500] = 7
		if j := gatherPanel(g, nil, kp, other, k, cols, len(cols), nil); j != 4500 {
			t.Fatalf("column 7 at position 4500: reported %d", j)
		}
		cols[4500] = 0
		if j := gatherPanel(g, nil, kp, other, k, cols, len(cols), nil); j != -1 {
			t.Fatalf("good columns: reported %d", j)
		}
	})
}

func TestSolverAuto(t *testing.T) {
	c := DefaultConfig()
	if c.Solver != SolverAuto || c.SolverUsed() != SolverCholesky {
		t.Fatalf("default explicit: %q runs %q", c.Solver, c.SolverUsed())
	}
	c.Implicit = true
	if c.SolverUsed() != SolverCG {
		t.Fatalf("default implicit runs %q", c.SolverUsed())
	}
	c.Solver = SolverCholesky
	if c.SolverUsed() != SolverCholesky {
		t.Fatalf("explicit choice not kept: %q", c.SolverUsed())
	}
	c.Solver, c.CGSteps = SolverAuto, 0
	if c.Validate() == nil {
		t.Fatal("auto solver on implicit data with 0 CG steps accepted")
	}
	c.Implicit = false
	if err := c.Validate(); err != nil {
		t.Fatalf("auto solver on explicit data rejects unused CG steps: %v", err)
	}
}

// TestCholSolveUpper: the in-place solve of a matrix given by its upper
// triangle must not read the lower one.
func TestCholSolveUpper(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(39, 40))
		for _, k := range testKs {
			a := randSPD(rng, k)
			b := make([]float64, k)
			for i := range b {
				b[i] = rng.NormFloat64()
			}
			got := append([]float64(nil), a...)
			for i := 0; i < k; i++ {
				for j := 0; j < i; j++ {
					got[i*k+j] = math.NaN()
				}
			}
			x := append([]float64(nil), b...)
			if err := cholSolveUpper(got, k, x); err != nil {
				t.Fatalf("k=%d: %v", k, err)
			}
			xr := append([]float64(nil), b...)
			if err := cholSolveRef(append([]float64(nil), a...), k, xr); err != nil {
				t.Fatal(err)
			}
			for i := range x {
				if math.IsNaN(x[i]) || math.Abs(x[i]-xr[i]) > 1e-10*(1+math.Abs(xr[i])) {
					t.Fatalf("k=%d: x[%d] = %g, want %g", k, i, x[i], xr[i])
				}
			}
		}
	})
}

// TestPanelKernelsRandom runs each kernel path's panel kernels on random
// shapes (k from 1 to 256, n from 0 to 300, with and without weights, and
// now and then a wider stride or a bad column index) against the *Go
// references: the gather must match bit for bit, including the reported
// bad position and the rows it leaves unwritten; the sums may differ by
// the rounding of a different (fused) summation order.
func TestPanelKernelsRandom(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(43, 44))
		const nrows = 300
		for trial := range 300 {
			k := 1 + rng.IntN(256)
			kp := panelStride(k)
			if rng.IntN(8) == 0 {
				kp += rowPad // the gather falls back to Go, the others run
			}
			n := rng.IntN(301)
			weighted := rng.IntN(2) == 0
			name := func() string {
				return fmt.Sprintf("trial %d: k=%d kp=%d n=%d weighted=%v", trial, k, kp, n, weighted)
			}

			other := make([]float32, nrows*k)
			for i := range other {
				other[i] = float32(rng.NormFloat64())
			}
			// Ratings ahead of n, as a row solve passes them for prefetching.
			cols := make([]int32, n+rng.IntN(prefetchAhead+1))
			w := make([]float32, len(cols))
			for r := range cols {
				cols[r] = int32(rng.IntN(nrows))
				w[r] = float32(rng.Float64() * 4)
			}
			wantBad := -1
			if n > 0 && rng.IntN(4) == 0 {
				wantBad = rng.IntN(n)
				cols[wantBad] = []int32{nrows, -1, math.MaxInt32, math.MinInt32}[rng.IntN(4)]
			}
			rows := (n + rowGroup - 1) / rowGroup * rowGroup
			fill := func() []float32 {
				g := make([]float32, rows*kp)
				for i := range g {
					g[i] = float32(math.NaN())
				}
				return g[:n*kp]
			}
			g, gRef := fill(), fill()
			var wg, wgRef, wv []float32
			if weighted {
				wg, wgRef, wv = fill(), fill(), w
			}
			bad := gatherPanel(g, wg, kp, other, k, cols, n, wv)
			badRef := gatherPanelGo(gRef, wgRef, kp, other, k, cols, n, wv)
			if bad != badRef || bad != wantBad {
				t.Fatalf("%s: gatherPanel reported %d, reference %d, want %d", name(), bad, badRef, wantBad)
			}
			for i := range g {
				if math.Float32bits(g[i]) != math.Float32bits(gRef[i]) {
					t.Fatalf("%s: g[%d][%d] = %g, reference %g", name(), i/kp, i%kp, g[i], gRef[i])
				}
				if weighted && math.Float32bits(wg[i]) != math.Float32bits(wgRef[i]) {
					t.Fatalf("%s: wg[%d][%d] = %g, reference %g", name(), i/kp, i%kp, wg[i], wgRef[i])
				}
			}
			if bad >= 0 {
				continue
			}
			wx := g
			if weighted {
				wx = wg
			}
			// |x|·|wx| bounds the rounding of every sum below.
			abs := func(v []float32) []float32 {
				a := make([]float32, len(v))
				for i, x := range v {
					a[i] = float32(math.Abs(float64(x)))
				}
				return a
			}
			const eps = 1.0 / (1 << 23)

			set := rng.IntN(3) == 0
			c := make([]float64, kp*kp)
			for i := range c {
				c[i] = rng.NormFloat64()
			}
			cRef := append([]float64(nil), c...)
			mag := make([]float64, kp*kp)
			syrk32(c, g, wx, n, kp, set)
			syrk32Go(cRef, g, wx, n, kp, set)
			syrk32Go(mag, abs(g), abs(wx), n, kp, true)
			for i := 0; i < kp; i++ {
				for j := i; j < kp; j++ {
					if d := math.Abs(c[i*kp+j] - cRef[i*kp+j]); d > 2*float64(n)*eps*mag[i*kp+j]+1e-12 {
						t.Fatalf("%s set=%v: syrk32 c[%d][%d] = %.9g, reference %.9g", name(), set, i, j, c[i*kp+j], cRef[i*kp+j])
					}
				}
			}

			p := make([]float32, kp)
			for i := range p[:k] {
				p[i] = float32(rng.NormFloat64())
			}
			gv := g[:rows*kp] // the last group's rows past n, as rowScratch has them
			if rng.IntN(2) == 0 {
				gv = append([]float32(nil), g...) // no rows past n
			}
			tv, tRef, tMag := make([]float32, n+1), make([]float32, n), make([]float32, n)
			tv[n] = 42
			gemv32(tv[:n], gv, n, kp, p)
			gemv32Go(tRef, g, n, kp, p)
			gemv32Go(tMag, abs(g), n, kp, abs(p))
			if tv[n] != 42 {
				t.Fatalf("%s: gemv32 wrote past n", name())
			}
			for r := range tRef {
				if d := math.Abs(float64(tv[r] - tRef[r])); d > 2*float64(kp)*eps*float64(tMag[r]) {
					t.Fatalf("%s: gemv32 t[%d] = %g, reference %g", name(), r, tv[r], tRef[r])
				}
			}

			s := make([]float32, n)
			for r := range s {
				s[r] = float32(rng.NormFloat64())
			}
			q := make([]float32, kp+1)
			for i := range q[:k] {
				q[i] = float32(rng.NormFloat64())
			}
			q[kp] = 42
			qRef, qMag := append([]float32(nil), q[:kp]...), abs(q[:kp])
			gemvT32(q[:kp], g, n, kp, s)
			gemvT32Go(qRef, g, n, kp, s)
			gemvT32Go(qMag, abs(g), n, kp, abs(s))
			if q[kp] != 42 {
				t.Fatalf("%s: gemvT32 wrote past kp", name())
			}
			for i := range qRef {
				if d := math.Abs(float64(q[i] - qRef[i])); d > 2*float64(n+1)*eps*float64(qMag[i]) {
					t.Fatalf("%s: gemvT32 q[%d] = %g, reference %g", name(), i, q[i], qRef[i])
				}
			}
		}
	})
}

// BenchmarkPanelProduct is one conjugate-gradient product on a 128-rating
// panel: t = G p then q += Gᵀ t (gemv32 and gemvT32), GFLOP/s counting
// the 4·n·k useful flops.
func BenchmarkPanelProduct(b *testing.B) {
	benchKernels(b, func(b *testing.B) {
		for _, k := range []int{16, 64, 128} {
			b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(7, 8))
				const n = 128
				kp := panelStride(k)
				g := randPanel(rng, n, k, kp)
				g = g[:cap(g)]
				p := make([]float32, kp)
				for i := range p[:k] {
					p[i] = float32(rng.NormFloat64())
				}
				t, q := make([]float32, n), make([]float32, kp)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					gemv32(t, g, n, kp, p)
					gemvT32(q, g, n, kp, t)
				}
				reportGFLOPS(b, 4*n*float64(k))
			})
		}
	})
}
