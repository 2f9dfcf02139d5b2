package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/cofactor-ml/cofactor/allinone"
	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/tune"
)

// tuneOptions are the flags of `tune`.
type tuneOptions struct {
	spec                               job.Spec
	ranks, lambdas, alphas, iterations string
	trials                             int
	folds, eta, parallel, workers      int
	metric, plot, emitSpec             string
	json                               bool
}

func newTuneCmd(s streams, ops *opsOptions) *cobra.Command {
	o := &tuneOptions{spec: job.DefaultSpec()}
	cmd := &cobra.Command{
		Use:   "tune --input FILE (--test FILE | --folds K) --rank 8,16 --lambda 0.05,0.1 [--alpha ...] [--iterations ...] [--json]",
		Short: "Search rank, lambda, alpha and iterations; print every trial and the best",
		Long: `tune trains every candidate of a grid — comma-separated lists of --rank,
--lambda, --alpha (implicit) and --iterations — or, when any of them is a range
LO:HI, --trials candidates drawn at random (ranks and iterations uniform, lambda
and alpha log-uniform). Each is scored on --test FILE or as the mean over
--folds K hash folds of the input: test RMSE for explicit models, NDCG@10 (or
--metric precision_at_10) for implicit ones.

Successive halving (--eta, default 3; 1 turns it off) trains all candidates
for a fraction of their iterations, keeps the best third, and so on; only the
survivors train fully. Trials run in this process, or as jobs on the cluster
when --coordinator is given (--parallel at a time; paths are then the
workers').

--plot FILE.png draws the metric against lambda, one line per rank;
--emit-spec FILE writes the best candidate's training spec, which
job submit --spec FILE and schedule add --spec FILE read.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := o.options(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if ops.coordinators != "" || os.Getenv(EnvCoordinator) != "" {
				c, err := ops.client()
				if err != nil {
					return err
				}
				opts.Run = clusterRunner(c)
				opts.Parallel = o.parallel
			} else {
				if o.workers < 0 {
					return cli.Usagef("--workers %d must be ≥ 0", o.workers)
				}
				cl, err := allinone.Start(ctx, allinone.Options{Workers: o.workers})
				if err != nil {
					return err
				}
				defer cl.Close()
				opts.Run = localRunner(cl)
				opts.Parallel = 1
			}
			res, err := tune.Run(ctx, opts)
			var je *allinone.JobError
			switch {
			case errors.Is(err, tune.ErrOptions), errors.As(err, &je) && je.IsInput():
				return cli.Usage(err)
			case err != nil:
				return err
			}
			if o.plot != "" {
				if err := plotTune(res, o.plot); err != nil {
					return fmt.Errorf("--plot: %w", err)
				}
			}
			if o.emitSpec != "" {
				best := res.Best.Params.Apply(o.spec)
				if err := cli.WriteFileAtomic(o.emitSpec, func(w io.Writer) error {
					enc := json.NewEncoder(w)
					enc.SetIndent("", "  ")
					return enc.Encode(best)
				}); err != nil {
					return fmt.Errorf("--emit-spec: %w", err)
				}
			}
			if o.json {
				return cli.WriteJSON(s.out, res)
			}
			printTune(s.out, res)
			return nil
		},
	}
	f := cmd.Flags()
	sp := &o.spec
	f.StringVar(&sp.Input, "input", "", "ratings file (a path the workers read with --coordinator)")
	f.StringVar(&sp.Test, "test", "", "test ratings file (or --folds)")
	f.IntVar(&o.folds, "folds", 0, "score by K hash folds of --input (the mean over folds) instead of --test")
	f.StringVar(&sp.Format, "format", sp.Format, "input format: auto, csv, tsv, movielens, mm or parquet")
	f.StringVar(&sp.Columns, "columns", "", "Parquet input: the user,item,rating column names")
	f.BoolVar(&sp.Implicit, "implicit", false, "implicit feedback model")
	f.BoolVar(&sp.Biases, "biases", false, "explicit model with biases")
	f.BoolVar(&sp.NonNegative, "nonnegative", false, "non-negative factors")
	f.StringVar(&sp.Solver, "solver", sp.Solver, "row solver: cholesky, cg or auto")
	f.Uint64Var(&sp.Seed, "seed", sp.Seed, "seed of the initial factors, the folds and the random search")
	f.StringVar(&o.ranks, "rank", "10", "ranks: a list (8,16,32) or a range LO:HI")
	f.StringVar(&o.lambdas, "lambda", "0.1", "lambdas: a list or a range LO:HI (log-uniform)")
	f.StringVar(&o.alphas, "alpha", "1", "implicit alphas: a list or a range LO:HI (log-uniform)")
	f.StringVar(&o.iterations, "iterations", "10", "iterations: a list or a range LO:HI")
	f.IntVar(&o.trials, "trials", 0, "random search: candidates to draw (needs a range)")
	f.IntVar(&o.eta, "eta", 3, "successive halving: keep 1/eta of the candidates per round (1: train all fully)")
	f.StringVar(&o.metric, "metric", "", "test_rmse (explicit), ndcg_at_10 or precision_at_10 (implicit); default by model")
	f.IntVar(&o.parallel, "parallel", 2, "cluster jobs at a time (with --coordinator)")
	f.IntVar(&o.workers, "workers", 0, "in-process workers (default: one per CPU)")
	f.StringVar(&o.plot, "plot", "", "PNG of the metric against lambda, one line per rank")
	f.StringVar(&o.emitSpec, "emit-spec", "", "write the best candidate's job spec (JSON) here, for job submit --spec")
	f.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	return cmd
}

// options checks the flags and builds the search.
func (o *tuneOptions) options(cmd *cobra.Command) (tune.Options, error) {
	sp := o.spec
	switch {
	case sp.Input == "":
		return tune.Options{}, cli.Usagef("no input: pass --input FILE")
	case sp.Test == "" && o.folds < 2:
		return tune.Options{}, cli.Usagef("score on --test FILE or --folds K (K ≥ 2)")
	case sp.Test != "" && o.folds > 0:
		return tune.Options{}, cli.Usagef("--test and --folds cannot be combined")
	}
	sp.TestFraction = 0
	lists := [4]string{o.ranks, o.lambdas, o.alphas, o.iterations}
	names := [4]string{"--rank", "--lambda", "--alpha", "--iterations"}
	random := false
	for _, l := range lists {
		random = random || strings.Contains(l, ":")
	}
	var cands []tune.Params
	if random {
		if o.trials < 1 {
			return tune.Options{}, cli.Usagef("a range LO:HI draws --trials candidates: pass --trials N")
		}
		var r [4]tune.Range
		for k, l := range lists {
			var err error
			if r[k], err = parseRange(l); err != nil {
				return tune.Options{}, cli.Usagef("%s %q: %v", names[k], l, err)
			}
		}
		if !sp.Implicit {
			r[2] = tune.Range{} // alpha is the implicit model's only
		}
		cands = tune.Random(o.trials, sp.Seed, r[0], r[1], r[2], r[3])
	} else {
		if o.trials > 0 {
			return tune.Options{}, cli.Usagef("--trials goes with a range LO:HI")
		}
		var v [4][]float64
		for k, l := range lists {
			var err error
			if v[k], err = parseList(l); err != nil {
				return tune.Options{}, cli.Usagef("%s %q: %v", names[k], l, err)
			}
		}
		if !sp.Implicit {
			v[2] = []float64{0} // alpha is the implicit model's only
		}
		cands = tune.Grid(ints(v[0]), v[1], v[2], ints(v[3]))
	}
	o.spec = sp
	return tune.Options{Base: sp, Folds: o.folds, Candidates: cands, Metric: o.metric, Eta: o.eta}, nil
}

func parseList(s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%q is not a number", p)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseRange(s string) (tune.Range, error) {
	lo, hi, ok := strings.Cut(s, ":")
	if !ok {
		v, err := parseList(s)
		if err != nil || len(v) != 1 {
			return tune.Range{}, errors.New("want one value or a range LO:HI")
		}
		return tune.Range{Lo: v[0], Hi: v[0]}, nil
	}
	v, err := parseList(lo + "," + hi)
	if err != nil || v[0] > v[1] {
		return tune.Range{}, errors.New("want LO:HI with LO ≤ HI")
	}
	return tune.Range{Lo: v[0], Hi: v[1]}, nil
}

func ints(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// localRunner trains on the in-process cluster.
func localRunner(c *allinone.Cluster) tune.Runner {
	return func(ctx context.Context, spec job.Spec) (job.Result, error) { return c.Run(ctx, spec, nil) }
}

// clusterRunner submits a job and waits for it.
func clusterRunner(c *coordinator.Client) tune.Runner {
	return func(ctx context.Context, spec job.Spec) (job.Result, error) {
		id, err := c.Submit(ctx, coordinator.SubmitRequest{Spec: spec})
		if err != nil {
			return job.Result{}, apiErr(err)
		}
		res, err := c.Wait(ctx, id, nil)
		if err != nil {
			return job.Result{}, apiErr(err)
		}
		if res.State != job.StateSucceeded {
			return *res, fmt.Errorf("job %s %s: %s", id, res.State, res.Error)
		}
		return *res, nil
	}
}

func printTune(w io.Writer, r *tune.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "RANK\tLAMBDA\tALPHA\tITERATIONS\t%s\tSECONDS\t\n", strings.ToUpper(r.Metric))
	for _, t := range r.Trials {
		its := strconv.Itoa(t.Iterations)
		if t.StoppedEarly {
			its += fmt.Sprintf(" of %d (stopped)", t.Params.Iterations)
		}
		fmt.Fprintf(tw, "%d\t%.4g\t%s\t%s\t%.4f\t%.2f\t\n", t.Params.Rank, t.Params.Lambda, alphaText(t.Params.Alpha), its, t.Metric, t.Seconds)
	}
	tw.Flush()
	b := r.Best.Params
	fmt.Fprintf(w, "best: rank %d, lambda %.4g, alpha %s, %d iterations: %s %.4f (%d trials in %.1f s)\n",
		b.Rank, b.Lambda, alphaText(b.Alpha), b.Iterations, r.Metric, r.Best.Metric, len(r.Trials), r.Seconds)
}

func alphaText(a float64) string {
	if a == 0 {
		return "-"
	}
	return strconv.FormatFloat(a, 'g', -1, 64)
}

// plotTune draws the metric against λ (log scale), one line per rank. A
// trial stopped early shows the metric of the last round it ran.
func plotTune(r *tune.Result, out string) error {
	p := plot.New()
	p.Title.Text = "tune: " + r.Metric + " against lambda"
	p.X.Label.Text = "lambda"
	p.Y.Label.Text = r.Metric
	byRank := map[int]plotter.XYs{}
	lo, hi := math.Inf(1), math.Inf(-1)
	stopped := false
	for _, t := range r.Trials {
		if t.Params.Lambda <= 0 {
			continue
		}
		stopped = stopped || t.StoppedEarly
		lo, hi = min(lo, t.Params.Lambda), max(hi, t.Params.Lambda)
		byRank[t.Params.Rank] = append(byRank[t.Params.Rank], plotter.XY{X: t.Params.Lambda, Y: t.Metric})
	}
	if stopped {
		p.Title.Text += " (trials stopped early: their last round)"
	}
	if lo <= hi {
		// Log scale, with some room: gonum pads a single value below zero.
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.X.Min, p.X.Max = lo/1.5, hi*1.5
	}
	ranks := make([]int, 0, len(byRank))
	for k := range byRank {
		ranks = append(ranks, k)
	}
	slices.Sort(ranks)
	palette := []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255}, {140, 86, 75, 255}}
	for n, k := range ranks {
		pts := byRank[k]
		slices.SortFunc(pts, func(a, b plotter.XY) int { return cmpFloat(a.X, b.X) })
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		c := palette[n%len(palette)]
		l.Color, s.Color = c, c
		l.Width = vg.Points(1.5)
		p.Add(l, s)
		p.Legend.Add(fmt.Sprintf("rank %d", k), l, s)
	}
	p.Add(plotter.NewGrid())
	const dpi, width, height = 96, 800, 500
	canvas := vgimg.NewWith(vgimg.UseWH(vg.Length(width)*vg.Inch/dpi, vg.Length(height)*vg.Inch/dpi), vgimg.UseDPI(dpi))
	p.Draw(draw.New(canvas))
	return cli.WriteFileAtomic(out, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: canvas}.WriteTo(w)
		return err
	})
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
