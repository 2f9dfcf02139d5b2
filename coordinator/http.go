package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cofactor-ml/cofactor/internal/httpauth"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// MaxRequestBody bounds an API request body.
const MaxRequestBody = 1 << 20

// errBadRequest marks a client error (400).
var errBadRequest = errors.New("bad request")

// errTooLarge marks a request body over MaxRequestBody (413).
var errTooLarge = errors.New("request body too large")

// SubmitRequest is the body of POST /v1/jobs.
type SubmitRequest struct {
	Spec job.Spec `json:"spec"`
	// JobID, when set, names the job (1..64 characters of [A-Za-z0-9_-]);
	// submitting an existing ID is refused. Otherwise the leader picks one.
	JobID    string `json:"job_id,omitempty"`
	Schedule string `json:"schedule,omitempty"`
}

// SubmitResponse answers POST /v1/jobs.
type SubmitResponse struct {
	JobID string `json:"job_id"`
}

// ClusterStatus answers GET /v1/cluster (CONTRACT.md `cluster status`).
type ClusterStatus struct {
	Leader     string         `json:"leader"`
	Servers    []ServerStatus `json:"servers"`
	Workers    []WorkerStatus `json:"workers"`
	AnsweredBy string         `json:"answered_by"`
}

// ServerStatus is one coordinator in ClusterStatus.
type ServerStatus struct {
	ID          string `json:"id"`
	Address     string `json:"address"` // raft address
	HTTPAddress string `json:"http_address,omitempty"`
	State       string `json:"state"` // leader, follower, candidate, unreachable (asked, no answer), unknown (not asked yet)
}

// WorkerStatus is one worker in ClusterStatus.
type WorkerStatus struct {
	ID       string      `json:"id"`
	State    WorkerState `json:"state"`
	Blocks   int         `json:"blocks"`
	CPUs     int         `json:"cpus"`
	LastSeen time.Time   `json:"last_seen"`
}

// NodeStatus answers GET /v1/status: one coordinator's own view.
type NodeStatus struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	Leader       string `json:"leader"`
	LastIndex    uint64 `json:"last_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

// JobSummary is one entry of GET /v1/jobs.
type JobSummary struct {
	JobID    string     `json:"job_id"`
	State    job.State  `json:"state"`
	Schedule string     `json:"schedule"`
	Created  time.Time  `json:"created"`
	Finished *time.Time `json:"finished"`
}

// JobList answers GET /v1/jobs.
type JobList struct {
	Jobs []JobSummary `json:"jobs"`
}

func (a *api) handler() http.Handler {
	mux := http.NewServeMux()
	// Each route names the role its token needs (see docs/security.md):
	// read for what serving layers and dashboards look at, admin for what
	// changes the cluster. /v1/status stays public for liveness probes;
	// it tells only this node's raft state.
	route := func(pattern string, need httpauth.Role, h http.Handler) {
		mux.Handle(pattern, a.n.tokens.Wrap(need, h))
	}
	// The status page is what a browser opens: it may send the token as
	// a Basic password (docs/security.md); no other route takes Basic.
	browserRoute := func(pattern string, need httpauth.Role, h http.Handler) {
		mux.Handle(pattern, a.n.tokens.WrapBrowser(need, h))
	}
	route("GET /v1/status", httpauth.Public, http.HandlerFunc(a.getStatus))
	route("GET /metrics", httpauth.Read, a.n.metricsHandler())
	browserRoute("GET /ui", httpauth.Read, http.HandlerFunc(a.getUI))
	browserRoute("GET /ui/jobs/{id}", httpauth.Read, http.HandlerFunc(a.getUIJob))
	browserRoute("GET /ui/schedules", httpauth.Read, http.HandlerFunc(a.getUISchedules))
	browserRoute("GET /ui/snapshots", httpauth.Read, http.HandlerFunc(a.getUISnapshots))
	// The cancel button of a job's page. A browser sends the token it was
	// asked for with any request to this host, so posts that another site
	// makes it send are refused (Sec-Fetch-Site, Origin) before anything
	// is forwarded to the leader.
	browserRoute("POST /ui/jobs/{id}/cancel", httpauth.Admin, http.NewCrossOriginProtection().Handler(a.leaderOnly(a.postUICancel)))
	route("GET /v1/cluster", httpauth.Read, http.HandlerFunc(a.getCluster))
	route("GET /v1/config", httpauth.Read, http.HandlerFunc(a.getConfig))
	route("POST /v1/cluster/join", httpauth.Admin, a.leaderOnly(a.postJoin))
	route("POST /v1/cluster/remove", httpauth.Admin, a.leaderOnly(a.postRemove))
	route("POST /v1/workers/{id}/drain", httpauth.Admin, a.leaderOnly(a.workerCommand(kindWorkerDrain)))
	route("POST /v1/workers/{id}/undrain", httpauth.Admin, a.leaderOnly(a.workerCommand(kindWorkerUndrain)))
	route("GET /v1/jobs/{id}/logs", httpauth.Read, http.HandlerFunc(a.getJobLogs))
	route("POST /v1/jobs", httpauth.Admin, a.leaderOnly(a.postJob))
	route("GET /v1/jobs", httpauth.Read, a.consistentRead(a.getJobs))
	route("GET /v1/jobs/{id}", httpauth.Read, a.consistentRead(a.getJob))
	route("GET /v1/jobs/{id}/wait", httpauth.Read, http.HandlerFunc(a.waitJob))
	route("POST /v1/jobs/{id}/cancel", httpauth.Admin, a.leaderOnly(a.cancelJob))
	route("GET /v1/schedules", httpauth.Read, a.consistentRead(a.getSchedules))
	route("POST /v1/schedules", httpauth.Admin, a.leaderOnly(a.postSchedule))
	route("DELETE /v1/schedules/{name}", httpauth.Admin, a.leaderOnly(a.scheduleCommand(kindScheduleRm)))
	route("POST /v1/schedules/{name}/pause", httpauth.Admin, a.leaderOnly(a.scheduleCommand(kindSchedulePause)))
	route("POST /v1/schedules/{name}/resume", httpauth.Admin, a.leaderOnly(a.scheduleCommand(kindScheduleResume)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Cofactor-Node", a.n.cfg.ID)
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			// A browser pointed at a coordinator finds the web UI.
			http.Redirect(w, r, "/ui", http.StatusFound)
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			// No route (or not this method): the router's own answer is
			// plain text; give it in JSON like every other error, with
			// the router's status and Allow header.
			rec := &statusOnly{header: w.Header(), status: http.StatusNotFound}
			mux.ServeHTTP(rec, r)
			msg := fmt.Sprintf("%s %s: %s", r.Method, r.URL.EscapedPath(), strings.ToLower(http.StatusText(rec.status)))
			if allow := w.Header().Get("Allow"); allow != "" {
				msg += " (allowed: " + allow + ")"
			}
			w.Header().Del("X-Content-Type-Options")
			writeJSON(w, rec.status, &APIError{Message: msg})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// api serves the JSON HTTP API and the web UI (ui.go) of a node: reads
// from its copy of the replicated state, writes forwarded to the leader.
type api struct{ n *Node }

// statusOnly is a ResponseWriter that keeps the status and drops the body.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(status int)      { s.status = status }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// APIError is the body of every error answer.
type APIError struct {
	Message string `json:"error"`
	Status  int    `json:"-"`
}

func (e *APIError) Error() string { return e.Message }

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, job.ErrSpec), errors.Is(err, ErrDuplicate):
		status = http.StatusBadRequest
	case errors.Is(err, ErrUnknownJob), errors.Is(err, ErrUnknownSchedule), errors.Is(err, ErrUnknownWorker), errors.Is(err, errNotFound):
		status = http.StatusNotFound
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, errNoLeader):
		status = http.StatusServiceUnavailable
	case errors.Is(err, ErrStale):
		status = http.StatusConflict
	case errors.Is(err, errTooLarge):
		status = http.StatusRequestEntityTooLarge
	}
	writeJSON(w, status, &APIError{Message: err.Error()})
}

var errNoLeader = errors.New("no leader is elected")

// leaderOnly serves h on the leader and forwards the request to the leader
// elsewhere.
func (a *api) leaderOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.n.IsLeader() {
			h(w, r)
			return
		}
		if r.Header.Get("X-Cofactor-Forwarded") != "" {
			writeError(w, fmt.Errorf("%w: forwarded to %s, which is not the leader", errNoLeader, a.n.cfg.ID))
			return
		}
		addr := a.n.members.leaderHTTP()
		if addr == "" {
			writeError(w, errNoLeader)
			return
		}
		target := &url.URL{Scheme: a.n.peerScheme(), Host: addr}
		proxy := &httputil.ReverseProxy{
			// The client's Authorization header travels on: the leader
			// checks the same token again.
			Transport: a.n.peerTransport,
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Header.Set("X-Cofactor-Forwarded", a.n.cfg.ID)
			},
			// Wait until this node has applied the leader's write, so
			// that a client reading here next sees it.
			ModifyResponse: func(resp *http.Response) error {
				if idx, err := strconv.ParseUint(resp.Header.Get(headerIndex), 10, 64); err == nil {
					a.n.state.waitApplied(resp.Request.Context(), idx, 5*time.Second)
				}
				return nil
			},
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				writeError(w, fmt.Errorf("%w: forwarding to the leader at %s: %v", errNoLeader, addr, err))
			},
		}
		proxy.ServeHTTP(w, r)
	}
}

// consistentRead serves h from this node's copy of the state, or, for a
// request with ?consistent=true, on the leader after a raft barrier: the
// answer then reflects every write acknowledged before the request was
// sent, whichever coordinator acknowledged it (a linearizable read), at
// the cost of one round of raft. A node that has lost its leadership
// cannot pass the barrier and answers 503.
func (a *api) consistentRead(h http.HandlerFunc) http.HandlerFunc {
	onLeader := a.leaderOnly(func(w http.ResponseWriter, r *http.Request) {
		if err := a.n.raft.Barrier(5 * time.Second).Error(); err != nil {
			writeError(w, fmt.Errorf("%w: %w", errNoLeader, err))
			return
		}
		h(w, r)
	})
	return func(w http.ResponseWriter, r *http.Request) {
		switch v := r.URL.Query().Get("consistent"); v {
		case "", "false":
			h(w, r)
		case "true":
			onLeader(w, r)
		default:
			writeError(w, fmt.Errorf("%w: consistent=%q: want true or false", errBadRequest, v))
		}
	}
}

// headerIndex carries the raft index of a write's entry in the leader's
// answer.
const headerIndex = "X-Cofactor-Index"

// decodeBody decodes r's JSON body into v; a body over MaxRequestBody is
// errTooLarge (413), whether or not it announced its length.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength > MaxRequestBody {
		return fmt.Errorf("%w: %d bytes, at most %d", errTooLarge, r.ContentLength, MaxRequestBody)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return fmt.Errorf("%w: at most %d bytes", errTooLarge, MaxRequestBody)
		}
		return fmt.Errorf("%w: body: %v", errBadRequest, err)
	}
	return nil
}

func (a *api) getStatus(w http.ResponseWriter, _ *http.Request) {
	_, leader := a.n.raft.LeaderWithID()
	writeJSON(w, http.StatusOK, NodeStatus{
		ID: a.n.cfg.ID, State: strings.ToLower(a.n.raft.State().String()), Leader: string(leader),
		LastIndex: a.n.raft.LastIndex(), AppliedIndex: a.n.raft.AppliedIndex(),
	})
}

func (a *api) getCluster(w http.ResponseWriter, r *http.Request) {
	st, err := a.clusterStatus(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// clusterStatus asks every coordinator for its raft state (1 s each, in
// parallel) and lists the workers with their block counts.
func (a *api) clusterStatus(ctx context.Context) (*ClusterStatus, error) {
	f := a.n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	_, leader := a.n.raft.LeaderWithID()
	out := &ClusterStatus{Leader: string(leader), AnsweredBy: a.n.cfg.ID, Servers: []ServerStatus{}, Workers: []WorkerStatus{}}
	blocks := map[string]int{}
	a.n.fsm.View(func(st *State) {
		for _, jid := range st.Order {
			if j := st.Jobs[jid]; !job.Finished(j.State) && j.Assign != nil {
				for _, owner := range append(append([]string(nil), j.Assign.Users...), j.Assign.Items...) {
					blocks[owner]++
				}
			}
		}
		for _, wk := range st.Workers {
			out.Workers = append(out.Workers, WorkerStatus{ID: wk.ID, State: wk.State, Blocks: blocks[wk.ID], CPUs: wk.CPUs, LastSeen: wk.LastSeen})
		}
	})
	// Liveness is not replicated: every coordinator hears the heartbeats
	// and says when it heard each worker last (the registration time
	// until it has).
	for i, wk := range out.Workers {
		if t, ok := a.n.heard.lastSeen(wk.ID); ok {
			out.Workers[i].LastSeen = t
		}
	}
	sort.Slice(out.Workers, func(a, b int) bool { return out.Workers[a].ID < out.Workers[b].ID })
	servers := f.Configuration().Servers
	httpAddr := a.n.peerHTTPAddrs(ctx, servers) // raftlog.go: a restarted member replays its log first
	out.Servers = make([]ServerStatus, len(servers))
	done := make(chan struct{}, len(servers))
	for i, s := range servers {
		out.Servers[i] = ServerStatus{ID: string(s.ID), Address: string(s.Address), HTTPAddress: httpAddr[string(s.ID)]}
		go func() {
			defer func() { done <- struct{}{} }()
			if string(s.ID) == a.n.cfg.ID {
				out.Servers[i].State = strings.ToLower(a.n.raft.State().String())
				return
			}
			// Unreachable only once asked: without an address (not yet
			// replayed) the state is unknown, unless raft hears the leader.
			out.Servers[i].State = "unknown"
			if s.ID == leader {
				out.Servers[i].State = "leader"
			}
			if addr := httpAddr[string(s.ID)]; addr != "" {
				out.Servers[i].State = "unreachable"
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				var ns NodeStatus
				if err := a.n.peerClient(addr).get(cctx, "/v1/status", &ns); err == nil {
					out.Servers[i].State = ns.State
				}
			}
		}()
	}
	for range servers {
		<-done
	}
	sort.Slice(out.Servers, func(a, b int) bool { return out.Servers[a].ID < out.Servers[b].ID })
	return out, nil
}

func (a *api) postJoin(w http.ResponseWriter, r *http.Request) {
	var s ServerInfo
	if err := decodeBody(w, r, &s); err != nil {
		writeError(w, err)
		return
	}
	if err := a.n.members.addServer(r.Context(), s); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"joined": s.ID})
}

func (a *api) submit(ctx context.Context, req SubmitRequest) (string, uint64, error) {
	if err := req.Spec.Validate(); err != nil {
		return "", 0, err
	}
	if err := a.n.checkDatasets(ctx, req.Spec); err != nil {
		return "", 0, err
	}
	id := req.JobID
	if id == "" {
		id = NewJobID()
	} else if err := validJobID(id); err != nil {
		return "", 0, err
	}
	spec := req.Spec
	idx, err := a.n.state.proposeAt(ctx, time.Time{}, &submitCmd{Job: id, Spec: spec, Schedule: req.Schedule})
	return id, idx, err
}

// NewJobID returns a fresh job ID: the UTC time and 48 random bits.
func NewJobID() string {
	var b [6]byte
	rand.Read(b[:])
	return "j" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

func validJobID(id string) error {
	if len(id) == 0 || len(id) > 64 {
		return fmt.Errorf("%w: job id %q must be 1..64 characters", errBadRequest, id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: job id %q may only hold letters, digits, - and _", errBadRequest, id)
		}
	}
	return nil
}

func (a *api) postJob(w http.ResponseWriter, r *http.Request) {
	var req SubmitRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	id, idx, err := a.submit(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set(headerIndex, strconv.FormatUint(idx, 10))
	writeJSON(w, http.StatusCreated, SubmitResponse{JobID: id})
}

func (a *api) getJobs(w http.ResponseWriter, _ *http.Request) {
	list := JobList{Jobs: []JobSummary{}}
	a.n.fsm.View(func(st *State) {
		for _, id := range st.Order {
			j := st.Jobs[id]
			s := JobSummary{JobID: id, State: j.State, Schedule: j.Schedule, Created: j.Created}
			if !j.Finished.IsZero() {
				f := j.Finished
				s.Finished = &f
			}
			list.Jobs = append(list.Jobs, s)
		}
	})
	writeJSON(w, http.StatusOK, list)
}

func (a *api) getJob(w http.ResponseWriter, r *http.Request) {
	res, err := a.n.JobResult(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// MaxWait bounds one GET /v1/jobs/{id}/wait; clients call again.
const MaxWait = 60 * time.Second

func (a *api) waitJob(w http.ResponseWriter, r *http.Request) {
	timeout := 30 * time.Second
	if v := r.URL.Query().Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			writeError(w, fmt.Errorf("%w: timeout %q is not a duration", errBadRequest, v))
			return
		}
		timeout = min(d, MaxWait)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res, err := a.n.Wait(ctx, r.PathValue("id"))
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *api) cancelJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	idx, err := a.n.state.proposeAt(r.Context(), time.Time{}, &cancelCmd{Job: id})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set(headerIndex, strconv.FormatUint(idx, 10))
	res, err := a.n.JobResult(id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// ClientConfig answers GET /v1/config: what a serving layer needs to find
// the snapshots (the NATS server, and the default store on it).
type ClientConfig struct {
	NATSURL string `json:"nats_url"`
	Store   string `json:"store"`
}

func (a *api) getConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, ClientConfig{NATSURL: a.n.cfg.NATSURL, Store: "nats"})
}

// ScheduleStatus is one schedule in GET /v1/schedules.
type ScheduleStatus struct {
	Schedule
	// Next is the next slot that will fire (zero when paused).
	Next time.Time `json:"next,omitzero"`
	// Jobs counts the jobs the schedule has started.
	Jobs int `json:"jobs"`
}

// ScheduleList answers GET /v1/schedules.
type ScheduleList struct {
	Schedules []ScheduleStatus `json:"schedules"`
}

func (a *api) getSchedules(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.n.Schedules())
}

// ScheduleRequest is the body of POST /v1/schedules.
type ScheduleRequest struct {
	Name      string   `json:"name"`
	Cron      string   `json:"cron"`
	Missed    string   `json:"missed,omitempty"`
	WarmStart bool     `json:"warm_start,omitempty"`
	Spec      job.Spec `json:"spec"`
}

func (a *api) postSchedule(w http.ResponseWriter, r *http.Request) {
	var req ScheduleRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	s := Schedule{Name: req.Name, Cron: req.Cron, Missed: req.Missed, WarmStart: req.WarmStart, Spec: req.Spec}
	if err := a.n.AddSchedule(r.Context(), s); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"schedule": s.Name})
}

// scheduleCommand serves the removal, pausing and resuming of a schedule.
func (a *api) scheduleCommand(typ Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		var p payload
		switch typ {
		case kindScheduleRm:
			p = &scheduleRmCmd{Name: name}
		case kindSchedulePause:
			p = &schedulePauseCmd{Name: name}
		default:
			p = &scheduleResumeCmd{Name: name}
		}
		if _, err := a.n.state.proposeAt(r.Context(), a.n.clock(), p); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"schedule": name, "done": string(typ)})
	}
}

// RemoveRequest is the body of POST /v1/cluster/remove.
type RemoveRequest struct {
	ID string `json:"id"`
}

// postRemove removes a coordinator from the raft group (leader only; a
// leader removing itself steps down once the change is committed).
func (a *api) postRemove(w http.ResponseWriter, r *http.Request) {
	var req RemoveRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	known := false
	if f := a.n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			known = known || string(s.ID) == req.ID
		}
	}
	if !known {
		writeError(w, fmt.Errorf("%w: %q is not a member of the raft group", errNotFound, req.ID))
		return
	}
	if err := a.n.raft.RemoveServer(raft.ServerID(req.ID), 0, 10*time.Second).Error(); err != nil {
		writeError(w, err)
		return
	}
	if a.n.IsLeader() {
		if err := a.n.state.propose(r.Context(), &serverGoneCmd{Server: req.ID}); err != nil {
			writeError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": req.ID})
}

// errNotFound marks a missing resource (404).
var errNotFound = errors.New("not found")

// workerCommand drains or undrains a worker.
func (a *api) workerCommand(typ Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var p payload = &workerUndrainCmd{Worker: id}
		if typ == kindWorkerDrain {
			p = &workerDrainCmd{Worker: id}
		}
		if err := a.n.state.propose(r.Context(), p); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"worker": id, "done": string(typ)})
	}
}

// JobLogs answers GET /v1/jobs/{id}/logs.
type JobLogs struct {
	JobID  string    `json:"job_id"`
	State  job.State `json:"state"`
	Events []Event   `json:"events"`
}

func (a *api) getJobLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var out *JobLogs
	a.n.fsm.View(func(st *State) {
		if j, ok := st.Jobs[id]; ok {
			out = &JobLogs{JobID: id, State: j.State, Events: append([]Event{}, j.Events...)}
		}
	})
	if out == nil {
		writeError(w, fmt.Errorf("%w: %s", ErrUnknownJob, id))
		return
	}
	writeJSON(w, http.StatusOK, out)
}
