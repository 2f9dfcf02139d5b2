//go:build fault

// Package fault is the fault suite: real jobs on real processes (a
// nats-server, coordinators and workers started by test/testcluster)
// with faults injected — processes SIGKILLed at chosen moments, NATS
// restarted, quorum lost, checkpoints damaged, store writes failing,
// messages duplicated and delayed, a worker slowed down — each compared to
// an undisturbed run of the same spec. Training is deterministic, so a
// job that survives a fault ends with the same factors (within 1e-5).
//
// Run it with `go test -tags fault ./test/fault/...`; COFACTOR_FAULT_RUNS
// sets how many times each repeated scenario runs (default 3).
package fault

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/testutil"
	"github.com/cofactor-ml/cofactor/test/testcluster"
)

func TestMain(m *testing.M) {
	code := testcluster.Main(m)
	// The input and the reference run are shared by every scenario, so
	// they live outside any one test's TempDir: remove them here, or each
	// run of the suite leaves some 12 MB behind in the temporary directory.
	if inputDir != "" {
		os.RemoveAll(inputDir)
	}
	os.Exit(code)
}

// runs is how many times a repeated scenario runs.
func runs(t *testing.T) int {
	n := 3
	if s := os.Getenv("COFACTOR_FAULT_RUNS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("COFACTOR_FAULT_RUNS=%q: want a positive count", s)
		}
		n = v
	}
	return n
}

// scenarioTimeout bounds one run of a scenario: a job that hangs fails the
// test instead of the test binary's deadline.
const scenarioTimeout = 3 * time.Minute

// The job every scenario runs: a synthetic set big enough that a job lasts
// several seconds on three workers, so that faults land inside it.
var (
	inputOnce sync.Once
	inputPath string
	inputErr  string
	inputDir  string
)

func input(t *testing.T) string {
	t.Helper()
	inputOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cofactor-fault-input-")
		if err != nil {
			inputErr = err.Error()
			return
		}
		inputDir = dir
		p := filepath.Join(dir, "ratings.csv")
		code, _, errs := testcluster.RunCLI(t, "gen", "--users", "6000", "--items", "2500", "--ratings", "600000", "--rank", "16",
			"--noise", "0.3", "--seed", "5", "--out", p)
		if code != 0 {
			inputErr = fmt.Sprintf("gen: exit %d: %s", code, errs)
			return
		}
		inputPath = p
	})
	if inputErr != "" {
		t.Fatal(inputErr)
	}
	return inputPath
}

const iterations = 10

// spec is the training flags of every job (without --out).
func spec(t *testing.T, extra ...string) []string {
	return append([]string{"--input", input(t), "--rank", "32", "--lambda", "0.05", "--iterations", strconv.Itoa(iterations),
		"--test-fraction", "0.1", "--checkpoint-every", "1"}, extra...)
}

// reference is the undisturbed run of spec(t): `train --workers 1`, which
// the cluster matches to 1e-5 (test/e2e), computed once.
var (
	refOnce sync.Once
	refDir  string
)

func reference(t *testing.T) string {
	t.Helper()
	input(t) // sets inputDir
	refOnce.Do(func() {
		out := filepath.Join(inputDir, "reference")
		start := time.Now()
		code, _, errs := testcluster.RunCLI(t, append([]string{"train", "--workers", "1", "--out", out, "--json"}, spec(t)...)...)
		if code != 0 {
			t.Fatalf("reference train: exit %d: %s", code, errs)
		}
		t.Logf("reference run: %.1f s", time.Since(start).Seconds())
		refDir = out
	})
	if refDir == "" {
		t.Fatal("no reference run")
	}
	return refDir
}

// compare checks a job's snapshot against the undisturbed run.
func compare(t *testing.T, dist string) float64 {
	t.Helper()
	d := testutil.DirDiff(t, dist, reference(t))
	if d > 1e-5 {
		t.Errorf("factors differ from an undisturbed run by %g", d)
	}
	return d
}

// tally counts a scenario's runs for the log that docs/reliability.md
// quotes.
type tally struct {
	t          *testing.T
	name       string
	runs, pass int
	worst      float64
	start      time.Time
}

func newTally(t *testing.T, name string) *tally {
	ty := &tally{t: t, name: name, start: time.Now()}
	t.Cleanup(func() {
		t.Logf("RESULT %s: %d/%d runs passed, largest factor difference %.3g, %.0f s", ty.name, ty.pass, ty.runs, ty.worst, time.Since(ty.start).Seconds())
	})
	return ty
}

// run runs one repetition. Every wait in it is bounded (a job by
// scenarioTimeout). It runs on the scenario's own test, not a subtest:
// the cluster's processes belong to that test and outlive each run. The
// first failed run ends the scenario, its processes in any state.
func (ty *tally) run(i int, fn func(t *testing.T) float64) {
	ty.runs++
	ty.t.Logf("run %d", i)
	d := fn(ty.t)
	if ty.t.Failed() {
		ty.t.FailNow()
	}
	ty.worst = max(ty.worst, d)
	ty.pass++
}

// submitOut submits spec(t) with --out into a fresh directory.
func submitOut(t *testing.T, c *testcluster.Cluster, extra ...string) (id, dist string) {
	t.Helper()
	dist = filepath.Join(t.TempDir(), "out")
	return c.Submit(append(spec(t, extra...), "--out", dist)...), dist
}

// faultyCluster starts nCoord coordinators and workers w1..w3, worker wi
// with the fault spec spec(i), waits until all are ready, and makes sure
// the undisturbed run exists.
func faultyCluster(t *testing.T, nCoord int, spec func(i int) string) *testcluster.Cluster {
	t.Helper()
	c := testcluster.NewEmpty(t)
	c.StartBase(nCoord)
	for i := 1; i <= 3; i++ {
		c.StartWorkerArgs(fmt.Sprintf("w%d", i), "--inject-faults", spec(i))
	}
	c.WaitReady(nCoord, 3, time.Minute)
	reference(t)
	return c
}

// mustSucceed waits for a job and fails the test unless it succeeded.
func mustSucceed(t *testing.T, c *testcluster.Cluster, id string) *job.Result {
	t.Helper()
	code, res := c.WaitWithin(id, scenarioTimeout)
	if code != 0 || res.State != job.StateSucceeded {
		t.Fatalf("job %s: exit %d, state %s, error %s", id, code, res.State, res.Error)
	}
	return res
}

// waitPhase polls a job until its progress is phase at iteration ≥ it.
func waitPhase(t *testing.T, c *testcluster.Cluster, id, phase string, it int) bool {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if r := c.Job(id); r != nil {
			if job.Finished(r.State) {
				return false
			}
			if r.Progress != nil && r.Progress.Phase == phase && r.Progress.Iteration >= it {
				return true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("job %s never reached %s of iteration %d", id, phase, it)
	return false
}

// killPoint names where a leader or worker is killed.
type killPoint struct {
	name string
	// wait blocks until the moment; false if the job finished first.
	wait func(t *testing.T, c *testcluster.Cluster, id string, rng *rand.Rand) bool
}

var killPoints = []killPoint{
	{"partition", func(t *testing.T, c *testcluster.Cluster, id string, rng *rand.Rand) bool {
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		return true
	}},
	{"mid-phase", func(t *testing.T, c *testcluster.Cluster, id string, rng *rand.Rand) bool {
		side := []string{"users", "items"}[rng.IntN(2)]
		if !waitPhase(t, c, id, side, 1+rng.IntN(iterations-2)) {
			return false
		}
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		return true
	}},
	{"checkpoint", func(t *testing.T, c *testcluster.Cluster, id string, rng *rand.Rand) bool {
		return waitPhase(t, c, id, "checkpoint", 1+rng.IntN(iterations-2))
	}},
}

// Raft leader SIGKILLed at random points — while the input is partitioned,
// in the middle of a phase, while a checkpoint is committed: every job
// succeeds with the factors of an undisturbed run. The killed coordinator
// is started again (same raft state) before the next run.
func TestLeaderKilled(t *testing.T) {
	c := testcluster.New(t, 3, 3)
	reference(t)
	ty := newTally(t, "leader SIGKILL")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := range runs(t) {
		ty.run(i, func(t *testing.T) float64 {
			kp := killPoints[i%len(killPoints)]
			id, dist := submitOut(t, c)
			if kp.wait(t, c, id, rng) {
				leader := c.WaitLeader(10 * time.Second)
				t.Logf("killing leader %s at %s", leader, kp.name)
				cd := c.CoordByID(leader)
				cd.P.Kill()
				res := mustSucceed(t, c, id)
				t.Logf("restarts %d, notes %v", res.Restarts, res.Notes)
				c.RestartCoord(cd)
				c.WaitReady(3, 3, time.Minute)
			} else {
				t.Logf("the job finished before %s", kp.name)
				mustSucceed(t, c, id)
			}
			return compare(t, dist)
		})
	}
}

// A worker SIGKILLed in the middle of a phase: its blocks go to the others,
// the job resumes from a checkpoint and ends with the undisturbed factors.
// The worker is started again with the same ID before the next run.
func TestWorkerKilled(t *testing.T) {
	c := testcluster.New(t, 3, 3)
	reference(t)
	ty := newTally(t, "worker SIGKILL")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for i := range runs(t) {
		ty.run(i, func(t *testing.T) float64 {
			victim := fmt.Sprintf("w%d", 1+rng.IntN(3))
			id, dist := submitOut(t, c)
			if killPoints[1].wait(t, c, id, rng) {
				t.Logf("killing worker %s mid-phase", victim)
				c.Worker(victim).Kill()
			}
			res := mustSucceed(t, c, id)
			t.Logf("restarts %d, resumed from %v, workers %d", res.Restarts, res.ResumedFrom, res.Workers)
			d := compare(t, dist)
			c.StartWorker(victim)
			c.WaitReady(3, 3, time.Minute)
			return d
		})
	}
}

// Two workers SIGKILLed at once: the job finishes on the one left.
func TestTwoWorkersKilled(t *testing.T) {
	c := testcluster.New(t, 3, 3)
	reference(t)
	ty := newTally(t, "two workers SIGKILL")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for i := range runs(t) {
		ty.run(i, func(t *testing.T) float64 {
			id, dist := submitOut(t, c)
			if killPoints[1].wait(t, c, id, rng) {
				c.Worker("w1").Kill()
				c.Worker("w3").Kill()
			}
			res := mustSucceed(t, c, id)
			if res.Workers != 1 {
				t.Errorf("the job ended on %d workers, want 1", res.Workers)
			}
			d := compare(t, dist)
			c.StartWorker("w1")
			c.StartWorker("w3")
			c.WaitReady(3, 3, time.Minute)
			return d
		})
	}
}

// A worker killed and started again at once with the same ID, before the
// heartbeat monitor declares it lost: the cluster sees a new process (it
// lost its blocks), reassigns, and the job succeeds.
func TestWorkerRestartedSameID(t *testing.T) {
	c := testcluster.New(t, 3, 3)
	reference(t)
	ty := newTally(t, "worker restarted with the same ID")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	for i := range runs(t) {
		ty.run(i, func(t *testing.T) float64 {
			id, dist := submitOut(t, c)
			if killPoints[1].wait(t, c, id, rng) {
				c.Worker("w2").Kill()
				c.StartWorker("w2")
			}
			res := mustSucceed(t, c, id)
			if !strings.Contains(strings.Join(res.Notes, "\n"), "restarted worker w2") && res.Restarts > 0 {
				t.Logf("notes: %v", res.Notes)
			}
			t.Logf("restarts %d, workers %d", res.Restarts, res.Workers)
			return compare(t, dist)
		})
	}
}

// The NATS server SIGKILLed in the middle of a job and started again on
// the same port and JetStream directory: workers and coordinators
// reconnect and the job succeeds.
func TestNATSRestarted(t *testing.T) {
	c := testcluster.New(t, 3, 3)
	reference(t)
	ty := newTally(t, "NATS restarted")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	for i := range runs(t) {
		ty.run(i, func(t *testing.T) float64 {
			id, dist := submitOut(t, c)
			if killPoints[1].wait(t, c, id, rng) {
				c.NATS.Kill()
				time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
				c.RestartNATS()
			}
			res := mustSucceed(t, c, id)
			t.Logf("restarts %d, notes %v", res.Restarts, res.Notes)
			d := compare(t, dist)
			c.WaitReady(3, 3, time.Minute)
			return d
		})
	}
}

// Two of three coordinators stopped: the one left cannot commit, so the
// job makes no progress (and nothing is corrupted); started again, they
// let the job continue to the undisturbed factors.
func TestMinorityMakesNoProgress(t *testing.T) {
	c := testcluster.New(t, 3, 3)
	reference(t)
	ty := newTally(t, "2 of 3 coordinators stopped")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))
	for i := range runs(t) {
		ty.run(i, func(t *testing.T) float64 {
			id, dist := submitOut(t, c)
			if !killPoints[1].wait(t, c, id, rng) {
				t.Fatal("the job finished before the coordinators were stopped")
			}
			// Stop two, the leader among them half of the time.
			leader := c.WaitLeader(10 * time.Second)
			var stopped []*testcluster.Coord
			var left *testcluster.Coord
			for _, cd := range c.Coords {
				if cd.ID != leader {
					stopped = append(stopped, cd)
				}
			}
			if i%2 == 0 {
				left, stopped[1] = stopped[1], c.CoordByID(leader)
			} else {
				left = c.CoordByID(leader)
			}
			for _, cd := range stopped {
				t.Logf("stopping %s (leader %s)", cd.ID, leader)
				cd.P.Kill()
			}
			one := testcluster.NewEmpty(t)
			one.Coords = []*testcluster.Coord{left}
			progress := func() string {
				if r := one.Job(id); r != nil {
					ck := ""
					if r.Checkpoint != nil {
						ck = r.Checkpoint.ID
					}
					// Not the elapsed or remaining seconds: they move
					// with the clock, not with the job.
					at := ""
					if p := r.Progress; p != nil {
						at = fmt.Sprintf(", at %s of iteration %d (%.3f done)", p.Phase, p.Iteration, p.Done)
					}
					return fmt.Sprintf("%s, %d history entries, checkpoint %q%s", r.State, len(r.History), ck, at)
				}
				return "no answer"
			}
			time.Sleep(2 * time.Second)
			before := progress()
			time.Sleep(5 * time.Second)
			if after := progress(); after != before {
				t.Errorf("the job progressed without a quorum: %q, then %q", before, after)
			}
			t.Logf("without a quorum for 5 s: %s", before)
			for _, cd := range stopped {
				c.RestartCoord(cd)
			}
			mustSucceed(t, c, id)
			d := compare(t, dist)
			c.WaitReady(3, 3, time.Minute)
			return d
		})
	}
}

// Messages duplicated and delayed: every worker sends 30% of its reports
// and row requests twice and holds each back by up to 30 ms. The factors
// are unchanged.
func TestDuplicateAndDelayedMessages(t *testing.T) {
	c := faultyCluster(t, 3, func(i int) string { return fmt.Sprintf("dup=0.3,delay=30ms,seed=%d", i) })
	ty := newTally(t, "duplicated and delayed messages")
	for i := range runs(t) {
		ty.run(i, func(t *testing.T) float64 {
			id, dist := submitOut(t, c)
			res := mustSucceed(t, c, id)
			if res.Restarts != 0 {
				t.Errorf("the job restarted %d times: %v", res.Restarts, res.Notes)
			}
			return compare(t, dist)
		})
	}
}

// A slow worker (every block solve delayed) does not fail a job: the job
// finishes with the undisturbed factors and its notes report the phase
// timeout, naming the slow worker.
func TestSlowWorker(t *testing.T) {
	c := testcluster.NewEmpty(t)
	c.StartBase(3, "--phase-timeout", "1s")
	c.StartWorker("w1")
	c.StartWorkerArgs("w2", "--inject-delay", "1200ms")
	c.StartWorker("w3")
	c.WaitReady(3, 3, time.Minute)
	reference(t)
	ty := newTally(t, "slow worker")
	ty.run(0, func(t *testing.T) float64 {
		id, dist := submitOut(t, c)
		res := mustSucceed(t, c, id)
		notes := strings.Join(res.Notes, "\n")
		if !strings.Contains(notes, "phase timeout") || !strings.Contains(notes, "on w2") {
			t.Errorf("the slow phase was not reported naming w2: %q", notes)
		}
		return compare(t, dist)
	})
}

// Checkpoint files damaged in the store (a byte flipped, a file cut
// short) while the job must resume from them: the job falls back to the
// last good checkpoint, says so, and ends with the undisturbed factors.
func TestDamagedCheckpoint(t *testing.T) {
	for _, damage := range []struct {
		name string
		fn   func([]byte) []byte
	}{
		{"byte flipped", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)*2/3] }},
	} {
		t.Run(strings.ReplaceAll(damage.name, " ", "-"), func(t *testing.T) {
			c := testcluster.New(t, 1, 2)
			reference(t)
			ty := newTally(t, "checkpoint "+damage.name)
			for i := range runs(t) {
				ty.run(i, func(t *testing.T) float64 {
					store := t.TempDir()
					id, dist := submitOut(t, c, "--store", "dir:"+store)
					c.WaitCheckpoint(id, 3, 2*time.Minute)
					// With a worker gone no further checkpoint completes,
					// so the newest stays the newest while it is damaged.
					c.Worker("w2").Kill()
					r := c.Job(id)
					if r == nil || r.Checkpoint == nil {
						t.Fatalf("job status: %+v", r)
					}
					newest := *r.Checkpoint
					victim := filepath.Join(store, newest.ID, "items.0000.cfcf")
					b, err := os.ReadFile(victim)
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(victim, damage.fn(b), 0o644); err != nil {
						t.Fatal(err)
					}
					code, _, errs := c.CLI("snapshot", "verify", filepath.Join(store, newest.ID))
					if code != 1 || !strings.Contains(errs, "items.0000.cfcf") {
						t.Errorf("snapshot verify of the damaged checkpoint: exit %d, %q", code, errs)
					}
					res := mustSucceed(t, c, id)
					n := len(res.ResumedFrom)
					if n == 0 || res.ResumedFrom[n-1] >= newest.Iteration || !strings.Contains(strings.Join(res.Notes, "\n"), "is damaged") {
						t.Errorf("resumed from %v after damaging %s: want a noted fall back below iteration %d", res.ResumedFrom, newest.ID, newest.Iteration)
					}
					d := compare(t, dist)
					c.StartWorker("w2")
					c.WaitReady(1, 2, time.Minute)
					return d
				})
			}
		})
	}
}

// The checkpoint store failing some writes (every fourth write on every
// worker fails with "no space left on device"): the failed checkpoint is
// written again and the job ends with the undisturbed factors.
func TestCheckpointWritesFail(t *testing.T) {
	c := faultyCluster(t, 1, func(int) string { return "store-fail-every=4" })
	ty := newTally(t, "checkpoint writes failing")
	for i := range runs(t) {
		ty.run(i, func(t *testing.T) float64 {
			id, dist := submitOut(t, c, "--store", "dir:"+t.TempDir())
			mustSucceed(t, c, id)
			return compare(t, dist)
		})
	}
}

// The disk fills up: after its first writes, every checkpoint write of
// one worker fails. The job fails clearly (naming the cause), and its
// last committed checkpoint is still whole.
func TestCheckpointDiskFull(t *testing.T) {
	c := testcluster.NewEmpty(t)
	c.StartBase(1)
	c.StartWorker("w1")
	c.StartWorkerArgs("w2", "--inject-faults", "store-full-after=6")
	c.WaitReady(1, 2, time.Minute)
	ty := newTally(t, "checkpoint disk full")
	ty.run(0, func(t *testing.T) float64 {
		store := t.TempDir()
		id, _ := submitOut(t, c, "--store", "dir:"+store)
		code, res := c.WaitWithin(id, scenarioTimeout)
		if code != 1 || res.State != job.StateFailed || !strings.Contains(res.Error, "no space left on device") {
			t.Fatalf("job: exit %d, state %s, error %q; want exit 1, failed, naming no space left", code, res.State, res.Error)
		}
		t.Logf("failed as: %s", res.Error)
		if res.Checkpoint == nil {
			t.Fatal("no checkpoint was committed before the disk filled")
		}
		code, out, errs := testcluster.RunCLI(t, "snapshot", "verify", filepath.Join(store, res.Checkpoint.ID))
		if code != 0 {
			t.Errorf("the last committed checkpoint %s does not verify: exit %d, %s %s", res.Checkpoint.ID, code, out, errs)
		}
		return 0
	})
}
