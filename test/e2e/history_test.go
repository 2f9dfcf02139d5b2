package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/test/testcluster"
)

// The history test: clients call the job and schedule API of a
// three-coordinator cluster (no workers, so jobs stay pending until
// cancelled and the state machine is the only actor) while coordinators
// are SIGKILLed and restarted, or paused with SIGSTOP (a partition: the
// process neither answers nor sends) and resumed. Every call is recorded
// with its invocation and response times; porcupine then checks that the
// history is linearizable against a sequential model of the API. Reads
// use ?consistent=true. A call that timed out or failed with a 5xx may or
// may not have taken effect: the model allows both.
//
// A schedule firing every second runs throughout: each slot must start at
// most one job, only slots between the schedule's creation and removal
// fire, and once the faults stop every slot fires.
//
// COFACTOR_HISTORY_RUNS sets the number of runs (default 1, what CI runs)
// and COFACTOR_HISTORY_SECONDS the length of each fault phase (default 15).

// Outcomes of a call, as the model sees them.
const (
	outCreated   = "created"
	outDuplicate = "duplicate"
	outOK        = "ok"
	outConflict  = "conflict"
	outNotFound  = "notfound"
	outUnknown   = "unknown" // timed out or 5xx: may have taken effect
	outNone      = "none"    // refused before raft: took no effect (dropped)
	// States a read observes.
	stAbsent    = "absent"
	stPending   = string(job.StatePending)
	stCancelled = string(job.StateCancelled)
	stActive    = "active"
	stPaused    = "paused"
)

// histInput is one call: an operation on one key (a job ID or a
// schedule name). Reads of a whole list are recorded as one read per key
// (each projection of a linearizable read is linearizable).
type histInput struct {
	key string // "job/ID" or "sched/NAME"
	op  string // submit cancel get | add rm pause resume get
}

// jobStep and schedStep are the sequential specification: the states a
// key may be in after op, given the state before and what the call
// answered (none: the history cannot be explained here).
func jobStep(state, op, out string) []string {
	switch op {
	case "get":
		if out == state {
			return []string{state}
		}
		return nil
	case "submit":
		next, want := state, outDuplicate
		if state == stAbsent {
			next, want = stPending, outCreated
		}
		return outcome(state, next, want, out)
	case "cancel":
		switch state {
		case stAbsent:
			return outcome(state, state, outNotFound, out)
		case stPending:
			return outcome(state, stCancelled, outOK, out)
		default:
			return outcome(state, state, outConflict, out)
		}
	}
	return nil
}

func schedStep(state, op, out string) []string {
	if op == "get" {
		if out == state {
			return []string{state}
		}
		return nil
	}
	if state == stAbsent {
		if op == "add" {
			return outcome(state, stActive, outCreated, out)
		}
		return outcome(state, state, outNotFound, out)
	}
	switch op {
	case "add":
		return outcome(state, state, outDuplicate, out)
	case "rm":
		return outcome(state, stAbsent, outOK, out)
	case "pause":
		return outcome(state, stPaused, outOK, out)
	case "resume":
		return outcome(state, stActive, outOK, out)
	}
	return nil
}

// outcome: the call answered out; the model expected want and next. An
// unknown answer allows both the effect and none.
func outcome(state, next, want, out string) []string {
	switch out {
	case want:
		return []string{next}
	case outUnknown:
		if next == state {
			return []string{state}
		}
		return []string{state, next}
	}
	return nil
}

var historyModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(histInput).key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, len(keys))
		for i, k := range keys {
			out[i] = by[k]
		}
		return out
	},
	Init: func() []any { return []any{stAbsent} },
	Step: func(state, input, output any) []any {
		in := input.(histInput)
		step := jobStep
		if strings.HasPrefix(in.key, "sched/") {
			step = schedStep
		}
		var out []any
		for _, s := range step(state.(string), in.op, output.(string)) {
			out = append(out, s)
		}
		return out
	},
	Equal: func(a, b any) bool { return a == b },
	DescribeOperation: func(input, output any) string {
		in := input.(histInput)
		return fmt.Sprintf("%s %s → %s", in.op, in.key, output)
	},
	DescribeState: func(s any) string { return s.(string) },
}

// recorder collects the history.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	// counts by outcome, for the report
	calls, unknown, dropped int
}

func (r *recorder) now() int64 { return time.Since(r.start).Nanoseconds() }

func (r *recorder) add(client int, in histInput, call, ret int64, out string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if out == outUnknown {
		r.unknown++
		ret = 1 << 62 // may take effect at any time after the call
	}
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

func (r *recorder) drop() {
	r.mu.Lock()
	r.dropped++
	r.mu.Unlock()
}

// failures counts the calls that failed (refused, unknown or dropped).
func (r *recorder) failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unknown + r.dropped
}

// api calls one coordinator with a short deadline: a paused process
// never answers.
type api struct {
	hc   *http.Client
	urls []string
}

func (a *api) do(url, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// notProposed are the 503 answers of a write that was refused before it
// reached raft: no leader known, or the request reached a node that does
// not lead (forwarded there, or proposed there after it lost the lead).
// Such a write took no effect; "leadership lost while committing" and a
// failure while forwarding may have.
func notProposed(status int, body []byte) bool {
	if status != http.StatusServiceUnavailable {
		return false
	}
	var e struct{ Error string }
	json.Unmarshal(body, &e)
	return e.Error == "no leader is elected" || strings.Contains(e.Error, "which is not the leader") ||
		strings.Contains(e.Error, "node is not the leader")
}

// write maps a write's answer to an outcome: 2xx, and the refusals the
// model knows; anything else may or may not have taken effect.
func writeOutcome(status int, body []byte, err error) string {
	switch {
	case err == nil && notProposed(status, body):
		return outNone
	case err != nil || status >= 500:
		return outUnknown
	case status == 200:
		return outOK
	case status == 201:
		return outCreated
	case status == 404:
		return outNotFound
	case status == 409:
		return outConflict
	case status == 400 && bytes.Contains(body, []byte("already exists")):
		return outDuplicate
	}
	return fmt.Sprintf("unexpected %d %s", status, bytes.TrimSpace(body))
}

type historyRun struct {
	t      *testing.T
	c      *testcluster.Cluster
	api    *api
	rec    *recorder
	spec   job.Spec
	jobs   []string
	scheds []string
}

// call makes one random call as client id and records it.
func (h *historyRun) call(rng *rand.Rand, client int) {
	url := h.api.urls[rng.IntN(len(h.api.urls))]
	jobKey := h.jobs[rng.IntN(len(h.jobs))]
	sched := h.scheds[rng.IntN(len(h.scheds))]
	call := h.rec.now()
	record := func(key, op string, status int, body []byte, err error) {
		ret := h.rec.now()
		out := writeOutcome(status, body, err)
		switch {
		case strings.HasPrefix(out, "unexpected"):
			h.t.Errorf("%s %s: %s", op, key, out)
		case out == outNone:
			h.rec.drop()
		default:
			h.rec.add(client, histInput{key, op}, call, ret, out)
		}
	}
	switch p := rng.IntN(100); {
	case p < 20:
		st, b, err := h.api.do(url, "POST", "/v1/jobs", coordinator.SubmitRequest{JobID: jobKey, Spec: h.spec})
		record("job/"+jobKey, "submit", st, b, err)
	case p < 35:
		st, b, err := h.api.do(url, "POST", "/v1/jobs/"+jobKey+"/cancel", nil)
		record("job/"+jobKey, "cancel", st, b, err)
	case p < 55:
		st, b, err := h.api.do(url, "GET", "/v1/jobs/"+jobKey+"?consistent=true", nil)
		ret := h.rec.now()
		switch {
		case err == nil && st == 404:
			h.rec.add(client, histInput{"job/" + jobKey, "get"}, call, ret, stAbsent)
		case err == nil && st == 200:
			var res job.Result
			if err := json.Unmarshal(b, &res); err != nil {
				h.t.Errorf("job %s: %v: %s", jobKey, err, b)
				return
			}
			h.rec.add(client, histInput{"job/" + jobKey, "get"}, call, ret, res.State.String())
		default:
			h.rec.drop() // a read that failed changed nothing
		}
	case p < 62:
		h.readJobs(url, client, call)
	case p < 72:
		req := coordinator.ScheduleRequest{Name: sched, Cron: "0 0 1 1 *", Missed: coordinator.MissedSkip, Spec: h.spec}
		st, b, err := h.api.do(url, "POST", "/v1/schedules", req)
		record("sched/"+sched, "add", st, b, err)
	case p < 80:
		st, b, err := h.api.do(url, "DELETE", "/v1/schedules/"+sched, nil)
		record("sched/"+sched, "rm", st, b, err)
	case p < 87:
		st, b, err := h.api.do(url, "POST", "/v1/schedules/"+sched+"/pause", nil)
		record("sched/"+sched, "pause", st, b, err)
	case p < 94:
		st, b, err := h.api.do(url, "POST", "/v1/schedules/"+sched+"/resume", nil)
		record("sched/"+sched, "resume", st, b, err)
	default:
		h.readSchedules(url, client, call)
	}
}

// readJobs lists the jobs and records one read per job key.
func (h *historyRun) readJobs(url string, client int, call int64) {
	st, b, err := h.api.do(url, "GET", "/v1/jobs?consistent=true", nil)
	ret := h.rec.now()
	var list coordinator.JobList
	if err != nil || st != 200 || json.Unmarshal(b, &list) != nil {
		h.rec.drop()
		return
	}
	state := map[string]string{}
	for _, j := range list.Jobs {
		state[j.JobID] = j.State.String()
	}
	for _, k := range h.jobs {
		s := state[k]
		if s == "" {
			s = stAbsent
		}
		h.rec.add(client, histInput{"job/" + k, "get"}, call, ret, s)
	}
}

// readSchedules lists the schedules and records one read per name.
func (h *historyRun) readSchedules(url string, client int, call int64) {
	st, b, err := h.api.do(url, "GET", "/v1/schedules?consistent=true", nil)
	ret := h.rec.now()
	var list coordinator.ScheduleList
	if err != nil || st != 200 || json.Unmarshal(b, &list) != nil {
		h.rec.drop()
		return
	}
	state := map[string]string{}
	for _, s := range list.Schedules {
		state[s.Name] = stActive
		if s.Paused {
			state[s.Name] = stPaused
		}
	}
	for _, k := range h.scheds {
		s := state[k]
		if s == "" {
			s = stAbsent
		}
		h.rec.add(client, histInput{"sched/" + k, "get"}, call, ret, s)
	}
}

// faultWindow is when a fault was in force.
type faultWindow struct {
	start, end time.Time
	what       string
}

// leader returns the coordinator that says it leads (nil if none answers
// so within a second).
func (h *historyRun) leader(skip map[string]bool) *testcluster.Coord {
	for _, cd := range h.c.Coords {
		if skip[cd.ID] {
			continue
		}
		st, b, err := h.api.do("http://"+cd.HTTPAddr, "GET", "/v1/status", nil)
		var s coordinator.NodeStatus
		if err == nil && st == 200 && json.Unmarshal(b, &s) == nil && s.State == "leader" {
			return cd
		}
	}
	return nil
}

// injectFaults kills or pauses coordinators until deadline and returns
// the windows in which each fault was in force.
func (h *historyRun) injectFaults(rng *rand.Rand, deadline time.Time) []faultWindow {
	var windows []faultWindow
	signal := func(cd *testcluster.Coord, sig syscall.Signal) {
		if err := cd.P.Cmd.Process.Signal(sig); err != nil {
			h.t.Errorf("%v to %s: %v", sig, cd.ID, err)
		}
	}
	sleep := func(lo, hi time.Duration) { time.Sleep(lo + time.Duration(rng.Int64N(int64(hi-lo)))) }
	for time.Now().Before(deadline) {
		sleep(500*time.Millisecond, 2*time.Second)
		w := faultWindow{start: time.Now()}
		switch rng.IntN(4) {
		case 0: // the leader killed, restarted on its data directory
			cd := h.leader(nil)
			if cd == nil {
				continue
			}
			w.what = "kill leader " + cd.ID
			cd.P.Kill()
			sleep(500*time.Millisecond, 1500*time.Millisecond)
			h.c.RestartCoord(cd)
		case 1: // the leader partitioned away
			cd := h.leader(nil)
			if cd == nil {
				continue
			}
			w.what = "pause leader " + cd.ID
			signal(cd, syscall.SIGSTOP)
			sleep(time.Second, 3*time.Second)
			signal(cd, syscall.SIGCONT)
		case 2: // a follower partitioned away
			lead := h.leader(nil)
			var cd *testcluster.Coord
			for _, x := range h.c.Coords {
				if lead == nil || x.ID != lead.ID {
					cd = x
					break
				}
			}
			w.what = "pause follower " + cd.ID
			signal(cd, syscall.SIGSTOP)
			sleep(time.Second, 3*time.Second)
			signal(cd, syscall.SIGCONT)
		case 3: // two of three paused: no quorum
			i := rng.IntN(3)
			a, b := h.c.Coords[i], h.c.Coords[(i+1)%3]
			w.what = "pause " + a.ID + " and " + b.ID
			signal(a, syscall.SIGSTOP)
			signal(b, syscall.SIGSTOP)
			sleep(time.Second, 2*time.Second)
			signal(a, syscall.SIGCONT)
			signal(b, syscall.SIGCONT)
		}
		w.end = time.Now()
		windows = append(windows, w)
	}
	return windows
}

// runHistory is one run; it returns a one-line summary.
func runHistory(t *testing.T, run int, faultFor time.Duration, input string) string {
	c := testcluster.NewEmpty(t)
	c.StartBase(3)
	c.WaitReady(3, 0, 60*time.Second)
	var urls []string
	for _, cd := range c.Coords {
		urls = append(urls, "http://"+cd.HTTPAddr)
	}
	spec := job.DefaultSpec()
	spec.Input = input
	h := &historyRun{t: t, c: c, api: &api{hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}, urls: urls},
		rec: &recorder{start: time.Now()}, spec: spec}
	defer h.api.hc.CloseIdleConnections()
	for i := range 6 {
		h.jobs = append(h.jobs, fmt.Sprintf("h%d", i))
	}
	for i := range 3 {
		h.scheds = append(h.scheds, fmt.Sprintf("s%d", i))
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, uint64(run)))

	// The schedule whose firing is checked.
	tick := coordinator.ScheduleRequest{Name: "tick", Cron: "@every 1s", Missed: coordinator.MissedRun, Spec: spec}
	if st, b, err := h.api.do(urls[0], "POST", "/v1/schedules", tick); err != nil || st != 201 {
		t.Fatalf("adding the tick schedule: %d %s %v", st, b, err)
	}

	// Clients run through the fault phase and a quiet phase after it.
	const clients = 4
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			crng := rand.New(rand.NewPCG(seed, uint64(100+i)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				before := h.rec.failures()
				h.call(crng, i)
				if h.rec.failures() > before {
					// No leader, most likely: do not spin on refusals.
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	windows := h.injectFaults(rng, time.Now().Add(faultFor))
	c.WaitLeader(60 * time.Second)
	quietFrom := time.Now()
	time.Sleep(6 * time.Second)
	close(stop)
	wg.Wait()

	// Final reads: every key once more, in turn.
	for _, k := range h.jobs {
		for {
			call := h.rec.now()
			st, b, err := h.api.do(urls[0], "GET", "/v1/jobs/"+k+"?consistent=true", nil)
			ret := h.rec.now()
			if err == nil && st == 404 {
				h.rec.add(clients, histInput{"job/" + k, "get"}, call, ret, stAbsent)
				break
			}
			var res job.Result
			if err == nil && st == 200 && json.Unmarshal(b, &res) == nil {
				h.rec.add(clients, histInput{"job/" + k, "get"}, call, ret, res.State.String())
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	h.readSchedules(urls[0], clients, h.rec.now())

	// The firing of tick: remove it, then read its jobs.
	var created time.Time
	if st, b, err := h.api.do(urls[0], "GET", "/v1/schedules?consistent=true", nil); err == nil && st == 200 {
		var list coordinator.ScheduleList
		json.Unmarshal(b, &list)
		for _, s := range list.Schedules {
			if s.Name == "tick" {
				created = s.Created
			}
		}
	}
	if created.IsZero() {
		t.Fatal("the tick schedule is gone")
	}
	var removed time.Time
	for {
		st, b, err := h.api.do(urls[0], "DELETE", "/v1/schedules/tick", nil)
		if err == nil && st == 200 {
			removed = time.Now()
			break
		}
		if err == nil && st < 500 {
			t.Fatalf("removing tick: %d %s", st, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	st, b, err := h.api.do(urls[0], "GET", "/v1/jobs?consistent=true", nil)
	var list coordinator.JobList
	if err != nil || st != 200 || json.Unmarshal(b, &list) != nil {
		t.Fatalf("listing jobs: %d %v", st, err)
	}
	fired := map[time.Time]int{}
	for _, j := range list.Jobs {
		if j.Schedule != "tick" {
			continue
		}
		slot, err := time.Parse("20060102t150405z", strings.TrimPrefix(j.JobID, "tick-"))
		if err != nil {
			t.Errorf("job %s of tick: %v", j.JobID, err)
			continue
		}
		fired[slot]++
	}
	sched, _ := coordinator.ParseCron("@every 1s")
	due, _ := coordinator.DueSlots(sched, created, removed)
	isDue := map[time.Time]bool{}
	for _, s := range due {
		isDue[s] = true
	}
	var twice, outside, excused, unexcused int
	for s, n := range fired {
		if n > 1 {
			twice++
			t.Errorf("slot %s fired %d times", s, n)
		}
		if !isDue[s] {
			outside++
			t.Errorf("slot %s fired, not a slot between the creation (%s) and removal (%s) of the schedule", s, created, removed)
		}
	}
	for _, s := range due {
		if fired[s] > 0 || s.After(removed.Add(-time.Second)) {
			// The last second's slot may be due when the removal
			// commits before a leader's tick fires it.
			continue
		}
		inFault := false
		for _, w := range windows {
			if !s.Before(w.start.Add(-2*time.Second)) && !s.After(w.end.Add(10*time.Second)) {
				inFault = true
			}
		}
		switch {
		case inFault:
			excused++
		case s.After(quietFrom.Add(10*time.Second)) || s.Before(windows[0].start):
			// No fault was in force: a healthy cluster fires every slot.
			unexcused++
			t.Errorf("slot %s was never fired, outside every fault window", s)
		default:
			excused++ // the re-election after the last fault
		}
	}

	res, info := porcupine.CheckOperationsVerbose(historyModel.ToModel(), h.rec.ops, time.Minute)
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("cofactor-history-%d-%d.html", run, seed))
		if err := porcupine.VisualizePath(historyModel.ToModel(), info, path); err == nil {
			t.Logf("history visualised in %s", path)
		}
		t.Errorf("run %d (seed %d): the history is %s, not linearizable", run, seed, res)
	}
	var what []string
	for _, w := range windows {
		what = append(what, w.what)
	}
	slices.Sort(what)
	return fmt.Sprintf("calls %d (unknown outcome %d, refused or failed reads dropped %d), %d faults, linearizable %v; tick: %d slots due, %d fired, %d fired twice, %d outside, %d missed in faults, %d missed outside",
		h.rec.calls, h.rec.unknown, h.rec.dropped, len(windows), res == porcupine.Ok, len(due), len(fired), twice, outside, excused, unexcused)
}

// TestHistoryLinearizable runs the history test (see above).
func TestHistoryLinearizable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-coordinator cluster under faults")
	}
	runs, faultFor := 1, 15*time.Second
	if s := os.Getenv("COFACTOR_HISTORY_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("COFACTOR_HISTORY_RUNS=%q: want a positive count", s)
		}
		runs = n
	}
	if s := os.Getenv("COFACTOR_HISTORY_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("COFACTOR_HISTORY_SECONDS=%q: want a positive number", s)
		}
		faultFor = time.Duration(n) * time.Second
	}
	input := filepath.Join(t.TempDir(), "ratings.csv")
	if err := os.WriteFile(input, []byte("user,item,rating\n1,1,5\n1,2,3\n2,1,4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for run := 1; run <= runs; run++ {
		ok := t.Run(fmt.Sprintf("run%d", run), func(t *testing.T) {
			start := time.Now()
			summary := runHistory(t, run, faultFor, input)
			t.Logf("RESULT run %d/%d: %s (%.0f s)", run, runs, summary, time.Since(start).Seconds())
		})
		if !ok {
			failed++
		}
	}
	t.Logf("RESULT %d runs, %d failed", runs, failed)
}
