package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/internal/synth"
)

type genOptions struct {
	synth.Config
	Out string
}

func newGenCmd(s streams) *cobra.Command {
	o := genOptions{Config: synth.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "gen --users N --items M --ratings R --rank K --noise SIGMA --out FILE",
		Short: "Generate a synthetic rating set with a known low-rank truth",
		Long: `gen writes synthetic ratings as CSV (header user,item,rating): a rank-K truth
x_u·y_i (unit variance) plus Gaussian noise SIGMA, over log-normal user
activity and Zipf-skewed item popularity. With --implicit the rating column is
an interaction count and interactions favour items the user's truth likes.
The same flags always give the same bytes. --out - writes to stdout.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd, s) },
	}
	f := cmd.Flags()
	f.IntVar(&o.Users, "users", o.Users, "number of users")
	f.IntVar(&o.Items, "items", o.Items, "number of items")
	f.Int64Var(&o.Ratings, "ratings", o.Ratings, "number of ratings (distinct user-item pairs)")
	f.IntVar(&o.Rank, "rank", o.Rank, "rank of the truth")
	f.Float64Var(&o.Noise, "noise", o.Noise, "standard deviation of the Gaussian noise")
	f.Uint64Var(&o.Seed, "seed", o.Seed, "random seed")
	f.BoolVar(&o.Implicit, "implicit", false, "generate implicit interaction counts")
	f.Float64Var(&o.ZipfExponent, "zipf", o.ZipfExponent, "Zipf exponent of item popularity")
	f.StringVar(&o.Out, "out", "", "output file (- for stdout)")
	return cmd
}

func (o *genOptions) run(cmd *cobra.Command, s streams) error {
	if o.Out == "" {
		return usagef("--out is required (a file name, or - for stdout)")
	}
	set, err := synth.New(o.Config)
	if err != nil {
		return err
	}
	if o.Out == "-" {
		return set.WriteCSV(cmd.Context(), s.out)
	}
	return writeFileAtomic(o.Out, func(w io.Writer) error { return set.WriteCSV(cmd.Context(), w) })
}

// writeFileAtomic writes path through a temporary file in the same
// directory that is synced and renamed into place: after a failure nothing
// is left at path.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
