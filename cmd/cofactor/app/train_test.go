package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/internal/testutil"
)

// train --workers 1 runs the job without the embedded cluster
// (allinone.Train): its JSON, printed figures and snapshot are those of a
// one-worker cluster (checked field by field in allinone); here, that the
// CLI's outputs hold with it — the same JSON fields and values as with two
// workers, the snapshot at --out or kept under --models, nothing left
// behind.
func TestTrainOneWorker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := testutil.WriteRatings(t, synth.Config{Users: 300, Items: 150, Ratings: 9_000, Rank: 4, Noise: 0.2, Seed: 8, ZipfExponent: 0.6})
	results := map[string]map[string]any{}
	for _, workers := range []string{"1", "2"} {
		out := filepath.Join(dir, "w"+workers)
		code, stdout, stderr := runCLI(t, "train", "--input", in, "--rank", "4", "--iterations", "3", "--workers", workers, "--out", out, "--json")
		if code != 0 {
			t.Fatalf("--workers %s: exit %d: %s", workers, code, stderr)
		}
		var res map[string]any
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatal(err)
		}
		if res["snapshot"] != out || res["state"] != string(job.StateSucceeded) {
			t.Errorf("--workers %s: snapshot %v, state %v", workers, res["snapshot"], res["state"])
		}
		if code, _, stderr := runCLI(t, "snapshot", "verify", out); code != 0 {
			t.Errorf("--workers %s: snapshot verify: %s", workers, stderr)
		}
		for _, k := range []string{"job_id", "snapshot", "snapshot_id", "checkpoint", "seconds", "load_seconds", "seconds_per_iteration", "workers", "user_blocks", "item_blocks", "bytes_exchanged", "bytes_lower_bound"} {
			if _, ok := res[k]; !ok {
				t.Errorf("--workers %s: no %q in the JSON", workers, k)
			}
			delete(res, k)
		}
		for _, it := range res["history"].([]any) {
			delete(it.(map[string]any), "seconds")
		}
		results[workers] = res
	}
	// Two workers sum the losses over 2×2 blocks: equal to rounding.
	a, b := results["1"], results["2"]
	if len(a) != len(b) {
		t.Errorf("JSON fields differ: %v against %v", a, b)
	}
	for k, va := range a {
		fa, ok := va.(float64)
		if fb, okb := b[k].(float64); ok && okb && (fa-fb)*(fa-fb) < 1e-18 {
			continue
		}
		ja, _ := json.Marshal(va)
		jb, _ := json.Marshal(b[k])
		if k != "history" && string(ja) != string(jb) {
			t.Errorf("%s: %s with one worker, %s with two", k, ja, jb)
		}
	}
	if d := testutil.DirDiff(t, filepath.Join(dir, "w1"), filepath.Join(dir, "w2")); d > 1e-5 {
		t.Errorf("factors differ by %g", d)
	}

	// Without --out the model is kept under --models.
	models := filepath.Join(dir, "models")
	code, stdout, stderr := runCLI(t, "train", "--input", in, "--rank", "4", "--iterations", "2", "--workers", "1", "--models", models)
	if code != 0 || !strings.Contains(stdout, "snapshot written to "+models+string(filepath.Separator)) || !strings.Contains(stdout, "1 workers, 1×1 blocks") {
		t.Fatalf("train: exit %d, %q %q", code, stdout, stderr)
	}
	ents, _ := os.ReadDir(models)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[1] != "latest.default" || !strings.HasSuffix(names[0], "-it0002") {
		t.Errorf("models directory holds %v, want the snapshot and its pointer", names)
	}
	code, stdout, stderr = runCLI(t, "recommend", "--store", "dir:"+models, "--snapshot", "latest", "--user", "1", "--k", "2", "--json")
	if code != 0 || !strings.Contains(stdout, `"user":"1"`) {
		t.Errorf("recommend from the kept latest: exit %d, %q %q", code, stdout, stderr)
	}
}
