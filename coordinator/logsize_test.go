package coordinator_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/internal/testutil"
)

// maxEntryBytes is what a raft log entry may weigh: the log names things
// and the block store holds the bulk (issue 11).
const maxEntryBytes = 16 << 10

// idleWindow is how long TestLogStaysSmall watches an idle cluster: 15 s
// by default, COFACTOR_IDLE_SECONDS to measure a full minute.
func idleWindow(t *testing.T) time.Duration {
	if v := os.Getenv("COFACTOR_IDLE_SECONDS"); v != "" {
		s, err := strconv.Atoi(v)
		if err != nil || s < 1 {
			t.Fatalf("COFACTOR_IDLE_SECONDS=%q", v)
		}
		return time.Duration(s) * time.Second
	}
	return 15 * time.Second
}

// TestLogStaysSmall runs 200 tiny jobs and two jobs of 96×96 and 256×256
// blocks through three coordinators and three workers: no raft log entry
// may exceed 16 KiB, whatever the block layout (the partition summary's
// row needs and the checkpoint manifests are blobs). Then the cluster
// idles: with liveness kept in memory, an idle minute appends at most 2
// entries (the window is shorter by default; the old log committed every
// worker's last-seen time every 5 s, 3 entries in 15 s).
func TestLogStaysSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 202 jobs and idles")
	}
	c := startCluster(t)
	c.startWorker("w3")
	ctx := context.Background()
	cl := c.client()
	eventually(t, "three workers alive", func() error {
		st, err := cl.Cluster(ctx)
		if err != nil {
			return err
		}
		alive := 0
		for _, w := range st.Workers {
			if w.State == coordinator.WorkerAlive {
				alive++
			}
		}
		if alive != 3 {
			return fmt.Errorf("%d workers alive", alive)
		}
		return nil
	})

	tiny := job.DefaultSpec()
	tiny.Input = testutil.WriteRatings(t, synth.Config{Users: 40, Items: 30, Ratings: 400, Rank: 2, Noise: 0.3, Seed: 5, ZipfExponent: 0.8})
	tiny.Rank, tiny.Iterations, tiny.TestFraction = 2, 1, 0
	const jobs = 200
	var ids []string
	for i := range jobs {
		id, err := cl.Submit(ctx, coordinator.SubmitRequest{Spec: tiny, JobID: fmt.Sprintf("tiny-%03d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	start := time.Now()
	waitAll(t, cl, ids)
	t.Logf("%d jobs in %.1f s", jobs, time.Since(start).Seconds())
	c.checkEntries(t, "200 jobs")

	big := job.DefaultSpec()
	big.Input = testutil.WriteRatings(t, synth.Config{Users: 1200, Items: 1000, Ratings: 12000, Rank: 2, Noise: 0.3, Seed: 7, ZipfExponent: 0.5})
	big.Rank, big.Iterations, big.TestFraction = 2, 1, 0
	for _, blocks := range []int{96, 256} {
		spec := big
		spec.UserBlocks, spec.ItemBlocks = blocks, blocks
		id, err := cl.Submit(ctx, coordinator.SubmitRequest{Spec: spec, JobID: fmt.Sprintf("blocks-%d", blocks)})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitAll(t, cl, []string{id})
		t.Logf("%d×%d blocks in %.1f s", blocks, blocks, time.Since(start).Seconds())
		c.checkEntries(t, fmt.Sprintf("%d×%d blocks", blocks, blocks))
	}

	// Idle: let the last job's drop and any registration settle, then
	// count what the log grows by.
	time.Sleep(3 * time.Second)
	l := c.leader()
	_, before := c.nodes[l].LogStats()
	window := idleWindow(t)
	time.Sleep(window)
	_, after := c.nodes[l].LogStats()
	t.Logf("idle %v with 3 workers: %d entries appended", window, after-before)
	if after-before > 2 {
		t.Errorf("an idle %v appended %d entries, want at most 2", window, after-before)
	}
	// Yet every coordinator, follower or leader, says when it last heard
	// each worker: liveness lives in memory.
	for i := range c.nodes {
		st, err := coordinator.NewClient(c.url(i)).Cluster(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range st.Workers {
			if age := time.Since(w.LastSeen); age > 2*time.Second {
				t.Errorf("%s says worker %s was last seen %v ago, after an idle %v", c.cfgs[i].ID, w.ID, age, window)
			}
		}
	}
}

// waitAll waits for the jobs to succeed.
func waitAll(t *testing.T, cl *coordinator.Client, ids []string) {
	t.Helper()
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		res, err := cl.Wait(ctx, id, nil)
		cancel()
		if err != nil {
			t.Fatalf("job %s: %v", id, err)
		}
		if res.State != job.StateSucceeded {
			t.Fatalf("job %s %s: %s", id, res.State, res.Error)
		}
	}
}

// checkEntries fails the test when a node applied an entry larger than
// maxEntryBytes so far.
func (c *cluster) checkEntries(t *testing.T, after string) {
	t.Helper()
	for i, n := range c.nodes {
		st, last := n.LogStats()
		t.Logf("after %s: %s applied %d entries, log index %d, largest entry %d B (%s)", after, c.cfgs[i].ID, st.Applied, last, st.Largest, st.LargestKind)
		if st.Largest > maxEntryBytes {
			t.Errorf("%s: a %s entry of %d bytes, more than %d", c.cfgs[i].ID, st.LargestKind, st.Largest, maxEntryBytes)
		}
	}
}
