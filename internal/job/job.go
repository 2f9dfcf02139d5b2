// Package job defines a training job as every part of cofactor sees it:
// the Spec that is submitted (CLI flags, HTTP API, raft log), the Result
// reported when it finishes (the JSON of CONTRACT.md), and the input
// loading that turns a Spec into a partitioned dataset.
package job

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/dataset"
	"github.com/cofactor-ml/cofactor/partition"
)

// Spec is a training job. Its JSON form travels through the HTTP API and
// the raft log, so field names are stable.
type Spec struct {
	// Input and Test are files every worker can read (a shared
	// filesystem); Dataset and TestDataset name datasets in the cluster's
	// store instead (cofactor dataset put), which the workers ingest
	// shard by shard. A job has Input or Dataset, not both.
	Input        string  `json:"input"`
	Test         string  `json:"test,omitempty"`
	Dataset      string  `json:"dataset,omitempty"`
	TestDataset  string  `json:"test_dataset,omitempty"`
	TestFraction float64 `json:"test_fraction"`
	// Folds > 0 holds out hash fold Fold of Folds of the input instead of
	// a fraction (cross-validation: cofactor tune --folds).
	Folds     int     `json:"folds,omitempty"`
	Fold      int     `json:"fold,omitempty"`
	Format    string  `json:"format"`
	OnBadLine string  `json:"on_bad_line"`
	Rank      int     `json:"rank"`
	Lambda    float64 `json:"lambda"`
	Implicit  bool    `json:"implicit"`
	Alpha     float64 `json:"alpha"`
	Solver    string  `json:"solver"`
	CGSteps   int     `json:"cg_steps"`
	// Biases adds the global mean and user and item biases (explicit);
	// NonNegative constrains the factors to be ≥ 0 (als.Config).
	Biases      bool `json:"biases,omitempty"`
	NonNegative bool `json:"nonnegative,omitempty"`
	// Columns names the user, item and rating columns of a Parquet input,
	// comma-separated ("" takes the first three).
	Columns    string `json:"columns,omitempty"`
	Iterations int    `json:"iterations"`
	Seed       uint64 `json:"seed"`
	// UserBlocks and ItemBlocks are the block counts; 0 means one per
	// live worker when the job is partitioned.
	UserBlocks int `json:"user_blocks"`
	ItemBlocks int `json:"item_blocks"`
	// Out is a snapshot directory to write at the end ("" for none). In a
	// cluster it must be reachable by the workers (shared filesystem).
	Out string `json:"out,omitempty"`
	// Cutoff is K of the ranking metrics (implicit).
	Cutoff int `json:"cutoff"`
	// Model names the model whose "latest" snapshot the job publishes.
	Model string `json:"model"`
	// Store is where checkpoints and the final snapshot go, a store URI
	// (checkpoint.ParseStoreURI): "" or "nats" for the cluster's JetStream
	// buckets, "nats://HOST:PORT" for another server's, "dir:PATH" for a
	// directory every worker and coordinator can reach.
	Store string `json:"store,omitempty"`
	// CheckpointEvery writes a checkpoint every this many iterations (0:
	// only the final snapshot). A lost worker resumes from the newest.
	CheckpointEvery int `json:"checkpoint_every"`
	// Keep is how many published snapshots of the model to retain.
	Keep int `json:"keep"`
	// WarmStart names a snapshot (in Store) whose factors start the rows
	// it knows, instead of random ones: a daily refresh converges in fewer
	// iterations. Rows it does not know start as usual.
	WarmStart string `json:"warm_start,omitempty"`
}

// DefaultSpec returns the defaults of `cofactor train` and `job submit`.
func DefaultSpec() Spec {
	c := als.DefaultConfig()
	return Spec{
		TestFraction:    0.1,
		Format:          string(partition.FormatAuto),
		OnBadLine:       "fail",
		Rank:            c.Rank,
		Lambda:          c.Lambda,
		Alpha:           c.Alpha,
		Solver:          string(c.Solver),
		CGSteps:         c.CGSteps,
		Iterations:      10,
		Seed:            42,
		Cutoff:          10,
		Model:           "default",
		CheckpointEvery: 1,
		Keep:            5,
	}
}

// ErrSpec is wrapped by Validate's errors: the job asks for something that
// cannot run, and nothing was done.
var ErrSpec = errors.New("invalid training spec")

// Limits on a spec.
const (
	MaxIterations = 10_000
	MaxBlocks     = 1 << 12
)

// ALS returns the solver configuration, with threads goroutines per block.
func (s Spec) ALS(threads int) als.Config {
	return als.Config{
		Rank: s.Rank, Lambda: s.Lambda, Implicit: s.Implicit, Alpha: s.Alpha,
		Solver: als.SolverKind(s.Solver), CGSteps: s.CGSteps, Threads: threads,
		Biases: s.Biases, NonNegative: s.NonNegative,
	}
}

// Width is the length of the job's factor rows: Rank, plus the two bias
// columns with Biases (als.Config.Width).
func (s Spec) Width() int { return s.ALS(0).Width() }

// ScanOptions returns the parser options of the spec's inputs.
func (s Spec) ScanOptions() (partition.ScanOptions, error) {
	f, err := partition.ParseFormat(s.Format)
	if err != nil {
		return partition.ScanOptions{}, err
	}
	p, err := partition.ParseBadLinePolicy(s.OnBadLine)
	if err != nil {
		return partition.ScanOptions{}, err
	}
	opts := partition.ScanOptions{Format: f, OnBadLine: p, Implicit: s.Implicit}
	if s.Columns != "" {
		opts.Columns = strings.Split(s.Columns, ",")
		for _, c := range opts.Columns {
			if c == "" {
				return partition.ScanOptions{}, fmt.Errorf("--columns %q: an empty column name", s.Columns)
			}
		}
	}
	return opts, nil
}

// Validate checks s and returns one error naming the first bad value.
func (s Spec) Validate() error {
	if err := s.ALS(0).Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrSpec, err)
	}
	if _, err := s.ScanOptions(); err != nil {
		return fmt.Errorf("%w: %w", ErrSpec, err)
	}
	switch {
	case s.Input == "" && s.Dataset == "":
		return fmt.Errorf("%w: no input file (--input)", ErrSpec)
	case s.Input != "" && s.Dataset != "":
		return fmt.Errorf("%w: --input and --dataset cannot be combined", ErrSpec)
	case s.Dataset != "" && s.Test != "":
		return fmt.Errorf("%w: a --dataset job takes its test set as --test-dataset NAME, not --test FILE", ErrSpec)
	case s.Input != "" && s.TestDataset != "":
		return fmt.Errorf("%w: --test-dataset goes with --dataset; an --input job takes --test FILE", ErrSpec)
	case s.Test != "" && s.TestFraction > 0:
		return fmt.Errorf("%w: --test and --test-fraction cannot be combined (set --test-fraction 0 with --test)", ErrSpec)
	case s.TestDataset != "" && s.TestFraction > 0:
		return fmt.Errorf("%w: --test-dataset and --test-fraction cannot be combined (set --test-fraction 0 with --test-dataset)", ErrSpec)
	case !(s.TestFraction >= 0 && s.TestFraction < 1):
		return fmt.Errorf("%w: test fraction %g outside [0, 1)", ErrSpec, s.TestFraction)
	case s.Folds < 0 || s.Folds > 1000 || (s.Folds > 0 && (s.Fold < 0 || s.Fold >= s.Folds)) || (s.Folds == 0 && s.Fold != 0):
		return fmt.Errorf("%w: fold %d of %d folds (want 0 ≤ fold < folds ≤ 1000)", ErrSpec, s.Fold, s.Folds)
	case s.Folds > 0 && (s.TestFraction > 0 || s.Test != "" || s.TestDataset != ""):
		return fmt.Errorf("%w: folds replace --test and --test-fraction (set --test-fraction 0)", ErrSpec)
	case s.Iterations < 1 || s.Iterations > MaxIterations:
		return fmt.Errorf("%w: iterations %d outside 1..%d", ErrSpec, s.Iterations, MaxIterations)
	case s.UserBlocks < 0 || s.UserBlocks > MaxBlocks || s.ItemBlocks < 0 || s.ItemBlocks > MaxBlocks:
		return fmt.Errorf("%w: blocks %d×%d outside 1..%d", ErrSpec, s.UserBlocks, s.ItemBlocks, MaxBlocks)
	case (s.UserBlocks == 0) != (s.ItemBlocks == 0):
		return fmt.Errorf("%w: give both block counts or neither", ErrSpec)
	case s.Cutoff < 1 || s.Cutoff > 1000:
		return fmt.Errorf("%w: ranking cutoff %d outside 1..1000", ErrSpec, s.Cutoff)
	case s.CheckpointEvery < 0:
		return fmt.Errorf("%w: checkpoint interval %d must be ≥ 0", ErrSpec, s.CheckpointEvery)
	case s.Keep < 1:
		return fmt.Errorf("%w: keep %d must be ≥ 1", ErrSpec, s.Keep)
	}
	for _, name := range []string{s.Dataset, s.TestDataset} {
		if name == "" {
			continue
		}
		if err := dataset.ValidName(name); err != nil {
			return fmt.Errorf("%w: %w", ErrSpec, err)
		}
	}
	if err := checkpoint.ValidID(s.Model); err != nil {
		return fmt.Errorf("%w: model: %w", ErrSpec, err)
	}
	if s.WarmStart != "" {
		if err := checkpoint.ValidID(s.WarmStart); err != nil {
			return fmt.Errorf("%w: warm start: %w", ErrSpec, err)
		}
	}
	switch u, err := checkpoint.ParseStoreURI(s.Store); {
	case err != nil:
		return fmt.Errorf("%w: store: %w", ErrSpec, err)
	case u.Bare:
		return fmt.Errorf("%w: store %q (want nats, nats://HOST:PORT or dir:PATH)", ErrSpec, s.Store)
	}
	return nil
}

// LoadDataset reads the spec's input (and test file) and builds the
// dataset. It returns the number of bad lines skipped. Input errors are
// partition's (*LineError, ErrEmpty, ErrFormat) or the file system's.
// Large files are parsed by every CPU in byte ranges
// (partition.ReadFileParallel), with the sequential parse's result.
func LoadDataset(ctx context.Context, s Spec) (*partition.Dataset, int64, error) {
	opts, err := s.ScanOptions()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	if s.Input == "" {
		return nil, 0, fmt.Errorf("%w: no input file to load (a --dataset job is ingested by the workers)", ErrSpec)
	}
	threads := runtime.GOMAXPROCS(0)
	train, st, err := partition.ReadFileParallel(ctx, s.Input, opts, threads)
	if err != nil {
		return nil, 0, err
	}
	skipped := st.Skipped
	var test *partition.Builder
	if s.Test != "" {
		tb, tst, err := partition.ReadFileParallel(ctx, s.Test, opts, threads)
		if err != nil {
			return nil, 0, err
		}
		test = tb
		skipped += tst.Skipped
	}
	ds, err := partition.NewDataset(train, test, partition.SplitOptions{TestFraction: s.TestFraction, Seed: s.Seed, Folds: s.Folds, Fold: s.Fold})
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", s.Input, err)
	}
	return ds, skipped, nil
}

// IsInputError reports whether err is the caller's fault (bad spec, bad
// or missing input): exit code 2 rather than 1.
func IsInputError(err error) bool {
	for _, target := range []error{
		partition.ErrBadLine, partition.ErrEmpty, partition.ErrFormat, ErrSpec, als.ErrConfig, fs.ErrNotExist,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
