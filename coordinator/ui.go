package coordinator

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/cofactor-ml/cofactor/internal/job"
)

// uiJobs is how many of the newest jobs the status page shows.
const uiJobs = 20

// uiPage is what the status page template renders.
type uiPage struct {
	Node      string
	Now       string
	Cluster   *ClusterStatus
	Schedules []ScheduleStatus
	Jobs      []uiJob
}

type uiJob struct {
	job.Result
	Created  string
	Progress string
	Metric   string
	Chart    template.HTML
}

// getUI serves the status page: server-rendered HTML and SVG, refreshed by
// the browser every 5 s, no scripts.
func (n *Node) getUI(w http.ResponseWriter, r *http.Request) {
	st, err := n.clusterStatus(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	page := uiPage{Node: n.cfg.ID, Now: time.Now().UTC().Format(time.RFC3339), Cluster: st, Schedules: n.Schedules().Schedules}
	n.fsm.View(func(s *State) {
		for i := len(s.Order) - 1; i >= 0 && len(page.Jobs) < uiJobs; i-- {
			j := s.Jobs[s.Order[i]]
			res := j.Result(time.Now())
			uj := uiJob{Result: res, Created: j.Created.Format(time.RFC3339), Chart: chartSVG(res)}
			if res.Progress != nil {
				uj.Progress = res.Progress.Phase
				if res.Progress.Iteration > 0 {
					uj.Progress = fmt.Sprintf("iteration %d/%d, %s", res.Progress.Iteration, res.Iterations, res.Progress.Phase)
				}
			}
			switch {
			case res.TestRMSE != nil:
				uj.Metric = fmt.Sprintf("test RMSE %.4f", *res.TestRMSE)
			case res.PrecisionAt10 != nil:
				uj.Metric = fmt.Sprintf("precision@10 %.4f, NDCG@10 %.4f", *res.PrecisionAt10, *res.NDCGAt10)
			case res.TrainRMSE != nil:
				uj.Metric = fmt.Sprintf("train RMSE %.4f", *res.TrainRMSE)
			}
			page.Jobs = append(page.Jobs, uj)
		}
	})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := uiTemplate.Execute(w, page); err != nil {
		n.log.Warn("status page not rendered", "err", err)
	}
}

// chartSVG draws a job's train and test RMSE per iteration (explicit), or
// its seconds per iteration (implicit, whose ranking metrics come at the
// end only), as an inline SVG.
func chartSVG(r job.Result) template.HTML {
	const w, h, pad = 320.0, 120.0, 24.0
	type series struct {
		name, color string
		ys          []float64
	}
	var ss []series
	if r.Implicit {
		s := series{name: "s/iteration", color: "#555"}
		for _, it := range r.History {
			s.ys = append(s.ys, it.Seconds)
		}
		ss = append(ss, s)
	} else {
		train, test := series{name: "train RMSE", color: "#1f77b4"}, series{name: "test RMSE", color: "#ff7f0e"}
		for _, it := range r.History {
			train.ys = append(train.ys, val(it.TrainRMSE))
			test.ys = append(test.ys, val(it.TestRMSE))
		}
		ss = append(ss, train, test)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	points := 0
	for _, s := range ss {
		for _, y := range s.ys {
			if !math.IsNaN(y) {
				lo, hi = min(lo, y), max(hi, y)
				points++
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" role="img">`, w, h, w, h)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%g" height="%g" fill="#fafafa" stroke="#ddd"/>`, w, h)
	if points == 0 {
		fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" fill="#888">no iterations yet</text></svg>`, pad, h/2)
		return template.HTML(b.String())
	}
	if hi == lo {
		hi = lo + 1
	}
	n := max(len(r.History), 2)
	x := func(i int) float64 { return pad + (w-2*pad)*float64(i)/float64(n-1) }
	y := func(v float64) float64 { return h - pad - (h-2*pad)*(v-lo)/(hi-lo) }
	for k, s := range ss {
		var pts []string
		for i, v := range s.ys {
			if !math.IsNaN(v) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
			}
		}
		if len(pts) > 0 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, s.color, strings.Join(pts, " "))
		}
		fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="10" fill="%s">%s</text>`, pad+float64(k)*90, 12.0, s.color, template.HTMLEscapeString(s.name))
	}
	fmt.Fprintf(&b, `<text x="2" y="%g" font-size="9" fill="#888">%.3g</text>`, y(hi)+3, hi)
	fmt.Fprintf(&b, `<text x="2" y="%g" font-size="9" fill="#888">%.3g</text>`, y(lo)+3, lo)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func val(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

var uiTemplate = template.Must(template.New("ui").Parse(`<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" lang="en">
<head>
<meta charset="utf-8"/>
<meta http-equiv="refresh" content="5"/>
<title>cofactor — {{.Node}}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; vertical-align: top; }
.leader, .alive, .succeeded { color: #2a7a2a; }
.unreachable, .lost, .failed { color: #b22; }
.running, .draining, .candidate { color: #a66f00; }
</style>
</head>
<body>
<h1>cofactor cluster</h1>
<p>Answered by <b>{{.Node}}</b> at {{.Now}}; leader: <b>{{if .Cluster.Leader}}{{.Cluster.Leader}}{{else}}none{{end}}</b>.</p>
<h2>Coordinators</h2>
<table id="servers">
<tr><th>ID</th><th>raft address</th><th>HTTP address</th><th>state</th></tr>
{{range .Cluster.Servers}}<tr><td>{{.ID}}</td><td>{{.Address}}</td><td>{{.HTTPAddress}}</td><td class="{{.State}}">{{.State}}</td></tr>
{{end}}</table>
<h2>Workers</h2>
<table id="workers">
<tr><th>ID</th><th>state</th><th>blocks</th><th>CPUs</th><th>last seen</th></tr>
{{range .Cluster.Workers}}<tr><td>{{.ID}}</td><td class="{{.State}}">{{.State}}</td><td>{{.Blocks}}</td><td>{{.CPUs}}</td><td>{{.LastSeen.Format "2006-01-02T15:04:05Z07:00"}}</td></tr>
{{end}}</table>
{{if .Schedules}}<h2>Schedules</h2>
<table id="schedules">
<tr><th>name</th><th>cron</th><th>state</th><th>jobs</th><th>next</th></tr>
{{range .Schedules}}<tr><td>{{.Name}}</td><td>{{.Cron}}</td><td>{{if .Paused}}paused{{else}}active{{end}}</td><td>{{.Jobs}}</td><td>{{if not .Next.IsZero}}{{.Next.Format "2006-01-02T15:04:05Z07:00"}}{{end}}</td></tr>
{{end}}</table>{{end}}
<h2>Jobs</h2>
<table id="jobs">
<tr><th>job</th><th>state</th><th>model</th><th>result</th><th>curve</th></tr>
{{range .Jobs}}<tr><td>{{.JobID}}<br/><small>{{.Created}}</small></td><td class="{{.State}}">{{.State}}{{if .Progress}}<br/><small>{{.Progress}}</small>{{end}}{{if .Error}}<br/><small>{{.Error}}</small>{{end}}</td><td>rank {{.Rank}}, {{.Users}} × {{.Items}}<br/><small>{{.TrainRatings}} ratings, {{.Workers}} workers</small></td><td>{{.Metric}}{{if .Restarts}}<br/><small>{{.Restarts}} restarts</small>{{end}}</td><td>{{.Chart}}</td></tr>
{{end}}</table>
</body>
</html>
`))
