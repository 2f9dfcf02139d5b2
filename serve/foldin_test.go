package serve

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/allinone"
	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/internal/testutil"
	"github.com/cofactor-ml/cofactor/partition"
)

// MUST SHOW: folding in a trained user's own training ratings gives the
// row that one more user-side half-iteration computes, to 1e-4. The model
// is trained by the all-in-one cluster (2 workers, 2×2 blocks); the
// reference is one more user solve over all users by als directly, on the
// layout of the same input.
func TestFoldInEqualsOneMoreHalfIteration(t *testing.T) {
	t.Parallel()
	for _, implicit := range []bool{false, true} {
		name := "explicit"
		if implicit {
			name = "implicit"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := synth.Config{Users: 300, Items: 200, Ratings: 6000, Rank: 6, Noise: 0.3, Seed: 5, ZipfExponent: 0.8, Implicit: implicit}
			sp := job.DefaultSpec()
			sp.Input = testutil.WriteRatings(t, cfg)
			sp.Rank, sp.Lambda, sp.Iterations, sp.UserBlocks, sp.ItemBlocks = 8, 0.05, 4, 2, 2
			if implicit {
				sp.Implicit, sp.Lambda, sp.Alpha = true, 2, 5
			}
			sp.Out = filepath.Join(t.TempDir(), "model")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			c, err := allinone.Start(ctx, allinone.Options{Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Run(ctx, sp, nil)
			c.Close()
			if err != nil {
				t.Fatalf("training: %v", err)
			}
			m, err := checkpoint.ReadDir(ctx, sp.Out)
			if err != nil {
				t.Fatal(err)
			}
			if got := ModelConfig(m); got.Rank != sp.Rank || got.Lambda != sp.Lambda || got.Implicit != sp.Implicit || (implicit && got.Alpha != sp.Alpha) {
				t.Fatalf("ModelConfig %+v does not match the training spec %+v", got, sp)
			}

			// The reference: one more user half-step over one block of all
			// users, from the snapshot's factors.
			ds, _, err := job.LoadDataset(ctx, sp)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ds.Users.IDs(), m.UserIDs) || !slices.Equal(ds.Items.IDs(), m.ItemIDs) {
				t.Fatal("the dataset's rows are not in the snapshot's order")
			}
			l, err := partition.NewLayout(ds, 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			ub, k := l.UserBlocks[0], m.Rank
			other := make([]float32, 0, len(ub.Needed)*k)
			for _, g := range ub.Needed {
				other = append(other, m.ItemRow(g)...)
			}
			var yty []float64
			if implicit {
				yty = make([]float64, k*k)
				als.Gram(m.Y, k, 1, yty)
			}
			// The exact solve: a fold-in has no previous row to warm-start
			// conjugate gradient from, so it always solves exactly.
			exact := sp.ALS(1)
			exact.Solver = als.SolverCholesky
			solver, err := als.NewSolver(exact)
			if err != nil {
				t.Fatal(err)
			}
			next := slices.Clone(m.X)
			if _, err := solver.UpdateBlock(ctx, als.BlockUpdate{
				Rows: als.Rows{Ptr: ub.Rows.Ptr, Col: ub.Rows.Col, Val: ub.Rows.Val}, Other: other, YtY: yty, X: next,
			}); err != nil {
				t.Fatal(err)
			}

			ix, err := NewIndex(m, 2)
			if err != nil {
				t.Fatal(err)
			}
			var worst, moved float64
			for u := 0; u < len(m.UserIDs); u += 7 {
				lo, hi := ds.ByUser.Ptr[u], ds.ByUser.Ptr[u+1]
				ratings := make([]Rating, 0, hi-lo)
				for p := lo; p < hi; p++ {
					ratings = append(ratings, Rating{Item: ds.ByUser.Col[p], Value: ds.ByUser.Val[p]})
				}
				// Given in reverse: FoldIn sorts them as training does.
				slices.Reverse(ratings)
				got, err := FoldIn(m, ratings, ModelConfig(m))
				if err != nil {
					t.Fatal(err)
				}
				got2, err := ix.FoldIn(ratings)
				if err != nil {
					t.Fatal(err)
				}
				want := next[u*k : u*k+k]
				for c := range want {
					worst = max(worst, math.Abs(float64(got[c]-want[c])), math.Abs(float64(got2[c]-want[c])))
					moved = max(moved, math.Abs(float64(want[c]-m.X[u*k+c])))
				}
			}
			t.Logf("%s: %d users × %d items, %d training ratings; largest difference of a fold-in from the half-step %.2g "+
				"(the half-step itself moved rows by up to %.2g)", name, res.Users, res.Items, res.TrainRatings, worst, moved)
			if moved < 1e-3 {
				t.Errorf("the half-step moved rows by only %g: the model has converged and the test cannot tell a fold-in from the trained row", moved)
			}
			if worst > 1e-4 {
				t.Errorf("fold-in differs from the half-step by %g > 1e-4", worst)
			}
		})
	}
}

func TestFoldInInput(t *testing.T) {
	t.Parallel()
	sp := randomSpec(9, 3, 50, 4, false)
	m := sp.model(t)
	cfg := ModelConfig(m)
	// No ratings: the zero row.
	x, err := FoldIn(m, nil, cfg)
	if err != nil || len(x) != 4 || slices.ContainsFunc(x, func(v float32) bool { return v != 0 }) {
		t.Errorf("no ratings: %v, %v; want the zero row", x, err)
	}
	// A repeated item: the last rating counts.
	a, err := FoldIn(m, []Rating{{3, 1}, {5, 2}, {3, 4}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := FoldIn(m, []Rating{{5, 2}, {3, 4}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a, b) {
		t.Errorf("repeated item: %v, want %v", a, b)
	}
	for _, tc := range []struct {
		name    string
		ratings []Rating
		cfg     als.Config
		want    error
	}{
		{"item out of range", []Rating{{50, 1}}, cfg, ErrRatings},
		{"negative item", []Rating{{-1, 1}}, cfg, ErrRatings},
		{"NaN", []Rating{{1, float32(math.NaN())}}, cfg, ErrRatings},
		{"Inf", []Rating{{1, float32(math.Inf(1))}}, cfg, ErrRatings},
		{"wrong rank", []Rating{{1, 1}}, als.Config{Rank: 5, Solver: als.SolverCholesky}, ErrConfig},
	} {
		if _, err := FoldIn(m, tc.ratings, tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
}
