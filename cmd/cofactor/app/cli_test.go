package app

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cofactor-ml/cofactor/internal/job"
)

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Must show 4: every bad-input rule, with the exact error line, exit 2, and
// nothing written at --out.
func TestTrainBadInput(t *testing.T) {
	t.Parallel()
	good := "user,item,rating\n1,10,4\n1,11,3\n2,10,5\n2,12,1\n3,11,2\n"
	tests := []struct {
		name, body string
		extra      []string
		want       string // the stderr line after "error: FILE"
	}{
		{"not a number", good + "3,12,abc\n", nil, `:7: rating "abc" is not a number`},
		{"NaN", good + "3,12,NaN\n", nil, `:7: rating "NaN" is not finite`},
		{"Inf", "1,2,3\n4,5,+Inf\n", nil, `:2: rating "+Inf" is not finite`},
		{"overflow", "1,2,3\n4,5,1e39\n", nil, `:2: rating "1e39" is not finite`},
		{"missing field", good + "3,12\n", nil, `:7: expected at least 3 fields (user, item, rating), found 2`},
		{"empty user", good + ",12,3\n", nil, `:7: empty user ID`},
		{"empty item", good + "4,,3\n", nil, `:7: empty item ID`},
		{"unterminated quote", good + "\"4,12,3\n", nil, `:7: unterminated quoted field`},
		{"empty file", "", nil, `: no ratings`},
		{"only a header", "user,item,rating\n", nil, `: no ratings`},
		{"all lines skipped", "a,b,x\n\nc,d,y\n", []string{"--on-bad-line", "skip", "--format", "csv"}, `: no ratings`},
		{"undetectable", "just some words\n", nil, `: cannot detect the input format from its first line; pass --format csv|tsv|movielens|mm`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			in := writeFile(t, dir, "ratings.csv", tc.body)
			out := filepath.Join(dir, "model")
			args := append([]string{"train", "--input", in, "--rank", "2", "--iterations", "1", "--out", out, "--test-fraction", "0"}, tc.extra...)
			code, stdout, stderr := runCLI(t, args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if want := "error: " + in + tc.want + "\n"; stderr != want {
				t.Errorf("stderr %q\nwant   %q", stderr, want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("--out %s exists after a failure", out)
			}
		})
	}
}

func TestTrainJSONCountsSkipsAndDuplicates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := writeFile(t, dir, "r.csv", "user,item,rating\n1,10,4\n1,11,3\n2,10,5\n1,10,2\n2,12,NaN\n3,11,2\n3,10,1\nx,y\n2,11,4\n")
	code, stdout, stderr := runCLI(t, "train", "--input", in, "--rank", "2", "--iterations", "2", "--on-bad-line", "skip", "--test-fraction", "0", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res map[string]any
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&res); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Error("more than one JSON value on stdout")
	}
	for field, want := range map[string]any{
		"state": "succeeded", "skipped_lines": 2.0, "duplicates": 1.0, "train_ratings": 6.0,
		"users": 3.0, "items": 2.0, "rank": 2.0, "iterations": 2.0, "implicit": false,
		"test_ratings": 0.0, "test_skipped": 0.0, "test_rmse": nil, "precision_at_10": nil, "ndcg_at_10": nil,
	} {
		if got, ok := res[field]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", field, got, ok, want)
		}
	}
	for _, field := range []string{"job_id", "lambda", "train_rmse", "seconds", "seconds_per_iteration", "history", "snapshot"} {
		if _, ok := res[field]; !ok {
			t.Errorf("field %s missing", field)
		}
	}
	if h, _ := res["history"].([]any); len(h) != 2 {
		t.Errorf("history %v", res["history"])
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--no-such-flag"}, "error: unknown flag: --no-such-flag\n"},
		{[]string{"train", "--rank", "2"}, "error: invalid training spec: no input file (--input)\n"},
		{[]string{"train", "--input", "x.csv", "--rank", "0"}, "error: invalid training spec: als: invalid configuration: rank 0 outside 1..1024\n"},
		{[]string{"train", "--input", "x.csv", "--format", "xml"}, "error: invalid training spec: unknown format \"xml\" (want auto, csv, tsv, movielens, mm or parquet)\n"},
		{[]string{"train", "--input", "x.csv", "--blocks", "3y"}, "error: --blocks \"3y\": want P or PxQ with positive integers\n"},
		{[]string{"train", "--input", "x.csv", "--solver", "lu"}, "error: invalid training spec: als: invalid configuration: solver \"lu\" (want \"cholesky\", \"cg\" or \"auto\")\n"},
		{[]string{"train", "--input", "x.csv", "--test", "y.csv", "--test-fraction", "0.2"}, "error: invalid training spec: --test and --test-fraction cannot be combined (set --test-fraction 0 with --test)\n"},
		{[]string{"train", "--input", "/nonexistent/ratings.csv"}, "error: open /nonexistent/ratings.csv: no such file or directory\n"},
		{[]string{"gen", "--users", "10"}, "error: --out is required (a file name, or - for stdout)\n"},
		{[]string{"gen", "--users", "0", "--out", "-"}, "error: synth: invalid configuration: users 0 outside 1..2147483647\n"},
		{[]string{"train", "extra"}, "error: unexpected argument \"extra\"\n"},
	} {
		code, stdout, stderr := runCLI(t, tc.args...)
		if code != 2 || stderr != tc.want || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2, %q", tc.args, code, stderr, stdout, tc.want)
		}
	}
}

func TestGenDeterministicAndAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv")
	args := []string{"--users", "100", "--items", "50", "--ratings", "2000", "--rank", "3", "--noise", "0.1", "--seed", "9"}
	for _, p := range []string{a, b} {
		if code, _, stderr := runCLI(t, append(append([]string{"gen"}, args...), "--out", p)...); code != 0 {
			t.Fatalf("gen: %d %s", code, stderr)
		}
	}
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ba, bb) || len(ba) == 0 {
		t.Error("same flags gave different bytes")
	}
	if n := strings.Count(string(ba), "\n"); n != 2001 {
		t.Errorf("%d lines, want 2001", n)
	}
	// A failing gen leaves nothing behind (here: an impossible density).
	c := filepath.Join(dir, "c.csv")
	code, _, _ := runCLI(t, "gen", "--users", "10", "--items", "10", "--ratings", "90", "--rank", "2", "--out", c)
	if code != 2 {
		t.Errorf("impossible density: exit %d", code)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("%d files in the output directory, want 2", len(ents))
	}
}

func TestQuickstart(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCLI(t, "quickstart")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"test RMSE", "noise floor 0.50", "top 5 recommendations", "user 1:", "user 3:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestMistypedCommands: a mistyped command or subcommand exits 2 naming
// what was meant; --version names the version, Go and the kernel.
func TestMistypedCommands(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"job", "sumbit"}, `error: unknown command "sumbit" for "cofactor job"; did you mean "submit"?`},
		{[]string{"snapshot", "lst"}, `error: unknown command "lst" for "cofactor snapshot"; did you mean "list"?`},
		{[]string{"trian", "--input", "x.csv"}, `error: unknown command "trian" for "cofactor"; did you mean "train"?`},
	} {
		code, stdout, stderr := runCLI(t, tc.args...)
		if code != 2 || stdout != "" || strings.TrimSpace(stderr) != tc.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %s", tc.args, code, stdout, stderr, tc.want)
		}
	}
	code, stdout, _ := runCLI(t, "--version")
	if code != 0 || !strings.HasPrefix(stdout, "cofactor ") || !strings.Contains(stdout, runtime.Version()) || !strings.Contains(stdout, "kernel ") {
		t.Errorf("--version: exit %d, %q", code, stdout)
	}
}

// TestPrintRunningJob: `job status` of a job that has not finished says
// so, with the iteration, the share done, the time elapsed and left; it
// never says "trained" or "N iterations in".
func TestPrintRunningJob(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	base := job.Result{JobID: "j1", Rank: 8, Lambda: 0.1, Iterations: 15, Solver: "cholesky", Users: 610, Items: 8991,
		TrainRatings: 80669, Workers: 2, UserBlocks: 2, ItemBlocks: 2, Seconds: 2.16, SecondsPerIteration: 0.54,
		History: []job.Iteration{{Iteration: 1, Seconds: 0.5}, {Iteration: 2, Seconds: 0.58}}, TrainRMSE: f(0.8)}
	running := base
	running.State = job.StateRunning
	running.Progress = &job.Progress{Iteration: 3, Phase: "users", Done: 2.0 / 15, ElapsedSeconds: 2.16, RemainingSeconds: f(13 * 0.54)}
	failed := base
	failed.State, failed.Error = job.StateFailed, "phase failed 5 times"
	partitioning := job.Result{JobID: "j2", State: job.StateRunning, Iterations: 15,
		Progress: &job.Progress{Phase: "partition", ElapsedSeconds: 0.4}}
	for _, tc := range []struct {
		r    job.Result
		want []string
	}{
		{running, []string{"job j1: running\n", "training explicit model: 610 users × 8991 items",
			"running: iteration 3 of 15, users phase; 2 of 15 iterations done (13%), 2.16 s elapsed, about 7.0 s left at 0.540 s/iteration\n",
			"train RMSE 0.8000 after iteration 2\n"}},
		{failed, []string{"job j1: failed\n", "error: phase failed 5 times\n", "failed after 2 of 15 iterations, 2.16 s\n", "train RMSE 0.8000 after iteration 2\n"}},
		{partitioning, []string{"job j2: running (partition phase, 0% done, 0.40 s elapsed, time left known after the first iteration)\n"}},
	} {
		var b strings.Builder
		printJob(&b, &tc.r)
		out := b.String()
		for _, want := range tc.want {
			if !strings.Contains(out, want) {
				t.Errorf("%s job: output lacks %q:\n%s", tc.r.State, want, out)
			}
		}
		if strings.Contains(out, "trained") || strings.Contains(out, "iterations in") {
			t.Errorf("%s job is described as trained:\n%s", tc.r.State, out)
		}
	}
}

// TestSubmitResolvesRelativePaths: job submit and schedule add send the
// paths of the client's working directory, absolute: the workers that
// read them run elsewhere.
func TestSubmitResolvesRelativePaths(t *testing.T) {
	var specs []job.Spec
	coord := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Spec job.Spec `json:"spec"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		specs = append(specs, req.Spec)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"job_id": "j1", "schedule": "n"}`))
	}))
	defer coord.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	for _, args := range [][]string{
		{"job", "submit"},
		{"schedule", "add", "n", "--cron", "@daily"},
	} {
		args = append([]string{"--coordinator", coord.URL}, args...)
		args = append(args, "--input", "data/train.csv", "--test", "data/test.csv", "--out", "model", "--store", "dir:snaps")
		if code, _, stderr := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	if len(specs) != 2 {
		t.Fatalf("%d requests", len(specs))
	}
	for _, sp := range specs {
		if sp.Input != filepath.Join(dir, "data/train.csv") || sp.Test != filepath.Join(dir, "data/test.csv") ||
			sp.Out != filepath.Join(dir, "model") || sp.Store != "dir:"+filepath.Join(dir, "snaps") {
			t.Errorf("sent input %q, test %q, out %q, store %q; want them under %s", sp.Input, sp.Test, sp.Out, sp.Store, dir)
		}
	}
}

// TestUnreachableCoordinators: with no coordinator answering, a command
// gives up after --timeout (5 s by default) naming every URL it tried
// and why; a server that is not a coordinator is named as such.
func TestUnreachableCoordinators(t *testing.T) {
	t.Parallel()
	if def := NewCommand(strings.NewReader(""), io.Discard, io.Discard).PersistentFlags().Lookup("timeout").DefValue; def != "5s" {
		t.Errorf("--timeout defaults to %s, want 5s", def)
	}
	var closed []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed = append(closed, "http://"+l.Addr().String())
		l.Close()
	}
	code, _, stderr := runCLI(t, "--coordinator", strings.Join(closed, ","), "--timeout", "300ms", "cluster", "status")
	want := "error: no coordinator answered within "
	if code != 1 || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "(tried "+closed[0]+", "+closed[1]+"): ") ||
		!strings.Contains(stderr, closed[1]+": dial tcp") {
		t.Errorf("exit %d, %q", code, stderr)
	}
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	code, _, stderr = runCLI(t, "--coordinator", other.URL, "job", "list")
	if code == 0 || !strings.Contains(stderr, other.URL+" answered 404 Not Found") {
		t.Errorf("a server that is not a coordinator: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "--coordinator", other.URL, "--timeout", "0s", "job", "list"); code != 2 || !strings.Contains(stderr, "--timeout") {
		t.Errorf("--timeout 0: exit %d, %q", code, stderr)
	}
}

// TestQuickstartNext: the quickstart's closing commands name the binary
// the way the user can run it from where they are.
func TestQuickstartNext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := writeFile(t, dir, "cofactor", "")
	other := writeFile(t, dir, "other", "")
	for _, tc := range []struct {
		exe, arg0, onPath string
		clone             bool
		want              string
	}{
		{"/tmp/go-build123/b001/exe/cofactor", "/tmp/go-build123/b001/exe/cofactor", "", true, "go run ./cmd/cofactor"},
		{"/tmp/go-build123/b001/exe/cofactor", "/tmp/go-build123/b001/exe/cofactor", "", false, "go run github.com/cofactor-ml/cofactor/cmd/cofactor@latest"},
		{bin, "bin/cofactor", "", true, "bin/cofactor"},
		{bin, "cofactor", bin, false, "cofactor"},
		{bin, "./cofactor", other, false, "./cofactor"}, // another cofactor is on the PATH
	} {
		if got := invocationOf(tc.exe, tc.arg0, tc.onPath, tc.clone); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc, got, tc.want)
		}
	}
	var b strings.Builder
	printNext(&b, "go run ./cmd/cofactor")
	out := b.String()
	for _, want := range []string{"  go run ./cmd/cofactor train --input ratings.csv", "  go run ./cmd/cofactor recommend --snapshot model/", "go install ./cmd/..."} {
		if !strings.Contains(out, want) {
			t.Errorf("next lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "`cofactor gen --help`") {
		t.Errorf("next names a cofactor that is not on the PATH:\n%s", out)
	}
}

// TestTrainKeepsModelWithoutOut: train without --out keeps the model in
// the models directory under its snapshot ID, says where and how to use
// it, and snapshot list and recommend find it there afterwards.
func TestTrainKeepsModelWithoutOut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	models := filepath.Join(dir, "models")
	in := writeFile(t, dir, "ratings.csv", "user,item,rating\n1,10,4\n1,11,3\n2,10,5\n2,12,1\n3,11,2\n3,12,4\n")
	code, stdout, stderr := runCLI(t, "train", "--input", in, "--rank", "2", "--iterations", "2", "--test-fraction", "0", "--models", models, "--json")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	var res job.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(models, res.SnapshotID)
	if res.SnapshotID == "" || res.Snapshot != want {
		t.Fatalf("snapshot %q (ID %q), want it kept at %s", res.Snapshot, res.SnapshotID, want)
	}
	if _, err := os.Stat(filepath.Join(want, "manifest.json")); err != nil {
		t.Fatal(err)
	}
	if entries, _ := filepath.Glob(filepath.Join(models, ".training-*")); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
	code, stdout, stderr = runCLI(t, "snapshot", "list", "--store", "dir:"+models)
	if code != 0 || !strings.Contains(stdout, res.SnapshotID) {
		t.Errorf("snapshot list: exit %d, %q %q", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "recommend", "--store", "dir:"+models, "--snapshot", "latest", "--user", "1", "--k", "2", "--json")
	if code != 0 || !strings.Contains(stdout, `"user":"1"`) {
		t.Errorf("recommend from the kept latest: exit %d, %q %q", code, stdout, stderr)
	}
	// The human output says where the model is and how to use it.
	code, stdout, _ = runCLI(t, "train", "--input", in, "--rank", "2", "--iterations", "1", "--test-fraction", "0", "--models", models)
	if code != 0 || !strings.Contains(stdout, "snapshot written to "+models+string(filepath.Separator)) || !strings.Contains(stdout, "snapshot list --store dir:"+models) {
		t.Errorf("train: exit %d, %q", code, stdout)
	}
}
