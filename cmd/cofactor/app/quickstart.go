package app

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

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
			printNext(s.out, invocation())
			return nil
		},
	}
	cmd.Flags().StringVar(&keep, "keep-data", "", "also keep the generated ratings at this path")
	return cmd
}

// invocation is how the user can run this binary again from where they
// are: the command name when it is on the PATH, the path they typed
// (bin/cofactor), or `go run ./cmd/cofactor` for a binary go run built
// (from a clone: a go run binary lives in a temporary build directory).
func invocation() string {
	exe, _ := os.Executable()
	onPath, _ := exec.LookPath("cofactor")
	clone := false
	if st, err := os.Stat(filepath.Join("cmd", "cofactor")); err == nil && st.IsDir() {
		clone = true
	}
	return invocationOf(exe, os.Args[0], onPath, clone)
}

func invocationOf(exe, arg0, onPath string, clone bool) string {
	if strings.Contains(filepath.ToSlash(exe), "/go-build") {
		if clone {
			return "go run ./cmd/cofactor"
		}
		return "go run github.com/cofactor-ml/cofactor/cmd/cofactor@latest"
	}
	if onPath != "" && exe != "" {
		a, errA := os.Stat(onPath)
		b, errB := os.Stat(exe)
		if errA == nil && errB == nil && os.SameFile(a, b) {
			return "cofactor"
		}
	}
	return arg0
}

// printNext ends the quickstart with commands that run as printed.
func printNext(w io.Writer, run string) {
	fmt.Fprintln(w, "next (these commands run from here as printed):")
	fmt.Fprintf(w, "  %s quickstart --keep-data ratings.csv                      # the same, keeping the generated ratings\n", run)
	fmt.Fprintf(w, "  %s train --input ratings.csv --rank 10 --lambda 0.05 --out model/   # train on them (or your own user,item,rating file)\n", run)
	fmt.Fprintf(w, "  %s recommend --snapshot model/ --user 1 --k 10               # a user's top items from the model\n", run)
	fmt.Fprintf(w, "  %s --help                                                    # every command\n", run)
	if strings.HasPrefix(run, "go run ./") {
		fmt.Fprintln(w, "  go install ./cmd/...   # then `cofactor`, `coordinator` and `worker` are on your PATH (in $(go env GOPATH)/bin)")
	}
}
