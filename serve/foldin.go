package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
)

// Rating is one rating of a user being folded in: an item row of the
// snapshot and the rating (explicit) or interaction strength (implicit).
type Rating struct {
	Item  int32
	Value float32
}

// Sentinel errors.
var (
	// ErrRatings: fold-in ratings name an item outside the model or hold a
	// value that is not a finite number. Nothing was computed.
	ErrRatings = errors.New("serve: bad ratings")
	// ErrConfig: a solver configuration that does not fit the model.
	ErrConfig = errors.New("serve: configuration does not fit the model")
)

// ModelConfig returns the solver configuration of a snapshot: its rank,
// λ, model (implicit flag and α, biases, non-negative factors) from the
// manifest, the Cholesky solver, one thread (a fold-in solves one row).
func ModelConfig(m *checkpoint.Model) als.Config {
	c := als.DefaultConfig()
	c.Rank, c.Lambda, c.Implicit, c.Alpha = m.Manifest.FactorRank(), m.Manifest.Lambda, m.Manifest.Implicit, m.Manifest.Alpha
	c.Biases, c.NonNegative = m.Manifest.Biases, m.Manifest.NonNegative
	c.Solver, c.Threads = als.SolverCholesky, 1
	return c
}

// FoldIn computes the factors of a user the snapshot has never seen from
// their ratings: exactly one user-side ALS solve against the snapshot's
// item factors, by the training code (als.Solver.UpdateBlock on a one-row
// block), so folding in a trained user's own ratings gives the row one
// more user half-iteration would. The row has the snapshot's layout (with
// biases: [x, b, 1]). cfg is normally ModelConfig(m). Ratings
// of the same item more than once: the last one counts. No ratings give
// the zero row (the regularised optimum without data); callers answer such
// users with Popular instead.
//
// For an implicit model FoldIn computes YᵀY over all items (O(items·k²));
// an Index computes it once per snapshot.
func FoldIn(m *checkpoint.Model, ratings []Rating, cfg als.Config) ([]float32, error) {
	if cfg.Width() != m.Rank {
		return nil, fmt.Errorf("%w: rows of %d values, the snapshot's have %d", ErrConfig, cfg.Width(), m.Rank)
	}
	solver, err := als.NewSolver(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var yty []float64
	if cfg.Implicit {
		yty = make([]float64, m.Rank*m.Rank)
		als.Gram(m.Y, m.Rank, runtime.GOMAXPROCS(0), yty)
	}
	return foldIn(m, ratings, solver, yty)
}

// foldIn solves one user row with solver (of the model's rank) and the
// items' Gram matrix yty (implicit models).
func foldIn(m *checkpoint.Model, ratings []Rating, solver *als.Solver, yty []float64) ([]float32, error) {
	k, n := m.Rank, int32(len(m.ItemIDs))
	for j, r := range ratings {
		if r.Item < 0 || r.Item >= n {
			return nil, fmt.Errorf("%w: rating %d names item row %d of %d", ErrRatings, j, r.Item, n)
		}
		if v := float64(r.Value); math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: rating %d of item %s is %v", ErrRatings, j, m.ItemIDs[r.Item], r.Value)
		}
	}
	// The solver wants the row's ratings in ascending item order (the
	// order training uses), each item once: the last rating given wins.
	rs := slices.Clone(ratings)
	slices.SortStableFunc(rs, func(a, b Rating) int { return cmp.Compare(a.Item, b.Item) })
	w := 0
	for j := range rs {
		if w > 0 && rs[w-1].Item == rs[j].Item {
			rs[w-1] = rs[j]
			continue
		}
		rs[w] = rs[j]
		w++
	}
	rs = rs[:w]
	col := make([]int32, len(rs))
	val := make([]float32, len(rs))
	other := make([]float32, 0, len(rs)*k)
	for j, r := range rs {
		col[j], val[j] = int32(j), r.Value
		other = append(other, m.ItemRow(r.Item)...)
	}
	x := make([]float32, k)
	_, err := solver.UpdateBlock(context.Background(), als.BlockUpdate{
		Rows:  als.Rows{Ptr: []int64{0, int64(len(rs))}, Col: col, Val: val},
		Other: other,
		YtY:   yty,
		X:     x,
		Side:  als.UserSide,
		Mean:  m.Mean(),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRatings, err)
	}
	return x, nil
}
