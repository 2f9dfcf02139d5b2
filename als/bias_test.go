package als

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// nnlsBrute solves the NNLS problem by trying every passive set: the best
// feasible unconstrained solution over all subsets is the optimum.
func nnlsBrute(a, b []float64, n int, free []bool) []float64 {
	best, bestObj := make([]float64, n), math.Inf(1)
	for mask := 0; mask < 1<<n; mask++ {
		var idx []int
		ok := true
		for i := 0; i < n; i++ {
			if mask&(1<<i) != 0 {
				idx = append(idx, i)
			} else if free != nil && free[i] {
				ok = false
			}
		}
		if !ok {
			continue
		}
		x := make([]float64, n)
		if len(idx) > 0 {
			m := len(idx)
			sub := mat.NewSymDense(m, nil)
			rhs := mat.NewVecDense(m, nil)
			for p, i := range idx {
				for q, j := range idx {
					sub.SetSym(p, q, a[i*n+j])
				}
				rhs.SetVec(p, b[i])
			}
			var ch mat.Cholesky
			ch.Factorize(sub)
			var z mat.VecDense
			ch.SolveVecTo(&z, rhs)
			for p, i := range idx {
				x[i] = z.AtVec(p)
				if (free == nil || !free[i]) && x[i] < -1e-12 {
					ok = false
				}
			}
		}
		if !ok {
			continue
		}
		obj := 0.0
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				obj += 0.5 * x[i] * a[i*n+j] * x[j]
			}
			obj -= b[i] * x[i]
		}
		if obj < bestObj {
			best, bestObj = x, obj
		}
	}
	return best
}

func TestNNLSAgainstBruteForce(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 200; trial++ {
		n := 1 + rng.IntN(6)
		// A = GᵀG + δI from a random G: symmetric positive definite.
		g := make([]float64, (n+3)*n)
		for i := range g {
			g[i] = rng.NormFloat64()
		}
		a := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				for r := 0; r < n+3; r++ {
					a[i*n+j] += g[r*n+i] * g[r*n+j]
				}
			}
			a[i*n+i] += 0.1
		}
		b := make([]float64, n)
		for i := range b {
			b[i] = rng.NormFloat64() * 3
		}
		var free []bool
		if trial%2 == 1 {
			free = make([]bool, n)
			free[rng.IntN(n)] = true
		}
		want := nnlsBrute(a, b, n, free)
		got := append([]float64(nil), b...)
		sc := newNNLSScratch(n)
		if err := nnls(&sc, a, got, n, free); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-8*(1+math.Abs(want[i])) {
				t.Fatalf("trial %d (n %d, free %v): got %v, want %v", trial, n, free, got, want)
			}
		}
	}
}

// biasedReference solves one biased row straight from the model: unknowns
// (x, b) against design rows [y, 1] and targets r − μ − (other's bias).
func biasedReference(t *testing.T, k int, lambda float64, side Side, mean float32, cols []int32, vals, other []float32) []float64 {
	kd, w := k+1, k+2
	a := mat.NewSymDense(kd, nil)
	b := mat.NewVecDense(kd, nil)
	for i := 0; i < kd; i++ {
		a.SetSym(i, i, lambda*float64(len(cols)))
	}
	for j, c := range cols {
		o := other[int(c)*w : int(c)*w+w]
		d := make([]float64, kd)
		for i := 0; i < k; i++ {
			d[i] = float64(o[i])
		}
		d[k] = 1
		ob := o[k+1] // an item's bias
		if side == ItemSide {
			ob = o[k] // a user's bias
		}
		target := float64(vals[j]) - float64(mean) - float64(ob)
		for p := 0; p < kd; p++ {
			b.SetVec(p, b.AtVec(p)+target*d[p])
			for q := p; q < kd; q++ {
				a.SetSym(p, q, a.At(p, q)+d[p]*d[q])
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

func TestBiasedRowsMatchReference(t *testing.T) {
	t.Parallel()
	const k, mean = 5, 3.25
	for _, side := range []Side{UserSide, ItemSide} {
		rows, other0, _ := randomBlock(11, 40, 30, 6, k+2, false)
		// Give the other side's rows the layout of their side.
		other := append([]float32(nil), other0...)
		for i := 0; i < len(other)/(k+2); i++ {
			setBiasColumns(other[i*(k+2):(i+1)*(k+2)], k, otherSide(side), other0[i*(k+2)+k])
		}
		cfg := DefaultConfig()
		cfg.Rank, cfg.Lambda, cfg.Biases, cfg.Threads = k, 0.1, true, 2
		s, err := NewSolver(cfg)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, rows.Len()*(k+2))
		st, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other, X: x, Side: side, Mean: mean, Loss: true})
		if err != nil {
			t.Fatal(err)
		}
		var sse float64
		for r := 0; r < rows.Len(); r++ {
			row := x[r*(k+2) : (r+1)*(k+2)]
			lo, hi := rows.Ptr[r], rows.Ptr[r+1]
			want := make([]float64, k+1)
			if hi > lo {
				want = biasedReference(t, k, cfg.Lambda, side, mean, rows.Col[lo:hi], rows.Val[lo:hi], other)
			}
			for i := 0; i < k; i++ {
				if math.Abs(float64(row[i])-want[i]) > 1e-4 {
					t.Fatalf("%v row %d: factors %v, want %v", side, r, row, want)
				}
			}
			if got := Bias(row, k, side); math.Abs(float64(got)-want[k]) > 1e-4 {
				t.Fatalf("%v row %d: bias %g, want %g", side, r, got, want[k])
			}
			if c := row[k+1-int(side)]; c != 1 {
				t.Fatalf("%v row %d: constant column %g", side, r, c)
			}
			// Loss: r − (μ + full-width dot product).
			for p := lo; p < hi; p++ {
				o := other[int(rows.Col[p])*(k+2) : int(rows.Col[p]+1)*(k+2)]
				var d float64
				for i := range row {
					d += float64(row[i]) * float64(o[i])
				}
				e := float64(rows.Val[p]) - mean - d
				sse += e * e
			}
		}
		if math.Abs(st.SSE-sse) > 1e-6*sse {
			t.Errorf("%v: loss %g, want %g", side, st.SSE, sse)
		}
	}
}

func TestNonNegativeRows(t *testing.T) {
	t.Parallel()
	const k = 6
	for _, implicit := range []bool{false, true} {
		rows, other, _ := randomBlock(5, 60, 40, 8, k, implicit)
		cfg := DefaultConfig()
		cfg.Rank, cfg.Lambda, cfg.Implicit, cfg.NonNegative, cfg.Threads = k, 0.05, implicit, true, 2
		var yty []float64
		if implicit {
			cfg.Lambda = 1
			yty = make([]float64, k*k)
			Gram(other, k, 1, yty)
		}
		s, err := NewSolver(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if s.Config().SolverUsed() != SolverCholesky {
			t.Fatalf("solver %s", s.Config().SolverUsed())
		}
		x := make([]float32, rows.Len()*k)
		if _, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: other, YtY: yty, X: x}); err != nil {
			t.Fatal(err)
		}
		// Each row is the brute-force NNLS optimum of its own system.
		plain := cfg
		plain.NonNegative = false
		negative := 0
		for r := 0; r < rows.Len(); r++ {
			lo, hi := rows.Ptr[r], rows.Ptr[r+1]
			if lo == hi {
				continue
			}
			a, b := rowSystem(plain, rows.Col[lo:hi], rows.Val[lo:hi], other, yty)
			want := nnlsBrute(a, b, k, nil)
			for i, v := range x[r*k : (r+1)*k] {
				if v < 0 || math.Abs(float64(v)-want[i]) > 1e-4*(1+math.Abs(want[i])) {
					t.Fatalf("implicit %v row %d: %v, want %v", implicit, r, x[r*k:(r+1)*k], want)
				}
			}
			for _, v := range referenceRow(t, plain, rows.Col[lo:hi], rows.Val[lo:hi], other, yty) {
				if v < 0 {
					negative++
				}
			}
		}
		if negative == 0 {
			t.Errorf("implicit %v: no unconstrained solution had a negative entry: the test shows nothing", implicit)
		}
	}
}

// rowSystem returns a row's normal equations A (full, k×k) and b in
// float64.
func rowSystem(cfg Config, cols []int32, vals, other []float32, yty []float64) ([]float64, []float64) {
	k := cfg.Rank
	a, b := make([]float64, k*k), make([]float64, k)
	for i := 0; i < k; i++ {
		if cfg.Implicit {
			copy(a[i*k:i*k+k], yty[i*k:i*k+k])
			a[i*k+i] += cfg.Lambda
		} else {
			a[i*k+i] = cfg.Lambda * float64(len(cols))
		}
	}
	for j, c := range cols {
		y := other[int(c)*k : int(c)*k+k]
		w, v := 1.0, float64(vals[j])
		if cfg.Implicit {
			w, v = cfg.Alpha*float64(vals[j]), 1+cfg.Alpha*float64(vals[j])
		}
		for p := 0; p < k; p++ {
			b[p] += v * float64(y[p])
			for q := 0; q < k; q++ {
				a[p*k+q] += w * float64(y[p]) * float64(y[q])
			}
		}
	}
	return a, b
}

func TestConfigBiasRules(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.Biases = true
	if err := c.Validate(); err != nil || c.Width() != c.Rank+2 {
		t.Fatalf("explicit with biases: %v, width %d", err, c.Width())
	}
	c.Implicit = true
	if c.Validate() == nil {
		t.Error("implicit with biases accepted")
	}
	c = DefaultConfig()
	c.NonNegative, c.Implicit = true, true
	if err := c.Validate(); err != nil || c.SolverUsed() != SolverCholesky {
		t.Errorf("implicit non-negative: %v, solver %s", err, c.SolverUsed())
	}
	c.Solver = SolverCG
	if c.Validate() == nil {
		t.Error("non-negative with CG accepted")
	}
	row := make([]float32, 6)
	c = DefaultConfig()
	c.Rank, c.Biases = 4, true
	c.InitRow(row, 1, ItemSide, "i7")
	if row[4] != 1 || row[5] != 0 || Bias(row, 4, ItemSide) != 0 {
		t.Errorf("item init %v", row)
	}
	plain := make([]float32, 4)
	InitRow(plain, 1, ItemSide, "i7")
	for i := range plain {
		if plain[i] != row[i] {
			t.Errorf("init factors %v differ from the model without biases %v", row, plain)
		}
	}
}
