package als

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// forEachScoreKernel runs a test on every scoring kernel set this CPU has
// and skips, by name, the others.
func forEachScoreKernel(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, name := range allKernels {
		t.Run(name, func(t *testing.T) {
			prev := scoreKernelName
			if !setScoreKernel(name) {
				t.Skipf("kernel path %q not available on this CPU/architecture (have %v)", name, kernelPaths())
			}
			defer setScoreKernel(prev)
			f(t)
		})
	}
}

var (
	scoreTestKs = func() []int {
		var ks []int
		for k := 1; k <= 40; k++ {
			ks = append(ks, k)
		}
		return append(ks, 61, 64, 100, 128)
	}()
	scoreTestMs = []int{1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 33}
	scoreTestNs = []int{1, 7, 8, 9, 15, 16, 17, 33, 48, 63, 64, 65, 127, 128, 129, 200}
)

func randFactors(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

func TestPackItems(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, k := range []int{1, 3, 10, 64} {
		y := randFactors(rng, 300*k)
		for _, r := range [][2]int{{0, 300}, {0, 0}, {5, 6}, {17, 81}, {64, 128}, {299, 300}} {
			lo, hi := r[0], r[1]
			dst := make([]float32, 0, 7)
			for i := range 7 {
				dst = append(dst, float32(i+1)) // garbage to be overwritten
			}
			p := PackItems(dst, y, k, lo, hi)
			if len(p) != PackedLen(k, hi-lo) || len(p)%(ScorePanel*k) != 0 {
				t.Fatalf("k=%d [%d,%d): len %d, want %d", k, lo, hi, len(p), PackedLen(k, hi-lo))
			}
			for j := 0; j < len(p)/k; j++ {
				for c := 0; c < k; c++ {
					got := p[(j/ScorePanel*k+c)*ScorePanel+j%ScorePanel]
					var want float32
					if lo+j < hi {
						want = y[(lo+j)*k+c]
					}
					if got != want {
						t.Fatalf("k=%d [%d,%d): item %d factor %d = %g, want %g", k, lo, hi, j, c, got, want)
					}
				}
			}
			// A reused buffer keeps its storage.
			big := make([]float32, PackedLen(k, hi-lo)+5)
			big[len(big)-1] = 42
			if q := PackItems(big[:0], y, k, lo, hi); len(q) > 0 && &q[0] != &big[0] {
				t.Fatal("PackItems did not reuse dst")
			}
		}
	}
}

// checkScores compares m×n scores (leading dimension ldd) against the
// reference within 1e-5 of the magnitude Σ_c |x_c y_c| of each score.
func checkScores(t *testing.T, what string, got, want []float32, ldd int, x []float32, k, m int, y []float32, n int) {
	t.Helper()
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var mag float64
			for c := 0; c < k; c++ {
				mag += math.Abs(float64(x[i*k+c]) * float64(y[j*k+c]))
			}
			g, w := got[i*ldd+j], want[i*ldd+j]
			if d := math.Abs(float64(g) - float64(w)); !(d <= 1e-5*mag+1e-30) {
				t.Fatalf("%s: score[%d][%d] = %g, want %g (magnitude %g)", what, i, j, g, w, mag)
			}
		}
	}
}

func TestScoreBlock(t *testing.T) {
	forEachScoreKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(33, 34))
		for _, k := range scoreTestKs {
			for _, m := range scoreTestMs {
				for _, n := range scoreTestNs {
					if k > 40 && rng.IntN(3) != 0 {
						continue // a third of the large-k shapes
					}
					r0 := rng.IntN(3)
					x := randFactors(rng, (r0+m)*k) // cut to the last row read
					y := randFactors(rng, n*k)
					packed := PackItems(nil, y, k, 0, n)
					ldd := n + rng.IntN(3)*9
					const canary = -12345.5
					size := (m-1)*ldd + n
					buf := make([]float32, size+32)
					for i := range buf {
						buf[i] = canary
					}
					dst := buf[16 : 16+size : 16+size]
					want := make([]float32, size)
					scoreBlockGo(want, ldd, x[r0*k:], k, m, packed, n, nil, nil)
					ScoreBlock(dst, ldd, x, k, r0, m, packed, n)
					what := fmt.Sprintf("k=%d m=%d n=%d ldd=%d", k, m, n, ldd)
					checkScores(t, what, dst, want, ldd, x[r0*k:], k, m, y, n)
					checkCanary(t, what, buf, 16, size, ldd, n, canary)

					// The same with thresholds: the scores must not change
					// and the hits must match them.
					first := append([]float32(nil), dst...)
					thr := scoreThresholds(rng, first, ldd, m, n)
					w := HitWords(n)
					hbuf := make([]uint64, m*w+4)
					for i := range hbuf {
						hbuf[i] = 0xdeadbeef
					}
					hits := hbuf[2 : 2+m*w : 2+m*w]
					for i := range buf {
						buf[i] = canary
					}
					ScoreBlockAbove(dst, ldd, x, k, r0, m, packed, n, thr, hits)
					checkCanary(t, what, buf, 16, size, ldd, n, canary)
					checkHits(t, what, first, ldd, m, n, thr, hits)
					// Marked scores are stored (as ScoreBlock computes
					// them); the others are left alone or stored.
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							got, want := dst[i*ldd+j], first[i*ldd+j]
							marked := hits[i*w+j/ScorePanel]>>(j%ScorePanel)&1 == 1
							if math.Float32bits(got) != math.Float32bits(want) && (marked || got != canary) {
								t.Fatalf("%s: user %d item %d: score %g with thresholds, %g without (marked %v)", what, i, j, got, want, marked)
							}
						}
					}
					if hbuf[0] != 0xdeadbeef || hbuf[1] != 0xdeadbeef || hbuf[len(hbuf)-2] != 0xdeadbeef || hbuf[len(hbuf)-1] != 0xdeadbeef {
						t.Fatalf("%s: hits written outside their rows", what)
					}
				}
			}
		}
	})
}

// checkCanary checks that only the m×n scores inside buf[off:off+size]
// (leading dimension ldd) changed from canary.
func checkCanary(t *testing.T, what string, buf []float32, off, size, ldd, n int, canary float32) {
	t.Helper()
	for i, v := range buf {
		inside := i >= off && i < off+size && (i-off)%ldd < n
		if !inside && v != canary {
			t.Fatalf("%s: element %d outside the scores written", what, i-off)
		}
	}
}

// scoreThresholds returns a threshold per user: infinities, NaN, or a score
// of the user's row (so that ties with the threshold occur), perturbed or
// not.
func scoreThresholds(rng *rand.Rand, s []float32, ldd, m, n int) []float32 {
	thr := make([]float32, m)
	for i := range thr {
		switch rng.IntN(8) {
		case 0:
			thr[i] = float32(math.Inf(-1))
		case 1:
			thr[i] = float32(math.Inf(1))
		case 2:
			thr[i] = float32(math.NaN())
		case 3:
			thr[i] = float32(rng.NormFloat64())
		default:
			thr[i] = s[i*ldd+rng.IntN(n)]
		}
	}
	return thr
}

// checkHits checks the hits of m×n scores s against thresholds thr.
func checkHits(t *testing.T, what string, s []float32, ldd, m, n int, thr []float32, hits []uint64) {
	t.Helper()
	w := HitWords(n)
	for i := 0; i < m; i++ {
		for j := 0; j < w*ScorePanel; j++ {
			got := hits[i*w+j/ScorePanel]>>(j%ScorePanel)&1 == 1
			want := j < n && s[i*ldd+j] > thr[i]
			if got != want {
				t.Fatalf("%s: user %d item %d: hit %v, want %v (score %g, threshold %g)", what, i, j, got, want, s[i*ldd+min(j, n-1)], thr[i])
			}
		}
	}
}

// TestScoreBlockSubBlock scores a range of items starting at a panel
// boundary of a larger packed block, and a block big enough to be cut into
// several assembly calls (scoreChunk), without and with thresholds.
func TestScoreBlockSubBlock(t *testing.T) {
	forEachScoreKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(35, 36))
		for _, c := range []struct{ k, m, items, j0, n int }{
			{10, 9, 1000, 128, 300},
			{10, 9, 1000, 960, 40},
			{64, 5, 200, 64, 136},
			{128, 200, 4100, 0, 4100},
		} {
			x := randFactors(rng, c.m*c.k)
			y := randFactors(rng, c.items*c.k)
			all := PackItems(nil, y, c.k, 0, c.items)
			dst := make([]float32, c.m*c.n)
			want := make([]float32, c.m*c.n)
			sub := all[PackedLen(c.k, c.j0):]
			ScoreBlock(dst, c.n, x, c.k, 0, c.m, sub, c.n)
			scoreBlockGo(want, c.n, x, c.k, c.m, PackItems(nil, y, c.k, c.j0, c.j0+c.n), c.n, nil, nil)
			checkScores(t, "sub-block", dst, want, c.n, x, c.k, c.m, y[c.j0*c.k:], c.n)

			thr := scoreThresholds(rng, dst, c.n, c.m, c.n)
			hits := make([]uint64, c.m*HitWords(c.n))
			plain := append([]float32(nil), dst...)
			ScoreBlockAbove(dst, c.n, x, c.k, 0, c.m, sub, c.n, thr, hits)
			checkHits(t, "sub-block", plain, c.n, c.m, c.n, thr, hits)
		}
	})
}

// TestScoreBlockMatchesDot checks the reference itself against plain dot
// products summed in factor order (bit for bit: Recommend's order).
func TestScoreBlockMatchesDot(t *testing.T) {
	rng := rand.New(rand.NewPCG(37, 38))
	k, m, n := 13, 6, 70
	x := randFactors(rng, m*k)
	y := randFactors(rng, n*k)
	dst := make([]float32, m*n)
	scoreBlockGo(dst, n, x, k, m, PackItems(nil, y, k, 0, n), n, nil, nil)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for c := 0; c < k; c++ {
				s += x[i*k+c] * y[j*k+c]
			}
			if dst[i*n+j] != s {
				t.Fatalf("score[%d][%d] = %g, want %g", i, j, dst[i*n+j], s)
			}
		}
	}
}

func TestScoreBlockShortSlicesPanic(t *testing.T) {
	forEachScoreKernel(t, func(t *testing.T) {
		k, m, n := 8, 5, 70
		x := make([]float32, m*k)
		packed := make([]float32, PackedLen(k, n))
		dst := make([]float32, m*n)
		thr := make([]float32, m)
		hits := make([]uint64, m*HitWords(n))
		for _, c := range []struct {
			name string
			f    func()
		}{
			{"dst", func() { ScoreBlock(dst[:m*n-1], n, x, k, 0, m, packed, n) }},
			{"x", func() { ScoreBlock(dst, n, x[:m*k-1], k, 0, m, packed, n) }},
			{"x rows past r0", func() { ScoreBlock(dst, n, x, k, 1, m, packed, n) }},
			{"packed", func() { ScoreBlock(dst, n, x, k, 0, m, packed[:len(packed)-1], n) }},
			{"ldd", func() { ScoreBlock(dst, n-1, x, k, 0, m, packed, n) }},
			{"k", func() { ScoreBlock(dst, n, x, 0, 0, m, packed, n) }},
			{"thr", func() { ScoreBlockAbove(dst, n, x, k, 0, m, packed, n, thr[:m-1], hits) }},
			{"hits", func() { ScoreBlockAbove(dst, n, x, k, 0, m, packed, n, thr, hits[:len(hits)-1]) }},
			{"nil thr", func() { ScoreBlockAbove(dst, n, x, k, 0, m, packed, n, nil, hits) }},
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("short %s did not panic", c.name)
					}
				}()
				c.f()
			}()
		}
		// Nothing to do: no panic, no access.
		ScoreBlock(nil, 0, nil, k, 0, 0, nil, n)
		ScoreBlock(nil, 0, nil, k, 0, m, nil, 0)
	})
}
