package serve

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
)

// ErrNoRatings: the snapshot does not hold the users' training ratings
// (it is not a job's final snapshot, or it was written before ratings were
// kept), which explanations need.
var ErrNoRatings = errors.New("serve: the snapshot holds no training ratings to explain from")

// Contribution is one training item's share of a recommended item's
// score.
type Contribution struct {
	Item         int32
	Contribution float32
}

// Explained is one recommended item with its explanation: Contributions
// lists the user's training items that contributed most, largest first,
// and Remainder is the rest of the score (the other training items and,
// for a model with biases, μ + the item's bias), so that the
// contributions plus Remainder equal Score.
type Explained struct {
	Scored
	Contributions []Contribution
	Remainder     float32
}

// Explain recommends k items for user row u as RecommendUser does, but
// from the user's row recomputed from the final item factors (the solve of
// one more user half-iteration, as the implicit library's explain does,
// so scores may differ slightly from RecommendUser's), and explains each:
// the top training items by contribution (at most top of them) and the
// remainder. It needs the user's training ratings in the snapshot
// (ErrNoRatings otherwise). An Index computes YᵀY of an implicit model
// once; this function computes it per call.
func Explain(m *checkpoint.Model, u int32, k, top int, f Filter) ([]Explained, error) {
	var yty []float64
	if m.Manifest.Implicit {
		yty = make([]float64, m.Rank*m.Rank)
		als.Gram(m.Y, m.Rank, 1, yty)
	}
	return explain(m, ModelConfig(m), yty, u, k, top, f)
}

// Explain is Explain with the index's YᵀY.
func (ix *Index) Explain(u int32, k, top int, f Filter) ([]Explained, error) {
	return explain(ix.model, ix.cfg, ix.yty, u, k, top, f)
}

func explain(m *checkpoint.Model, cfg als.Config, yty []float64, u int32, k, top int, f Filter) ([]Explained, error) {
	if !m.HasSeenValues() {
		return nil, ErrNoRatings
	}
	seen, vals := m.Seen(u), m.SeenValues(u)
	rated := make([]float32, 0, len(seen)*m.Rank)
	for _, it := range seen {
		rated = append(rated, m.ItemRow(it)...)
	}
	ex, err := als.NewExplainer(cfg, rated, vals, yty, m.Mean())
	if err != nil {
		return nil, fmt.Errorf("explaining user %s: %w", m.UserIDs[u], err)
	}
	src := source{kind: byDot, x: ex.Row(), y: m.Y, k: m.Rank, offset: m.Mean()}
	var extra []int32
	if f.ExcludeSeen {
		extra = seen
	}
	recs := rank(&src, len(m.ItemIDs), k, f, extra)
	out := make([]Explained, len(recs))
	contrib := make([]float64, len(seen))
	order := make([]int, len(seen))
	for n, rec := range recs {
		ex.Contributions(m.ItemRow(rec.Item), contrib)
		for j := range order {
			order[j] = j
		}
		// Largest contribution first, ties to the lower item row.
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(contrib[b], contrib[a]) })
		e := Explained{Scored: rec}
		var shown float32
		for _, j := range order[:min(top, len(order))] {
			c := float32(contrib[j])
			e.Contributions = append(e.Contributions, Contribution{Item: seen[j], Contribution: c})
			shown += c
		}
		// The base plus every contribution is the score up to rounding;
		// the remainder is taken from the score the ranking used, so that
		// the parts given add up to it exactly.
		e.Remainder = rec.Score - shown
		out[n] = e
	}
	return out, nil
}
