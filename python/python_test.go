// Package python_test checks python/cofactor.py against the Go reader and
// the CLI's ranking, with Debian's python3-numpy.
package python_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cofactor-ml/cofactor/allinone"
	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/leaktest"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/internal/testutil"
	"github.com/cofactor-ml/cofactor/serve"
)

// python returns a Python 3 interpreter that imports numpy, or skips.
func python(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if exec.Command(p, "-c", "import numpy").Run() == nil {
			return p
		}
	}
	t.Skip("python3 with numpy not found: install Debian's python3-numpy (apt-get install python3-numpy; .ci/run does) to test python/cofactor.py")
	return ""
}

// script prints, for each user given, recommend(user, 10) and
// recommend(user, 10, exclude_seen=True) as JSON.
const script = `
import json, sys
sys.path.insert(0, sys.argv[1])
from cofactor import Snapshot
s = Snapshot(sys.argv[2])
out = {"users": len(s.user_ids), "items": len(s.item_ids), "rank": s.user_factors.shape[1], "recs": {}}
for u in sys.argv[3:]:
    out["recs"][u] = [s.recommend(u, 10), s.recommend(u, 10, exclude_seen=True)]
print(json.dumps(out))
`

// MUST SHOW: Snapshot(path).recommend(user, k) in Python gives the CLI's
// items in the CLI's order with its scores, for plain and biased models.
func TestPythonRecommendEqualsCLI(t *testing.T) {
	t.Parallel()
	py := python(t)
	input := testutil.WriteRatings(t, synth.Config{Users: 200, Items: 150, Ratings: 5000, Rank: 4, Noise: 0.3, Seed: 3, ZipfExponent: 0.8})
	for _, biases := range []bool{false, true} {
		spec := job.DefaultSpec()
		spec.Input, spec.Rank, spec.Lambda, spec.Iterations, spec.Biases = input, 6, 0.05, 4, biases
		spec.UserBlocks, spec.ItemBlocks = 2, 2
		spec.Out = filepath.Join(t.TempDir(), "model")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		c, err := allinone.Start(ctx, allinone.Options{Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Run(ctx, spec, nil)
		c.Close()
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		m, err := checkpoint.ReadDir(context.Background(), spec.Out)
		if err != nil {
			t.Fatal(err)
		}
		users := []string{m.UserIDs[0], m.UserIDs[17], m.UserIDs[len(m.UserIDs)-1]}
		args := append([]string{"-c", script, ".", spec.Out}, users...)
		cmd := exec.Command(py, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("python: %v\n%s", err, stderr.String())
		}
		var got struct {
			Users, Items, Rank int
			Recs               map[string][2][][2]any
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("python printed %q: %v", out, err)
		}
		if got.Users != len(m.UserIDs) || got.Items != len(m.ItemIDs) || got.Rank != m.Rank {
			t.Errorf("biases %v: python reads %d users, %d items, rank %d; Go %d, %d, %d", biases, got.Users, got.Items, got.Rank, len(m.UserIDs), len(m.ItemIDs), m.Rank)
		}
		for _, id := range users {
			u, _ := m.User(id)
			for e, exclude := range []bool{false, true} {
				want := serve.RecommendUser(m, u, 10, serve.Filter{ExcludeSeen: exclude})
				recs := got.Recs[id][e]
				if len(recs) != len(want) {
					t.Fatalf("biases %v, user %s, exclude_seen %v: %d items, want %d", biases, id, exclude, len(recs), len(want))
				}
				for j, w := range want {
					item, score := recs[j][0].(string), recs[j][1].(float64)
					if item != m.ItemIDs[w.Item] || math.Abs(score-float64(w.Score)) > 1e-5*(1+math.Abs(score)) {
						t.Errorf("biases %v, user %s, exclude_seen %v, #%d: python (%s, %g), CLI (%s, %g)",
							biases, id, exclude, j+1, item, score, m.ItemIDs[w.Item], w.Score)
					}
				}
			}
		}
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Ignored()...) }
