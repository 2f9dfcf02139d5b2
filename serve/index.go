package serve

import (
	"fmt"
	"sync"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
)

// Index is a snapshot ready for queries: the model and what is derived
// from it once when it is loaded — every item's and user's norm (Similar,
// SimilarUsers) and, for an implicit model, the items' Gram matrix YᵀY
// (FoldIn, Explain). It is read-only and
// safe for concurrent use.
type Index struct {
	model   *checkpoint.Model
	cfg     als.Config
	items   *latent // item factors and norms (Similar)
	users   *latent // user factors and norms (SimilarUsers)
	yty     []float64
	solvers sync.Pool // *als.Solver for cfg: one per concurrent fold-in
}

// NewIndex derives the index of m with up to threads goroutines (0: one).
// It fails when the manifest's hyper-parameters are not a valid solver
// configuration.
func NewIndex(m *checkpoint.Model, threads int) (*Index, error) {
	cfg := ModelConfig(m)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if len(m.X) != len(m.UserIDs)*m.Rank || len(m.Y) != len(m.ItemIDs)*m.Rank || len(m.ItemCounts) != len(m.ItemIDs) {
		return nil, fmt.Errorf("%w: %d×%d user and %d×%d item factors at rank %d", ErrConfig,
			len(m.UserIDs), m.Rank, len(m.ItemIDs), m.Rank, m.Rank)
	}
	kf := m.Manifest.FactorRank()
	ix := &Index{model: m, cfg: cfg, items: newLatent(m.Y, m.Rank, kf), users: newLatent(m.X, m.Rank, kf)}
	if cfg.Implicit {
		ix.yty = make([]float64, m.Rank*m.Rank)
		als.Gram(m.Y, m.Rank, max(threads, 1), ix.yty)
	}
	ix.solvers.New = func() any {
		s, err := als.NewSolver(cfg) // validated above
		if err != nil {
			panic(err)
		}
		return s
	}
	return ix, nil
}

// Model is the indexed snapshot.
func (ix *Index) Model() *checkpoint.Model { return ix.model }

// Config is the solver configuration of fold-ins (ModelConfig).
func (ix *Index) Config() als.Config { return ix.cfg }

// Recommend is Recommend on the indexed model.
func (ix *Index) Recommend(userRow []float32, k int, f Filter) []Scored {
	return Recommend(ix.model, userRow, k, f)
}

// RecommendUser is RecommendUser on the indexed model.
func (ix *Index) RecommendUser(u int32, k int, f Filter) []Scored {
	return RecommendUser(ix.model, u, k, f)
}

// Popular is Popular on the indexed model.
func (ix *Index) Popular(k int, f Filter) []Scored { return Popular(ix.model, k, f) }

// Similar is Similar with the precomputed norms.
func (ix *Index) Similar(i int32, k int) []Scored { return ix.items.similar(i, k) }

// SimilarUsers is SimilarUsers with the precomputed norms.
func (ix *Index) SimilarUsers(u int32, k int) []Scored { return ix.users.similar(u, k) }

// FoldIn is FoldIn with the model's configuration and the precomputed
// YᵀY.
func (ix *Index) FoldIn(ratings []Rating) ([]float32, error) {
	s := ix.solvers.Get().(*als.Solver)
	defer ix.solvers.Put(s)
	return foldIn(ix.model, ratings, s, ix.yty)
}
