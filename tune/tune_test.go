package tune

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cofactor-ml/cofactor/allinone"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/leaktest"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Ignored()...) }

// TestSuccessiveHalving runs a search with a made-up metric (RMSE =
// |λ − 0.1| + 1/iterations + rank/1000) and checks the rounds by hand:
// 9 candidates, η = 3: round 0 trains all for ⌈9/9⌉ = 1 iteration, round
// 1 the best 3 for ⌈9/3⌉ = 3, round 2 the best one for 9.
func TestSuccessiveHalving(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	runs := map[int]int{} // iterations → trainings
	run := func(_ context.Context, s job.Spec) (job.Result, error) {
		mu.Lock()
		runs[s.Iterations]++
		mu.Unlock()
		v := math.Abs(s.Lambda-0.1) + 1/float64(s.Iterations) + float64(s.Rank)/1000
		return job.Result{TestRMSE: &v}, nil
	}
	base := job.DefaultSpec()
	base.Input, base.Test, base.TestFraction = "in.csv", "test.csv", 0
	cands := Grid([]int{4, 8, 16}, []float64{0.01, 0.1, 1}, []float64{0}, []int{9})
	res, err := Run(context.Background(), Options{Base: base, Candidates: cands, Eta: 3, Parallel: 3, Run: run})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int]int{1: 9, 3: 3, 9: 1}; len(runs) != 3 || runs[1] != 9 || runs[3] != 3 || runs[9] != 1 {
		t.Errorf("trainings by iterations %v, want %v", runs, want)
	}
	if b := res.Best; b.Params != (Params{Rank: 4, Lambda: 0.1, Iterations: 9}) || math.Abs(b.Metric-(1.0/9+0.004)) > 1e-12 {
		t.Errorf("best %+v", b)
	}
	stopped := 0
	for _, tr := range res.Trials {
		if tr.StoppedEarly {
			stopped++
		}
	}
	if stopped != 8 || res.Metric != TestRMSE || len(res.Trials) != 9 {
		t.Errorf("%d stopped early, metric %s, %d trials", stopped, res.Metric, len(res.Trials))
	}
	// Without halving every candidate trains fully.
	clear(runs)
	if _, err := Run(context.Background(), Options{Base: base, Candidates: cands, Eta: 1, Run: run}); err != nil || runs[9] != 9 || len(runs) != 1 {
		t.Errorf("eta 1: %v, trainings %v", err, runs)
	}
}

func TestCandidates(t *testing.T) {
	t.Parallel()
	g := Grid([]int{8, 16}, []float64{0.1}, []float64{1, 10}, []int{5})
	if len(g) != 4 || g[1] != (Params{Rank: 8, Lambda: 0.1, Alpha: 10, Iterations: 5}) {
		t.Errorf("grid %v", g)
	}
	a := Random(50, 7, Range{8, 64}, Range{0.01, 1}, Range{1, 1}, Range{5, 15})
	if !slices.Equal(a, Random(50, 7, Range{8, 64}, Range{0.01, 1}, Range{1, 1}, Range{5, 15})) {
		t.Error("the same seed draws other candidates")
	}
	for _, p := range a {
		if p.Rank < 8 || p.Rank > 64 || p.Lambda < 0.01 || p.Lambda > 1 || p.Alpha != 1 || p.Iterations < 5 || p.Iterations > 15 {
			t.Fatalf("candidate %+v outside the ranges", p)
		}
	}
	if _, err := Run(context.Background(), Options{Base: job.DefaultSpec(), Candidates: g, Metric: NDCGAt10, Run: func(context.Context, job.Spec) (job.Result, error) { return job.Result{}, nil }}); err == nil {
		t.Error("an implicit metric for an explicit model accepted")
	}
}

// MUST SHOW: retraining tune's best parameters (on the same folds) gives
// tune's best metric again.
func TestBestRetrains(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("trains 2-fold searches: skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := allinone.Start(ctx, allinone.Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run := func(ctx context.Context, s job.Spec) (job.Result, error) { return c.Run(ctx, s, nil) }
	base := job.DefaultSpec()
	base.Input = testutil.WriteRatings(t, synth.Config{Users: 300, Items: 200, Ratings: 8000, Rank: 4, Noise: 0.3, Seed: 9, ZipfExponent: 0.8})
	base.TestFraction = 0
	o := Options{Base: base, Folds: 2, Eta: 2, Parallel: 1, Run: run,
		Candidates: Grid([]int{4, 8}, []float64{0.02, 0.2}, []float64{0}, []int{4})}
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	// The best's metric, retrained: the mean of its folds' test RMSEs.
	var sum float64
	for f := 0; f < 2; f++ {
		r, err := run(ctx, res.Best.Params.Apply(o.spec(f)))
		if err != nil {
			t.Fatal(err)
		}
		sum += *r.TestRMSE
	}
	t.Logf("best %+v; retrained %.6f", res.Best, sum/2)
	if math.Abs(sum/2-res.Best.Metric) > 1e-9 {
		t.Errorf("retraining the best gives %.6f, tune reported %.6f", sum/2, res.Best.Metric)
	}
	for _, tr := range res.Trials {
		if !tr.StoppedEarly && tr.Metric < res.Best.Metric {
			t.Errorf("trial %+v beats the best", tr)
		}
	}
}
