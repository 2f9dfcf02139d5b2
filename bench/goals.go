package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The goals table (--goals): the machine-limit figures of one build, each
// beside its reference measured in the same run.
//
//  1. explicit rank-64 iteration: F/(s/iteration) against NumPy's sgemm
//     rate on the same threads, and s/iteration against the NumPy
//     reference (5M set);
//  2. implicit rank-64 CG iteration against the `implicit` library's CG,
//     and both models' precision@10 on ml-latest-small;
//  3. peak RSS of single-process training against 2×8 bytes a rating +
//     the factors (float32, two versions) + 120 MB;
//  4. loading (parse, dictionaries, dedupe, split, both CSR orientations)
//     against GNU sort on the same files;
//  5. the go test -bench guards (run from the tree under test).

// goalRow is one line of the goals table.
type goalRow struct {
	Goal    int     `json:"goal"`
	What    string  `json:"what"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	Ref     float64 `json:"reference,omitempty"`
	RefWhat string  `json:"reference_what,omitempty"`
	Ratio   float64 `json:"ratio,omitempty"`
	Target  string  `json:"target"`
	Met     *bool   `json:"met,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// goalsReport is the JSON of one --goals run.
type goalsReport struct {
	Machine     string    `json:"machine"`
	Src         string    `json:"src"`
	Threads     int       `json:"threads"`
	Started     string    `json:"started"`
	LoadBefore  string    `json:"load_average_before"`
	LoadAfter   string    `json:"load_average_after"`
	SgemmGFLOPS float64   `json:"sgemm_gflops"`
	Rows        []goalRow `json:"rows"`
	Problems    []string  `json:"problems,omitempty"`
}

// explicitFlops is the work of one explicit iteration as the goals count
// it: every rating's Gram and right-hand-side terms, and every row's
// Cholesky factorisation and solves.
func explicitFlops(ratings int64, rows int, k int) float64 {
	kf := float64(k)
	return 2*float64(ratings)*(kf*kf+3*kf) + float64(rows)*(kf*kf*kf/3+2*kf*kf)
}

// memoryBound is the single-process peak the goals allow: both CSR
// orientations (8 bytes a rating each), the factors in float32 twice and
// 120 MB.
func memoryBound(ratings int64, rows int, k int) float64 {
	return 2*8*float64(ratings) + 2*4*float64(rows*k) + 120e6
}

// sgemmProbe is NumPy's float32 GEMM rate on the threads OpenBLAS is given.
const sgemmProbe = `
import json, time, numpy as np
n = 4096
rng = np.random.default_rng(1)
a = rng.random((n, n), dtype=np.float32); b = rng.random((n, n), dtype=np.float32)
a @ b
best = 1e9
for _ in range(5):
    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
print(json.dumps({"gflops": 2 * n**3 / best / 1e9, "numpy": np.__version__}))
`

func runSgemm(ctx context.Context, e *env) (float64, error) {
	t := fmt.Sprint(e.threads)
	r, err := runChild(ctx, e.logs, "sgemm-probe", e.python, []string{"-c", sgemmProbe},
		[]string{"OPENBLAS_NUM_THREADS=" + t, "OMP_NUM_THREADS=" + t})
	if err != nil {
		return 0, err
	}
	var p struct{ GFLOPS float64 }
	if err := json.Unmarshal(r.Stdout, &p); err != nil {
		return 0, fmt.Errorf("sgemm probe printed %q: %w", r.Stdout, err)
	}
	return p.GFLOPS, nil
}

// bestOf runs f n times and keeps the result with the smallest key.
func bestOf[T any](n int, f func() (T, float64, error)) (T, error) {
	var best T
	bk := -1.0
	for range n {
		v, key, err := f()
		if err != nil {
			return best, err
		}
		if bk < 0 || key < bk {
			best, bk = v, key
		}
	}
	return best, nil
}

func boolp(b bool) *bool { return &b }

// implicitRef is run.py's JSON.
type implicitRef struct {
	SPI       float64  `json:"seconds_per_iteration"`
	Precision *float64 `json:"precision_at_10"`
	NTrain    int64    `json:"n_train"`
	System    string   `json:"system"`
}

func runImplicitRef(ctx context.Context, e *env, name string, args []string) (implicitRef, error) {
	var out implicitRef
	if e.implicitPy == "" {
		return out, fmt.Errorf("no --implicit-dir: the implicit library is not measured (see implicitref/build.sh)")
	}
	r, err := runChild(ctx, e.logs, name, e.python, append([]string{"implicitref/run.py"}, args...),
		[]string{"PYTHONPATH=" + e.implicitPy, "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=" + fmt.Sprint(e.threads)})
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(r.Stdout, &out); err != nil {
		return out, fmt.Errorf("%s printed %q: %w", name, r.Stdout, err)
	}
	return out, nil
}

// runGoals measures the five goals of one build (c.src) and prints their
// table.
func runGoals(ctx context.Context, c *config, e *env) error {
	rep := goalsReport{Machine: machine(), Src: c.src, Threads: c.threads, Started: time.Now().UTC().Format(time.RFC3339),
		LoadBefore: loadAvg()}
	var err error
	want := func(g int) bool { return slices.Contains(c.goalList, g) }
	if want(1) || want(2) {
		if e.python, err = findPython(); err != nil {
			return err
		}
	}
	problem := func(err error) {
		logf("problem: %v", err)
		rep.Problems = append(rep.Problems, err.Error())
	}
	add := func(r goalRow) {
		rep.Rows = append(rep.Rows, r)
		fmt.Fprintln(os.Stderr, goalHeader+"\n"+r.markdown())
	}
	addIf := func(ok bool, r goalRow) {
		if ok {
			add(r)
		}
	}
	// The sgemm rate first and again at the end: the best of both is the
	// reference (the machine is shared).
	if want(1) {
		logf("NumPy sgemm probe, %d threads", c.threads)
		if rep.SgemmGFLOPS, err = runSgemm(ctx, e); err != nil {
			return err
		}
	}
	all := datasets()
	runs := c.goalRuns
	// Goals 1 and 3: explicit rank 64 on each set, best of runs.
	explicit := map[string]row{}
	for _, name := range c.datasets {
		d := all[name]
		if d == nil || d.Rank != 64 || slices.Contains(d.Gen, "--implicit") || !(want(1) || want(3)) {
			continue
		}
		if c.iters > 0 {
			d.Iterations = c.iters
		}
		if err := prepare(ctx, e.cofactor(), c.data, d); err != nil {
			return err
		}
		res, err := bestOf(runs, func() (row, float64, error) {
			args := append([]string{"train", "--json", "--workers", "1"}, trainFlags(d, false, d.Iterations, e.solver)...)
			r, jr, err := trainOnce(ctx, e, "goals-explicit-"+d.Name, args)
			if err != nil {
				return row{}, 0, err
			}
			out := resultRow("cofactor", d, false, e.threads, jr, r.Wall, r.PeakRSS)
			return out, out.SecPerIter, nil
		})
		if err != nil {
			problem(err)
			continue
		}
		explicit[name] = res
		users, items := res.Users, res.Items
		f := explicitFlops(res.TrainRatings, users+items, 64)
		g := f / res.SecPerIter / 1e9
		addIf(want(1), goalRow{Goal: 1, What: fmt.Sprintf("explicit rank 64, %s (%.1fM training ratings): s/iteration %.3f", name, float64(res.TrainRatings)/1e6, res.SecPerIter),
			Value: g, Unit: "GFLOP/s", Ref: rep.SgemmGFLOPS, RefWhat: fmt.Sprintf("NumPy sgemm, %d threads", c.threads),
			Ratio: g / rep.SgemmGFLOPS, Target: "≥ 0.50 of sgemm", Met: boolp(g/rep.SgemmGFLOPS >= 0.5),
			Note: fmt.Sprintf("F = %.1f GFLOP; test RMSE %s", f/1e9, fmtp(res.TestRMSE))})
		bound := memoryBound(res.TrainRatings, users+items, 64)
		addIf(want(3), goalRow{Goal: 3, What: fmt.Sprintf("peak RSS, explicit rank 64, %s, 1 process", name),
			Value: res.PeakRSSMB, Unit: "MB", Ref: bound / 1e6, RefWhat: "2×8 B/rating + 2 × float32 factors + 120 MB",
			Ratio: res.PeakRSSMB * 1e6 / bound, Target: "≤ 1.00 of the bound", Met: boolp(res.PeakRSSMB*1e6 <= bound),
			Note: fmt.Sprintf("%.1f B per training rating", res.PeakRSSMB*1e6/float64(res.TrainRatings))})
	}
	// Goal 1: the NumPy reference on the 5M set.
	if r, ok := explicit["5m"]; ok && want(1) {
		d := all["5m"]
		np, err := runNpals(ctx, e, d, false)
		if err != nil {
			problem(err)
		} else {
			add(goalRow{Goal: 1, What: "explicit rank 64, 5m: NumPy reference s/iteration ÷ cofactor's",
				Value: np.SecPerIter / r.SecPerIter, Unit: "×", Ref: np.SecPerIter, RefWhat: "npals.py s/iteration (one BLAS thread)",
				Target: "≥ 15×", Met: boolp(np.SecPerIter/r.SecPerIter >= 15),
				Note: fmt.Sprintf("cofactor %.3f s, NumPy %.2f s; test RMSE %s vs %s", r.SecPerIter, np.SecPerIter, fmtp(r.TestRMSE), fmtp(np.TestRMSE))})
		}
	}
	// Goal 2: implicit rank 64 against the implicit library's CG.
	if d := all[c.implicitSet]; d != nil && want(2) {
		if err := prepare(ctx, e.cofactor(), c.data, d); err != nil {
			return err
		}
		id := *d
		id.ImplicitRank, id.ImplicitLambda, id.ImplicitAlpha, id.Iterations = 64, 50, 1, 3
		cof, err := bestOf(runs, func() (row, float64, error) {
			// Training only: ranking every item for 138k users would take
			// longer than the iterations (the quality check is ml-small's).
			id.Test, id.Holdout = "", 0
			args := append([]string{"train", "--json", "--workers", "1"}, trainFlags(&id, true, id.Iterations, "cg")...)
			r, jr, err := trainOnce(ctx, e, "goals-implicit-"+d.Name, args)
			if err != nil {
				return row{}, 0, err
			}
			out := resultRow("cofactor", &id, true, e.threads, jr, r.Wall, r.PeakRSS)
			return out, out.SecPerIter, nil
		})
		if err != nil {
			problem(err)
		}
		ref, rerr := runImplicitRef(ctx, e, "implicit-"+d.Name, []string{d.Train, "--rank", "64", "--lambda", "50",
			"--alpha", "1", "--iterations", "3", "--threads", fmt.Sprint(c.threads)})
		if rerr != nil {
			problem(rerr)
		}
		if err == nil && rerr == nil {
			add(goalRow{Goal: 2, What: fmt.Sprintf("implicit rank 64 CG (3 steps), %s: the implicit library's s/iteration ÷ cofactor's", d.Name),
				Value: ref.SPI / cof.SecPerIter, Unit: "×", Ref: ref.SPI, RefWhat: ref.System + " s/iteration (best of 3)",
				Target: "≥ 5×", Met: boolp(ref.SPI/cof.SecPerIter >= 5),
				Note: fmt.Sprintf("cofactor %.3f s/iteration, %d threads each", cof.SecPerIter, c.threads)})
		}
	}
	if d := all["ml-small"]; d != nil && want(2) {
		id := *d
		id.ImplicitRank, id.ImplicitLambda, id.ImplicitAlpha, id.Iterations = 64, 50, 1, 15
		args := append([]string{"train", "--json", "--workers", "1"}, trainFlags(&id, true, id.Iterations, "cg")...)
		_, jr, err := trainOnce(ctx, e, "goals-implicit-ml-small", args)
		ref, rerr := runImplicitRef(ctx, e, "implicit-ml-small", []string{d.Train, "--test", d.Test, "--rank", "64",
			"--lambda", "50", "--alpha", "1", "--iterations", "15", "--threads", fmt.Sprint(c.threads)})
		switch {
		case err != nil:
			problem(err)
		case rerr != nil:
			problem(rerr)
		case jr.PrecisionAt10 != nil && ref.Precision != nil:
			p, q := *jr.PrecisionAt10, *ref.Precision
			add(goalRow{Goal: 2, What: "implicit rank 64, ml-latest-small split-seed42, 15 iterations: precision@10",
				Value: p, Unit: "p@10", Ref: q, RefWhat: ref.System, Ratio: p / q,
				Target: "same as the library's (≥ 0.99×)", Met: boolp(p >= 0.99*q)})
		}
	}
	// Goal 4: loading against GNU sort on the same files.
	if d := all[c.loadSet]; d != nil && want(4) {
		if err := prepare(ctx, e.cofactor(), c.data, d); err != nil {
			return err
		}
		files := []string{d.Train}
		if d.Test != "" {
			files = append(files, d.Test)
		}
		var size int64
		for _, f := range files {
			if st, err := os.Stat(f); err == nil {
				size += st.Size()
			}
		}
		sortSec, err := bestOf(runs, func() (float64, float64, error) {
			args := append([]string{"--parallel=" + fmt.Sprint(c.threads), "-t,", "-k1,1", "-o", "/dev/null"}, files...)
			r, err := runChild(ctx, e.logs, "gnu-sort", "sort", args, []string{"LC_ALL=C"})
			return r.Wall.Seconds(), r.Wall.Seconds(), err
		})
		if err != nil {
			problem(err)
		}
		load, lerr := benchLoad(ctx, e, files, runs)
		if lerr != nil {
			problem(lerr)
		}
		if err == nil && lerr == nil {
			add(goalRow{Goal: 4, What: fmt.Sprintf("load %s (%.0f MB: parse, dictionaries, dedupe, split, both CSR orientations)", d.Name, float64(size)/1e6),
				Value: load, Unit: "s", Ref: sortSec, RefWhat: fmt.Sprintf("LC_ALL=C sort --parallel=%d -t, -k1,1, same files", c.threads),
				Ratio: load / sortSec, Target: "≤ 0.50 of sort", Met: boolp(load <= 0.5*sortSec),
				Note: fmt.Sprintf("%.0f MB/s", float64(size)/1e6/load)})
		}
	}
	// Goal 5: the guards, from the tree under test (absent before them).
	if want(5) {
		for _, g := range guardRows(ctx, e) {
			add(g)
		}
	}
	if want(1) {
		if g, err := runSgemm(ctx, e); err == nil && g > rep.SgemmGFLOPS {
			rep.SgemmGFLOPS = g
			// The best reading is the reference of every goal-1 row.
			for i := range rep.Rows {
				if r := &rep.Rows[i]; r.Goal == 1 && r.Unit == "GFLOP/s" {
					r.Ref, r.Ratio = g, r.Value/g
					r.Met = boolp(r.Ratio >= 0.5)
				}
			}
		}
	}
	rep.LoadAfter = loadAvg()
	return rep.write(c.out, os.Stdout)
}

func fmtp(p *float64) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf("%.4f", *p)
}

// benchLoad runs BenchmarkLoadFiles of the tree under test on files and
// returns the best s/load of runs.
func benchLoad(ctx context.Context, e *env, files []string, runs int) (float64, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "./partition", "-run", "^$", "-bench", "LoadFiles", "-benchtime", "1x", "-count", strconv.Itoa(runs))
	cmd.Dir = e.src
	cmd.Env = append(os.Environ(), "COFACTOR_LOAD_FILES="+strings.Join(files, ","), fmt.Sprintf("GOMAXPROCS=%d", e.threads))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("go test ./partition -bench LoadFiles: %w\n%s", err, out)
	}
	re := regexp.MustCompile(`([\d.]+) s/load`)
	best := 0.0
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		if best == 0 || v < best {
			best = v
		}
	}
	if best == 0 {
		return 0, fmt.Errorf("no s/load in:\n%s", out)
	}
	return best, nil
}

// guardRows runs the regression-guard benchmarks of the tree under test
// (those it has) once and reports their figures.
func guardRows(ctx context.Context, e *env) []goalRow {
	cmd := exec.CommandContext(ctx, "go", "test", "./als", "-run", "^$", "-bench", "^BenchmarkGoal", "-benchtime", "3x")
	cmd.Dir = e.src
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", e.threads))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return []goalRow{{Goal: 5, What: "go test ./als -bench ^BenchmarkGoal", Note: "failed: " + strings.TrimSpace(lastLine(out))}}
	}
	re := regexp.MustCompile(`(?m)^(BenchmarkGoal\S*)\s+\d+\s+[\d.]+ ns/op(.*)$`)
	var rows []goalRow
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		rows = append(rows, goalRow{Goal: 5, What: m[1], Note: strings.Join(strings.Fields(m[2]), " ")})
	}
	if len(rows) == 0 {
		rows = append(rows, goalRow{Goal: 5, What: "go test ./als -bench ^BenchmarkGoal", Note: "no such benchmarks in this tree"})
	}
	return rows
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

const goalHeader = "| goal | what | value | reference | ratio | target | met | notes |\n| --- | --- | --- | --- | --- | --- | --- | --- |"

func (r goalRow) markdown() string {
	val := ""
	if r.Unit != "" {
		val = fmt.Sprintf("%.3g %s", r.Value, r.Unit)
	}
	ref := ""
	if r.RefWhat != "" {
		ref = fmt.Sprintf("%.3g (%s)", r.Ref, r.RefWhat)
	}
	ratio := ""
	if r.Ratio != 0 {
		ratio = fmt.Sprintf("%.2f", r.Ratio)
	}
	met := ""
	if r.Met != nil {
		met = map[bool]string{true: "yes", false: "no"}[*r.Met]
	}
	return fmt.Sprintf("| %d | %s | %s | %s | %s | %s | %s | %s |", r.Goal, r.What, val, ref, ratio, r.Target, met, r.Note)
}

func (rep *goalsReport) write(dir string, stdout *os.File) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "goals.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Machine: %s. Source: %s. Threads: %d. Started %s; load average before %s, after %s. NumPy sgemm %d threads: %.0f GFLOP/s.\n\n",
		rep.Machine, rep.Src, rep.Threads, rep.Started, rep.LoadBefore, rep.LoadAfter, rep.Threads, rep.SgemmGFLOPS)
	sb.WriteString(goalHeader + "\n")
	for _, r := range rep.Rows {
		sb.WriteString(r.markdown() + "\n")
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(&sb, "\nproblem: %s\n", p)
	}
	if err := os.WriteFile(filepath.Join(dir, "goals.md"), []byte(sb.String()), 0o644); err != nil {
		return err
	}
	_, err = stdout.WriteString(sb.String())
	return err
}
