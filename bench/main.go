// Command bench runs cofactor beside the NumPy reference (and records why
// gorse is absent) on the same data and threads, and prints one table:
// seconds/iteration, test RMSE after N iterations, time from start to a
// target RMSE, and each system's peak RSS (every system runs as a child
// process, so the RSS is its own). --scaling instead times one iteration at
// 5M–100M ratings and at ranks 16–128 and draws docs/scaling.png.
//
// It is its own module so that the comparison's extra dependencies never
// enter the main module. Run ./setup.sh first (NumPy from Debian), then
//
//	go run . --dataset ml-small,20m --threads 2
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// config is the harness's command line.
type config struct {
	datasets  []string
	systems   []string
	workers   []int
	threads   int
	exact     bool
	out, data string
	lambda    float64
	iters     int
	solver    string
	scaling   bool
	plotOnly  bool
	ratings   []int
	ranks     []int
	clean     bool
	clusterBg bool
	src       string
	maxRSSGB  float64
	// --goals: the five machine-limit goals of one build.
	goals       bool
	goalRuns    int
	implicitSet string
	loadSet     string
	implicitDir string
	// goalList selects the goals measured (1-5): a noisy machine can take
	// the load-independent ones alone.
	goalList []int
}

var allSystems = []string{"cofactor", "cluster", "npals", "kernels", "gorse"}

// Validate checks names and ranges.
func (c *config) Validate() error {
	known := datasets()
	for _, d := range c.datasets {
		if known[d] == nil {
			return fmt.Errorf("unknown dataset %q (know ml-small, 5m, 20m, 20m-imp, 100m)", d)
		}
	}
	for _, g := range c.goalList {
		if g < 1 || g > 5 {
			return fmt.Errorf("--goal-list: no goal %d (know 1-5)", g)
		}
	}
	for _, s := range c.systems {
		if !slices.Contains(allSystems, s) {
			return fmt.Errorf("unknown system %q (know %s)", s, strings.Join(allSystems, ", "))
		}
	}
	if c.threads < 1 {
		return errors.New("--threads must be ≥ 1")
	}
	for _, w := range c.workers {
		if w < 1 {
			return errors.New("--workers: sizes must be ≥ 1")
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	c := &config{}
	ds := fs.String("dataset", "ml-small,20m", "datasets: ml-small, 5m, 20m, 20m-imp, 100m")
	sys := fs.String("systems", strings.Join(allSystems, ","), "systems to run")
	ws := fs.String("workers", "1,2,4", "worker processes of the cluster runs")
	ra := fs.String("scaling-ratings", "5,20,50,100", "millions of ratings of the Netflix-shaped sweep")
	rk := fs.String("scaling-ranks", "16,64,128", "ranks of the sweep on the 20M-shaped set")
	fs.IntVar(&c.threads, "threads", 2, "threads (GOMAXPROCS) of every system")
	fs.BoolVar(&c.exact, "exact-target", true, "rerun cofactor single-process stopped at the target iteration")
	fs.StringVar(&c.out, "out", "results", "directory of the JSON and Markdown results")
	fs.StringVar(&c.data, "data", "data", "directory of generated data (reused between runs)")
	fs.Float64Var(&c.lambda, "lambda", 0, "override the explicit λ of every dataset")
	fs.IntVar(&c.iters, "iterations", 0, "override the iterations of every dataset")
	fs.StringVar(&c.solver, "solver", "", "cofactor --solver (default: cofactor's auto)")
	fs.BoolVar(&c.scaling, "scaling", false, "run the scaling sweep instead and draw ../docs/scaling.png")
	fs.BoolVar(&c.plotOnly, "plot", false, "redraw ../docs/scaling.png from OUT/scaling.json")
	fs.BoolVar(&c.clean, "clean", false, "delete the generated data at the end")
	fs.StringVar(&c.src, "src", "..", "source tree the binaries and kernel benchmarks are built from (e.g. a `git archive` export of a commit)")
	fs.Float64Var(&c.maxRSSGB, "max-rss", 8, "GB of resident memory above which the NumPy reference is ended (0: no limit)")
	fs.BoolVar(&c.goals, "goals", false, "measure the five machine-limit goals of --src (see goals.go) instead")
	fs.IntVar(&c.goalRuns, "goal-runs", 3, "runs of each --goals measurement (the best is kept)")
	fs.StringVar(&c.implicitSet, "goal-implicit-set", "20m-imp", "dataset of the implicit-speed goal")
	fs.StringVar(&c.loadSet, "goal-load-set", "20m", "dataset of the loading goal")
	gl := fs.String("goal-list", "1,2,3,4,5", "goals --goals measures (goal 3 alone needs no Python)")
	fs.StringVar(&c.implicitDir, "implicit-dir", "", "directory the implicit library was built into (implicitref/build.sh)")
	fs.BoolVar(&c.clusterBg, "cluster-big", false, "also run the process cluster on sets marked big (100m)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	c.datasets, c.systems = splitList(*ds), splitList(*sys)
	var err error
	if c.workers, err = intList(*ws); err != nil {
		return nil, fmt.Errorf("--workers: %w", err)
	}
	if c.ratings, err = intList(*ra); err != nil {
		return nil, fmt.Errorf("--scaling-ratings: %w", err)
	}
	if c.ranks, err = intList(*rk); err != nil {
		return nil, fmt.Errorf("--scaling-ranks: %w", err)
	}
	if c.goalList, err = intList(*gl); err != nil {
		return nil, fmt.Errorf("--goal-list: %w", err)
	}
	return c, c.Validate()
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runMain(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// build compiles cofactor, the coordinator, the worker and the NATS server
// the main module pins into bin/.
func build(ctx context.Context, src, bin string) error {
	logf("building binaries from %s into %s", src, bin)
	if err := runTool(ctx, src, "go", "build", "-o", bin+"/", "./cmd/cofactor", "./cmd/coordinator", "./cmd/worker"); err != nil {
		return err
	}
	return runTool(ctx, src, "go", "build", "-o", filepath.Join(bin, "nats-server"), "github.com/nats-io/nats-server/v2")
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func runMain(ctx context.Context, c *config) error {
	if c.plotOnly {
		var s scalingReport
		b, err := os.ReadFile(filepath.Join(c.out, "scaling.json"))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return drawScaling(&s, "../docs/scaling.png")
	}
	bin, err := filepath.Abs("bin")
	if err != nil {
		return err
	}
	e := &env{threads: c.threads, bin: bin, logs: filepath.Join(c.out, "logs"), exact: c.exact, solver: c.solver, src: c.src,
		maxRSS: int64(c.maxRSSGB * 1e9)}
	if err := build(ctx, c.src, bin); err != nil {
		return err
	}
	if c.clean {
		defer func() {
			logf("deleting %s", c.data)
			os.RemoveAll(c.data)
		}()
	}
	if c.scaling {
		return runScaling(ctx, c, e)
	}
	if c.goals {
		if c.implicitDir != "" {
			if e.implicitPy, err = filepath.Abs(c.implicitDir); err != nil {
				return err
			}
		}
		return runGoals(ctx, c, e)
	}
	rep := report{Machine: machine(), Threads: c.threads, Started: time.Now().UTC().Format(time.RFC3339),
		LoadBefore: loadAvg()}
	if slices.Contains(c.systems, "npals") || slices.Contains(c.systems, "kernels") {
		if e.python, err = findPython(); err != nil {
			return err
		}
	}
	if slices.Contains(c.systems, "kernels") {
		ks, err := runKernels(ctx, e)
		if err != nil {
			rep.Problems = append(rep.Problems, err.Error())
		}
		rep.Kernels = ks
	}
	if slices.Contains(c.systems, "gorse") {
		rep.Gorse = gorseStatus(ctx)
		logf("gorse: %s", rep.Gorse)
	}
	all := datasets()
	for _, name := range c.datasets {
		d := all[name]
		if c.lambda > 0 {
			d.Lambda = c.lambda
		}
		if c.iters > 0 {
			d.Iterations = c.iters
		}
		if err := prepare(ctx, e.cofactor(), c.data, d); err != nil {
			return err
		}
		rep.Datasets = append(rep.Datasets, *d)
		models := []bool{false}
		if d.Implicit {
			models = append(models, true)
		}
		add := func(r row, err error) {
			if err != nil {
				logf("FAILED: %v", err)
				rep.Problems = append(rep.Problems, err.Error())
				return
			}
			rep.Rows = append(rep.Rows, r)
			fmt.Fprintln(os.Stderr, tableHeader+"\n"+r.markdown())
		}
		for _, imp := range models {
			if slices.Contains(c.systems, "cofactor") {
				add(runCofactor(ctx, e, d, imp, 1))
			}
			if slices.Contains(c.systems, "cluster") && (!d.Big || c.clusterBg) {
				for _, w := range c.workers {
					add(runCluster(ctx, e, d, imp, w))
				}
			}
			if slices.Contains(c.systems, "npals") && d.NpalsIterations > 0 && d.Test != "" {
				add(runNpals(ctx, e, d, imp))
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	rep.LoadAfter = loadAvg()
	return rep.write(c.out, os.Stdout)
}
