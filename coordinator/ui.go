package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/httpauth"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// uiJobs is how many of the newest jobs the overview shows.
const uiJobs = 20

// uiRefresh is how often a page that shows something running reloads.
const uiRefresh = 5

// uiBase is what every page shows: where it came from.
type uiBase struct {
	Node, Leader, Now, Title string
	Refresh                  int // seconds; 0: no reload
}

// uiJob is one job as the pages show it.
type uiJob struct {
	job.Result
	Model, Schedule             string
	Created, Started, Finished  string
	Duration, Progress, Metric  string
	Running, CanCancel, Unknown bool
}

// newUIJob describes j as of now. Call it under View.
func newUIJob(j *Job, now time.Time) uiJob {
	res := j.Result(now)
	u := uiJob{Result: res, Model: j.Spec.Model, Schedule: j.Schedule, Created: uiTime(j.Created),
		Started: uiTime(j.Started), Finished: uiTime(j.Finished), Running: !job.Finished(j.State)}
	u.Duration = uiDuration(res.Seconds)
	if p := res.Progress; p != nil {
		u.Progress = p.Phase
		if p.Iteration > 0 {
			u.Progress = fmt.Sprintf("iteration %d of %d, %s", p.Iteration, res.Iterations, p.Phase)
		}
		u.Progress += fmt.Sprintf(" · %.0f%% done · %s elapsed", 100*p.Done, uiDuration(p.ElapsedSeconds))
		if p.RemainingSeconds != nil {
			u.Progress += " · about " + uiDuration(*p.RemainingSeconds) + " left"
		}
	}
	switch {
	case res.TestRMSE != nil:
		u.Metric = fmt.Sprintf("test RMSE %.4f", *res.TestRMSE)
	case res.PrecisionAt10 != nil:
		u.Metric = fmt.Sprintf("precision@10 %.4f, NDCG@10 %.4f", *res.PrecisionAt10, *res.NDCGAt10)
	case res.TrainRMSE != nil:
		u.Metric = fmt.Sprintf("train RMSE %.4f", *res.TrainRMSE)
	}
	return u
}

func uiTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// uiDuration writes seconds the way people read them: 0.42 s, 12.3 s,
// 4 min 05 s, 2 h 03 min.
func uiDuration(s float64) string {
	switch {
	case s < 0 || math.IsNaN(s):
		return "?"
	case s < 10:
		return fmt.Sprintf("%.2f s", s)
	case s < 60:
		return fmt.Sprintf("%.1f s", s)
	case s < 3600:
		return fmt.Sprintf("%d min %02d s", int(s)/60, int(s)%60)
	}
	return fmt.Sprintf("%d h %02d min", int(s)/3600, int(s)%3600/60)
}

// uiSize writes a byte count in binary units.
func uiSize(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

// base fills what every page shows.
func (a *api) uiBase(title string) uiBase {
	_, leader := a.n.raft.LeaderWithID()
	return uiBase{Node: a.n.cfg.ID, Leader: string(leader), Now: uiTime(a.n.clock()), Title: title}
}

// render writes a page, or a plain error when the template fails before
// anything was written.
func (a *api) render(w http.ResponseWriter, status int, name string, page any) {
	var buf bytes.Buffer
	if err := uiTemplates.ExecuteTemplate(&buf, name, page); err != nil {
		a.n.log.Warn("page not rendered", "page", name, "err", err)
		http.Error(w, "page not rendered: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// uiOverview is the page of GET /ui.
type uiOverview struct {
	uiBase
	Cluster   *ClusterStatus
	Schedules []uiSchedule
	Jobs      []uiJob
}

// getUI serves the overview: coordinators, workers, schedules and the
// newest jobs. Server-rendered HTML, no scripts; it reloads every 5 s.
func (a *api) getUI(w http.ResponseWriter, r *http.Request) {
	st, err := a.clusterStatus(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	page := uiOverview{uiBase: a.uiBase("cluster"), Cluster: st, Schedules: a.uiSchedules()}
	page.Refresh = uiRefresh
	now := a.n.clock()
	a.n.fsm.View(func(s *State) {
		for i := len(s.Order) - 1; i >= 0 && len(page.Jobs) < uiJobs; i-- {
			page.Jobs = append(page.Jobs, newUIJob(s.Jobs[s.Order[i]], now))
		}
	})
	a.render(w, http.StatusOK, "overview", page)
}

// uiParam is one parameter of a job's spec.
type uiParam struct{ Name, Value string }

// specParams lists a spec's fields in their JSON order, empty ones left
// out, so that every parameter a job ran with is shown, new ones too.
func specParams(s job.Spec) []uiParam {
	b, err := json.Marshal(s)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []uiParam
	if _, err := dec.Token(); err != nil { // {
		return nil
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return out
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return out
		}
		name, _ := k.(string)
		switch x := v.(type) {
		case nil:
			continue
		case string:
			if x == "" {
				continue
			}
			out = append(out, uiParam{name, x})
		default:
			raw, _ := json.Marshal(x)
			out = append(out, uiParam{name, string(raw)})
		}
	}
	return out
}

// uiJobPage is the page of GET /ui/jobs/{id}.
type uiJobPage struct {
	uiBase
	Job         uiJob
	Params      []uiParam
	Curve       template.HTML
	Times       template.HTML
	Iterations  []uiIteration
	Events      []Event
	CancelError string
}

// uiIteration is one row of a job's iteration table.
type uiIteration struct {
	Iteration                     int
	TrainRMSE, TestRMSE, Seconds  string
	Bytes                         string
	RowsPerSecond, CumulativeTime string
}

// getUIJob serves one job: parameters, state and progress, durations,
// the curves, every iteration's time, notes and log; a cancel button for
// a token that may cancel.
func (a *api) getUIJob(w http.ResponseWriter, r *http.Request) {
	a.uiJob(w, r, http.StatusOK, "")
}

func (a *api) uiJob(w http.ResponseWriter, r *http.Request, status int, cancelErr string) {
	id := r.PathValue("id")
	page := uiJobPage{uiBase: a.uiBase("job " + id), CancelError: cancelErr}
	found := false
	now := a.n.clock()
	a.n.fsm.View(func(s *State) {
		j, ok := s.Jobs[id]
		if !ok {
			return
		}
		found = true
		page.Job = newUIJob(j, now)
		page.Params = specParams(j.Spec)
		page.Events = append([]Event(nil), j.Events...)
	})
	if !found {
		page.Job.JobID, page.Job.Unknown = id, true
		a.render(w, http.StatusNotFound, "job", page)
		return
	}
	res := &page.Job.Result
	denied, _ := a.n.tokens.CheckBrowser(r, httpauth.Admin)
	page.Job.CanCancel = page.Job.Running && denied == 0
	if page.Job.Running {
		page.Refresh = uiRefresh
	}
	var its, train, test, secs []float64
	cum := 0.0
	for _, it := range res.History {
		its = append(its, float64(it.Iteration))
		train, test = append(train, val(it.TrainRMSE)), append(test, val(it.TestRMSE))
		secs = append(secs, it.Seconds)
		cum += it.Seconds
		row := uiIteration{Iteration: it.Iteration, TrainRMSE: fmtOpt(it.TrainRMSE), TestRMSE: fmtOpt(it.TestRMSE),
			Seconds: fmt.Sprintf("%.3f", it.Seconds), Bytes: uiSize(it.BytesExchanged), CumulativeTime: fmt.Sprintf("%.3f", cum)}
		if it.Seconds > 0 {
			// An iteration solves every user row and every item row once.
			row.RowsPerSecond = fmt.Sprintf("%.0f", float64(res.Users+res.Items)/it.Seconds)
		}
		page.Iterations = append(page.Iterations, row)
	}
	if res.Implicit {
		// Ranking metrics come at the end only: no per-iteration curve.
		page.Curve = ""
	} else {
		page.Curve = chart{ID: "curve", Width: 560, Height: 240, XLabel: "iteration", YLabel: "RMSE (rating units)", Series: []chartSeries{
			{Name: "train RMSE", Color: "#1f77b4", X: its, Y: train},
			{Name: "test RMSE", Color: "#d62728", X: its, Y: test},
		}}.SVG()
	}
	page.Times = chart{ID: "times", Width: 560, Height: 200, XLabel: "iteration", YLabel: "seconds per iteration", Series: []chartSeries{
		{Name: "wall time", Color: "#555", X: its, Y: secs},
	}}.SVG()
	a.render(w, status, "job", page)
}

func val(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func fmtOpt(p *float64) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf("%.4f", *p)
}

// postUICancel cancels a job from its page and shows the page again
// (303, so that a reload does not post again). Only for admin tokens, and
// only from the UI's own pages (cross-origin posts are refused).
func (a *api) postUICancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.n.state.proposeAt(r.Context(), time.Time{}, &cancelCmd{Job: id}); err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrUnknownJob):
			status = http.StatusNotFound
		case errors.Is(err, ErrStale):
			status = http.StatusConflict
		}
		a.uiJob(w, r, status, err.Error())
		return
	}
	http.Redirect(w, r, "/ui/jobs/"+id, http.StatusSeeOther)
}

// uiSchedule is one schedule as the pages show it.
type uiSchedule struct {
	ScheduleStatus
	NextFire, NextIn, LastJob, LastState string
	Params                               []uiParam
}

// uiSchedules lists the schedules with their next fire time and newest
// job.
func (a *api) uiSchedules() []uiSchedule {
	now := a.n.clock()
	var out []uiSchedule
	last := map[string]*Job{}
	a.n.fsm.View(func(s *State) {
		for _, id := range s.Order {
			if j := s.Jobs[id]; j.Schedule != "" {
				last[j.Schedule] = j
			}
		}
	})
	for _, s := range a.n.Schedules().Schedules {
		u := uiSchedule{ScheduleStatus: s, Params: specParams(s.Spec)}
		switch {
		case s.Paused:
			u.NextFire = "paused"
		case !s.Next.IsZero():
			u.NextFire = uiTime(s.Next)
			u.NextIn = "in " + uiDuration(max(s.Next.Sub(now).Seconds(), 0))
		}
		if j := last[s.Name]; j != nil {
			u.LastJob, u.LastState = j.ID, j.State.String()
		}
		out = append(out, u)
	}
	return out
}

// uiSchedulesPage is the page of GET /ui/schedules.
type uiSchedulesPage struct {
	uiBase
	Schedules []uiSchedule
}

// getUISchedules serves the schedules: cron, next fire time, the newest
// job each started, and the spec its jobs run.
func (a *api) getUISchedules(w http.ResponseWriter, _ *http.Request) {
	a.render(w, http.StatusOK, "schedules", uiSchedulesPage{uiBase: a.uiBase("schedules"), Schedules: a.uiSchedules()})
}

// uiSnapshot is one snapshot or checkpoint of a model.
type uiSnapshot struct {
	ID, Job, Kind, Created, Size, Shape, Metrics string
	Iteration, Rank                              int
	Latest                                       bool
}

// uiModel is one model of one store: its snapshots, newest first, and the
// one its latest pointer names (what serving follows).
type uiModel struct {
	Name, Store, Latest, Error string
	Snapshots                  []uiSnapshot
}

// uiSnapshotsPage is the page of GET /ui/snapshots.
type uiSnapshotsPage struct {
	uiBase
	Models []uiModel
}

// uiStoreTimeout bounds the store reads of the snapshots page.
const uiStoreTimeout = 5 * time.Second

// getUISnapshots serves the models the cluster's jobs train and their
// snapshots, read from the stores: ID, job, iteration, size, created, and
// which one the model's latest pointer names (the one `cofactor serve
// --model` follows). A store that cannot be read shows its error.
func (a *api) getUISnapshots(w http.ResponseWriter, r *http.Request) {
	type key struct{ store, model string }
	seen := map[key]bool{}
	var keys []key
	a.n.fsm.View(func(s *State) {
		for _, id := range s.Order {
			sp := s.Jobs[id].Spec
			k := key{sp.Store, sp.Model}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	})
	sort.Slice(keys, func(a, b int) bool {
		if keys[a].model != keys[b].model {
			return keys[a].model < keys[b].model
		}
		return keys[a].store < keys[b].store
	})
	ctx, cancel := context.WithTimeout(r.Context(), uiStoreTimeout)
	defer cancel()
	page := uiSnapshotsPage{uiBase: a.uiBase("snapshots")}
	for _, k := range keys {
		m := uiModel{Name: k.model, Store: k.store}
		if m.Store == "" {
			m.Store = "nats"
		}
		m.Snapshots, m.Latest, m.Error = a.uiModelSnapshots(ctx, k.store, k.model)
		page.Models = append(page.Models, m)
	}
	a.render(w, http.StatusOK, "snapshots", page)
}

func (a *api) uiModelSnapshots(ctx context.Context, store, model string) ([]uiSnapshot, string, string) {
	repo, err := a.n.repo(ctx, store)
	if err != nil {
		return nil, "", err.Error()
	}
	list, err := repo.List(ctx, model)
	if err != nil {
		return nil, "", err.Error()
	}
	latest, err := repo.Latest(ctx, model)
	if err != nil && !errors.Is(err, checkpoint.ErrNotFound) {
		return nil, "", err.Error()
	}
	var out []uiSnapshot
	for i := len(list) - 1; i >= 0; i-- {
		m := list[i]
		var size int64
		for _, f := range m.Files {
			size += f.Bytes
		}
		s := uiSnapshot{ID: m.ID, Job: m.Job, Kind: "checkpoint", Created: uiTime(m.Created), Size: uiSize(size),
			Shape: fmt.Sprintf("%d × %d", m.Users, m.Items), Iteration: m.Iteration, Rank: m.Rank, Latest: m.ID == latest}
		if m.Final {
			s.Kind = "snapshot"
		}
		var names []string
		for name := range m.Metrics {
			names = append(names, name)
		}
		sort.Strings(names)
		var parts []string
		for _, name := range names {
			parts = append(parts, fmt.Sprintf("%s %.4g", name, m.Metrics[name]))
		}
		s.Metrics = strings.Join(parts, ", ")
		out = append(out, s)
	}
	return out, latest, ""
}

var uiTemplates = template.Must(template.New("ui").Parse(`
{{define "head"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}"/>{{end}}
<title>cofactor — {{.Title}}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
nav { margin-bottom: 1em; }
nav a { margin-right: 1.2em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.snapshots td, #iterations td, #jobs td:nth-child(4), #jobs td:nth-child(5) { white-space: nowrap; }
.leader, .alive, .succeeded { color: #2a7a2a; }
.unreachable, .lost, .failed, .error { color: #b22; }
.running, .draining, .candidate, .pending { color: #a66f00; }
.cancelled, small, .muted { color: #666; }
.latest { font-weight: bold; }
form.cancel button { color: #b22; }
</style>
</head>
<body>
<nav><b>cofactor</b> · <a href="/ui">cluster</a><a href="/ui#jobs">jobs</a><a href="/ui/schedules">schedules</a><a href="/ui/snapshots">snapshots</a></nav>
<p class="muted">Answered by <b>{{.Node}}</b> at {{.Now}}; leader: <b>{{if .Leader}}{{.Leader}}{{else}}none{{end}}</b>.</p>
{{end}}

{{define "foot"}}</body>
</html>
{{end}}

{{define "jobrows"}}<table id="jobs">
<tr><th>job</th><th>state</th><th>model</th><th>created</th><th>duration</th><th>result</th></tr>
{{range .}}<tr><td><a class="job" href="/ui/jobs/{{.JobID}}">{{.JobID}}</a>{{if .Schedule}}<br/><small>schedule {{.Schedule}}</small>{{end}}</td><td class="{{.State}}">{{.State}}{{if .Progress}}<br/><small class="progress">{{.Progress}}</small>{{end}}{{if .Error}}<br/><small>{{.Error}}</small>{{end}}</td><td>{{.Model}}<br/><small>rank {{.Rank}}, {{.Users}} × {{.Items}}</small></td><td>{{.Created}}</td><td class="num">{{.Duration}}</td><td>{{.Metric}}{{if .Restarts}}<br/><small>{{.Restarts}} restarts</small>{{end}}</td></tr>
{{end}}</table>{{end}}

{{define "overview"}}{{template "head" .}}
<h1>Cluster</h1>
<h2>Coordinators</h2>
<table id="servers">
<tr><th>ID</th><th>raft address</th><th>HTTP address</th><th>state</th></tr>
{{range .Cluster.Servers}}<tr><td>{{.ID}}</td><td>{{.Address}}</td><td>{{.HTTPAddress}}</td><td class="{{.State}}">{{.State}}</td></tr>
{{end}}</table>
<h2>Workers</h2>
<table id="workers">
<tr><th>ID</th><th>state</th><th>blocks</th><th>CPUs</th><th>last seen</th></tr>
{{range .Cluster.Workers}}<tr><td>{{.ID}}</td><td class="{{.State}}">{{.State}}</td><td class="num">{{.Blocks}}</td><td class="num">{{.CPUs}}</td><td>{{.LastSeen.Format "2006-01-02T15:04:05Z07:00"}}</td></tr>
{{else}}<tr><td colspan="5" class="muted">no worker has registered</td></tr>
{{end}}</table>
{{if .Schedules}}<h2>Schedules</h2>
<table id="schedule-summary">
<tr><th>name</th><th>cron</th><th>next</th><th>jobs</th></tr>
{{range .Schedules}}<tr><td><a href="/ui/schedules#{{.Name}}">{{.Name}}</a></td><td><code>{{.Cron}}</code></td><td>{{.NextFire}}{{if .NextIn}} <small>({{.NextIn}})</small>{{end}}</td><td class="num">{{.Jobs}}</td></tr>
{{end}}</table>{{end}}
<h2>Jobs</h2>
{{if .Jobs}}{{template "jobrows" .Jobs}}{{else}}<p class="muted">No job yet: <code>cofactor job submit</code> starts one.</p>{{end}}
{{template "foot"}}{{end}}

{{define "job"}}{{template "head" .}}
{{if .Job.Unknown}}<h1>Job {{.Job.JobID}}</h1><p class="error">No job {{.Job.JobID}} on this cluster.</p>{{else}}{{with .Job}}
<h1>Job {{.JobID}}</h1>
<p id="state">State: <b class="{{.State}}">{{.State}}</b>{{if .Progress}} — <span class="progress">{{.Progress}}</span>{{end}}</p>
{{if .Error}}<p id="error" class="error">{{.Error}}</p>{{end}}
{{end}}
{{if .CancelError}}<p id="cancel-error" class="error">Not cancelled: {{.CancelError}}</p>{{end}}
{{if .Job.CanCancel}}<form class="cancel" method="post" action="/ui/jobs/{{.Job.JobID}}/cancel"><button id="cancel" type="submit">Cancel this job</button></form>{{end}}
{{with .Job}}
<h2>Times</h2>
<table id="times-table">
<tr><th>submitted</th><td>{{.Created}}</td></tr>
{{if .Started}}<tr><th>started</th><td>{{.Started}}</td></tr>{{end}}
{{if .Finished}}<tr><th>finished</th><td>{{.Finished}}</td></tr>{{end}}
<tr><th>{{if .Running}}running for{{else}}took{{end}}</th><td id="duration">{{.Duration}}</td></tr>
<tr><th>reading and loading the input</th><td>{{printf "%.2f" .LoadSeconds}} s</td></tr>
<tr><th>per iteration (mean)</th><td>{{printf "%.3f" .SecondsPerIteration}} s</td></tr>
</table>
<h2>Result</h2>
<table id="result">
<tr><th>model</th><td>{{.Model}}, rank {{.Rank}}, λ {{.Lambda}}{{if .Implicit}}, implicit{{end}}, {{.Solver}} solver</td></tr>
<tr><th>data</th><td>{{.Users}} users × {{.Items}} items, {{.TrainRatings}} training ratings, {{.TestRatings}} test ratings ({{.TestSkipped}} skipped)</td></tr>
<tr><th>layout</th><td>{{.UserBlocks}} × {{.ItemBlocks}} blocks on {{.Workers}} workers</td></tr>
{{if .Metric}}<tr><th>metric</th><td id="metric">{{.Metric}}</td></tr>{{end}}
{{if .Restarts}}<tr><th>restarts</th><td>{{.Restarts}}</td></tr>{{end}}
{{if .SnapshotID}}<tr><th>snapshot</th><td><a href="/ui/snapshots">{{.SnapshotID}}</a></td></tr>{{end}}
</table>
{{end}}
{{if .Curve}}<h2>Error by iteration</h2>
{{.Curve}}{{end}}
<h2>Time of each iteration</h2>
{{.Times}}
<table id="iterations">
<tr><th>iteration</th><th>train RMSE</th><th>test RMSE</th><th>seconds</th><th>seconds so far</th><th>rows solved per second</th><th>factor bytes exchanged</th></tr>
{{range .Iterations}}<tr><td class="num">{{.Iteration}}</td><td class="num">{{.TrainRMSE}}</td><td class="num">{{.TestRMSE}}</td><td class="num">{{.Seconds}}</td><td class="num">{{.CumulativeTime}}</td><td class="num">{{.RowsPerSecond}}</td><td class="num">{{.Bytes}}</td></tr>
{{else}}<tr><td colspan="7" class="muted">no iteration has completed</td></tr>
{{end}}</table>
<h2>Parameters</h2>
<table id="params">
{{range .Params}}<tr><th>{{.Name}}</th><td><code>{{.Value}}</code></td></tr>
{{end}}</table>
{{with .Job.Notes}}<h2>Notes</h2><ul id="notes">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h2>Log</h2>
<table id="log">
{{range .Events}}<tr><td><small>{{.Time.Format "2006-01-02T15:04:05.000Z07:00"}}</small></td><td>{{.Text}}</td></tr>
{{end}}</table>
{{end}}
{{template "foot"}}{{end}}

{{define "schedules"}}{{template "head" .}}
<h1>Schedules</h1>
{{if .Schedules}}<table id="schedules">
<tr><th>name</th><th>cron</th><th>next fire time</th><th>missed slots</th><th>jobs started</th><th>newest job</th><th>parameters</th></tr>
{{range .Schedules}}<tr id="{{.Name}}"><td>{{.Name}}{{if .WarmStart}}<br/><small>warm start</small>{{end}}</td><td><code>{{.Cron}}</code></td><td class="next">{{.NextFire}}{{if .NextIn}}<br/><small>{{.NextIn}}</small>{{end}}</td><td>{{.Missed}}</td><td class="num">{{.Jobs}}</td><td>{{if .LastJob}}<a href="/ui/jobs/{{.LastJob}}">{{.LastJob}}</a><br/><small class="{{.LastState}}">{{.LastState}}</small>{{end}}</td><td><small>{{range $i, $p := .Params}}{{if $i}}, {{end}}{{$p.Name}} {{$p.Value}}{{end}}</small></td></tr>
{{end}}</table>{{else}}<p class="muted">No schedule: <code>cofactor schedule add NAME --cron EXPR …</code> adds one.</p>{{end}}
{{template "foot"}}{{end}}

{{define "snapshots"}}{{template "head" .}}
<h1>Models and snapshots</h1>
<p class="muted">A job's final snapshot becomes its model's latest; <code>cofactor serve --model NAME</code> follows the latest. Checkpoints are resume points of jobs.</p>
{{range .Models}}<h2 class="model">Model {{.Name}} <small>in store {{.Store}}</small></h2>
{{if .Error}}<p class="error">The store could not be read: {{.Error}}</p>{{else}}
<p class="latest-line">{{if .Latest}}Serving follows <b class="latest-id">{{.Latest}}</b>.{{else}}No snapshot is published yet: serving has nothing to follow.{{end}}</p>
<table class="snapshots">
<tr><th>ID</th><th>kind</th><th>job</th><th>iteration</th><th>created</th><th>size</th><th>users × items</th><th>rank</th><th>metrics</th></tr>
{{range .Snapshots}}<tr{{if .Latest}} class="latest"{{end}}><td class="id">{{.ID}}{{if .Latest}} <small>← latest, served</small>{{end}}</td><td>{{.Kind}}</td><td><a href="/ui/jobs/{{.Job}}">{{.Job}}</a></td><td class="num">{{.Iteration}}</td><td>{{.Created}}</td><td class="num size">{{.Size}}</td><td class="num">{{.Shape}}</td><td class="num">{{.Rank}}</td><td><small>{{.Metrics}}</small></td></tr>
{{else}}<tr><td colspan="9" class="muted">none in the store</td></tr>
{{end}}</table>{{end}}
{{else}}<p class="muted">No job has run yet.</p>{{end}}
{{template "foot"}}{{end}}
`))
