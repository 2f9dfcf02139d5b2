package app

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cofactor-ml/cofactor/interop"
)

// TestModelVariantCommands trains a model with biases on a small file,
// then runs the data scientist's commands on it:
// evaluate (every JSON field), recommend --explain (parts add up to the
// score), similar-users, snapshot export --format parquet.
func TestModelVariantCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("user,item,rating\n")
	for u := 0; u < 60; u++ {
		for i := 0; i < 40; i++ {
			if (u*7+i*3)%5 < 2 {
				csv.WriteString(itoa(u) + "," + itoa(100+i) + "," + itoa(1+(u+i)%5) + "\n")
			}
		}
	}
	train := writeFile(t, dir, "train.csv", csv.String())
	snap := filepath.Join(dir, "model")
	code, _, stderr := runCLI(t, "train", "--input", train, "--rank", "4", "--lambda", "0.1", "--iterations", "4", "--biases",
		"--test-fraction", "0.2", "--workers", "1", "--out", snap, "--json")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, "evaluate", "--snapshot", snap, "--test", train, "--k", "5", "--json")
	if code != 0 {
		t.Fatalf("evaluate: exit %d: %s", code, stderr)
	}
	var rep map[string]any
	oneJSON(t, stdout, &rep)
	for _, f := range []string{"precision_at_k", "recall_at_k", "map_at_k", "ndcg_at_k", "auc", "coverage_at_k", "k", "users_evaluated", "baseline", "rmse", "mae"} {
		if _, ok := rep[f]; !ok {
			t.Errorf("evaluate --json lacks %q: %s", f, stdout)
		}
	}
	if b, ok := rep["baseline"].(map[string]any); !ok || b["precision_at_k"] == nil {
		t.Errorf("baseline %v", rep["baseline"])
	}

	code, stdout, stderr = runCLI(t, "recommend", "--snapshot", snap, "--user", "3", "--k", "3", "--explain", "--explain-top", "2", "--exclude-seen", "--json")
	if code != 0 {
		t.Fatalf("recommend --explain: exit %d: %s", code, stderr)
	}
	var rec struct {
		Items []struct {
			Item          string  `json:"item"`
			Score         float64 `json:"score"`
			Remainder     float64 `json:"remainder"`
			Contributions []struct {
				Item         string  `json:"item"`
				Contribution float64 `json:"contribution"`
			} `json:"contributions"`
		} `json:"items"`
	}
	oneJSON(t, stdout, &rec)
	if len(rec.Items) != 3 {
		t.Fatalf("recommend --explain: %s", stdout)
	}
	for _, it := range rec.Items {
		sum := it.Remainder
		for _, c := range it.Contributions {
			sum += c.Contribution
		}
		if len(it.Contributions) != 2 || math.Abs(sum-it.Score) > 1e-4 {
			t.Errorf("item %s: %d contributions + remainder = %g, score %g", it.Item, len(it.Contributions), sum, it.Score)
		}
	}

	code, stdout, stderr = runCLI(t, "similar-users", "--snapshot", snap, "--user", "3", "--k", "4", "--json")
	var sim struct {
		User  string `json:"user"`
		Users []struct {
			User  string  `json:"user"`
			Score float64 `json:"score"`
		} `json:"users"`
	}
	if code != 0 {
		t.Fatalf("similar-users: exit %d: %s", code, stderr)
	}
	oneJSON(t, stdout, &sim)
	if sim.User != "3" || len(sim.Users) != 4 || sim.Users[0].User == "3" || sim.Users[0].Score < sim.Users[3].Score {
		t.Errorf("similar-users: %s", stdout)
	}

	out := filepath.Join(dir, "pq")
	if code, _, stderr = runCLI(t, "snapshot", "export", snap, "--format", "parquet", "--out", out); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	f, err := os.Open(filepath.Join(out, "item_factors.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	ids, _, rank, err := interop.ReadFactors(f, st.Size())
	if err != nil || len(ids) != 40 || rank != 6 {
		t.Errorf("item_factors.parquet: %v, %d IDs of rank %d (want 40 of 6: 4 factors and 2 bias columns)", err, len(ids), rank)
	}
}

func itoa(i int) string {
	s := ""
	for {
		s = string(rune('0'+i%10)) + s
		i /= 10
		if i == 0 {
			return s
		}
	}
}
