package e2e

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/test/testcluster"
	"github.com/cofactor-ml/cofactor/tune"
)

// Must show 2 of the data-science issue on a cluster: `tune --coordinator`
// runs its trials as cluster jobs, prints the documented JSON, draws the
// plot, and the spec it emits, submitted with `job submit --spec`, trains
// the best candidate again to the metric tune reported.
func TestTuneOnCluster(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	all, input, test := filepath.Join(dir, "all.csv"), filepath.Join(dir, "train.csv"), filepath.Join(dir, "test.csv")
	code, _, errs := runCLI(t, "gen", "--users", "400", "--items", "300", "--ratings", "12000", "--rank", "4", "--noise", "0.3", "--seed", "5", "--out", all)
	if code != 0 {
		t.Fatalf("gen: exit %d: %s", code, errs)
	}
	splitEvery(t, all, input, test, 5)
	c := newCluster(t, 1, 2)
	plot, spec := filepath.Join(dir, "tune.png"), filepath.Join(dir, "best.json")
	code, out, errs := c.CLI("tune", "--input", input, "--test", test,
		"--rank", "4,8", "--lambda", "0.02,0.3", "--iterations", "6", "--eta", "2", "--parallel", "2",
		"--json", "--plot", plot, "--emit-spec", spec)
	if code != 0 {
		t.Fatalf("tune: exit %d: %s", code, errs)
	}
	var res tune.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("tune --json printed %q: %v", out, err)
	}
	if res.Metric != "test_rmse" || len(res.Trials) != 4 {
		t.Fatalf("tune: metric %q, %d trials: %s", res.Metric, len(res.Trials), out)
	}
	full := 0
	for _, tr := range res.Trials {
		if tr.Seconds <= 0 || math.IsNaN(tr.Metric) {
			t.Errorf("trial %+v: no time or no metric", tr)
		}
		if !tr.StoppedEarly {
			full++
			if tr.Metric < res.Best.Metric {
				t.Errorf("trial %+v beats the best %+v", tr, res.Best)
			}
		}
	}
	if full == 0 || full == len(res.Trials) {
		t.Errorf("successive halving (eta 2) trained %d of %d trials fully", full, len(res.Trials))
	}

	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := testcluster.PNGDecode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("--plot wrote no PNG: %v", err)
	}

	var best job.Spec
	b, err := os.ReadFile(spec)
	if err != nil || json.Unmarshal(b, &best) != nil {
		t.Fatalf("--emit-spec wrote %q (%v)", b, err)
	}
	if best.Rank != res.Best.Params.Rank || best.Lambda != res.Best.Params.Lambda || best.Iterations != res.Best.Params.Iterations {
		t.Fatalf("emitted spec rank %d λ %g it %d, best %+v", best.Rank, best.Lambda, best.Iterations, res.Best.Params)
	}
	id := c.Submit("--spec", spec)
	code, r := c.Wait(id)
	if code != 0 || r.State != job.StateSucceeded || r.TestRMSE == nil {
		t.Fatalf("job from the emitted spec: exit %d, state %s, error %s", code, r.State, r.Error)
	}
	t.Logf("tune best %+v metric %.6f; job submit --spec: test RMSE %.6f", res.Best.Params, res.Best.Metric, *r.TestRMSE)
	if math.Abs(*r.TestRMSE-res.Best.Metric) > 1e-6 {
		t.Errorf("the emitted spec trains to test RMSE %.6f, tune reported %.6f", *r.TestRMSE, res.Best.Metric)
	}
}

// splitEvery writes every n-th rating line of src to test and the others
// to train, each with src's header line.
func splitEvery(t *testing.T, src, train, test string, n int) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	var tr, te strings.Builder
	tr.WriteString(lines[0])
	te.WriteString(lines[0])
	for i, l := range lines[1:] {
		if i%n == 0 {
			te.WriteString(l)
		} else {
			tr.WriteString(l)
		}
	}
	testcluster.WriteFile(t, train, tr.String())
	testcluster.WriteFile(t, test, te.String())
}
