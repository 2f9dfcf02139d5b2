package app

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/internal/cli"
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
		Args: cli.NoArgs,
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
		return cli.Usagef("--out is required (a file name, or - for stdout)")
	}
	set, err := synth.New(o.Config)
	if err != nil {
		return err
	}
	if o.Out == "-" {
		return set.WriteCSV(cmd.Context(), s.out)
	}
	return cli.WriteFileAtomic(o.Out, func(w io.Writer) error { return set.WriteCSV(cmd.Context(), w) })
}
