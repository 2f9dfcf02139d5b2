package app

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/synth"
)

// quickstartData is a MovieLens-100K-sized explicit set.
var quickstartData = synth.Config{
	Users: 1000, Items: 1700, Ratings: 100_000, Rank: 10, Noise: 0.5, Seed: 7, ZipfExponent: 0.8,
}

func newQuickstartCmd(s streams) *cobra.Command {
	var keep string
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Generate a MovieLens-sized set, train it, print metrics and recommendations",
		Long: `quickstart needs no flags and no data: it generates a MovieLens-100K-sized
synthetic rating set (1,000 users, 1,700 items, 100,000 ratings with a rank-10
truth and noise 0.5), trains an explicit model on 90% of it on an all-in-one cluster in this
process (embedded NATS, a raft coordinator, one worker per CPU), reports the
held-out RMSE against the noise floor, and prints recommendations.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "cofactor-quickstart-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			input := filepath.Join(dir, "ratings.csv")
			if keep != "" {
				input = keep
			}
			fmt.Fprintf(s.out, "generating %d ratings (%d users × %d items, rank-%d truth + noise %.1f) into %s\n",
				quickstartData.Ratings, quickstartData.Users, quickstartData.Items, quickstartData.Rank, quickstartData.Noise, input)
			set, err := synth.New(quickstartData)
			if err != nil {
				return err
			}
			if err := cli.WriteFileAtomic(input, func(w io.Writer) error { return set.WriteCSV(cmd.Context(), w) }); err != nil {
				return err
			}
			spec := job.DefaultSpec()
			spec.Input = input
			spec.Rank, spec.Lambda, spec.Iterations = 10, 0.05, 10
			spec.Out = filepath.Join(dir, "model")
			fmt.Fprintf(s.out, "training on an all-in-one cluster (embedded NATS, raft coordinator, %d workers): rank %d, lambda %g, %d iterations, %d%% held out\n",
				runtime.NumCPU(), spec.Rank, spec.Lambda, spec.Iterations, int(spec.TestFraction*100))
			res, err := runLocal(cmd.Context(), spec, 0, func(it job.Iteration, total int) {
				line := fmt.Sprintf("  iteration %2d/%d  %.3f s  train RMSE %.4f", it.Iteration, total, it.Seconds, *it.TrainRMSE)
				if it.TestRMSE != nil {
					line += fmt.Sprintf("  test RMSE %.4f", *it.TestRMSE)
				}
				fmt.Fprintln(s.out, line)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "done in %.2f s: test RMSE %.4f over %d held-out ratings (noise floor %.2f)\n",
				res.Seconds, *res.TestRMSE, res.TestRatings-res.TestSkipped, quickstartData.Noise)
			model, err := checkpoint.ReadDir(cmd.Context(), spec.Out)
			if err != nil {
				return err
			}
			items := map[string]int32{}
			for i, id := range model.ItemIDs {
				items[id] = int32(i)
			}
			fmt.Fprintln(s.out, "top 5 recommendations (items the user has not rated):")
			k := model.Manifest.Rank
			for u := range 3 {
				rated, _ := set.User(u, nil, nil)
				seen := make([]int32, 0, len(rated))
				for _, it := range rated {
					if i, ok := items[strconv.Itoa(int(it)+1)]; ok {
						seen = append(seen, i)
					}
				}
				recs, scores := als.Recommend(model.X[u*k:(u+1)*k], model.Y, seen, 5)
				fmt.Fprintf(s.out, "  user %s:", model.UserIDs[u])
				for j, it := range recs {
					fmt.Fprintf(s.out, " item %s (%.2f)", model.ItemIDs[it], scores[j])
				}
				fmt.Fprintln(s.out)
			}
			fmt.Fprintln(s.out, "next: `cofactor gen --help` and `cofactor train --help`")
			return nil
		},
	}
	cmd.Flags().StringVar(&keep, "keep-data", "", "also keep the generated ratings at this path")
	return cmd
}
