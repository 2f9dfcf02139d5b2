package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/internal/train"
	"github.com/cofactor-ml/cofactor/partition"
)

// trainOptions are the training flags shared by `train` (and later `job
// submit` and schedules).
type trainOptions struct {
	spec      train.Spec
	format    string
	onBadLine string
	solver    string
	blocks    string
	json      bool
}

func newTrainOptions() *trainOptions {
	return &trainOptions{spec: train.DefaultSpec(), format: "auto", onBadLine: "fail", solver: string(als.SolverCholesky), blocks: "1"}
}

// addFlags registers the training flags on cmd.
func (o *trainOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	sp := &o.spec
	f.StringVar(&sp.Input, "input", "", "ratings file (training data)")
	f.StringVar(&sp.Test, "test", "", "test ratings file (then --test-fraction defaults to 0)")
	f.Float64Var(&sp.TestFraction, "test-fraction", sp.TestFraction, "fraction of --input held out for testing, chosen by a hash of (seed, user, item); 0 trains on everything")
	f.StringVar(&o.format, "format", o.format, "input format: auto, csv, tsv, movielens or mm")
	f.StringVar(&o.onBadLine, "on-bad-line", o.onBadLine, "fail or skip (skipped lines are counted)")
	f.IntVar(&sp.ALS.Rank, "rank", sp.ALS.Rank, "number of latent factors")
	f.Float64Var(&sp.ALS.Lambda, "lambda", sp.ALS.Lambda, "regularisation; explicit: scaled by each row's rating count (ALS-WR; real ratings want ~0.05-0.1), implicit: plain (typical 1-100)")
	f.IntVar(&sp.Iterations, "iterations", sp.Iterations, "ALS iterations (each solves users, then items)")
	f.BoolVar(&sp.ALS.Implicit, "implicit", false, "implicit feedback (Hu-Koren-Volinsky): ratings are interaction strengths")
	f.Float64Var(&sp.ALS.Alpha, "alpha", sp.ALS.Alpha, "implicit confidence: c = 1 + alpha*r")
	f.StringVar(&o.solver, "solver", o.solver, "row solver: cholesky (exact) or cg (conjugate gradient, warm-started)")
	f.IntVar(&sp.ALS.CGSteps, "cg-steps", sp.ALS.CGSteps, "conjugate-gradient steps per row (--solver cg)")
	f.Uint64Var(&sp.Seed, "seed", sp.Seed, "seed of the initial factors and of the test split")
	f.IntVar(&sp.ALS.Threads, "workers", 0, "parallel row solvers (default: number of CPUs)")
	f.StringVar(&o.blocks, "blocks", o.blocks, "user×item blocks: P (P×P) or PxQ")
	f.IntVar(&sp.Cutoff, "k", sp.Cutoff, "cut-off of the ranking metrics (implicit)")
	f.BoolVar(&o.json, "json", false, "print the result as one JSON object")
}

// resolve turns the string flags into the spec and checks it.
func (o *trainOptions) resolve(cmd *cobra.Command) (train.Spec, error) {
	sp := o.spec
	var err error
	if sp.Format, err = partition.ParseFormat(o.format); err != nil {
		return sp, usageError{err}
	}
	if sp.OnBadLine, err = partition.ParseBadLinePolicy(o.onBadLine); err != nil {
		return sp, usageError{err}
	}
	sp.ALS.Solver = als.SolverKind(o.solver)
	if sp.UserBlocks, sp.ItemBlocks, err = parseBlocks(o.blocks); err != nil {
		return sp, usageError{err}
	}
	if sp.Test != "" && !cmd.Flags().Changed("test-fraction") {
		sp.TestFraction = 0
	}
	if err := sp.Validate(); err != nil {
		return sp, err
	}
	return sp, nil
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
	var out string
	cmd := &cobra.Command{
		Use:   "train --input FILE [--test FILE | --test-fraction F] [flags]",
		Short: "Train a model in this process",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := o.resolve(cmd)
			if err != nil {
				return err
			}
			spec.Out = out
			spec.JobID = "local-" + time.Now().UTC().Format("20060102T150405.000Z")
			res, _, err := train.Run(cmd.Context(), spec, progressPrinter(s.err))
			if err != nil {
				return err
			}
			if o.json {
				return writeJSON(s.out, res)
			}
			printResult(s.out, res)
			return nil
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&out, "out", "", "write the factors to this snapshot directory")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	return enc.Encode(v)
}

// progressPrinter returns a per-iteration progress line writer when w is a
// terminal, and nil otherwise (scripts read the JSON, not stderr).
func progressPrinter(w io.Writer) train.Progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(it train.Iteration, total int) {
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

func printResult(w io.Writer, r *train.Result) {
	model := "explicit"
	if r.Implicit {
		model = fmt.Sprintf("implicit (alpha %g)", *r.Alpha)
	}
	fmt.Fprintf(w, "trained %s model: %d users × %d items, %d ratings, rank %d, lambda %g, %s solver\n",
		model, r.Users, r.Items, r.TrainRatings, r.Rank, r.Lambda, r.Solver)
	fmt.Fprintf(w, "%d iterations in %.2f s (%.3f s/iteration; loading %.2f s)\n",
		r.Iterations, r.Seconds, r.SecondsPerIteration, r.LoadSeconds)
	if r.Duplicates > 0 || r.SkippedLines > 0 {
		fmt.Fprintf(w, "input: %d duplicate pairs (last kept), %d bad lines skipped\n", r.Duplicates, r.SkippedLines)
	}
	if r.TrainRMSE != nil {
		fmt.Fprintf(w, "train RMSE %.4f\n", *r.TrainRMSE)
	}
	if r.TestRMSE != nil {
		fmt.Fprintf(w, "test RMSE  %.4f, MAE %.4f over %d test ratings (%d skipped: user or item not in training)\n",
			*r.TestRMSE, *r.TestMAE, r.TestRatings-r.TestSkipped, r.TestSkipped)
	}
	if r.PrecisionAt10 != nil {
		fmt.Fprintf(w, "precision@10 %.4f  NDCG@10 %.4f over %d test ratings (%d skipped)\n",
			*r.PrecisionAt10, *r.NDCGAt10, r.TestRatings-r.TestSkipped, r.TestSkipped)
	}
	if r.Snapshot != "" {
		fmt.Fprintf(w, "snapshot written to %s\n", r.Snapshot)
	}
}
