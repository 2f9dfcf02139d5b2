package serve

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// uiSamples is how many user and item IDs the try-it page offers as
// examples.
const uiSamples = 5

// uiPage is what the try-it page renders.
type uiPage struct {
	Snapshot           string
	Model              string
	Job                string
	Created            string
	Rank, Users, Items int
	Implicit, HasSeen  bool
	User, Item         string
	K                  int
	ExcludeSeen        bool
	Error              string
	Recommend          *Recommendation
	Similar            *SimilarAnswer
	APIURL             string
	SampleUsers        []string
	SampleItems        []string
}

// getUI serves the try-it page: forms for a user's recommendations and an
// item's similar items, answered on the server from the snapshot in
// service (the same code as /v1/recommend and /v1/similar), no scripts.
// A query the API would refuse shows the API's message with its status.
func (s *Server) getUI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := http.StatusOK
	defer func() {
		s.metrics.requests.WithLabelValues("ui", strconv.Itoa(code)).Inc()
		s.metrics.latency.WithLabelValues("ui").Observe(time.Since(start).Seconds())
	}()
	page := uiPage{K: DefaultK}
	snap := s.cur.Load()
	if snap == nil {
		code, page.Error = http.StatusServiceUnavailable, "no snapshot loaded yet: the page answers once one is in service"
		writeUI(w, code, page)
		return
	}
	m := snap.ix.model
	mf := m.Manifest
	page.Snapshot, page.Model, page.Job = snap.id, mf.Model, mf.Job
	if !mf.Created.IsZero() {
		page.Created = mf.Created.UTC().Format(time.RFC3339)
	}
	page.Rank, page.Users, page.Items, page.Implicit, page.HasSeen = m.Rank, len(m.UserIDs), len(m.ItemIDs), mf.Implicit, m.HasSeen()
	page.SampleUsers = m.UserIDs[:min(uiSamples, len(m.UserIDs))]
	for _, sc := range snap.ix.Popular(uiSamples, Filter{}) {
		page.SampleItems = append(page.SampleItems, m.ItemIDs[sc.Item])
	}

	err := func() error {
		q, err := query(r, "user", "item", "k", "exclude_seen")
		if err != nil {
			return err
		}
		page.User, page.Item = q.Get("user"), q.Get("item")
		if page.K, err = s.parseK(q.Get("k")); err != nil {
			page.K = DefaultK
			return err
		}
		page.ExcludeSeen = q.Get("exclude_seen") != ""
		if page.User != "" {
			fl := filters{k: page.K, excludeSeen: page.ExcludeSeen}
			rec, err := recommendUser(snap, page.User, fl)
			if err != nil {
				return err
			}
			rec.Snapshot = snap.id
			page.Recommend = &rec
			v := url.Values{"user": {page.User}, "k": {strconv.Itoa(page.K)}}
			if page.ExcludeSeen {
				v.Set("exclude_seen", "true")
			}
			page.APIURL = "/v1/recommend?" + v.Encode()
		}
		if page.Item != "" {
			i, ok := m.Item(page.Item)
			if !ok {
				return notFound{"item " + strconv.Quote(page.Item) + " is not in snapshot " + snap.id}
			}
			page.Similar = &SimilarAnswer{Item: page.Item, Items: items(m, snap.ix.Similar(i, page.K)), Snapshot: snap.id}
			if page.APIURL == "" {
				page.APIURL = "/v1/similar?" + url.Values{"item": {page.Item}, "k": {strconv.Itoa(page.K)}}.Encode()
			}
		}
		return nil
	}()
	var br badRequest
	var nf notFound
	switch {
	case err == nil:
	case errors.As(err, &br):
		code, page.Error = http.StatusBadRequest, br.msg
	case errors.As(err, &nf):
		code, page.Error = http.StatusNotFound, nf.msg
	default:
		code, page.Error = http.StatusInternalServerError, err.Error()
	}
	if page.Recommend != nil && page.Recommend.Fallback == FallbackPopular {
		s.metrics.fallbacks.WithLabelValues("ui").Inc()
	}
	writeUI(w, code, page)
}

func writeUI(w http.ResponseWriter, code int, page uiPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	// An error here is the client going away mid-page: nothing to tell it.
	_ = uiTemplate.Execute(w, page)
}

var uiTemplate = template.Must(template.New("ui").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<title>cofactor serve{{if .Snapshot}} — {{.Snapshot}}{{end}}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 60em; }
form { display: inline-block; vertical-align: top; margin: 0 2em 1em 0; padding: 0.8em 1em; border: 1px solid #ddd; }
label { display: block; margin: 0.3em 0; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; text-align: left; }
td.score { text-align: right; font-variant-numeric: tabular-nums; }
.error { color: #b22; font-weight: bold; }
.note { color: #a66f00; }
small, .muted { color: #666; }
</style>
</head>
<body>
<h1>cofactor serve</h1>
{{if .Snapshot}}<p id="snapshot">Snapshot in service: <b>{{.Snapshot}}</b> (model <b>{{.Model}}</b>{{if .Job}}, job {{.Job}}{{end}}{{if .Created}}, created {{.Created}}{{end}}):
rank {{.Rank}}, {{.Users}} users × {{.Items}} items, {{if .Implicit}}implicit{{else}}explicit{{end}}.</p>{{end}}
{{if .Error}}<p id="error" class="error">{{.Error}}</p>{{end}}
{{if .Snapshot}}
<form id="recommend-form" method="get" action="/ui">
<b>Recommendations for a user</b>
<label>user ID <input name="user" value="{{.User}}" required="required"/></label>
<label>how many <input name="k" type="number" min="1" value="{{.K}}"/></label>
{{if .HasSeen}}<label><input name="exclude_seen" type="checkbox" value="true"{{if .ExcludeSeen}} checked="checked"{{end}}/> leave out the items the user trained on</label>{{end}}
<button type="submit">Recommend</button>
<p class="muted">Try {{range $i, $u := .SampleUsers}}{{if $i}}, {{end}}<a class="sample-user" href="/ui?user={{$u}}">{{$u}}</a>{{end}}</p>
</form>
<form id="similar-form" method="get" action="/ui">
<b>Items similar to an item</b>
<label>item ID <input name="item" value="{{.Item}}" required="required"/></label>
<label>how many <input name="k" type="number" min="1" value="{{.K}}"/></label>
<button type="submit">Find similar</button>
<p class="muted">Try the most rated: {{range $i, $it := .SampleItems}}{{if $i}}, {{end}}<a class="sample-item" href="/ui?item={{$it}}">{{$it}}</a>{{end}}</p>
</form>
{{end}}
{{with .Recommend}}
<h2>Top {{len .Items}} for user {{.User}}</h2>
{{if .Fallback}}<p id="fallback" class="note">User {{.User}} is not in the snapshot: these are the most rated items, scored by their number of training ratings.</p>{{end}}
<table id="recommendations">
<tr><th>#</th><th>item</th><th>score</th><th></th></tr>
{{range $i, $e := .Items}}<tr><td>{{inc $i}}</td><td class="item">{{$e.Item}}</td><td class="score">{{printf "%.4f" $e.Score}}</td><td><a href="/ui?item={{$e.Item}}">similar</a></td></tr>
{{end}}</table>
{{end}}
{{with .Similar}}
<h2>{{len .Items}} items most similar to {{.Item}}</h2>
<table id="similar">
<tr><th>#</th><th>item</th><th>cosine</th></tr>
{{range $i, $e := .Items}}<tr><td>{{inc $i}}</td><td class="item"><a href="/ui?item={{$e.Item}}">{{$e.Item}}</a></td><td class="score">{{printf "%.4f" $e.Score}}</td></tr>
{{end}}</table>
{{end}}
{{if .APIURL}}<p class="muted">The same answer as JSON: <a id="api-link" href="{{.APIURL}}">{{.APIURL}}</a></p>{{end}}
<p class="muted">API: GET /v1/recommend?user=ID&amp;k=10 · POST /v1/recommend · GET /v1/similar?item=ID&amp;k=10 · <a href="/healthz">/healthz</a> · <a href="/metrics">/metrics</a></p>
</body>
</html>
`))
