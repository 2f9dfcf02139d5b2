package als

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// randomBlock returns a block of nRows rows over nOther other-side rows with
// about perRow ratings each (ascending columns), the other side's factors,
// and starting factors for the block.
func randomBlock(seed uint64, nRows, nOther, perRow, k int, implicit bool) (Rows, []float32, []float32) {
	rng := rand.New(rand.NewPCG(seed, 7))
	rows := Rows{Ptr: []int64{0}}
	for r := 0; r < nRows; r++ {
		n := rng.IntN(2*perRow + 1)
		if r == 0 {
			n = 0 // a row without ratings
		}
		for c := 0; c < nOther && n > 0; c++ {
			if rng.IntN(nOther) < n*2 {
				rows.Col = append(rows.Col, int32(c))
				v := float32(rng.IntN(9)+1) / 2
				if implicit {
					v = float32(rng.IntN(5) + 1)
				}
				rows.Val = append(rows.Val, v)
			}
		}
		rows.Ptr = append(rows.Ptr, int64(len(rows.Col)))
	}
	other := make([]float32, nOther*k)
	for i := range other {
		other[i] = float32(rng.NormFloat64() * 0.5)
	}
	x := make([]float32, nRows*k)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 0.5)
	}
	return rows, other, x
}

// referenceRow solves one row's normal equations with gonum in float64,
// straight from the model's definition.
func referenceRow(t *testing.T, cfg Config, cols []int32, vals []float32, other []float32, yty []float64) []float64 {
	k := cfg.Rank
	a := mat.NewSymDense(k, nil)
	b := mat.NewVecDense(k, nil)
	if cfg.Implicit {
		for i := 0; i < k; i++ {
			for j := i; j < k; j++ {
				a.SetSym(i, j, yty[i*k+j])
			}
			a.SetSym(i, i, a.At(i, i)+cfg.Lambda)
		}
	} else {
		for i := 0; i < k; i++ {
			a.SetSym(i, i, cfg.Lambda*float64(len(cols)))
		}
	}
	for j, c := range cols {
		y := other[int(c)*k : int(c)*k+k]
		w, v := 1.0, float64(vals[j])
		if cfg.Implicit {
			w, v = cfg.Alpha*float64(vals[j]), 1+cfg.Alpha*float64(vals[j])
		}
		for p := 0; p < k; p++ {
			b.SetVec(p, b.AtVec(p)+v*float64(y[p]))
			for q := p; q < k; q++ {
				a.SetSym(p, q, a.At(p, q)+w*float64(y[p])*float64(y[q]))
			}
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(a) {
		t.Fatal("reference: not positive definite")
	}
	var x mat.VecDense
	if err := ch.SolveVecTo(&x, b); err != nil {
		t.Fatal(err)
	}
	return x.RawVector().Data
}

func gramRef(y []float32, k int) []float64 {
	g := make([]float64, k*k)
	for r := 0; r < len(y)/k; r++ {
		for i := 0; i < k; i++ {
			for j := 0; j < k; j++ {
				g[i*k+j] += float64(y[r*k+i]) * float64(y[r*k+j])
			}
		}
	}
	return g
}

func TestUpdateBlockMatchesReference(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		implicit bool
		k        int
	}{
		{"explicit k=1", false, 1},
		{"explicit k=8", false, 8},
		{"explicit k=37", false, 37},
		{"explicit k=32", false, 32}, // k a multiple of the panel stride: factored in place
		{"implicit k=8", true, 8},
		{"implicit k=33", true, 33},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.Rank, cfg.Implicit, cfg.Lambda, cfg.Alpha, cfg.Threads = tc.k, tc.implicit, 0.1, 2, 3
			cfg.Solver = SolverCholesky // compared with the exact solution
			if tc.implicit {
				cfg.Lambda = 5
			}
			rows, other, x := randomBlock(uint64(tc.k), 150, 90, 20, tc.k, tc.implicit)
			var yty []float64
			if tc.implicit {
				yty = make([]float64, tc.k*tc.k)
				Gram(other, tc.k, 2, yty)
				ref := gramRef(other, tc.k)
				for i := range ref {
					if math.Abs(ref[i]-yty[i]) > 1e-9*(1+math.Abs(ref[i])) {
						t.Fatalf("Gram[%d] = %g, want %g", i, yty[i], ref[i])
					}
				}
			}
			s, err := NewSolver(cfg)
			if err != nil {
				t.Fatal(err)
			}
			st, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other, YtY: yty, X: x, Loss: true})
			if err != nil {
				t.Fatal(err)
			}
			if st.Rows != 150 || st.Ratings != int64(len(rows.Col)) {
				t.Errorf("stats %+v", st)
			}
			var sse float64
			for r := 0; r < rows.Len(); r++ {
				cols, vals := rows.Col[rows.Ptr[r]:rows.Ptr[r+1]], rows.Val[rows.Ptr[r]:rows.Ptr[r+1]]
				got := x[r*tc.k : (r+1)*tc.k]
				if len(cols) == 0 {
					for _, v := range got {
						if v != 0 {
							t.Fatalf("row %d without ratings: %v, want zeros", r, got)
						}
					}
					continue
				}
				want := referenceRow(t, cfg, cols, vals, other, yty)
				for i := range want {
					if math.Abs(float64(got[i])-want[i]) > 2e-5*(1+math.Abs(want[i])) {
						t.Fatalf("row %d col %d: %g, want %g", r, i, got[i], want[i])
					}
				}
				for j, c := range cols {
					var p float64
					for i := range want {
						p += float64(got[i]) * float64(other[int(c)*tc.k+i])
					}
					sse += (float64(vals[j]) - p) * (float64(vals[j]) - p)
				}
			}
			if !tc.implicit && math.Abs(st.SSE-sse) > 1e-6*sse {
				t.Errorf("SSE %g, want %g", st.SSE, sse)
			}
		})
	}
}

// With enough steps CG reaches the exact solution from any start.
func TestCGConvergesToCholesky(t *testing.T) {
	t.Parallel()
	for _, implicit := range []bool{false, true} {
		k := 12
		cfg := DefaultConfig()
		cfg.Rank, cfg.Implicit, cfg.Lambda, cfg.Alpha = k, implicit, 0.1, 1
		cfg.Solver = SolverCholesky
		if implicit {
			cfg.Lambda = 3
		}
		rows, other, x0 := randomBlock(3, 60, 50, 15, k, implicit)
		var yty []float64
		if implicit {
			yty = make([]float64, k*k)
			Gram(other, k, 1, yty)
		}
		exact := append([]float32(nil), x0...)
		s, _ := NewSolver(cfg)
		if _, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other, YtY: yty, X: exact, Loss: true}); err != nil {
			t.Fatal(err)
		}
		cfg.Solver, cfg.CGSteps = SolverCG, 3*k
		cg, _ := NewSolver(cfg)
		approx := append([]float32(nil), x0...)
		if _, err := cg.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other, YtY: yty, X: approx, Loss: true}); err != nil {
			t.Fatal(err)
		}
		for i := range exact {
			if math.Abs(float64(exact[i]-approx[i])) > 1e-3*(1+math.Abs(float64(exact[i]))) {
				t.Fatalf("implicit=%v: CG %g, Cholesky %g at %d", implicit, approx[i], exact[i], i)
			}
		}
		// A few warm-started steps from the exact answer stay there.
		cfg.CGSteps = 3
		few, _ := NewSolver(cfg)
		again := append([]float32(nil), exact...)
		if _, err := few.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other, YtY: yty, X: again, Loss: true}); err != nil {
			t.Fatal(err)
		}
		for i := range exact {
			if math.Abs(float64(exact[i]-again[i])) > 1e-4*(1+math.Abs(float64(exact[i]))) {
				t.Fatalf("implicit=%v: warm start moved %g → %g", implicit, exact[i], again[i])
			}
		}
	}
}

// The same rows give the same bits whatever the thread count.
func TestUpdateBlockDeterministicAcrossThreads(t *testing.T) {
	t.Parallel()
	k := 16
	rows, other, x0 := randomBlock(9, 300, 120, 25, k, false)
	var first []float32
	for _, threads := range []int{1, 2, 5} {
		for _, solver := range []SolverKind{SolverCholesky, SolverCG} {
			cfg := DefaultConfig()
			cfg.Rank, cfg.Threads, cfg.Solver = k, threads, solver
			s, _ := NewSolver(cfg)
			x := append([]float32(nil), x0...)
			if _, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other, X: x, Loss: true}); err != nil {
				t.Fatal(err)
			}
			if solver == SolverCG {
				continue
			}
			if first == nil {
				first = x
				continue
			}
			for i := range x {
				if x[i] != first[i] {
					t.Fatalf("threads=%d: element %d differs", threads, i)
				}
			}
		}
	}
}

func TestUpdateBlockErrors(t *testing.T) {
	t.Parallel()
	k := 4
	rows, other, x := randomBlock(1, 10, 8, 3, k, false)
	cfg := DefaultConfig()
	cfg.Rank = k
	s, _ := NewSolver(cfg)
	if _, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other, X: x[:len(x)-1], Loss: true}); !errors.Is(err, ErrShape) {
		t.Errorf("short x: %v, want ErrShape", err)
	}
	if _, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other[:4*k], X: x, Loss: true}); !errors.Is(err, ErrShape) {
		t.Errorf("column beyond the given rows: %v, want ErrShape", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.UpdateBlock(ctx, BlockUpdate{Rows: rows, Other: other, X: x, Loss: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// λ = 0 and fewer ratings than k: singular.
	cfg.Lambda = 0
	s0, _ := NewSolver(cfg)
	one := Rows{Ptr: []int64{0, 1}, Col: []int32{0}, Val: []float32{3}}
	if _, err := s0.UpdateBlock(context.Background(), BlockUpdate{Rows: one, Other: other, X: make([]float32, k), Loss: true}); !errors.Is(err, ErrNotPositiveDefinite) {
		t.Errorf("singular row: %v, want ErrNotPositiveDefinite", err)
	}
	cfg.Implicit = true
	si, _ := NewSolver(cfg)
	if _, err := si.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other, X: x, Loss: true}); !errors.Is(err, ErrShape) {
		t.Errorf("implicit without YᵀY: %v, want ErrShape", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := DefaultConfig()
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"rank 0", func(c *Config) { c.Rank = 0 }, "rank 0 outside 1..1024"},
		{"rank too big", func(c *Config) { c.Rank = 5000 }, "rank 5000 outside 1..1024"},
		{"negative lambda", func(c *Config) { c.Lambda = -1 }, "lambda -1 must be a finite number ≥ 0"},
		{"NaN lambda", func(c *Config) { c.Lambda = math.NaN() }, "lambda NaN must be a finite number ≥ 0"},
		{"negative alpha", func(c *Config) { c.Implicit, c.Alpha = true, -2 }, "alpha -2 must be a finite number ≥ 0"},
		{"solver", func(c *Config) { c.Solver = "lu" }, `solver "lu" (want "cholesky", "cg" or "auto")`},
		{"cg steps", func(c *Config) { c.Solver, c.CGSteps = SolverCG, 0 }, "cg steps 0 outside 1..64"},
		{"threads", func(c *Config) { c.Threads = -1 }, "threads -1 must be ≥ 0"},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if !errors.Is(err, ErrConfig) || err.Error() != "als: invalid configuration: "+tc.want {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestInitRowDeterministic(t *testing.T) {
	t.Parallel()
	a, b := make([]float32, 16), make([]float32, 16)
	InitRow(a, 42, UserSide, "u17")
	InitRow(b, 42, UserSide, "u17")
	for i := range a {
		if a[i] != b[i] || !(a[i] >= 0) || a[i] > 2 {
			t.Fatalf("col %d: %g vs %g", i, a[i], b[i])
		}
	}
	for _, other := range []func([]float32){
		func(d []float32) { InitRow(d, 43, UserSide, "u17") },
		func(d []float32) { InitRow(d, 42, ItemSide, "u17") },
		func(d []float32) { InitRow(d, 42, UserSide, "u18") },
	} {
		other(b)
		same := 0
		for i := range a {
			if a[i] == b[i] {
				same++
			}
		}
		if same > 1 {
			t.Errorf("a different (seed, side, id) gave %d equal values", same)
		}
	}
	// Scale: mean of |N(0,1)|/√k ≈ 0.8/√k.
	var sum float64
	n := 0
	row := make([]float32, 64)
	for id := 0; id < 200; id++ {
		InitRow(row, 1, ItemSide, string(rune('a'+id%26))+string(rune('0'+id/26)))
		for _, v := range row {
			sum += float64(v)
			n++
		}
	}
	if mean := sum / float64(n) * 8; mean < 0.7 || mean > 0.9 {
		t.Errorf("mean·√k = %.3f, want ≈ 0.80", mean)
	}
}

// TestInPlaceIgnoresX checks the promise of Config.InPlace: the solve of
// a configuration that allows in-place updates gives the same factors,
// bit for bit, whatever the block's factors held before (here NaN), on
// short, dual and long rows.
func TestInPlaceIgnoresX(t *testing.T) {
	t.Parallel()
	type block struct {
		name                      string
		seed                      uint64
		rows, other, perRow, rank int
	}
	blocks := []block{
		{"short rows", 3, 200, 150, 20, 12},
		{"dual rows", 4, 100, 60, 3, 16},
		{"long rows", 5, 3, 20000, 9000, 8},
	}
	configs := []struct {
		name string
		set  func(*Config)
		want bool
	}{
		{"explicit cholesky", func(c *Config) {}, true},
		{"implicit cholesky", func(c *Config) { c.Implicit, c.Solver = true, SolverCholesky }, true},
		{"explicit cg", func(c *Config) { c.Solver = SolverCG }, false},
		{"implicit auto (cg)", func(c *Config) { c.Implicit = true }, false},
		{"biases", func(c *Config) { c.Biases = true }, false},
		{"non-negative", func(c *Config) { c.NonNegative = true }, false},
	}
	for _, b := range blocks {
		for _, tc := range configs {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				cfg := DefaultConfig()
				cfg.Rank = b.rank
				tc.set(&cfg)
				if got := cfg.InPlace(); got != tc.want {
					t.Fatalf("InPlace() = %v, want %v", got, tc.want)
				}
				if !tc.want {
					return
				}
				rows, other, x0 := randomBlock(b.seed, b.rows, b.other, b.perRow, b.rank, cfg.Implicit)
				var yty []float64
				if cfg.Implicit {
					yty = gramRef(other, b.rank)
				}
				solve := func(x []float32) []float32 {
					s, err := NewSolver(cfg)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other, YtY: yty, X: x, Loss: true}); err != nil {
						t.Fatal(err)
					}
					return x
				}
				want := solve(append([]float32(nil), x0...))
				garbage := make([]float32, len(x0))
				for i := range garbage {
					garbage[i] = float32(math.NaN())
				}
				got := solve(garbage)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("element %d: %v over NaN, %v over the old factors", i, got[i], want[i])
					}
				}
			})
		}
	}
}

// TestSolveStreamedMatchesUpdateBlock solves long rows from segments
// handed over one at a time and compares them, bit for bit, with
// UpdateBlock's solve from the whole array, loss included.
func TestSolveStreamedMatchesUpdateBlock(t *testing.T) {
	t.Parallel()
	for _, implicit := range []bool{false, true} {
		k := 8
		rows, other, x0 := randomBlock(11, 4, 30000, 12000, k, implicit)
		cfg := DefaultConfig()
		cfg.Rank, cfg.Implicit, cfg.Solver = k, implicit, SolverCholesky
		if implicit {
			cfg.Lambda = 2
		}
		var yty []float64
		if implicit {
			yty = gramRef(other, k)
		}
		streamed := 0
		for r := 0; r < rows.Len(); r++ {
			lo, hi := rows.Ptr[r], rows.Ptr[r+1]
			one := Rows{Ptr: []int64{0, hi - lo}, Col: rows.Col[lo:hi], Val: rows.Val[lo:hi]}
			s, _ := NewSolver(cfg)
			if !s.Streams(int(hi - lo)) {
				continue
			}
			streamed++
			want := append([]float32(nil), x0[r*k:r*k+k]...)
			st, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: one, Other: other, YtY: yty, X: want, Loss: true})
			if err != nil {
				t.Fatal(err)
			}
			segments := 0
			got := make([]float32, k)
			sse, err := s.SolveStreamed(one.Val, yty, func(start int, dst []float32) error {
				segments++
				if len(dst) > SegmentRows*k {
					t.Fatalf("segment of %d rows, more than %d", len(dst)/k, SegmentRows)
				}
				for j, c := range one.Col[start : start+len(dst)/k] {
					copy(dst[j*k:j*k+k], other[int(c)*k:int(c)*k+k])
				}
				return nil
			}, got, true)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("implicit=%v row %d element %d: streamed %v, whole %v", implicit, r, i, got[i], want[i])
				}
			}
			if sse != st.SSE {
				t.Errorf("implicit=%v row %d: streamed loss %v, whole %v", implicit, r, sse, st.SSE)
			}
			if n := int(hi - lo); segments < (n+SegmentRows-1)/SegmentRows {
				t.Errorf("row of %d ratings in %d segments", n, segments)
			}
		}
		if streamed == 0 {
			t.Fatal("no row long enough to stream")
		}
	}
	s, _ := NewSolver(DefaultConfig())
	if _, err := s.SolveStreamed(make([]float32, 10), nil, nil, make([]float32, DefaultConfig().Rank), false); !errors.Is(err, ErrShape) {
		t.Errorf("a short row: %v, want ErrShape", err)
	}
}
