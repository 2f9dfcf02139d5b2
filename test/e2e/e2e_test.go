package e2e

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	dto "github.com/prometheus/client_model/go"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/testutil"
	"github.com/cofactor-ml/cofactor/test/testcluster"
)

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process run: skipped under -short, run by the plain go test")
	}
}

// trainLocal runs `cofactor train --workers 1` with the given flags into a
// snapshot directory and returns it.
func trainLocal(t *testing.T, flags ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "local")
	code, _, errs := runCLI(t, append([]string{"train", "--workers", "1", "--out", out, "--json"}, flags...)...)
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, errs)
	}
	return out
}

// Must show 1 and 3 of the cluster issue: a job on 3 coordinators and 3
// workers (all separate processes) gives the factors of `train --workers
// 1`; the cluster status lists them; the exchange stays near its bound.
func TestClusterMatchesSingleProcess(t *testing.T) {
	skipShort(t)
	train := testutil.SharedData(t, "ml-latest-small/split-seed42/ratings.train.csv")
	test := testutil.SharedData(t, "ml-latest-small/split-seed42/ratings.test.csv")
	c := newCluster(t, 3, 3)

	code, out, errs := c.CLI("cluster", "status", "--json")
	if code != 0 {
		t.Fatalf("cluster status: exit %d: %s", code, errs)
	}
	var st coordinator.ClusterStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("cluster status printed %q", out)
	}
	leaders := 0
	for _, s := range st.Servers {
		if s.State == "leader" {
			leaders++
			if s.ID != st.Leader {
				t.Errorf("server %s is leader but the status names %s", s.ID, st.Leader)
			}
		}
	}
	if len(st.Servers) != 3 || leaders != 1 || len(st.Workers) != 3 {
		t.Fatalf("cluster status: %d servers, %d leaders, %d workers: %s", len(st.Servers), leaders, len(st.Workers), out)
	}
	for _, w := range st.Workers {
		if w.State != "alive" {
			t.Errorf("worker %s is %s", w.ID, w.State)
		}
	}

	flags := []string{"--input", train, "--test", test, "--rank", "10", "--lambda", "0.1", "--iterations", "10"}
	dist := filepath.Join(t.TempDir(), "cluster")
	id := c.Submit(append(flags, "--out", dist)...)
	code, res := c.Wait(id)
	if code != 0 || res.State != job.StateSucceeded {
		t.Fatalf("job wait: exit %d, state %s, error %s", code, res.State, res.Error)
	}
	if res.Workers != 3 || res.UserBlocks != 3 || res.ItemBlocks != 3 || res.Snapshot != dist {
		t.Errorf("job ran on %d workers with %d×%d blocks, snapshot %q", res.Workers, res.UserBlocks, res.ItemBlocks, res.Snapshot)
	}
	t.Logf("cluster: test RMSE %.4f, %.4f s/iteration, %d bytes exchanged (lower bound %d)",
		*res.TestRMSE, res.SecondsPerIteration, res.BytesExchanged, res.BytesLowerBound)
	if *res.TestRMSE > 0.8915 {
		t.Errorf("test RMSE %.4f", *res.TestRMSE)
	}
	if res.BytesLowerBound <= 0 || float64(res.BytesExchanged) > 1.2*float64(res.BytesLowerBound) {
		t.Errorf("exchanged %d bytes, more than 1.2 × the lower bound %d", res.BytesExchanged, res.BytesLowerBound)
	}
	// The workers count the same bytes as Prometheus counters (plus the
	// evaluation's and the snapshot's, which the job's figure leaves out).
	received, sent := c.MetricSum("cofactor_worker_bytes_received_total"), c.MetricSum("cofactor_worker_bytes_sent_total")
	if received < float64(res.BytesExchanged) || sent != received {
		t.Errorf("metrics: %g bytes received, %g sent; the job counted %d", received, sent, res.BytesExchanged)
	}
	local := trainLocal(t, flags...)
	d := testutil.DirDiff(t, dist, local)
	t.Logf("largest factor difference from train --workers 1: %g", d)
	if d > 1e-5 {
		t.Errorf("cluster factors differ from train --workers 1 by %g", d)
	}
}

// genInput writes a synthetic set big enough that a job lasts a few
// seconds, so that a process can be killed in its middle.
func genInput(t *testing.T) string {
	t.Helper()
	return genSet(t, "--users", "6000", "--items", "2500", "--ratings", "600000", "--rank", "16", "--noise", "0.3", "--seed", "3")
}

// genSet writes the synthetic set `cofactor gen` makes with flags and
// returns its path.
func genSet(t *testing.T, flags ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ratings.csv")
	code, _, errs := runCLI(t, append(append([]string{"gen"}, flags...), "--out", p)...)
	if code != 0 {
		t.Fatalf("gen: exit %d: %s", code, errs)
	}
	return p
}

var longJob = []string{"--rank", "48", "--lambda", "0.02", "--iterations", "14", "--test-fraction", "0.1"}

// Must show 2 of the cluster issue: SIGKILL the raft leader in the middle
// of a job; the job succeeds with the factors of an undisturbed run.
func TestLeaderKilledMidJob(t *testing.T) {
	skipShort(t)
	input := genInput(t)
	flags := append([]string{"--input", input}, longJob...)
	c := newCluster(t, 3, 3)
	dist := filepath.Join(t.TempDir(), "cluster")
	id := c.Submit(append(flags, "--out", dist)...)
	c.WaitProgress(id, 4, 2*time.Minute)
	leader := c.WaitLeader(10 * time.Second)
	t.Logf("killing leader %s", leader)
	c.CoordByID(leader).P.Kill()

	code, res := c.Wait(id)
	if code != 0 || res.State != job.StateSucceeded {
		t.Fatalf("job wait: exit %d, state %s, error %s", code, res.State, res.Error)
	}
	newLeader := c.WaitLeader(10 * time.Second)
	if newLeader == leader {
		t.Fatalf("leader is still %s after it was killed", leader)
	}
	if res.Restarts != 0 {
		t.Errorf("the job restarted %d times; a leader change must not restart it", res.Restarts)
	}
	local := trainLocal(t, flags...)
	d := testutil.DirDiff(t, dist, local)
	t.Logf("largest factor difference from train --workers 1: %g", d)
	if d > 1e-5 {
		t.Errorf("factors after a leader kill differ from an undisturbed run by %g", d)
	}
}

// Must show 2 of the cluster issue: SIGKILL a worker in the middle of a
// job; its blocks go to the others and the job succeeds.
func TestWorkerKilledMidJob(t *testing.T) {
	skipShort(t)
	input := genInput(t)
	flags := append([]string{"--input", input}, longJob...)
	c := newCluster(t, 3, 3)
	dist := filepath.Join(t.TempDir(), "cluster")
	id := c.Submit(append(flags, "--out", dist)...)
	c.WaitProgress(id, 4, 2*time.Minute)
	t.Log("killing worker w2")
	c.Worker("w2").Kill()

	code, res := c.Wait(id)
	if code != 0 || res.State != job.StateSucceeded {
		t.Fatalf("job wait: exit %d, state %s, error %s", code, res.State, res.Error)
	}
	if res.Restarts < 1 || len(res.Notes) == 0 || res.Workers != 2 || len(res.ResumedFrom) == 0 || res.ResumedFrom[0] < 1 {
		t.Errorf("restarts %d, resumed from %v, notes %v, workers %d: the job should say it resumed from a checkpoint on 2 workers",
			res.Restarts, res.ResumedFrom, res.Notes, res.Workers)
	}
	t.Logf("notes: %v", res.Notes)
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range st.Workers {
		if want := map[bool]coordinator.WorkerState{true: "lost", false: "alive"}[w.ID == "w2"]; w.State != want {
			t.Errorf("worker %s is %s, want %s", w.ID, w.State, want)
		}
	}
	// Resuming from the newest checkpoint, the job ends where an
	// undisturbed run does.
	local := trainLocal(t, flags...)
	d := testutil.DirDiff(t, dist, local)
	t.Logf("largest factor difference from train --workers 1: %g", d)
	if d > 1e-5 {
		t.Errorf("factors after a worker kill differ from an undisturbed run by %g", d)
	}
}

// A job with bad input fails with the file:line error, and `job wait`
// exits 2.
func TestClusterBadInput(t *testing.T) {
	skipShort(t)
	c := newCluster(t, 1, 1)
	bad := filepath.Join(t.TempDir(), "bad.csv")
	testcluster.WriteFile(t, bad, "user,item,rating\n1,2,3\n1,3,zz\n")
	id := c.Submit("--input", bad)
	code, res := c.Wait(id)
	want := fmt.Sprintf(`%s:3: rating "zz" is not a number`, bad)
	if code != 2 || res.State != job.StateFailed || res.Error != want || res.ErrorKind != job.KindInput {
		t.Fatalf("exit %d, state %s, kind %s, error %q; want 2, failed, input, %q", code, res.State, res.ErrorKind, res.Error, want)
	}
}

// A five-member group forms, runs a job, and survives losing its leader.
func TestFiveCoordinators(t *testing.T) {
	skipShort(t)
	c := newCluster(t, 5, 1)
	leader := c.WaitLeader(10 * time.Second)
	c.CoordByID(leader).P.Kill()
	input := genInput(t)
	id := c.Submit("--input", input, "--rank", "8", "--iterations", "3")
	code, res := c.Wait(id)
	if code != 0 || res.State != job.StateSucceeded {
		t.Fatalf("job wait: exit %d, state %s, error %s", code, res.State, res.Error)
	}
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]int{}
	for _, s := range st.Servers {
		states[s.State]++
	}
	if len(st.Servers) != 5 || states["leader"] != 1 || states["follower"] != 3 || states["unreachable"] != 1 || st.Leader == leader {
		t.Errorf("after killing %s: leader %s, states %v", leader, st.Leader, states)
	}
}

// Must show 1 of the checkpoint issue: kill every process of a
// 3-coordinator, 3-worker cluster (and its NATS server) after iteration 6
// of 10 and start them again: the job finishes, re-running iterations 7–10
// only, with the factors of an undisturbed run.
func TestWholeClusterRestart(t *testing.T) {
	skipShort(t)
	input := genInput(t)
	flags := []string{"--input", input, "--rank", "48", "--lambda", "0.02", "--iterations", "10", "--test-fraction", "0.1", "--checkpoint-every", "1"}
	c := newCluster(t, 3, 3)
	dist := filepath.Join(t.TempDir(), "cluster")
	id := c.Submit(append(flags, "--out", dist)...)
	ck := c.WaitCheckpoint(id, 6, 2*time.Minute)
	c.KillAll()
	if ck.Iteration != 6 {
		t.Fatalf("checkpoint %d was the newest when killed; the test wants 6 (iterations too fast?)", ck.Iteration)
	}
	t.Logf("killed every process with checkpoint %s committed", ck.ID)
	c.RestartAll()
	code, res := c.Wait(id)
	if code != 0 || res.State != job.StateSucceeded {
		t.Fatalf("job wait: exit %d, state %s, error %s", code, res.State, res.Error)
	}
	t.Logf("resumed from %v; notes %v", res.ResumedFrom, res.Notes)
	if len(res.ResumedFrom) != 1 || res.ResumedFrom[0] != 6 || len(res.History) != 10 {
		t.Errorf("resumed from %v with %d history entries; want one resume from iteration 6 (re-running 7–10) and 10 entries", res.ResumedFrom, len(res.History))
	}
	local := trainLocal(t, flags...)
	d := testutil.DirDiff(t, dist, local)
	t.Logf("largest factor difference from an undisturbed run: %g", d)
	if d > 1e-5 {
		t.Errorf("factors after a whole-cluster restart differ from an undisturbed run by %g", d)
	}
}

// Must show 2 of the checkpoint issue: a job that must resume from a
// checkpoint with a damaged file falls back to the previous committed one,
// and `snapshot verify` names the damaged file.
func TestDamagedCheckpointFallsBack(t *testing.T) {
	skipShort(t)
	input := genInput(t)
	store := t.TempDir()
	flags := []string{"--input", input, "--rank", "48", "--lambda", "0.02", "--iterations", "10", "--test-fraction", "0.1",
		"--checkpoint-every", "1", "--store", "dir:" + store}
	c := newCluster(t, 1, 2)
	dist := filepath.Join(t.TempDir(), "cluster")
	id := c.Submit(append(flags, "--out", dist)...)
	c.WaitCheckpoint(id, 4, 2*time.Minute)
	// Stop a worker first: no further checkpoint can complete, so the
	// newest one stays the newest while it is damaged.
	c.Worker("w2").Kill()
	r, err := c.Client().Job(context.Background(), id)
	if err != nil || r.Checkpoint == nil {
		t.Fatalf("job status: %v %+v", err, r)
	}
	newest := *r.Checkpoint
	victim := filepath.Join(store, newest.ID, "users.0000.cfcf")
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	testcluster.WriteFile(t, victim, string(b))
	t.Logf("damaged %s", victim)

	code, out, errs := runCLI(t, "snapshot", "verify", filepath.Join(store, newest.ID))
	if code != 1 || !strings.Contains(errs, "users.0000.cfcf") {
		t.Errorf("snapshot verify of the damaged checkpoint: exit %d, stdout %q, stderr %q; want exit 1 naming users.0000.cfcf", code, out, errs)
	}

	code, res := c.Wait(id)
	if code != 0 || res.State != job.StateSucceeded {
		t.Fatalf("job wait: exit %d, state %s, error %s", code, res.State, res.Error)
	}
	t.Logf("resumed from %v; notes %v", res.ResumedFrom, res.Notes)
	n := len(res.ResumedFrom)
	if n < 2 || res.ResumedFrom[n-1] >= newest.Iteration || !strings.Contains(strings.Join(res.Notes, "\n"), "is damaged") {
		t.Errorf("resumed from %v after damaging %s; want a fall back below iteration %d, noted", res.ResumedFrom, newest.ID, newest.Iteration)
	}
	local := trainLocal(t, flags[:len(flags)-2]...)
	if d := testutil.DirDiff(t, dist, local); d > 1e-5 {
		t.Errorf("factors after falling back differ from an undisturbed run by %g", d)
	}
}

// Must show 1 of the operations issue: a schedule "@every 20s" on a
// 3-coordinator group starts 3 jobs in a minute with distinct IDs, and
// killing the leader at a fire time still gives exactly one job for that
// slot.
func TestScheduleSurvivesLeaderKillAtFireTime(t *testing.T) {
	skipShort(t)
	train := testutil.SharedData(t, "ml-latest-small/split-seed42/ratings.train.csv")
	c := newCluster(t, 3, 2)
	code, _, errs := c.CLI("schedule", "add", "every20", "--cron", "@every 20s", "--input", train, "--rank", "4", "--iterations", "2", "--json")
	if code != 0 {
		t.Fatalf("schedule add: exit %d: %s", code, errs)
	}
	code, out, errs := c.CLI("schedule", "list", "--json")
	var l coordinator.ScheduleList
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Schedules) != 1 {
		t.Fatalf("schedule list: exit %d, %q, %s", code, out, errs)
	}
	// "@every 20s" fires at the creation time's whole second + 20 s, + 40 s, …
	first := l.Schedules[0].Created.Truncate(time.Second).Add(20 * time.Second)
	slots := []time.Time{first, first.Add(20 * time.Second), first.Add(40 * time.Second)}

	time.Sleep(time.Until(slots[1]) - 20*time.Millisecond)
	leader := c.WaitLeader(5 * time.Second)
	c.CoordByID(leader).P.Kill()
	t.Logf("killed leader %s at %s, slot %s", leader, time.Now().UTC().Format("15:04:05.000"), slots[1].Format("15:04:05"))

	time.Sleep(time.Until(slots[2]) + 3*time.Second)
	ctx := context.Background()
	var jobs *coordinator.JobList
	var err error
	testcluster.WaitFor(t, "the third slot's job", func() bool {
		jobs, err = c.Client().Jobs(ctx)
		n := 0
		for _, j := range jobs.Jobs {
			if j.Schedule == "every20" {
				n++
			}
		}
		return err == nil && n >= 3
	})
	seen := map[string]bool{}
	var ids []string
	for _, j := range jobs.Jobs {
		if j.Schedule != "every20" {
			continue
		}
		if seen[j.JobID] {
			t.Errorf("job %s listed twice", j.JobID)
		}
		seen[j.JobID] = true
		ids = append(ids, j.JobID)
	}
	t.Logf("scheduled jobs: %v", ids)
	if len(ids) != 3 {
		t.Fatalf("%d jobs from 3 slots, want exactly 3: %v", len(ids), ids)
	}
	for _, slot := range slots {
		if id := coordinator.SlotJobID("every20", slot); !seen[id] {
			t.Errorf("no job for slot %s (%s): %v", slot.Format("15:04:05"), id, ids)
		}
	}
	for _, id := range ids {
		if code, res := c.Wait(id); code != 0 || res.State != job.StateSucceeded {
			t.Errorf("job %s: exit %d, %s %s", id, code, res.State, res.Error)
		}
	}
	c.CLI("schedule", "rm", "every20")
}

// Must show 2 of the operations issue: /metrics on coordinators, workers and
// serve parses with the Prometheus text parser and has the expected series;
// `job plot` writes a PNG of the asked size; the status page, logs and watch
// work.
func TestObservability(t *testing.T) {
	skipShort(t)
	train := testutil.SharedData(t, "ml-latest-small/split-seed42/ratings.train.csv")
	c := newCluster(t, 3, 2)
	id := c.Submit("--input", train, "--rank", "8", "--iterations", "4")
	code, out, errs := c.CLI("job", "watch", id)
	if code != 0 || !strings.Contains(out, "iteration") || !strings.Contains(out, "succeeded") {
		t.Fatalf("job watch: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	leader := c.WaitLeader(5 * time.Second)
	want := []string{"cofactor_raft_state", "cofactor_raft_leader", "cofactor_raft_commit_seconds", "cofactor_jobs",
		"cofactor_workers", "cofactor_phase_seconds", "cofactor_rows_solved_total",
		"cofactor_job_last_success_timestamp_seconds", "cofactor_snapshot_last_published_timestamp_seconds",
		"cofactor_bytes_exchanged_total", "cofactor_checkpoint_seconds", "cofactor_checkpoint_bytes", "cofactor_model_metric"}
	for _, cd := range c.Coords {
		// A follower derives the job series from its replicated state: give
		// it a moment to apply the job's end, which the leader answered.
		var fams map[string]*dto.MetricFamily
		deadline := time.Now().Add(10 * time.Second)
		for {
			fams = testcluster.Scrape(t, "http://"+cd.HTTPAddr+"/metrics")
			if _, ok := fams["cofactor_job_last_success_timestamp_seconds"]; ok || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, name := range want {
			if _, ok := fams[name]; !ok {
				t.Errorf("coordinator %s: no %s", cd.ID, name)
			}
		}
		if cd.ID == leader {
			if n := fams["cofactor_rows_solved_total"].GetMetric()[0].GetCounter().GetValue(); n <= 0 {
				t.Errorf("leader counted %g rows solved", n)
			}
		}
	}
	for id, url := range c.Metrics {
		fams := testcluster.Scrape(t, url)
		for _, name := range []string{"cofactor_worker_bytes_sent_total", "cofactor_worker_bytes_received_total",
			"cofactor_worker_rows_solved_total", "cofactor_worker_block_phase_seconds", "cofactor_worker_checkpoint_seconds"} {
			if _, ok := fams[name]; !ok {
				t.Errorf("worker %s: no %s", id, name)
			}
		}
	}

	// serve, following the cluster's latest snapshot through a coordinator.
	port := testcluster.FreePort(t)
	testcluster.StartProc(t, c.Dir, "serve", testcluster.Bins.Cofactor, "serve", "--coordinator", c.URLs(), "--http-addr", fmt.Sprintf("127.0.0.1:%d", port))
	serveURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	testcluster.WaitFor(t, "serve to answer", func() bool {
		resp, err := http.Get(serveURL + "/v1/recommend?user=1&k=3")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	fams := testcluster.Scrape(t, serveURL+"/metrics")
	for _, name := range []string{"cofactor_serve_requests_total", "cofactor_serve_request_seconds", "cofactor_serve_snapshot_info"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("serve: no %s", name)
		}
	}

	png := filepath.Join(t.TempDir(), "curve.png")
	if code, _, errs := c.CLI("job", "plot", id, "--out", png, "--width", "640", "--height", "400"); code != 0 {
		t.Fatalf("job plot: exit %d: %s", code, errs)
	}
	f, err := os.Open(png)
	if err != nil {
		t.Fatal(err)
	}
	img, err := testcluster.PNGDecode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() != 640 || img.Bounds().Dy() != 400 {
		t.Errorf("job plot wrote %v (%v), want a 640×400 PNG", img.Bounds(), err)
	}

	code, out, errs = c.CLI("job", "logs", id)
	if code != 0 || !strings.Contains(out, "partitioned") || !strings.Contains(out, "iteration 4 items") || !strings.Contains(out, "succeeded") {
		t.Errorf("job logs: exit %d: %q %s", code, out, errs)
	}

	// The web UI: the overview names the members, workers and job; the
	// job's page has its curves; the snapshots page what serving follows.
	// Every page is well-formed XHTML.
	for path, wants := range map[string][]string{
		"/ui":            {"c1", "c2", "c3", "w1", "w2", id, "leader"},
		"/ui/jobs/" + id: {id, "<svg", "<polyline", "iteration"},
		"/ui/snapshots":  {"Serving follows", id + "-it"},
		"/ui/schedules":  {"Schedules"},
	} {
		resp, err := http.Get("http://" + c.Coords[1].HTTPAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(body)
		dec := xml.NewDecoder(strings.NewReader(page))
		dec.Strict, dec.Entity = true, xml.HTMLEntity
		for {
			_, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s is not well-formed: %v", path, err)
			}
		}
		for _, want := range wants {
			if !strings.Contains(page, want) {
				t.Errorf("%s lacks %q", path, want)
			}
		}
	}
}

// Membership: draining a worker in the middle of a job moves its blocks to
// the others (resuming from a checkpoint) and the job succeeds; removing a
// coordinator leaves a two-member group that still works.
func TestMembership(t *testing.T) {
	skipShort(t)
	input := genInput(t)
	flags := append([]string{"--input", input}, longJob...)
	c := newCluster(t, 3, 3)
	dist := filepath.Join(t.TempDir(), "cluster")
	id := c.Submit(append(flags, "--out", dist)...)
	c.WaitCheckpoint(id, 2, 2*time.Minute)
	if code, _, errs := c.CLI("cluster", "drain-worker", "w3"); code != 0 {
		t.Fatalf("drain-worker: exit %d: %s", code, errs)
	}
	code, res := c.Wait(id)
	if code != 0 || res.State != job.StateSucceeded || res.Workers != 2 || len(res.ResumedFrom) == 0 {
		t.Fatalf("job after draining w3: exit %d, %s on %d workers, resumed from %v: %s", code, res.State, res.Workers, res.ResumedFrom, res.Error)
	}
	local := trainLocal(t, flags...)
	if d := testutil.DirDiff(t, dist, local); d > 1e-5 {
		t.Errorf("factors after a drain differ from an undisturbed run by %g", d)
	}

	leader := c.WaitLeader(5 * time.Second)
	victim := "c3"
	if leader == victim {
		victim = "c2"
	}
	if code, _, errs := c.CLI("cluster", "remove-coordinator", victim); code != 0 {
		t.Fatalf("remove-coordinator: exit %d: %s", code, errs)
	}
	c.CoordByID(victim).P.Stop()
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	workers := map[string]coordinator.WorkerState{}
	for _, w := range st.Workers {
		workers[w.ID] = w.State
	}
	if len(st.Servers) != 2 || workers["w3"] != "draining" || workers["w1"] != "alive" {
		t.Fatalf("after removing %s: servers %+v, workers %v", victim, st.Servers, workers)
	}
	// The two left still commit: a short job succeeds.
	id = c.Submit("--input", input, "--rank", "4", "--iterations", "2")
	if code, res := c.Wait(id); code != 0 || res.State != job.StateSucceeded {
		t.Fatalf("a job on the two-member group: exit %d, %s %s", code, res.State, res.Error)
	}
	if code, _, errs := c.CLI("cluster", "undrain-worker", "w3"); code != 0 {
		t.Fatalf("undrain-worker: exit %d: %s", code, errs)
	}
	testcluster.WaitFor(t, "w3 alive again", func() bool {
		st, err := c.Status()
		if err != nil {
			return false
		}
		for _, w := range st.Workers {
			if w.ID == "w3" {
				return w.State == "alive"
			}
		}
		return false
	})
}

// A slow worker does not fail a job: the step that outlasts the phase
// timeout is reported in the job's notes, naming what it waits for, and
// the job finishes.
func TestSlowWorkerReported(t *testing.T) {
	skipShort(t)
	train := testutil.SharedData(t, "ml-latest-small/split-seed42/ratings.train.csv")
	c := testcluster.NewEmpty(t)
	c.StartBase(1, "--phase-timeout", "1s")
	c.StartWorker("w1")
	c.StartWorkerArgs("w2", "--inject-delay", "1500ms")
	c.WaitReady(1, 2, 60*time.Second)
	id := c.Submit("--input", train, "--rank", "4", "--iterations", "2", "--checkpoint-every", "0")
	code, res := c.Wait(id)
	if code != 0 || res.State != job.StateSucceeded {
		t.Fatalf("job: exit %d, %s %s", code, res.State, res.Error)
	}
	notes := strings.Join(res.Notes, "\n")
	t.Logf("notes: %s", notes)
	if !strings.Contains(notes, "phase timeout") || !strings.Contains(notes, "on w2") {
		t.Errorf("the slow phase was not reported naming w2: %q", notes)
	}
}
