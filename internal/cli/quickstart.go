package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/internal/train"
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
truth and noise 0.5), trains an explicit model on 90% of it, reports the
held-out RMSE against the noise floor, and prints recommendations.`,
		Args: noArgs,
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
			if err := writeFileAtomic(input, func(w io.Writer) error { return set.WriteCSV(cmd.Context(), w) }); err != nil {
				return err
			}
			spec := train.DefaultSpec()
			spec.Input = input
			spec.ALS.Rank = 10
			spec.ALS.Lambda = 0.05
			spec.Iterations = 10
			spec.JobID = "quickstart-" + time.Now().UTC().Format("20060102T150405Z")
			fmt.Fprintf(s.out, "training: rank %d, lambda %g, %d iterations, %d%% held out\n",
				spec.ALS.Rank, spec.ALS.Lambda, spec.Iterations, int(spec.TestFraction*100))
			res, model, err := train.Run(cmd.Context(), spec, func(it train.Iteration, total int) {
				fmt.Fprintf(s.out, "  iteration %2d/%d  %.3f s  train RMSE %.4f  test RMSE %.4f\n",
					it.Iteration, total, it.Seconds, *it.TrainRMSE, *it.TestRMSE)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "done in %.2f s: test RMSE %.4f over %d held-out ratings (noise floor %.2f)\n",
				res.Seconds, *res.TestRMSE, res.TestRatings-res.TestSkipped, quickstartData.Noise)
			fmt.Fprintln(s.out, "top 5 recommendations (items the user has not rated):")
			k := model.Rank
			for _, u := range []int32{0, 1, 2} {
				tr := model.Train
				seen := tr.Col[tr.Ptr[u]:tr.Ptr[u+1]]
				items, scores := als.Recommend(model.X[int(u)*k:int(u)*k+k], model.Y, seen, 5)
				fmt.Fprintf(s.out, "  user %s:", model.Users.ID(u))
				for j, it := range items {
					fmt.Fprintf(s.out, " item %s (%.2f)", model.Items.ID(it), scores[j])
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
