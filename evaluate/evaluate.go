// Package evaluate scores a trained snapshot against held-out ratings:
// the error metrics of an explicit model and the ranking metrics of any
// model, beside a most-popular baseline, on the definitions of
// docs/algorithms.md ("Evaluation"), computed by als.Errors and
// als.Ranking — the code `train` reports its metrics with.
package evaluate

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/partition"
)

// Ranking holds the ranking metrics at K, each averaged over the users
// evaluated (als.RankingResult).
type Ranking struct {
	K              int     `json:"k"`
	UsersEvaluated int     `json:"users_evaluated"`
	PrecisionAtK   float64 `json:"precision_at_k"`
	RecallAtK      float64 `json:"recall_at_k"`
	MAPAtK         float64 `json:"map_at_k"`
	NDCGAtK        float64 `json:"ndcg_at_k"`
	AUC            float64 `json:"auc"`
	CoverageAtK    float64 `json:"coverage_at_k"`
}

// Report is the result of Evaluate (`cofactor evaluate --json`).
type Report struct {
	Snapshot string `json:"snapshot"`
	Ranking
	// RMSE and MAE are the explicit model's errors over the test ratings
	// whose user and item the snapshot holds (null for implicit models).
	RMSE *float64 `json:"rmse"`
	MAE  *float64 `json:"mae"`
	// TestRatings counts the test ratings read; TestSkipped those whose
	// user or item the snapshot lacks.
	TestRatings int64 `json:"test_ratings"`
	TestSkipped int64 `json:"test_skipped"`
	// Exclusions says where each user's training items (excluded from
	// their ranking) came from: "snapshot" or "train".
	Exclusions string  `json:"exclusions"`
	Baseline   Ranking `json:"baseline"`
}

// Options configure Evaluate.
type Options struct {
	// K is the cut-off of the ranking metrics.
	K int
	// Train, when not nil, gives each user's training items; nil takes
	// them from the snapshot (a job's final snapshot holds them).
	Train *partition.Builder
	// Threads scores users in parallel (0: one per CPU).
	Threads int
}

// ErrNoTraining: neither the snapshot nor the options give the users'
// training items, without which the candidates are unknown.
var ErrNoTraining = errors.New("evaluate: the snapshot holds no training items; give the training ratings")

// Evaluate scores m against the test ratings of test (IDs the snapshot
// lacks are skipped and counted; a repeated pair counts once, its last
// rating).
func Evaluate(ctx context.Context, m *checkpoint.Model, test *partition.Builder, opt Options) (*Report, error) {
	if opt.K < 1 {
		return nil, fmt.Errorf("evaluate: K %d must be ≥ 1", opt.K)
	}
	threads := opt.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	rep := &Report{Snapshot: m.Manifest.ID, TestRatings: int64(test.Len())}
	tu, ti, tr, skipped := mapPairs(m, test)
	rep.TestSkipped = skipped
	nUsers := len(m.UserIDs)
	testRows := rows(nUsers, tu, ti)
	var trainRows als.Rows
	switch {
	case opt.Train != nil:
		u, i, _, _ := mapPairs(m, opt.Train)
		trainRows = rows(nUsers, u, i)
		rep.Exclusions = "train"
	case m.HasSeen():
		trainRows = als.Rows{Ptr: make([]int64, nUsers+1)}
		for u := 0; u < nUsers; u++ {
			trainRows.Col = append(trainRows.Col, m.Seen(int32(u))...)
			trainRows.Ptr[u+1] = int64(len(trainRows.Col))
		}
		rep.Exclusions = "snapshot"
	default:
		return nil, ErrNoTraining
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in := als.RankingInput{X: m.X, Y: m.Y, Rank: m.Rank, Train: trainRows, Test: testRows, Cutoff: opt.K, Threads: threads}
	rep.Ranking = ranking(opt.K, als.Ranking(in))
	in.Popular, in.NItems = true, len(m.ItemIDs)
	rep.Baseline = ranking(opt.K, als.Ranking(in))
	if !m.Manifest.Implicit && len(tr) > 0 {
		rmse, mae := als.Errors(tu, ti, tr, m.X, m.Y, m.Rank, m.Mean())
		rep.RMSE, rep.MAE = &rmse, &mae
	}
	return rep, ctx.Err()
}

func ranking(k int, r als.RankingResult) Ranking {
	return Ranking{K: k, UsersEvaluated: r.Users, PrecisionAtK: r.Precision, RecallAtK: r.Recall, MAPAtK: r.MAP,
		NDCGAtK: r.NDCG, AUC: r.AUC, CoverageAtK: r.Coverage}
}

// mapPairs maps a builder's ratings to the snapshot's rows, dropping (and
// counting) those whose user or item it lacks and keeping the last rating
// of a repeated pair. The pairs come back sorted by user, then item.
func mapPairs(m *checkpoint.Model, b *partition.Builder) (u, i []int32, r []float32, skipped int64) {
	userRow := make([]int32, b.Users.Len())
	for j := range userRow {
		row, ok := m.User(b.Users.ID(int32(j)))
		userRow[j] = -1
		if ok {
			userRow[j] = row
		}
	}
	itemRow := make([]int32, b.Items.Len())
	for j := range itemRow {
		row, ok := m.Item(b.Items.ID(int32(j)))
		itemRow[j] = -1
		if ok {
			itemRow[j] = row
		}
	}
	type pair struct {
		u, i int32
		r    float32
		at   int
	}
	ps := make([]pair, 0, b.Len())
	for j := range b.R {
		uu, ii := userRow[b.U[j]], itemRow[b.I[j]]
		if uu < 0 || ii < 0 {
			skipped++
			continue
		}
		ps = append(ps, pair{uu, ii, b.R[j], j})
	}
	slices.SortFunc(ps, func(a, c pair) int {
		if a.u != c.u {
			return int(a.u - c.u)
		}
		if a.i != c.i {
			return int(a.i - c.i)
		}
		return a.at - c.at
	})
	for j, p := range ps {
		if j+1 < len(ps) && ps[j+1].u == p.u && ps[j+1].i == p.i {
			continue // a later rating of the same pair wins
		}
		u, i, r = append(u, p.u), append(i, p.i), append(r, p.r)
	}
	return u, i, r, skipped
}

// rows builds per-user item lists from pairs sorted by user.
func rows(nUsers int, u, i []int32) als.Rows {
	rs := als.Rows{Ptr: make([]int64, nUsers+1), Col: i}
	for _, uu := range u {
		rs.Ptr[uu+1]++
	}
	for j := 0; j < nUsers; j++ {
		rs.Ptr[j+1] += rs.Ptr[j]
	}
	return rs
}
