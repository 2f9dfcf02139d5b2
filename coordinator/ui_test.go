package coordinator_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/browsertest"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// TestWebUI opens the web UI of a cluster that has run a job, has a
// schedule and runs a long job, in a real browser: / leads to the
// overview; the job page shows parameters, durations, both charts with
// titled axes and every iteration; the snapshots page names what serving
// follows; the schedules page the next fire time; the cancel button
// cancels the running job. It saves screenshots of the job and snapshot
// pages. The same cluster's metrics are checked for what alerts use.
func TestWebUI(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	cl := c.client()
	spec := smallSpec(t, 4)
	done, err := cl.Submit(ctx, coordinator.SubmitRequest{Spec: spec, JobID: "ui-done"})
	if err != nil {
		t.Fatal(err)
	}
	res := waitJob(t, cl, done)
	if res.State != job.StateSucceeded {
		t.Fatalf("job %s: %s (%s)", done, res.State, res.Error)
	}
	if err := cl.AddSchedule(ctx, coordinator.ScheduleRequest{Name: "nightly", Cron: "0 3 * * *", Missed: coordinator.MissedSkip, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	long := spec
	long.Iterations = job.MaxIterations
	running, err := cl.Submit(ctx, coordinator.SubmitRequest{Spec: long, JobID: "ui-running"})
	if err != nil {
		t.Fatal(err)
	}
	waitProgress(t, c.nodes[c.leader()], running, 2)

	// A follower answers: what it shows is the replicated state.
	via := (c.leader() + 1) % len(c.nodes)
	base := c.url(via)
	checkAlertingMetrics(t, base, c.cfgs[via].ID, running, res)
	b := browsertest.Start(t)
	p := b.Open(t, base+"/")
	if p.Status != 200 || !strings.HasSuffix(p.URL(), "/ui") {
		t.Fatalf("/ led to %s (%d)", p.URL(), p.Status)
	}
	if n := p.Count("#servers tr"); n != 4 {
		t.Errorf("%d rows in the coordinators table, want a header and 3", n)
	}
	if got := p.Texts("#jobs a.job"); strings.Join(got, ",") != "ui-running,ui-done" {
		t.Errorf("jobs %v, want the newest first", got)
	}
	// The phase may be any (under load a worker can be declared lost and
	// the job reloads its blocks), the share done and the time are there.
	if got := p.Text("#jobs .progress"); !strings.Contains(got, "% done · ") || !strings.Contains(got, " elapsed") {
		t.Errorf("the running job's progress: %q", got)
	}
	if got := p.Text("#schedule-summary"); !strings.Contains(got, "nightly") || !strings.Contains(got, "03:00:00Z") {
		t.Errorf("schedule summary %q", got)
	}

	// The finished job's page.
	p.Click(`#jobs a.job[href="/ui/jobs/ui-done"]`)
	if p.Status != 200 || p.Text("#state") != "State: succeeded" {
		t.Fatalf("job page: %d, %q", p.Status, p.Text("#state"))
	}
	if p.Count("#cancel") != 0 {
		t.Error("a finished job has a cancel button")
	}
	for sel, want := range map[string]string{
		"#curve .x-label": "iteration", "#curve .y-label": "RMSE (rating units)",
		"#times .x-label": "iteration", "#times .y-label": "seconds per iteration",
	} {
		if got := p.Text(sel); got != want {
			t.Errorf("%s: %q, want %q", sel, got, want)
		}
	}
	if got := p.Texts("#curve .legend"); strings.Join(got, ",") != "train RMSE,test RMSE" {
		t.Errorf("curve legend %v", got)
	}
	if n := p.Count("#curve circle"); n != 8 {
		t.Errorf("%d points on the curve, want 2 × 4 iterations", n)
	}
	if n := p.Count("#iterations tr"); n != 5 {
		t.Errorf("%d rows in the iteration table, want a header and 4", n)
	}
	params := map[string]string{}
	names, values := p.Texts("#params th"), p.Texts("#params td")
	for i := range names {
		params[names[i]] = values[i]
	}
	if params["rank"] != "4" || params["lambda"] != "0.05" || params["iterations"] != "4" || params["model"] != "default" {
		t.Errorf("parameters %v", params)
	}
	if got := p.Text("#duration"); !strings.HasSuffix(got, " s") {
		t.Errorf("duration %q", got)
	}
	if got := p.Text("#metric"); !strings.HasPrefix(got, "test RMSE ") {
		t.Errorf("metric %q", got)
	}
	p.Screenshot("coordinator-ui-job")

	// The snapshots page: the finished job's snapshot is what serving
	// follows.
	p.Go(base + "/ui/snapshots")
	if got := p.Text(".latest-id"); got != res.SnapshotID {
		t.Errorf("serving follows %q, want %q", got, res.SnapshotID)
	}
	if got := p.Text("tr.latest .size"); !strings.HasSuffix(got, "KiB") {
		t.Errorf("size of the latest snapshot: %q", got)
	}
	p.Screenshot("coordinator-ui-snapshots")

	// The schedules page.
	p.Go(base + "/ui/schedules")
	if got := p.Text("#nightly .next"); !strings.Contains(got, "03:00:00Z") || !strings.Contains(got, "in ") {
		t.Errorf("next fire time %q", got)
	}

	// The running job's page: progress and the cancel button, pressed.
	p.Go(base + "/ui/jobs/" + running)
	if got := p.Text("#state"); !strings.HasPrefix(got, "State: running — ") || !strings.Contains(got, "% done") {
		t.Errorf("running job %q", got)
	}
	if p.Attr("meta[http-equiv=refresh]", "content") != "5" {
		t.Error("a running job's page does not reload")
	}
	p.Click("#cancel")
	if p.Status != 200 || !strings.HasSuffix(p.URL(), "/ui/jobs/"+running) {
		t.Fatalf("after cancel: %d at %s", p.Status, p.URL())
	}
	final := waitJob(t, cl, running)
	if final.State != job.StateCancelled {
		t.Fatalf("job %s is %s after the button", running, final.State)
	}
	// base may be a follower, which shows the cancellation once it has
	// applied it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		p.Go(base + "/ui/jobs/" + running)
		if p.Text("#state") == "State: cancelled" || time.Now().After(deadline) {
			break
		}
	}
	if got := p.Text("#state"); got != "State: cancelled" || p.Count("#cancel") != 0 {
		t.Errorf("after cancelling: %q, %d buttons", got, p.Count("#cancel"))
	}
	p.Go(base + "/ui/jobs/nope")
	if p.Status != 404 {
		t.Errorf("unknown job page: %d", p.Status)
	}
}

// TestWebUICancelRefusesOtherSites: the cancel form refuses a post that
// another site makes a browser send, and cancels nothing.
func TestWebUICancelRefusesOtherSites(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	long := smallSpec(t, job.MaxIterations)
	id, err := c.client().Submit(ctx, coordinator.SubmitRequest{Spec: long})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://evil.example"},
	} {
		req, _ := http.NewRequest("POST", c.url(0)+"/ui/jobs/"+id+"/cancel", nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%v: %d %s, want 403", h, resp.StatusCode, body)
		}
	}
	res, err := c.client().Job(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if job.Finished(res.State) {
		t.Errorf("job %s is %s", id, res.State)
	}
	if _, err := c.client().Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// checkAlertingMetrics reads a coordinator's /metrics: the running job's
// progress, the model's last success and last published snapshot as Unix
// times, and no rate kept as a gauge.
func checkAlertingMetrics(t *testing.T, base, node, running string, done *job.Result) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	value := func(series string) (float64, bool) {
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, series+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				return f, err == nil
			}
		}
		return 0, false
	}
	labels := `{coordinator="` + node + `",model="default"}`
	if p, ok := value(`cofactor_job_progress_ratio{coordinator="` + node + `",job="` + running + `",model="default"}`); !ok || p <= 0 || p > 1 {
		t.Errorf("progress of %s: %v (%v)", running, p, ok)
	}
	finished := float64(time.Now().Unix())
	for _, name := range []string{"cofactor_job_last_success_timestamp_seconds", "cofactor_snapshot_last_published_timestamp_seconds"} {
		// The finished job ended within the test: a Unix time of the last
		// minutes.
		if v, ok := value(name + labels); !ok || v > finished+1 || v < finished-float64(clusterTimeout/time.Second)-60 {
			t.Errorf("%s%s = %v (%v), want a Unix time of job %s's end", name, labels, v, ok, done.JobID)
		}
	}
	if strings.Contains(string(body), "cofactor_rows_solved_per_second") {
		t.Error("a rate is exported as a gauge: cofactor_rows_solved_per_second (rate(cofactor_rows_solved_total) tells it)")
	}
}
