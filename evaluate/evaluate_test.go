package evaluate

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cofactor-ml/cofactor/allinone"
	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/leaktest"
	"github.com/cofactor-ml/cofactor/internal/testutil"
	"github.com/cofactor-ml/cofactor/partition"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Ignored()...) }

// tinySnapshot: rank 1, users u0 and u1 (factor 1), items a, b, c, d
// scored 4, 3, 2, 1; u0 trained on a, u1 on nothing.
func tinySnapshot(t *testing.T) *checkpoint.Model {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	r, id := checkpoint.OpenDir(dir)
	m := &checkpoint.Manifest{ID: "tiny", Model: "default", Job: "j", Iteration: 1, Rank: 1, Lambda: 0.1, Users: 2, Items: 4,
		UserBlocks: 1, ItemBlocks: 1, Final: true, Created: time.Now().UTC()}
	for _, b := range []*checkpoint.Block{
		{Side: checkpoint.SideUsers, Rank: 1, IDs: []string{"u0", "u1"}, Counts: []int32{1, 0}, Factors: []float32{1, 1}},
		{Side: checkpoint.SideItems, Rank: 1, IDs: []string{"a", "b", "c", "d"}, Counts: []int32{1, 0, 0, 0}, Factors: []float32{4, 3, 2, 1}},
	} {
		fi, err := r.WriteBlock(ctx, id, b)
		if err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, fi)
	}
	fi, err := r.WriteSeen(ctx, id, &checkpoint.Seen{Ptr: []int64{0, 1, 1}, Items: []int32{0}, Values: []float32{5}})
	if err != nil {
		t.Fatal(err)
	}
	m.Files = append(m.Files, fi)
	if err := r.Commit(ctx, id, m); err != nil {
		t.Fatal(err)
	}
	md, err := checkpoint.ReadDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

func builder(t *testing.T, recs [][3]string) *partition.Builder {
	b := partition.NewBuilder()
	for _, r := range recs {
		var v float32
		switch r[2] {
		case "1":
			v = 1
		case "3.5":
			v = 3.5
		case "4":
			v = 4
		case "5":
			v = 5
		}
		if err := b.Add([]byte(r[0]), []byte(r[1]), v); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// TestEvaluateHandWorked: the derivation is in the comments.
func TestEvaluateHandWorked(t *testing.T) {
	t.Parallel()
	m := tinySnapshot(t)
	// (u0, zz) and (nobody, a) are skipped; (u1, a) is given twice, 4 last.
	test := builder(t, [][3]string{{"u0", "b", "3.5"}, {"u0", "zz", "1"}, {"u1", "a", "5"}, {"u1", "a", "4"}, {"nobody", "a", "1"}})
	rep, err := Evaluate(context.Background(), m, test, Options{K: 2, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	// u0: candidates b, c, d; top 2 = [b c]; relevant {b}: precision ½,
	// recall 1, MAP 1, NDCG 1, AUC 1 (3 > 2, 3 > 1). u1: candidates all;
	// top 2 = [a b]; relevant {a}: the same. Coverage {a, b, c} = 3/4.
	want := Ranking{K: 2, UsersEvaluated: 2, PrecisionAtK: 0.5, RecallAtK: 1, MAPAtK: 1, NDCGAtK: 1, AUC: 1, CoverageAtK: 0.75}
	// Baseline: popularity a 1, b c d 0. u0: [b c] (ties to the lower
	// row), b hit; AUC: b ties c and d: ½. u1: [a b], a hit, AUC 1.
	base := Ranking{K: 2, UsersEvaluated: 2, PrecisionAtK: 0.5, RecallAtK: 1, MAPAtK: 1, NDCGAtK: 1, AUC: 0.75, CoverageAtK: 0.75}
	if rep.Ranking != want || rep.Baseline != base {
		t.Errorf("model %+v\nwant  %+v\nbaseline %+v\nwant     %+v", rep.Ranking, want, rep.Baseline, base)
	}
	// Errors: u0·b = 3 against 3.5, u1·a = 4 against 4.
	if rep.RMSE == nil || math.Abs(*rep.RMSE-math.Sqrt(0.125)) > 1e-9 || math.Abs(*rep.MAE-0.25) > 1e-9 {
		t.Errorf("RMSE %v, MAE %v; want %g, 0.25", rep.RMSE, rep.MAE, math.Sqrt(0.125))
	}
	if rep.TestRatings != 5 || rep.TestSkipped != 2 || rep.Exclusions != "snapshot" {
		t.Errorf("%d test ratings, %d skipped, exclusions from %s", rep.TestRatings, rep.TestSkipped, rep.Exclusions)
	}
	// With training ratings given, u1's (u1, b) leaves b out of its
	// candidates: top 2 = [a c], still a hit.
	rep, err = Evaluate(context.Background(), m, test, Options{K: 2, Train: builder(t, [][3]string{{"u0", "a", "5"}, {"u1", "b", "1"}})})
	if err != nil || rep.Exclusions != "train" || rep.CoverageAtK != 0.75 || rep.PrecisionAtK != 0.5 {
		t.Errorf("with --train: %v, %+v", err, rep)
	}
}

// MUST SHOW: `evaluate` on a job's final snapshot reproduces the ranking
// metrics `train` reported for it (the same code on the same pairs).
func TestEvaluateMatchesTrain(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("trains on MovieLens: skipped under -short")
	}
	spec := job.DefaultSpec()
	spec.Input = testutil.SharedData(t, "ml-latest-small/split-seed42/ratings.train.csv")
	spec.Test = testutil.SharedData(t, "ml-latest-small/split-seed42/ratings.test.csv")
	spec.TestFraction, spec.Iterations, spec.Rank, spec.Lambda, spec.Alpha, spec.Implicit = 0, 5, 16, 50, 1, true
	spec.UserBlocks, spec.ItemBlocks = 2, 2
	spec.Out = filepath.Join(t.TempDir(), "model")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := allinone.Start(ctx, allinone.Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(ctx, spec, nil)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	m, err := checkpoint.ReadDir(ctx, spec.Out)
	if err != nil {
		t.Fatal(err)
	}
	test, _, err := partition.ReadFile(ctx, spec.Test, partition.ScanOptions{Implicit: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Evaluate(ctx, m, test, Options{K: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("train: precision@10 %.4f NDCG@10 %.4f; evaluate: %+v", *res.PrecisionAt10, *res.NDCGAt10, rep.Ranking)
	if math.Abs(rep.PrecisionAtK-*res.PrecisionAt10) > 1e-9 || math.Abs(rep.NDCGAtK-*res.NDCGAt10) > 1e-9 {
		t.Errorf("evaluate precision@10 %.6f, NDCG@10 %.6f; train reported %.6f, %.6f", rep.PrecisionAtK, rep.NDCGAtK, *res.PrecisionAt10, *res.NDCGAt10)
	}
	if rep.PrecisionAtK <= rep.Baseline.PrecisionAtK || math.Abs(rep.Baseline.PrecisionAtK-0.162) > 0.001 {
		t.Errorf("model precision %.4f, baseline %.4f (reference baseline 0.162)", rep.PrecisionAtK, rep.Baseline.PrecisionAtK)
	}
}
