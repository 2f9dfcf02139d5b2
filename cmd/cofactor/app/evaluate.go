package app

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/evaluate"
	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/partition"
)

// evaluateOptions are the flags of `evaluate`.
type evaluateOptions struct {
	snap        snapshotOptions
	test, train string
	format      string
	columns     string
	k           int
	threads     int
	json        bool
}

func newEvaluateCmd(s streams, ops *opsOptions) *cobra.Command {
	o := &evaluateOptions{}
	cmd := &cobra.Command{
		Use:   "evaluate (--store URI[@ID] | --snapshot DIR) --test FILE [--train FILE] [--k 10] [--json]",
		Short: "Score a snapshot against held-out ratings, beside a most-popular baseline",
		Long: `evaluate reads the held-out ratings --test and scores the snapshot: RMSE and MAE
for an explicit model, and for any model precision, recall, MAP and NDCG at K,
AUC and catalogue coverage at K, beside the same ranking metrics of the
most-popular baseline (docs/algorithms.md, "Evaluation", defines them).

Each user's candidates are the items not in their training set, taken from
the snapshot (a job's final snapshot holds it) or from --train FILE. Test
ratings whose user or item the snapshot lacks are skipped and counted.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case o.test == "":
				return cli.Usagef("no test ratings: pass --test FILE")
			case o.k < 1 || o.k > 1000:
				return cli.Usagef("--k %d outside 1..1000", o.k)
			case o.threads < 0:
				return cli.Usagef("--threads %d must be ≥ 0", o.threads)
			}
			format, err := partition.ParseFormat(o.format)
			if err != nil {
				return cli.Usage(err)
			}
			ctx := cmd.Context()
			m, id, err := o.snap.open(ctx, cmd, ops)
			if err != nil {
				return err
			}
			opts := partition.ScanOptions{Format: format, Implicit: m.Manifest.Implicit}
			if o.columns != "" {
				opts.Columns = strings.Split(o.columns, ",")
			}
			test, _, err := partition.ReadFile(ctx, o.test, opts)
			if err != nil {
				return err
			}
			eo := evaluate.Options{K: o.k, Threads: o.threads}
			if o.train != "" {
				if eo.Train, _, err = partition.ReadFile(ctx, o.train, opts); err != nil {
					return err
				}
			}
			rep, err := evaluate.Evaluate(ctx, m, test, eo)
			if errors.Is(err, evaluate.ErrNoTraining) {
				return cli.Usagef("snapshot %s holds no training items (it is not a job's final snapshot): pass --train FILE", id)
			}
			if err != nil {
				return err
			}
			if o.json {
				return cli.WriteJSON(s.out, rep)
			}
			printEvaluation(s, rep)
			return nil
		},
	}
	o.snap.addFlags(cmd, snapshotFlagHelp, &ops.nats, true)
	f := cmd.Flags()
	f.StringVar(&o.test, "test", "", "held-out ratings")
	f.StringVar(&o.train, "train", "", "training ratings whose items each user's ranking leaves out (default: the snapshot's)")
	f.StringVar(&o.format, "format", string(partition.FormatAuto), "format of --test and --train: auto, csv, tsv, movielens, mm or parquet")
	f.StringVar(&o.columns, "columns", "", "Parquet inputs: the user,item,rating column names (default: the first three)")
	f.IntVar(&o.k, "k", 10, "cut-off K of the ranking metrics")
	f.IntVar(&o.threads, "threads", 0, "goroutines scoring users (default: all CPUs)")
	f.BoolVar(&o.json, "json", false, "print the report as one JSON object")
	return cmd
}

func printEvaluation(s streams, r *evaluate.Report) {
	fmt.Fprintf(s.out, "snapshot %s: %d test ratings (%d skipped: user or item not in the snapshot), %d users evaluated; training items from the %s\n",
		r.Snapshot, r.TestRatings, r.TestSkipped, r.UsersEvaluated, r.Exclusions)
	if r.RMSE != nil {
		fmt.Fprintf(s.out, "RMSE %.4f  MAE %.4f\n", *r.RMSE, *r.MAE)
	}
	tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', tabwriter.AlignRight)
	k := r.K
	fmt.Fprintf(tw, "\tprecision@%d\trecall@%d\tMAP@%d\tNDCG@%d\tAUC\tcoverage@%d\t\n", k, k, k, k, k)
	for _, row := range []struct {
		name string
		m    evaluate.Ranking
	}{{"model", r.Ranking}, {"most popular", r.Baseline}} {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t\n", row.name, row.m.PrecisionAtK, row.m.RecallAtK, row.m.MAPAtK, row.m.NDCGAtK, row.m.AUC, row.m.CoverageAtK)
	}
	tw.Flush()
}
