//go:build fault

package fault

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/internal/testutil"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/test/testcluster"
)

// ingestFlags are the training flags of the ingest scenario: few
// iterations, the ingest is what is disturbed.
var ingestFlags = []string{"--rank", "16", "--lambda", "0.05", "--iterations", "4", "--test-fraction", "0.1"}

// ingestReference generates a set of users × items with ratings (rank 8,
// seed) and trains it with `train --workers 1` and ingestFlags: the
// file, and the snapshot every ingest scenario must reproduce.
func ingestReference(t *testing.T, users, items, ratings, seed string) (in, ref string) {
	t.Helper()
	in = filepath.Join(t.TempDir(), "ratings.csv")
	code, _, errs := testcluster.RunCLI(t, "gen", "--users", users, "--items", items, "--ratings", ratings, "--rank", "8",
		"--noise", "0.3", "--seed", seed, "--out", in)
	if code != 0 {
		t.Fatalf("gen: exit %d: %s", code, errs)
	}
	ref = filepath.Join(t.TempDir(), "reference")
	if code, _, errs := testcluster.RunCLI(t, append([]string{"train", "--workers", "1", "--input", in, "--out", ref, "--json"}, ingestFlags...)...); code != 0 {
		t.Fatalf("reference train: exit %d: %s", code, errs)
	}
	return in, ref
}

// A worker SIGKILLed while a dataset is ingested (issue 12): the attempt is
// abandoned, the ingest starts again with the shards spread over the two
// workers left, and the job ends with the factors of `train --workers 1`
// on the same file. The worker is started again before the next run.
func TestWorkerKilledMidIngest(t *testing.T) {
	// A set whose ingest lasts a few seconds on three workers.
	in, ref := ingestReference(t, "60000", "5000", "3000000", "12")
	c := testcluster.New(t, 1, 3)
	if code, _, errs := testcluster.RunCLI(t, "dataset", "put", "ds", in, "--nats", c.NATSURL); code != 0 {
		t.Fatalf("dataset put: exit %d: %s", code, errs)
	}
	coordLog := c.Coords[0].P.Log
	ty := newTally(t, "worker SIGKILL mid-ingest")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 12))
	for i := range runs(t) {
		ty.run(i, func(t *testing.T) float64 {
			victim := fmt.Sprintf("w%d", 1+rng.IntN(3))
			dist := filepath.Join(t.TempDir(), "out")
			id := c.Submit(append(append([]string{"--dataset", "ds"}, ingestFlags...), "--out", dist)...)
			attempts := func() int {
				b, _ := os.ReadFile(coordLog)
				return strings.Count(string(b), `msg="ingest started" coordinator=c1 job=`+id+" ")
			}
			testcluster.WaitFor(t, "the ingest to start", func() bool { return attempts() >= 1 })
			time.Sleep(time.Duration(200+rng.IntN(1000)) * time.Millisecond)
			t.Logf("killing worker %s mid-ingest", victim)
			c.Worker(victim).Kill()
			res := mustSucceed(t, c, id)
			t.Logf("ingest attempts %d, workers %d, %d×%d blocks", attempts(), res.Workers, res.UserBlocks, res.ItemBlocks)
			if n := attempts(); n < 2 || res.Workers != 2 || res.UserBlocks != 2 {
				t.Errorf("%d ingest attempts, the job ran on %d workers with %d user blocks: want the ingest restarted over 2 workers", n, res.Workers, res.UserBlocks)
			}
			d := testutil.DirDiff(t, dist, ref)
			if d > 1e-5 {
				t.Errorf("factors differ from train --workers 1 by %g", d)
			}
			c.StartWorker(victim)
			c.WaitReady(1, 3, time.Minute)
			return d
		})
	}
}

// An ingest round fails on one worker after its point of no return (its
// Build has handed its ratings over, so running it again can only report
// partition.ErrRepeat): the leader abandons the attempt and starts the
// ingest again over the same three workers, and the job ends with the
// factors of `train --workers 1`, instead of failing after the round's
// retries.
func TestIngestRoundFailsPastRepeat(t *testing.T) {
	in, ref := ingestReference(t, "20000", "2000", "400000", "13")
	c := testcluster.NewEmpty(t)
	c.StartBase(1)
	c.StartWorker("w1")
	c.StartWorker("w2")
	c.StartWorkerArgs("w3", "--inject-faults", fmt.Sprintf("ingest-fail-round=%d", wire.IngestBuildUsers))
	c.WaitReady(1, 3, time.Minute)
	if code, _, errs := testcluster.RunCLI(t, "dataset", "put", "ds", in, "--nats", c.NATSURL); code != 0 {
		t.Fatalf("dataset put: exit %d: %s", code, errs)
	}
	ty := newTally(t, "ingest round failed past its point of no return")
	ty.run(0, func(t *testing.T) float64 {
		dist := filepath.Join(t.TempDir(), "out")
		id := c.Submit(append(append([]string{"--dataset", "ds"}, ingestFlags...), "--out", dist)...)
		res := mustSucceed(t, c, id)
		b, err := os.ReadFile(c.Coords[0].P.Log)
		if err != nil {
			t.Fatal(err)
		}
		log := string(b)
		attempts := strings.Count(log, `msg="ingest started" coordinator=c1 job=`+id+" ")
		t.Logf("ingest attempts %d, workers %d", attempts, res.Workers)
		if attempts != 2 || !strings.Contains(log, `msg="ingest attempt abandoned"`) || res.Workers != 3 {
			t.Errorf("%d ingest attempts on %d workers, abandoned logged %v: want the ingest started again once over the same 3 workers",
				attempts, res.Workers, strings.Contains(log, `msg="ingest attempt abandoned"`))
		}
		d := testutil.DirDiff(t, dist, ref)
		if d > 1e-5 {
			t.Errorf("factors differ from train --workers 1 by %g", d)
		}
		return d
	})
}
