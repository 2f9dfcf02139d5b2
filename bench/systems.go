package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cofactor-ml/cofactor/internal/job"
)

// row is one line of the side-by-side table.
type row struct {
	System     string  `json:"system"`
	Dataset    string  `json:"dataset"`
	Model      string  `json:"model"`
	Threads    int     `json:"threads"`
	Iterations int     `json:"iterations"`
	SecPerIter float64 `json:"seconds_per_iteration"`
	// TestRMSE after Iterations (explicit); Metric for implicit models.
	TestRMSE *float64 `json:"test_rmse,omitempty"`
	Metric   string   `json:"metric,omitempty"`
	Target   *float64 `json:"target_rmse,omitempty"`
	// TimeToTarget: seconds from the process start (load included) to
	// the end of the first iteration whose test RMSE ≤ Target. Exact:
	// measured by a run stopped there; else the full run's wall time less
	// the iterations after it.
	TimeToTarget *float64 `json:"time_to_target,omitempty"`
	TargetIter   int      `json:"target_iteration,omitempty"`
	TargetExact  bool     `json:"target_exact,omitempty"`
	LoadSeconds  float64  `json:"load_seconds"`
	Wall         float64  `json:"wall_seconds"`
	PeakRSSMB    float64  `json:"peak_rss_mb"`
	TrainRatings int64    `json:"train_ratings,omitempty"`
	Users        int      `json:"users,omitempty"`
	Items        int      `json:"items,omitempty"`
	// RMSETrace is the test RMSE after each iteration (explicit).
	RMSETrace []float64 `json:"test_rmse_trace,omitempty"`
	Note      string    `json:"note,omitempty"`
}

// env is what every system runner needs.
type env struct {
	threads int
	bin     string // directory of the built binaries
	logs    string
	python  string
	exact   bool // rerun cofactor to the target iteration for an exact time
	solver  string
	src     string
	maxRSS  int64 // bytes; the NumPy reference is ended above it
	// implicitPy is the directory the implicit library was built into
	// (implicitref/build.sh); empty: not measured.
	implicitPy string
}

func (e *env) cofactor() string { return filepath.Join(e.bin, "cofactor") }

func ptr(f float64) *float64 { return &f }

// trainFlags are the training flags shared by `train` and `job submit`.
func trainFlags(d *dataset, implicit bool, iterations int, solver string) []string {
	a := []string{"--input", d.Train}
	if d.Test != "" {
		a = append(a, "--test", d.Test)
	} else {
		a = append(a, "--test-fraction", fmt.Sprint(d.Holdout))
	}
	rank, lambda := d.Rank, d.Lambda
	if implicit {
		rank, lambda = d.ImplicitRank, d.ImplicitLambda
		a = append(a, "--implicit", "--alpha", fmt.Sprint(d.ImplicitAlpha))
	}
	if solver != "" {
		a = append(a, "--solver", solver)
	}
	// Checkpoints off (the final snapshot is still written): the tables
	// time training, and a checkpoint costs ~5% of an iteration.
	return append(a, "--rank", fmt.Sprint(rank), "--lambda", fmt.Sprint(lambda),
		"--iterations", fmt.Sprint(iterations), "--checkpoint-every", "0")
}

func modelName(implicit bool) string {
	if implicit {
		return "implicit"
	}
	return "explicit"
}

// resultRow fills a row from a cofactor job result.
func resultRow(system string, d *dataset, implicit bool, threads int, r *job.Result, wall time.Duration, rss int64) row {
	out := row{System: system, Dataset: d.Name, Model: modelName(implicit) + "/" + r.Solver, Threads: threads,
		Iterations: r.Iterations, SecPerIter: r.SecondsPerIteration, LoadSeconds: r.LoadSeconds,
		Wall: wall.Seconds(), PeakRSSMB: float64(rss) / 1e6, TrainRatings: r.TrainRatings, Users: r.Users, Items: r.Items,
		Note: fmt.Sprintf("rank %d, λ %g", r.Rank, r.Lambda)}
	if implicit {
		if r.PrecisionAt10 != nil && r.NDCGAt10 != nil {
			out.Metric = fmt.Sprintf("p@10 %.4f, NDCG@10 %.4f", *r.PrecisionAt10, *r.NDCGAt10)
		}
		return out
	}
	out.TestRMSE = r.TestRMSE
	for _, it := range r.History {
		if it.TestRMSE != nil {
			out.RMSETrace = append(out.RMSETrace, *it.TestRMSE)
		}
	}
	if d.Target > 0 && r.TestRMSE != nil {
		out.Target = ptr(d.Target)
		var after float64 // seconds of the iterations after the target's
		hit := 0
		for _, it := range r.History {
			if hit > 0 {
				after += it.Seconds
			} else if it.TestRMSE != nil && *it.TestRMSE <= d.Target {
				hit = it.Iteration
			}
		}
		if hit > 0 {
			out.TargetIter = hit
			out.TimeToTarget = ptr(wall.Seconds() - after)
		}
	}
	return out
}

// runCofactor trains with `cofactor train` (the all-in-one cluster in one
// process: embedded NATS, raft coordinator, workers in-process).
func runCofactor(ctx context.Context, e *env, d *dataset, implicit bool, workers int) (row, error) {
	args := append([]string{"train", "--json", "--workers", fmt.Sprint(workers)}, trainFlags(d, implicit, d.Iterations, e.solver)...)
	name := fmt.Sprintf("cofactor-train-w%d-%s-%s", workers, d.Name, modelName(implicit))
	r, res, err := trainOnce(ctx, e, name, args)
	if err != nil {
		return row{}, err
	}
	system := "cofactor (1 process)"
	if workers > 1 {
		system = fmt.Sprintf("cofactor train --workers %d", workers)
	}
	out := resultRow(system, d, implicit, e.threads, res, r.Wall, r.PeakRSS)
	if e.exact && out.TargetIter > 0 && out.TargetIter < d.Iterations {
		args := append([]string{"train", "--json", "--workers", fmt.Sprint(workers)}, trainFlags(d, implicit, out.TargetIter, e.solver)...)
		r2, _, err := trainOnce(ctx, e, name+"-to-target", args)
		if err != nil {
			return out, err
		}
		out.TimeToTarget, out.TargetExact = ptr(r2.Wall.Seconds()), true
	} else if out.TargetIter == d.Iterations {
		out.TargetExact = true
	}
	return out, nil
}

func trainOnce(ctx context.Context, e *env, name string, args []string) (run, *job.Result, error) {
	if !slices.Contains(args, "--out") {
		// Without --out, train keeps each model in the user's models
		// directory (~45 MB a rank-64 run): the harness's go to a
		// directory of their own, deleted after the run.
		dir, err := os.MkdirTemp("", "cofactor-bench-model-")
		if err != nil {
			return run{}, nil, err
		}
		defer os.RemoveAll(dir)
		args = append(slices.Clip(args), "--out", filepath.Join(dir, "model"))
	}
	logf("%s: cofactor %s", name, strings.Join(args, " "))
	r, err := runChild(ctx, e.logs, name, e.cofactor(), args, []string{fmt.Sprintf("GOMAXPROCS=%d", e.threads)})
	if err != nil {
		return r, nil, err
	}
	var res job.Result
	if err := json.Unmarshal(r.Stdout, &res); err != nil {
		return r, nil, fmt.Errorf("%s printed %q: %w", name, r.Stdout, err)
	}
	if res.State != "succeeded" {
		return r, nil, fmt.Errorf("%s: job %s: %s", name, res.State, res.Error)
	}
	return r, &res, nil
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago: every listener stays open until all are chosen, or the
// kernel may hand the same port out twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// runCluster trains through separate processes on loopback: one
// nats-server, one coordinator and `workers` worker processes, each worker
// solving with threads/workers goroutines (at least one). The job is
// submitted and awaited with the CLI; the time to target counts from the
// submission (the cluster is long-lived), the peak RSS is the sum of every
// process's own peak.
func runCluster(ctx context.Context, e *env, d *dataset, implicit bool, workers int) (row, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir, err := os.MkdirTemp("", "cofactor-bench-cluster-")
	if err != nil {
		return row{}, err
	}
	defer os.RemoveAll(dir)
	ports, err := freePorts(3 + workers)
	if err != nil {
		return row{}, err
	}
	tag := fmt.Sprintf("cluster-w%d-%s-%s", workers, d.Name, modelName(implicit))
	logs := filepath.Join(e.logs, tag)
	gomax := fmt.Sprintf("GOMAXPROCS=%d", e.threads)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", ports[0])
	httpURL := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	var procs []*child
	stopAll := func() (int64, string) {
		var sum int64
		var parts []string
		for i := len(procs) - 1; i >= 0; i-- {
			r, _ := procs[i].stop()
			sum += r.PeakRSS
			parts = append(parts, fmt.Sprintf("%s %.0f", procs[i].name, float64(r.PeakRSS)/1e6))
		}
		procs = nil
		return sum, strings.Join(parts, ", ")
	}
	defer stopAll()
	start := func(name, bin string, args ...string) error {
		c, err := startChild(ctx, logs, name, bin, args, []string{gomax}, true)
		if err == nil {
			procs = append(procs, c)
		}
		return err
	}
	if err := start("nats", filepath.Join(e.bin, "nats-server"), "-a", "127.0.0.1", "-p", fmt.Sprint(ports[0]),
		"-js", "-sd", filepath.Join(dir, "jetstream")); err != nil {
		return row{}, err
	}
	if err := waitDial(ctx, ports[0]); err != nil {
		return row{}, fmt.Errorf("nats-server: %w", err)
	}
	if err := start("coordinator", filepath.Join(e.bin, "coordinator"), "--id", "c1", "--data-dir", filepath.Join(dir, "c1"),
		"--raft-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]), "--http-addr", fmt.Sprintf("127.0.0.1:%d", ports[2]),
		"--nats", natsURL, "--bootstrap"); err != nil {
		return row{}, err
	}
	threads := max(1, e.threads/workers)
	for i := 1; i <= workers; i++ {
		id := fmt.Sprintf("w%d", i)
		if err := start(id, filepath.Join(e.bin, "worker"), "--id", id, "--nats", natsURL, "--threads", fmt.Sprint(threads),
			"--data-dir", filepath.Join(dir, id), "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", ports[2+i])); err != nil {
			return row{}, err
		}
	}
	if err := waitWorkers(ctx, httpURL, workers); err != nil {
		return row{}, err
	}
	args := append([]string{"--coordinator", httpURL, "job", "submit", "--json"}, trainFlags(d, implicit, d.Iterations, e.solver)...)
	logf("%s: cofactor %s", tag, strings.Join(args, " "))
	t0 := time.Now()
	sub, err := runChild(ctx, logs, "submit", e.cofactor(), args, nil)
	if err != nil {
		return row{}, err
	}
	var sr struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(sub.Stdout, &sr); err != nil || sr.JobID == "" {
		return row{}, fmt.Errorf("job submit printed %q", sub.Stdout)
	}
	w, err := runChild(ctx, logs, "wait", e.cofactor(), []string{"--coordinator", httpURL, "job", "wait", sr.JobID, "--json"}, nil)
	if err != nil {
		return row{}, err
	}
	wall := time.Since(t0)
	var res job.Result
	if err := json.Unmarshal(w.Stdout, &res); err != nil || res.State != "succeeded" {
		return row{}, fmt.Errorf("job wait printed %q (%v)", w.Stdout, err)
	}
	rss, detail := stopAll()
	out := resultRow(fmt.Sprintf("cofactor cluster, %d worker process(es)", workers), d, implicit, e.threads, &res, wall, rss)
	out.Note += fmt.Sprintf("; %d×%d blocks, %.1f MB exchanged/it; RSS MB: %s",
		res.UserBlocks, res.ItemBlocks, float64(res.BytesExchanged)/float64(max(1, res.Iterations))/1e6, detail)
	return out, nil
}

func waitDial(ctx context.Context, port int) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("timed out waiting for a listener")
}

// pollClient keeps no idle connections: a cluster's ports are reused by
// the next run's processes.
var pollClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// waitWorkers polls the coordinator's /v1/cluster until it has a leader
// and n alive workers.
func waitWorkers(ctx context.Context, url string, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var st struct {
			Leader  string `json:"leader"`
			Workers []struct {
				State string `json:"state"`
			} `json:"workers"`
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/cluster", nil)
		if resp, err := pollClient.Do(req); err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			alive := 0
			for _, w := range st.Workers {
				if w.State == "alive" {
					alive++
				}
			}
			if err == nil && st.Leader != "" && alive >= n {
				return nil
			}
			last = fmt.Sprintf("leader %q, %d alive", st.Leader, alive)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("cluster not ready: %s", last)
}

// findPython returns a python3 that imports numpy: the first python3 on
// PATH may be a separate build without it.
func findPython() (string, error) {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		p, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		if exec.Command(p, "-c", "import numpy").Run() == nil {
			return p, nil
		}
	}
	return "", errors.New("no python3 with numpy: run ./setup.sh")
}

// npalsOut is the part of npals.py's JSON the table uses.
type npalsOut struct {
	SPI       float64      `json:"seconds_per_iteration"`
	Load      float64      `json:"load_seconds"`
	Iter      int          `json:"iterations"`
	TestRMSE  *float64     `json:"test_rmse"`
	Trace     [][2]float64 `json:"rmse_trace_train_test"`
	Precision *float64     `json:"precision_at_10"`
	NDCG      *float64     `json:"ndcg_at_10"`
	NTrain    int64        `json:"n_train"`
}

// runNpals runs the NumPy reference with one BLAS thread (its note: more
// threads slow its tiny solves down).
func runNpals(ctx context.Context, e *env, d *dataset, implicit bool) (row, error) {
	iters := d.NpalsIterations
	args := []string{"../../shared/tools/npals.py", d.Train, "--test", d.Test, "--iterations", fmt.Sprint(iters)}
	rank := d.Rank
	if implicit {
		rank = d.ImplicitRank
		args = append(args, "--model", "implicit", "--rank", fmt.Sprint(rank), "--lambda", fmt.Sprint(d.ImplicitLambda),
			"--alpha", fmt.Sprint(d.ImplicitAlpha))
	} else {
		args = append(args, "--rank", fmt.Sprint(rank), "--lambda", fmt.Sprint(d.Lambda), "--trace")
	}
	name := fmt.Sprintf("npals-%s-%s", d.Name, modelName(implicit))
	logf("%s: %s %s", name, e.python, strings.Join(args, " "))
	r, err := runChildLimited(ctx, e.logs, name, e.python, args, []string{"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1"}, e.maxRSS)
	if err != nil {
		return row{}, err
	}
	var o npalsOut
	if err := json.Unmarshal(r.Stdout, &o); err != nil {
		return row{}, fmt.Errorf("npals printed %q: %w", r.Stdout, err)
	}
	out := row{System: "NumPy reference (npals.py)", Dataset: d.Name, Model: modelName(implicit) + "/cholesky", Threads: 1,
		Iterations: o.Iter, SecPerIter: o.SPI, LoadSeconds: o.Load, Wall: r.Wall.Seconds(),
		PeakRSSMB: float64(r.PeakRSS) / 1e6, TrainRatings: o.NTrain, Note: fmt.Sprintf("rank %d, one BLAS thread", rank)}
	if implicit {
		if o.Precision != nil && o.NDCG != nil {
			out.Metric = fmt.Sprintf("p@10 %.4f, NDCG@10 %.4f", *o.Precision, *o.NDCG)
		}
		return out, nil
	}
	out.TestRMSE = o.TestRMSE
	if d.Target > 0 {
		out.Target = ptr(d.Target)
		for _, tr := range o.Trace {
			out.RMSETrace = append(out.RMSETrace, tr[1])
		}
		for i, tr := range o.Trace {
			if tr[1] <= d.Target {
				out.TargetIter = i + 1
				// The per-iteration trace's own evaluation stays in: an
				// upper bound.
				out.TimeToTarget = ptr(r.Wall.Seconds() - float64(o.Iter-i-1)*o.SPI)
				break
			}
		}
	}
	return out, nil
}

// kernel is one line of the kernel table.
type kernel struct {
	What   string  `json:"what"`
	GFLOPS float64 `json:"gflops"`
	Note   string  `json:"note"`
}

// gemmProbe is NumPy's single-thread float32 GEMM rate.
const gemmProbe = `
import json, time, numpy as np
n = 4096
# A reference (non-OpenBLAS) BLAS would take minutes at 4096: shrink.
s = np.ones((1024, 1024), np.float32); s @ s
t = time.perf_counter(); s @ s
if time.perf_counter() - t > 0.5: n = 1024  # under 5 GFLOP/s
rng = np.random.default_rng(1)
a = rng.random((n, n), dtype=np.float32); b = rng.random((n, n), dtype=np.float32)
a @ b
best = 1e9
for _ in range(3):
    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
print(json.dumps({"gflops": 2 * n**3 / best / 1e9, "numpy": np.__version__, "n": n}))
`

func runKernels(ctx context.Context, e *env) ([]kernel, error) {
	var ks []kernel
	logf("NumPy float32 GEMM probe (one thread)")
	r, err := runChild(ctx, e.logs, "gemm-probe", e.python, []string{"-c", gemmProbe},
		[]string{"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1"})
	if err != nil {
		return nil, err
	}
	var p struct {
		GFLOPS float64 `json:"gflops"`
		NumPy  string  `json:"numpy"`
		N      int     `json:"n"`
	}
	if err := json.Unmarshal(r.Stdout, &p); err != nil {
		return nil, fmt.Errorf("probe printed %q: %w", r.Stdout, err)
	}
	ks = append(ks, kernel{fmt.Sprintf("NumPy sgemm %d², 1 BLAS thread", p.N), p.GFLOPS,
		"numpy " + p.NumPy + " (Debian, OpenBLAS via ./setup.sh), best of 3"})
	logf("cofactor kernels: go test ./als -bench GramVsScore -cpu 1")
	cmd := exec.CommandContext(ctx, "go", "test", "./als", "-run", "^$", "-bench", "GramVsScore", "-cpu", "1", "-benchtime", "1s", "-count", "3")
	cmd.Dir = e.src
	out, err := cmd.CombinedOutput()
	if err != nil {
		return ks, fmt.Errorf("go test ./als: %w\n%s", err, out)
	}
	re := regexp.MustCompile(`(?m)^BenchmarkGramVsScore/(\S+)\s+\d+\s+[\d.]+ ns/op\s+([\d.]+) GFLOP/s`)
	// The best of the three runs: the machine may be shared.
	best := map[string]float64{}
	var names []string
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		g, _ := strconv.ParseFloat(m[2], 64)
		if _, ok := best[m[1]]; !ok {
			names = append(names, m[1])
		}
		best[m[1]] = max(best[m[1]], g)
	}
	for _, name := range names {
		m, g := []string{"", name}, best[name]
		what := "cofactor " + m[1]
		note := "go test ./als -bench GramVsScore -cpu 1 -count 3, best"
		if strings.HasPrefix(m[1], "syrk32") {
			what = "cofactor Gram kernel (syrk32), k = 64"
			note += fmt.Sprintf("; %.0f%% of the NumPy GEMM rate", 100*g/p.GFLOPS)
		} else {
			what = "cofactor float32 GEMM kernel (ScoreBlock), k = 64"
		}
		ks = append(ks, kernel{what, g, note})
	}
	if len(ks) < 3 {
		return ks, fmt.Errorf("no GramVsScore figures in:\n%s", out)
	}
	return ks, nil
}

// gorseStatus records whether gorse can be fetched: it is built in this
// module only if the module proxy serves it.
func gorseStatus(ctx context.Context) string {
	var notes []string
	for _, m := range []string{"github.com/zhenghaoz/gorse", "github.com/gorse-io/gorse"} {
		out, err := exec.CommandContext(ctx, "go", "list", "-m", "-versions", m).CombinedOutput()
		msg := strings.TrimSpace(string(out))
		if i := strings.IndexByte(msg, '\n'); i > 0 {
			msg = msg[:i]
		}
		if err == nil {
			notes = append(notes, "served: "+msg)
		} else {
			notes = append(notes, msg)
		}
	}
	return strings.Join(notes, "; ")
}
