package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/cofactor-ml/cofactor/allinone"
	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// trainOptions are the training flags shared by `train` and `job submit`.
type trainOptions struct {
	spec     job.Spec
	blocks   string
	json     bool
	specFile string
}

func newTrainOptions() *trainOptions {
	return &trainOptions{spec: job.DefaultSpec()}
}

// addFlags registers the training flags on cmd.
func (o *trainOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	sp := &o.spec
	f.StringVar(&sp.Input, "input", "", "ratings file (training data)")
	f.StringVar(&sp.Test, "test", "", "test ratings file (then --test-fraction defaults to 0)")
	f.Float64Var(&sp.TestFraction, "test-fraction", sp.TestFraction, "fraction of --input held out for testing, chosen by a hash of (seed, user, item); 0 trains on everything")
	f.StringVar(&sp.Format, "format", sp.Format, "input format: auto, csv, tsv, movielens, mm or parquet")
	f.StringVar(&sp.Columns, "columns", "", "Parquet input: the user,item,rating column names (default: the first three)")
	f.StringVar(&sp.OnBadLine, "on-bad-line", sp.OnBadLine, "fail or skip (skipped lines are counted)")
	f.IntVar(&sp.Rank, "rank", sp.Rank, "number of latent factors")
	f.Float64Var(&sp.Lambda, "lambda", sp.Lambda, "regularisation; explicit: scaled by each row's rating count (ALS-WR; real ratings want ~0.05-0.1), implicit: plain (typical 1-100)")
	f.IntVar(&sp.Iterations, "iterations", sp.Iterations, "ALS iterations (each solves users, then items)")
	f.BoolVar(&sp.Implicit, "implicit", false, "implicit feedback (Hu-Koren-Volinsky): ratings are interaction strengths")
	f.Float64Var(&sp.Alpha, "alpha", sp.Alpha, "implicit confidence: c = 1 + alpha*r")
	f.BoolVar(&sp.Biases, "biases", false, "explicit model with a global mean and user and item biases (r = mu + b_u + c_i + x.y)")
	f.BoolVar(&sp.NonNegative, "nonnegative", false, "non-negative factors (non-negative least squares per row; cholesky solver)")
	f.StringVar(&sp.Solver, "solver", sp.Solver, "row solver: cholesky (exact), cg (conjugate gradient, warm-started) or auto (cg for --implicit, else cholesky)")
	f.IntVar(&sp.CGSteps, "cg-steps", sp.CGSteps, "conjugate-gradient steps per row (--solver cg)")
	f.Uint64Var(&sp.Seed, "seed", sp.Seed, "seed of the initial factors and of the test split")
	f.StringVar(&o.blocks, "blocks", "", "user×item blocks: P (P×P) or PxQ (default: one per worker; a --dataset job splits the side with fewer rows finer when that shrinks what a block gathers)")
	f.IntVar(&sp.Cutoff, "k", sp.Cutoff, "cut-off of the ranking metrics (implicit)")
	f.StringVar(&sp.Out, "out", "", "also copy the final snapshot to this directory (in a cluster: a path the workers can write)")
	f.StringVar(&sp.Model, "model", sp.Model, "model name: the final snapshot becomes this model's latest")
	f.StringVar(&sp.Store, "store", sp.Store, "snapshot store: nats (the cluster's JetStream, default), nats://HOST:PORT[/MODEL] or dir:PATH (a directory every process reaches)")
	f.IntVar(&sp.CheckpointEvery, "checkpoint-every", sp.CheckpointEvery, "write a checkpoint every N iterations (0: only the final snapshot); a lost worker resumes from the newest")
	f.IntVar(&sp.Keep, "keep", sp.Keep, "published snapshots of the model to keep")
	f.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	f.StringVar(&o.specFile, "spec", "", "JSON job spec (as tune --emit-spec writes) whose values the other flags override")
}

// addDatasetFlags registers the flags of a cluster job's input in the
// cluster's store (job submit, schedule add; train reads local files).
func (o *trainOptions) addDatasetFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.spec.Dataset, "dataset", "", "dataset to train on, stored with `cofactor dataset put` (instead of --input)")
	f.StringVar(&o.spec.TestDataset, "test-dataset", "", "dataset of test ratings (with --dataset; then --test-fraction defaults to 0)")
}

// resolve completes the spec from the flags and checks it.
func (o *trainOptions) resolve(cmd *cobra.Command) (job.Spec, error) {
	if o.specFile != "" {
		if err := o.loadSpec(cmd); err != nil {
			return o.spec, err
		}
	}
	sp := o.spec
	if o.blocks != "" {
		var err error
		if sp.UserBlocks, sp.ItemBlocks, err = parseBlocks(o.blocks); err != nil {
			return sp, cli.Usage(err)
		}
	}
	if (sp.Test != "" || sp.TestDataset != "") && !cmd.Flags().Changed("test-fraction") {
		sp.TestFraction = 0
	}
	if err := trainingStore(cmd, &sp); err != nil { // store.go: the store URIs of every command
		return sp, err
	}
	if err := sp.Validate(); err != nil {
		return sp, err
	}
	return sp, nil
}

// loadSpec makes the JSON job spec of --spec FILE (what tune --emit-spec
// writes) the base of the flags: every training flag given on the command
// line still wins over the file's value.
func (o *trainOptions) loadSpec(cmd *cobra.Command) error {
	data, err := os.ReadFile(o.specFile)
	if err != nil {
		return cli.Usage(fmt.Errorf("--spec: %w", err))
	}
	fileSpec := job.DefaultSpec()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fileSpec); err != nil {
		return cli.Usagef("--spec %s: not a job spec: %v", o.specFile, err)
	}
	// The flags write into o.spec: keep the values given, load the file,
	// then give them again.
	given := map[*pflag.Flag]string{}
	cmd.Flags().Visit(func(f *pflag.Flag) { given[f] = f.Value.String() })
	o.spec = fileSpec
	for f, v := range given {
		if err := f.Value.Set(v); err != nil {
			return cli.Usage(fmt.Errorf("--%s: %w", f.Name, err))
		}
	}
	return nil
}

// parseBlocks reads "P" or "PxQ".
func parseBlocks(s string) (int, int, error) {
	ps, qs, two := strings.Cut(strings.ToLower(s), "x")
	p, err := strconv.Atoi(ps)
	if err != nil || p < 1 {
		return 0, 0, fmt.Errorf("--blocks %q: want P or PxQ with positive integers", s)
	}
	if !two {
		return p, p, nil
	}
	q, err := strconv.Atoi(qs)
	if err != nil || q < 1 {
		return 0, 0, fmt.Errorf("--blocks %q: want P or PxQ with positive integers", s)
	}
	return p, q, nil
}

func newTrainCmd(s streams) *cobra.Command {
	o := newTrainOptions()
	var workers int
	var models string
	cmd := &cobra.Command{
		Use:   "train --input FILE [--test FILE | --test-fraction F] [flags]",
		Short: "Train a model on an all-in-one cluster in this process",
		Long: `train runs a whole cluster in this process — an embedded NATS server, a
single-node raft coordinator and --workers workers — and trains one job on it:
the same engine, messages and phases as a multi-machine cluster. With
--workers 1 it runs the job directly: the same blocks, row solves, figures and
snapshot as a one-worker cluster, without the machinery only several workers
need (about half the memory).`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := o.resolve(cmd)
			if err != nil {
				return err
			}
			kept := ""
			if spec.Out != "" {
				if err := checkpoint.CheckTarget(spec.Out); err != nil {
					return cli.Usage(fmt.Errorf("--out: %w", err))
				}
			} else {
				// The embedded cluster's store goes with the process: keep
				// the model where the user can find it again.
				if models == "" {
					return cli.Usagef("--models: no directory (set --models DIR, $%s or $HOME)", EnvModels)
				}
				if err := os.MkdirAll(models, 0o755); err != nil {
					return fmt.Errorf("--models: %w", err)
				}
				if kept, err = os.MkdirTemp(models, ".training-"); err != nil {
					return fmt.Errorf("--models: %w", err)
				}
				defer os.RemoveAll(kept) // gone once renamed into place
				spec.Out = kept
			}
			res, err := runLocal(cmd.Context(), spec, workers, progressPrinter(s.err))
			if err != nil {
				return err
			}
			if kept != "" {
				if err := keepModel(cmd.Context(), models, kept, spec.Model, res); err != nil {
					return err
				}
			}
			if o.json {
				return cli.WriteJSON(s.out, res)
			}
			printResult(s.out, res)
			return nil
		},
	}
	o.addFlags(cmd)
	cmd.Flags().IntVar(&workers, "workers", 0, "in-process workers (default: one per CPU; 1 trains without the embedded cluster)")
	cmd.Flags().StringVar(&models, "models", defaultModelsDir(), "without --out, keep the model here as DIR/SNAPSHOT_ID and make it the latest of --model (a store: --store dir:DIR; default $"+EnvModels+" or ~/.local/share/cofactor/models)")
	return cmd
}

// EnvModels names the directory train keeps models in without --out.
const EnvModels = "COFACTOR_MODELS"

// defaultModelsDir is $COFACTOR_MODELS, else $XDG_DATA_HOME/cofactor/models,
// else ~/.local/share/cofactor/models ("" when there is no home).
func defaultModelsDir() string {
	if d := os.Getenv(EnvModels); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "cofactor", "models")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "cofactor", "models")
	}
	return ""
}

// keepModel renames the snapshot train wrote to tmp into the models
// directory under its ID, makes it the model's latest there, and points
// the result at it.
func keepModel(ctx context.Context, models, tmp, model string, res *job.Result) error {
	id := res.SnapshotID
	if id == "" {
		return errors.New("the job named no snapshot to keep")
	}
	dst := filepath.Join(models, id)
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("keeping the model: %w", err)
	}
	repo, _ := checkpoint.OpenDir(models)
	if err := repo.Publish(ctx, model, id); err != nil {
		return fmt.Errorf("keeping the model: %w", err)
	}
	res.Snapshot = dst
	return nil
}

// runLocal trains spec on an all-in-one cluster of the given size (with
// one worker, directly: allinone.Train). A job that fails on its input is
// a usage error (exit 2).
func runLocal(ctx context.Context, spec job.Spec, workers int, progress func(job.Iteration, int)) (*job.Result, error) {
	if workers < 0 {
		return nil, cli.Usagef("--workers %d must be ≥ 0", workers)
	}
	reported := 0
	res, err := allinone.Train(ctx, spec, allinone.Options{Workers: workers}, func(r job.Result) {
		for progress != nil && reported < len(r.History) {
			progress(r.History[reported], spec.Iterations)
			reported++
		}
	})
	var je *allinone.JobError
	if errors.As(err, &je) && je.IsInput() {
		return nil, cli.Usage(err)
	}
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// progressPrinter returns a per-iteration progress line writer when w is a
// terminal, and nil otherwise (scripts read the JSON, not stderr).
func progressPrinter(w io.Writer) func(job.Iteration, int) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(it job.Iteration, total int) {
		line := fmt.Sprintf("iteration %d/%d  %.2f s", it.Iteration, total, it.Seconds)
		if it.TrainRMSE != nil {
			line += fmt.Sprintf("  train RMSE %.4f", *it.TrainRMSE)
		}
		if it.TestRMSE != nil {
			line += fmt.Sprintf("  test RMSE %.4f", *it.TestRMSE)
		}
		fmt.Fprintln(w, line)
	}
}

// progressPhase says what a running job is doing.
func progressPhase(p *job.Progress, iterations int) string {
	if p.Iteration == 0 {
		return p.Phase + " phase"
	}
	return fmt.Sprintf("iteration %d of %d, %s phase", p.Iteration, iterations, p.Phase)
}

// timeLeft says how long a running job should take still.
func timeLeft(p *job.Progress, perIteration float64) string {
	if p.RemainingSeconds == nil {
		return "time left known after the first iteration"
	}
	return fmt.Sprintf("about %.1f s left at %.3f s/iteration", *p.RemainingSeconds, perIteration)
}

// printResult is the human form of a result: a trained model's figures,
// or where a job that has not succeeded stands.
func printResult(w io.Writer, r *job.Result) {
	model := "explicit"
	if r.Implicit {
		model = fmt.Sprintf("implicit (alpha %g)", *r.Alpha)
	}
	if r.Biases {
		model += fmt.Sprintf(" with biases (mean %.4g)", *r.GlobalMean)
	}
	if r.NonNegative {
		model += ", non-negative"
	}
	done := len(r.History)
	verb, after := "trained", ""
	if r.State != job.StateSucceeded {
		// Not a trained model (yet): say where it stands, and that the
		// errors are those of the last completed iteration.
		verb, after = "training", fmt.Sprintf(" after iteration %d", done)
		if job.Finished(r.State) {
			verb = "unfinished"
		}
	}
	fmt.Fprintf(w, "%s %s model: %d users × %d items, %d ratings, rank %d, lambda %g, %s solver, %d workers, %d×%d blocks\n",
		verb, model, r.Users, r.Items, r.TrainRatings, r.Rank, r.Lambda, r.Solver, r.Workers, r.UserBlocks, r.ItemBlocks)
	switch p := r.Progress; {
	case r.State == job.StateSucceeded:
		fmt.Fprintf(w, "%d iterations in %.2f s (%.3f s/iteration; loading %.2f s)\n",
			r.Iterations, r.Seconds, r.SecondsPerIteration, r.LoadSeconds)
	case p != nil:
		fmt.Fprintf(w, "running: %s; %d of %d iterations done (%.0f%%), %.2f s elapsed, %s\n",
			progressPhase(p, r.Iterations), done, r.Iterations, 100*p.Done, p.ElapsedSeconds, timeLeft(p, r.SecondsPerIteration))
	default:
		fmt.Fprintf(w, "%s after %d of %d iterations, %.2f s\n", r.State, done, r.Iterations, r.Seconds)
	}
	if r.Duplicates > 0 || r.SkippedLines > 0 {
		fmt.Fprintf(w, "input: %d duplicate pairs (last kept), %d bad lines skipped\n", r.Duplicates, r.SkippedLines)
	}
	if r.TrainRMSE != nil {
		fmt.Fprintf(w, "train RMSE %.4f%s\n", *r.TrainRMSE, after)
	}
	if r.TestRMSE != nil {
		mae := ""
		if r.TestMAE != nil {
			mae = fmt.Sprintf(", MAE %.4f", *r.TestMAE)
		}
		fmt.Fprintf(w, "test RMSE  %.4f%s over %d test ratings (%d skipped: user or item not in training)%s\n",
			*r.TestRMSE, mae, r.TestRatings-r.TestSkipped, r.TestSkipped, after)
	}
	if r.PrecisionAt10 != nil {
		fmt.Fprintf(w, "precision@10 %.4f  NDCG@10 %.4f over %d test ratings (%d skipped)\n",
			*r.PrecisionAt10, *r.NDCGAt10, r.TestRatings-r.TestSkipped, r.TestSkipped)
	}
	if r.Snapshot != "" {
		fmt.Fprintf(w, "snapshot written to %s\n", r.Snapshot)
	}
	if models, id := filepath.Dir(r.Snapshot), r.SnapshotID; r.State == job.StateSucceeded && id != "" && filepath.Base(r.Snapshot) == id {
		// Kept in a models directory: how to find it again.
		fmt.Fprintf(w, "use it: cofactor recommend --snapshot %s --user ID · cofactor snapshot list --store dir:%s\n", r.Snapshot, models)
	}
}
