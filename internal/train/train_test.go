package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/internal/testutil"
)

func writeSynth(t *testing.T, cfg synth.Config) string {
	t.Helper()
	s, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ratings.csv")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.WriteCSV(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	return p
}

// skipShort skips the accuracy runs under -short (the race-detector pass
// in CI); the plain test run always has them.
func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("accuracy run: skipped under -short, run by the plain go test")
	}
}

func run(t *testing.T, spec Spec) (*Result, *Model) {
	t.Helper()
	res, m, err := Run(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res, m
}

// Must show 1: a rank-8 truth with noise 0.1 is recovered to near the noise
// floor with the default settings (only the rank given).
func TestSyntheticTruthRecovered(t *testing.T) {
	t.Parallel()
	skipShort(t)
	input := writeSynth(t, synth.Config{Users: 2000, Items: 1000, Ratings: 200_000, Rank: 8, Noise: 0.1, Seed: 1, ZipfExponent: 0.8})
	for _, tc := range []struct {
		solver   als.SolverKind
		fraction float64
	}{
		{als.SolverCholesky, 0.1}, {als.SolverCG, 0.1}, {als.SolverCholesky, 0.2},
	} {
		spec := DefaultSpec()
		spec.Input, spec.ALS.Rank, spec.ALS.Solver, spec.TestFraction = input, 8, tc.solver, tc.fraction
		res, _ := run(t, spec)
		t.Logf("%s, test fraction %.1f: train RMSE %.4f, test RMSE %.4f", tc.solver, tc.fraction, *res.TrainRMSE, *res.TestRMSE)
		if *res.TestRMSE > 0.115 {
			t.Errorf("%s, test fraction %.1f: test RMSE %.4f > 0.115", tc.solver, tc.fraction, *res.TestRMSE)
		}
		if res.TrainRatings+res.TestRatings != 200_000 || res.TestSkipped > 10 {
			t.Errorf("train %d + test %d ratings (%d skipped)", res.TrainRatings, res.TestRatings, res.TestSkipped)
		}
	}
}

func movieLensSpec(t *testing.T) Spec {
	spec := DefaultSpec()
	spec.Input = testutil.SharedData(t, "ml-latest-small/split-seed42/ratings.train.csv")
	spec.Test = testutil.SharedData(t, "ml-latest-small/split-seed42/ratings.test.csv")
	spec.TestFraction = 0
	spec.Iterations = 15
	return spec
}

// Must show 2, explicit: rank 10, λ 0.1, 15 iterations on the fixed split;
// the NumPy reference gets 0.8865.
func TestMovieLensExplicit(t *testing.T) {
	t.Parallel()
	skipShort(t)
	spec := movieLensSpec(t)
	spec.ALS.Rank, spec.ALS.Lambda = 10, 0.1
	rmse := map[als.SolverKind]float64{}
	for _, solver := range []als.SolverKind{als.SolverCholesky, als.SolverCG} {
		spec.ALS.Solver = solver
		res, _ := run(t, spec)
		rmse[solver] = *res.TestRMSE
		t.Logf("%s: test RMSE %.4f (train %.4f)", solver, *res.TestRMSE, *res.TrainRMSE)
		if res.Users != 610 || res.TrainRatings != 80669 || res.TestRatings != 20167 || res.TestSkipped != 798 {
			t.Errorf("counts: %d users, %d train, %d test, %d skipped", res.Users, res.TrainRatings, res.TestRatings, res.TestSkipped)
		}
		if *res.TestRMSE > 0.8915 {
			t.Errorf("%s: test RMSE %.4f > 0.8915", solver, *res.TestRMSE)
		}
		if len(res.History) != 15 || res.History[14].TestRMSE == nil {
			t.Errorf("history has %d entries", len(res.History))
		}
	}
	if d := math.Abs(rmse[als.SolverCholesky] - rmse[als.SolverCG]); d > 0.005 {
		t.Errorf("solvers differ by %.4f RMSE", d)
	}
}

// Must show 2, implicit: rank 32, α 1, λ 50 (not count-scaled); reference
// precision@10 0.292, NDCG@10 0.344.
func TestMovieLensImplicit(t *testing.T) {
	t.Parallel()
	skipShort(t)
	spec := movieLensSpec(t)
	spec.ALS.Rank, spec.ALS.Lambda, spec.ALS.Alpha, spec.ALS.Implicit = 32, 50, 1, true
	for _, solver := range []als.SolverKind{als.SolverCholesky, als.SolverCG} {
		spec.ALS.Solver = solver
		res, _ := run(t, spec)
		t.Logf("%s: precision@10 %.4f, NDCG@10 %.4f", solver, *res.PrecisionAt10, *res.NDCGAt10)
		if *res.PrecisionAt10 < 0.28 || *res.NDCGAt10 < 0.33 {
			t.Errorf("%s: precision@10 %.4f (want ≥ 0.28), NDCG@10 %.4f (want ≥ 0.33)", solver, *res.PrecisionAt10, *res.NDCGAt10)
		}
		if res.TrainRMSE != nil || res.TestRMSE != nil {
			t.Errorf("implicit run reports RMSE")
		}
	}
}

// Must show 3: the block layout does not change the factors.
func TestPartitionIndependence(t *testing.T) {
	t.Parallel()
	inputs := map[bool]string{
		false: writeSynth(t, synth.Config{Users: 900, Items: 400, Ratings: 40_000, Rank: 6, Noise: 0.3, Seed: 2, ZipfExponent: 0.8}),
		true:  writeSynth(t, synth.Config{Users: 900, Items: 400, Ratings: 40_000, Rank: 6, Noise: 0.3, Seed: 2, ZipfExponent: 0.8, Implicit: true}),
	}
	for _, tc := range []struct {
		name     string
		implicit bool
		solver   als.SolverKind
	}{
		{"explicit cholesky", false, als.SolverCholesky},
		{"explicit cg", false, als.SolverCG},
		{"implicit cholesky", true, als.SolverCholesky},
		{"implicit cg", true, als.SolverCG},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var base *Model
			for _, pq := range [][2]int{{1, 1}, {7, 7}, {3, 5}} {
				spec := DefaultSpec()
				spec.Input, spec.ALS.Rank, spec.ALS.Solver, spec.Iterations = inputs[tc.implicit], 8, tc.solver, 5
				spec.ALS.Implicit, spec.ALS.Lambda = tc.implicit, 0.05
				spec.UserBlocks, spec.ItemBlocks = pq[0], pq[1]
				res, m := run(t, spec)
				if res.UserBlocks != pq[0] || res.ItemBlocks != pq[1] {
					t.Fatalf("asked %v blocks, got %d×%d", pq, res.UserBlocks, res.ItemBlocks)
				}
				if base == nil {
					base = m
					continue
				}
				for name, pair := range map[string][2][]float32{"users": {base.X, m.X}, "items": {base.Y, m.Y}} {
					var worst float64
					for i := range pair[0] {
						worst = max(worst, math.Abs(float64(pair[0][i]-pair[1][i])))
					}
					if worst > 1e-5 {
						t.Errorf("blocks %v: %s factors differ by %g from 1×1", pq, name, worst)
					}
				}
			}
		})
	}
}

func TestOutWritesSnapshot(t *testing.T) {
	t.Parallel()
	input := writeSynth(t, synth.Config{Users: 300, Items: 100, Ratings: 5000, Rank: 3, Noise: 0.1, Seed: 1, ZipfExponent: 0.5})
	spec := DefaultSpec()
	spec.Input, spec.ALS.Rank, spec.Iterations = input, 4, 3
	spec.Out = filepath.Join(t.TempDir(), "model")
	res, m := run(t, spec)
	if res.Snapshot != spec.Out {
		t.Errorf("snapshot %q", res.Snapshot)
	}
	s, err := checkpoint.ReadDir(spec.Out)
	if err != nil {
		t.Fatal(err)
	}
	if s.Manifest.Rank != 4 || s.Manifest.Iteration != 3 || len(s.UserIDs) != m.Users.Len() || s.Manifest.Metrics["test_rmse"] != *res.TestRMSE {
		t.Errorf("manifest %+v", s.Manifest)
	}
	for i := range m.X {
		if s.X[i] != m.X[i] {
			t.Fatal("user factors differ from the model")
		}
	}
}
