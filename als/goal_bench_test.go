package als

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/internal/synth"
)

// The machine-limit guards: one whole ALS iteration (every user row, then
// every item row, all threads) at rank 64 on two synthetic sets:
//
//   - set=heavy: the 20M shape scaled by COFACTOR_GOAL_SCALE (default 0.25:
//     34,623 users × 6,686 items, 5M ratings, ~144 a user);
//   - set=light: all 138,493 users × 26,744 items of the 20M shape with
//     COFACTOR_GOAL_SCALE × 16M ratings (default 4M, ~29 a user: most
//     users have fewer ratings than the rank);
//
// reporting
//
//   - GFLOP/s of the iteration's work counted as
//     F = 2·ratings·(k²+3k) + (users+items)·(k³/3+2k²);
//   - peak-fraction: that rate over FMAPeak on the same threads, measured
//     in the same run (a tuned sgemm reaches 0.85–0.95 of it);
//   - s/iteration, and cpu-s/iteration: the process's CPU time (user +
//     system) per iteration, which moves far less than the wall time when
//     other processes share the cores.
//
//	go test ./als -run '^$' -bench '^BenchmarkGoal' -benchtime 3x
//
// bench/ (`go run . --goals`) prints them beside the end-to-end figures.

// goalSet is the ratings of the guard benchmarks in both orientations.
type goalSet struct {
	users, items int
	byUser       Rows
	byItem       Rows
}

var (
	goalMu   sync.Mutex
	goalData = map[string]goalSet{}
)

func goalScale(b *testing.B) float64 {
	s := 0.25
	if v := os.Getenv("COFACTOR_GOAL_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 1 {
			b.Fatalf("COFACTOR_GOAL_SCALE=%q: want a number in (0, 1]", v)
		}
		s = f
	}
	return s
}

// goalRatings generates a set (see the top of the file) once per test
// binary.
func goalRatings(b *testing.B, set string, implicit bool) goalSet {
	goalMu.Lock()
	defer goalMu.Unlock()
	if _, ok := goalData[set]; !ok {
		s := goalScale(b)
		cfg := synth.Config{
			Users: int(138_493 * s), Items: int(26_744 * s), Ratings: int64(20_000_263 * s),
			Rank: 16, Noise: 0.5, Seed: 20, ZipfExponent: 0.8,
		}
		if set == "light" {
			cfg.Users, cfg.Items, cfg.Ratings, cfg.Seed = 138_493, 26_744, int64(16_000_000*s), 5
		}
		gen, err := synth.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		g := goalSet{users: cfg.Users, items: cfg.Items, byUser: Rows{Ptr: []int64{0}}}
		err = gen.Each(context.Background(), func(u int, items []int32, ratings []float32) error {
			g.byUser.Col = append(g.byUser.Col, items...)
			g.byUser.Val = append(g.byUser.Val, ratings...)
			g.byUser.Ptr = append(g.byUser.Ptr, int64(len(g.byUser.Col)))
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		g.byItem = transposeRows(g.byUser, g.items)
		goalData[set] = g
	}
	g := goalData[set]
	if implicit {
		// Interaction counts rather than star ratings: |r| rounded up.
		for _, rows := range []*Rows{&g.byUser, &g.byItem} {
			v := make([]float32, len(rows.Val))
			for i, r := range rows.Val {
				v[i] = float32(int(max(r, -r)) + 1)
			}
			rows.Val = v
		}
	}
	return g
}

// transposeRows is rows's other orientation (columns ascending within a
// row, since rows are visited in order).
func transposeRows(rows Rows, cols int) Rows {
	ptr := make([]int64, cols+1)
	for _, c := range rows.Col {
		ptr[c+1]++
	}
	for i := range cols {
		ptr[i+1] += ptr[i]
	}
	next := append([]int64(nil), ptr[:cols]...)
	t := Rows{Ptr: ptr, Col: make([]int32, len(rows.Col)), Val: make([]float32, len(rows.Val))}
	for r := 0; r < rows.Len(); r++ {
		for j := rows.Ptr[r]; j < rows.Ptr[r+1]; j++ {
			c := rows.Col[j]
			t.Col[next[c]] = int32(r)
			t.Val[next[c]] = rows.Val[j]
			next[c]++
		}
	}
	return t
}

// goalIteration times whole iterations of cfg on the set and reports the
// guard metrics.
func goalIteration(b *testing.B, set string, cfg Config) {
	g := goalRatings(b, set, cfg.Implicit)
	k := cfg.Rank
	s, err := NewSolver(cfg)
	if err != nil {
		b.Fatal(err)
	}
	x := make([]float32, g.users*k)
	y := make([]float32, g.items*k)
	for i := range x {
		x[i] = float32(i%7+1) / float32(8*k)
	}
	for i := range y {
		y[i] = float32(i%5+1) / float32(8*k)
	}
	var yty []float64
	if cfg.Implicit {
		yty = make([]float64, k*k)
	}
	threads := runtime.GOMAXPROCS(0)
	ctx := context.Background()
	half := func(rows Rows, other, self []float32, loss bool) {
		if cfg.Implicit {
			Gram(other, k, threads, yty)
		}
		if _, err := s.UpdateBlock(ctx, BlockUpdate{Rows: rows, Other: other, YtY: yty, X: self, Loss: loss}); err != nil {
			b.Fatal(err)
		}
	}
	half(g.byUser, y, x, false) // warm: scratch space grows once
	b.ReportAllocs()
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for range b.N {
		half(g.byUser, y, x, false)
		half(g.byItem, x, y, true)
	}
	b.StopTimer()
	cpu := (cpuSeconds() - cpu0) / float64(b.N)
	sec := b.Elapsed().Seconds() / float64(b.N)
	kf := float64(k)
	nnz := float64(g.byUser.NNZ())
	flops := 2*nnz*(kf*kf+3*kf) + float64(g.users+g.items)*(kf*kf*kf/3+2*kf*kf)
	gflops := flops / sec / 1e9
	peak := FMAPeak(threads, 300*time.Millisecond)
	b.ReportMetric(sec, "s/iteration")
	b.ReportMetric(cpu, "cpu-s/iteration")
	b.ReportMetric(gflops, "GFLOP/s")
	b.ReportMetric(gflops/peak, "peak-fraction")
}

// BenchmarkGoalExplicit is the explicit model's guard: Cholesky at rank 64
// (the solver the explicit model uses by default).
func BenchmarkGoalExplicit(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Rank, cfg.Lambda, cfg.Solver = 64, 0.05, SolverCholesky
	for _, set := range []string{"heavy", "light"} {
		b.Run("set="+set, func(b *testing.B) { goalIteration(b, set, cfg) })
	}
}

// BenchmarkGoalImplicit is the implicit model's guard: 3 CG steps at rank
// 64 (the default solver of the implicit model). Its GFLOP/s counts the
// explicit formula's work, so it reads as a speed relative to the
// explicit guard rather than as the CG's own flop rate.
func BenchmarkGoalImplicit(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Rank, cfg.Lambda, cfg.Implicit, cfg.Alpha, cfg.Solver = 64, 50, true, 1, SolverCG
	for _, set := range []string{"heavy", "light"} {
		b.Run("set="+set, func(b *testing.B) { goalIteration(b, set, cfg) })
	}
}

// cpuSeconds is the process's CPU time so far (user + system).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkFMAPeak reports the probe itself on GOMAXPROCS threads.
func BenchmarkFMAPeak(b *testing.B) {
	for range b.N {
		b.ReportMetric(FMAPeak(runtime.GOMAXPROCS(0), 200*time.Millisecond), "GFLOP/s")
	}
}
