// Package train runs one training job in this process: it loads and
// splits the ratings, lays them out in blocks, alternates block updates
// side by side, evaluates, and writes the factors. It is the job logic the
// cluster runs too: a phase here is the same als.Solver.UpdateBlock call on
// the same partition.Block that a worker makes, with the other side's rows
// gathered in the block's routing order.
package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/partition"
)

// Spec is a training job.
type Spec struct {
	Input        string
	Test         string  // a test file; or
	TestFraction float64 // a hashed fraction of Input held out
	Format       partition.Format
	OnBadLine    partition.BadLinePolicy
	ALS          als.Config
	Iterations   int
	Seed         uint64
	UserBlocks   int
	ItemBlocks   int
	Out          string // snapshot directory to write, or ""
	Cutoff       int    // K of the ranking metrics
	JobID        string
}

// DefaultSpec returns the defaults of `cofactor train`.
func DefaultSpec() Spec {
	return Spec{
		Format:       partition.FormatAuto,
		ALS:          als.DefaultConfig(),
		TestFraction: 0.1,
		Iterations:   10,
		Seed:         42,
		UserBlocks:   1,
		ItemBlocks:   1,
		Cutoff:       10,
	}
}

// ErrSpec is wrapped by Validate's errors: the job was asked for something
// that cannot run, and nothing was done.
var ErrSpec = errors.New("invalid training spec")

// MaxIterations and MaxBlocks bound a spec.
const (
	MaxIterations = 10_000
	MaxBlocks     = 1 << 16
)

// Validate checks s.
func (s Spec) Validate() error {
	if err := s.ALS.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrSpec, err)
	}
	switch {
	case s.Input == "":
		return fmt.Errorf("%w: no input file (--input)", ErrSpec)
	case s.Test != "" && s.TestFraction > 0:
		return fmt.Errorf("%w: --test and --test-fraction cannot be combined (set --test-fraction 0 with --test)", ErrSpec)
	case !(s.TestFraction >= 0 && s.TestFraction < 1):
		return fmt.Errorf("%w: test fraction %g outside [0, 1)", ErrSpec, s.TestFraction)
	case s.Iterations < 1 || s.Iterations > MaxIterations:
		return fmt.Errorf("%w: iterations %d outside 1..%d", ErrSpec, s.Iterations, MaxIterations)
	case s.UserBlocks < 1 || s.UserBlocks > MaxBlocks || s.ItemBlocks < 1 || s.ItemBlocks > MaxBlocks:
		return fmt.Errorf("%w: blocks %d×%d outside 1..%d", ErrSpec, s.UserBlocks, s.ItemBlocks, MaxBlocks)
	case s.Cutoff < 1:
		return fmt.Errorf("%w: ranking cutoff %d must be ≥ 1", ErrSpec, s.Cutoff)
	}
	if _, err := partition.ParseFormat(string(s.Format)); err != nil {
		return fmt.Errorf("%w: %w", ErrSpec, err)
	}
	return nil
}

// Iteration is one entry of a job's history.
type Iteration struct {
	Iteration int      `json:"iteration"`
	TrainRMSE *float64 `json:"train_rmse"`
	TestRMSE  *float64 `json:"test_rmse"`
	Seconds   float64  `json:"seconds"`
}

// Result is the JSON of a finished training (CONTRACT.md).
type Result struct {
	JobID               string      `json:"job_id"`
	State               string      `json:"state"`
	Rank                int         `json:"rank"`
	Lambda              float64     `json:"lambda"`
	Alpha               *float64    `json:"alpha,omitempty"`
	Iterations          int         `json:"iterations"`
	Implicit            bool        `json:"implicit"`
	Solver              string      `json:"solver"`
	Users               int         `json:"users"`
	Items               int         `json:"items"`
	UserBlocks          int         `json:"user_blocks"`
	ItemBlocks          int         `json:"item_blocks"`
	TrainRatings        int64       `json:"train_ratings"`
	TestRatings         int64       `json:"test_ratings"`
	TestSkipped         int64       `json:"test_skipped"`
	SkippedLines        int64       `json:"skipped_lines"`
	Duplicates          int64       `json:"duplicates"`
	TrainRMSE           *float64    `json:"train_rmse"`
	TestRMSE            *float64    `json:"test_rmse"`
	TestMAE             *float64    `json:"test_mae,omitempty"`
	PrecisionAt10       *float64    `json:"precision_at_10"`
	NDCGAt10            *float64    `json:"ndcg_at_10"`
	Seconds             float64     `json:"seconds"`
	LoadSeconds         float64     `json:"load_seconds"`
	SecondsPerIteration float64     `json:"seconds_per_iteration"`
	History             []Iteration `json:"history"`
	Snapshot            string      `json:"snapshot"`
}

// Model is the trained factors with their external IDs.
type Model struct {
	Users, Items *partition.Dict
	Rank         int
	X, Y         []float32
	// Train is each user's training items (for excluding them from
	// recommendations).
	Train partition.CSR
}

// Progress is called after each iteration.
type Progress func(it Iteration, total int)

// Run trains spec. Errors from the input (bad lines, empty input, unknown
// format, missing file) and from Validate are returned as they are, so the
// caller can tell input errors (partition's and ErrSpec) from failures.
func Run(ctx context.Context, spec Spec, progress Progress) (*Result, *Model, error) {
	if err := spec.Validate(); err != nil {
		return nil, nil, err
	}
	if spec.Out != "" {
		if err := checkpoint.CheckTarget(spec.Out); err != nil {
			return nil, nil, fmt.Errorf("%w: --out: %w", ErrSpec, err)
		}
	}
	start := time.Now()
	ds, skipped, err := load(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	loadSeconds := time.Since(start).Seconds()
	layout, err := partition.NewLayout(ds, spec.UserBlocks, spec.ItemBlocks)
	if err != nil {
		return nil, nil, err
	}
	cfg := spec.ALS
	k := cfg.Rank
	m := &Model{Users: ds.Users, Items: ds.Items, Rank: k, Train: ds.ByUser}
	m.X = initFactors(ds.Users, k, spec.Seed, als.UserSide)
	m.Y = initFactors(ds.Items, k, spec.Seed, als.ItemSide)

	res := &Result{
		JobID: spec.JobID, Rank: k, Lambda: cfg.Lambda, Iterations: spec.Iterations,
		Implicit: cfg.Implicit, Solver: string(cfg.Solver),
		Users: ds.Users.Len(), Items: ds.Items.Len(),
		UserBlocks: len(layout.UserBlocks), ItemBlocks: len(layout.ItemBlocks),
		TrainRatings: ds.ByUser.NNZ(), TestRatings: ds.Test.Total, TestSkipped: ds.Test.Skipped,
		SkippedLines: skipped, Duplicates: ds.Duplicates,
		LoadSeconds: loadSeconds,
	}
	if cfg.Implicit {
		a := cfg.Alpha
		res.Alpha = &a
	}
	solver, err := als.NewSolver(cfg)
	if err != nil {
		return nil, nil, err
	}
	ph := &phaser{solver: solver, layout: layout, k: k, threads: cfg.Threads}
	var iterSeconds float64
	for t := 1; t <= spec.Iterations; t++ {
		t0 := time.Now()
		if _, err := ph.run(ctx, partition.Users, m.X, m.Y); err != nil {
			return nil, nil, err
		}
		st, err := ph.run(ctx, partition.Items, m.Y, m.X)
		if err != nil {
			return nil, nil, err
		}
		it := Iteration{Iteration: t, Seconds: time.Since(t0).Seconds()}
		iterSeconds += it.Seconds
		if !cfg.Implicit {
			it.TrainRMSE = ptr(math.Sqrt(st.SSE / float64(max(st.Ratings, 1))))
			if len(ds.Test.R) > 0 {
				rmse, _ := als.Errors(ds.Test.U, ds.Test.I, ds.Test.R, m.X, m.Y, k)
				it.TestRMSE = ptr(rmse)
			}
		}
		res.History = append(res.History, it)
		if progress != nil {
			progress(it, spec.Iterations)
		}
	}
	res.SecondsPerIteration = iterSeconds / float64(spec.Iterations)
	last := res.History[len(res.History)-1]
	res.TrainRMSE, res.TestRMSE = last.TrainRMSE, last.TestRMSE
	if !cfg.Implicit && len(ds.Test.R) > 0 {
		_, mae := als.Errors(ds.Test.U, ds.Test.I, ds.Test.R, m.X, m.Y, k)
		res.TestMAE = ptr(mae)
	}
	if cfg.Implicit && len(ds.Test.R) > 0 {
		rk := als.Ranking(als.RankingInput{
			X: m.X, Y: m.Y, Rank: k,
			Train:  als.Rows{Ptr: ds.ByUser.Ptr, Col: ds.ByUser.Col},
			Test:   testRows(ds),
			Cutoff: spec.Cutoff, Threads: threads(cfg.Threads),
		})
		res.PrecisionAt10, res.NDCGAt10 = ptr(rk.Precision), ptr(rk.NDCG)
	}
	if spec.Out != "" {
		if err := writeSnapshot(spec, res, m); err != nil {
			return nil, nil, fmt.Errorf("writing %s: %w", spec.Out, err)
		}
		res.Snapshot = spec.Out
	}
	res.State = "succeeded"
	res.Seconds = time.Since(start).Seconds()
	return res, m, nil
}

func ptr(v float64) *float64 { return &v }

func threads(n int) int {
	if n > 0 {
		return n
	}
	return runtime.GOMAXPROCS(0)
}

// load reads the training (and test) input and builds the dataset. It
// returns the number of skipped bad lines.
func load(ctx context.Context, spec Spec) (*partition.Dataset, int64, error) {
	opts := partition.ScanOptions{Format: spec.Format, OnBadLine: spec.OnBadLine, Implicit: spec.ALS.Implicit}
	train, st, err := partition.ReadFile(ctx, spec.Input, opts)
	if err != nil {
		return nil, 0, err
	}
	skipped := st.Skipped
	var test *partition.Builder
	if spec.Test != "" {
		tb, tst, err := partition.ReadFile(ctx, spec.Test, opts)
		if err != nil {
			return nil, 0, err
		}
		test = tb
		skipped += tst.Skipped
	}
	ds, err := partition.NewDataset(train, test, partition.SplitOptions{TestFraction: spec.TestFraction, Seed: spec.Seed})
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", spec.Input, err)
	}
	return ds, skipped, nil
}

func initFactors(d *partition.Dict, k int, seed uint64, side als.Side) []float32 {
	f := make([]float32, d.Len()*k)
	for i, id := range d.IDs() {
		als.InitRow(f[i*k:i*k+k], seed, side, id)
	}
	return f
}

// testRows is the test set as rows by user (items only).
func testRows(ds *partition.Dataset) als.Rows {
	ptr := make([]int64, ds.Users.Len()+1)
	for _, u := range ds.Test.U {
		ptr[u+1]++
	}
	for u := 0; u < ds.Users.Len(); u++ {
		ptr[u+1] += ptr[u]
	}
	// Test triplets are sorted by user, so ds.Test.I is already in row order.
	return als.Rows{Ptr: ptr, Col: ds.Test.I}
}

// phaser runs phases: every block of one side updated against the other
// side's current rows.
type phaser struct {
	solver  *als.Solver
	layout  *partition.Layout
	k       int
	threads int
	gather  []float32
	gram    []float64
}

// run updates every block of side (factors self) from the other side's
// factors other, and returns the summed block statistics.
func (p *phaser) run(ctx context.Context, side partition.Side, self, other []float32) (als.BlockStats, error) {
	k := p.k
	var yty []float64
	if p.solver.Config().Implicit {
		yty = p.otherGram(side.Other(), other)
	}
	var total als.BlockStats
	for _, b := range p.layout.Blocks(side) {
		need := len(b.Needed) * k
		if cap(p.gather) < need {
			p.gather = make([]float32, need)
		}
		g := p.gather[:need]
		for j, r := range b.Needed {
			copy(g[j*k:j*k+k], other[int(r)*k:int(r)*k+k])
		}
		st, err := p.solver.UpdateBlock(ctx, als.BlockUpdate{
			Rows:  als.Rows{Ptr: b.Rows.Ptr, Col: b.Rows.Col, Val: b.Rows.Val},
			Other: g,
			YtY:   yty,
			X:     self[int(b.Start)*k : int(b.End())*k],
			Loss:  side == partition.Items, // the iteration's training loss
		})
		if err != nil {
			return total, fmt.Errorf("%s block %d: %w", side, b.Index, err)
		}
		total.Rows += st.Rows
		total.Ratings += st.Ratings
		total.SSE += st.SSE
	}
	return total, nil
}

// otherGram sums YᵀY over the blocks of side s in block order, as each
// block's owner would publish it.
func (p *phaser) otherGram(s partition.Side, f []float32) []float64 {
	k := p.k
	if p.gram == nil {
		p.gram = make([]float64, k*k)
	}
	clear(p.gram)
	part := make([]float64, k*k)
	bounds := p.layout.Bounds(s)
	for b := 0; b+1 < len(bounds); b++ {
		als.Gram(f[int(bounds[b])*k:int(bounds[b+1])*k], k, threads(p.threads), part)
		for i, v := range part {
			p.gram[i] += v
		}
	}
	return p.gram
}

// writeSnapshot writes the model to spec.Out.
func writeSnapshot(spec Spec, res *Result, m *Model) error {
	metrics := map[string]float64{}
	for name, v := range map[string]*float64{
		"train_rmse": res.TrainRMSE, "test_rmse": res.TestRMSE,
		"precision_at_10": res.PrecisionAt10, "ndcg_at_10": res.NDCGAt10,
	} {
		if v != nil {
			metrics[name] = *v
		}
	}
	s := &checkpoint.Snapshot{
		Manifest: checkpoint.Manifest{
			Model: "default", Job: res.JobID, Iteration: spec.Iterations,
			Rank: m.Rank, Implicit: spec.ALS.Implicit, Lambda: spec.ALS.Lambda, Metrics: metrics,
		},
		UserIDs: m.Users.IDs(), ItemIDs: m.Items.IDs(), X: m.X, Y: m.Y,
	}
	if spec.ALS.Implicit {
		s.Manifest.Alpha = spec.ALS.Alpha
	}
	return checkpoint.WriteDir(spec.Out, s)
}
