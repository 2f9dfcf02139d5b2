package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cofactor-ml/cofactor/checkpoint"
)

// FallbackPopular marks an answer the model could not personalise: the
// most rated items, for a user the snapshot lacks or who rated nothing it
// holds.
const FallbackPopular = "popular"

// ScoredItem is one item of an answer. An explained answer
// (explain=true) adds the training items that contributed most to the
// score and the remainder, which add up to Score.
type ScoredItem struct {
	Item          string             `json:"item"`
	Score         float32            `json:"score"`
	Contributions []ContributionItem `json:"contributions,omitempty"`
	Remainder     *float32           `json:"remainder,omitempty"`
}

// ContributionItem is one training item's share of a score.
type ContributionItem struct {
	Item         string  `json:"item"`
	Contribution float32 `json:"contribution"`
}

// ScoredUser is one user of a similar-users answer.
type ScoredUser struct {
	User  string  `json:"user"`
	Score float32 `json:"score"`
}

// SimilarUsersAnswer is the answer of GET /v1/similar_users.
type SimilarUsersAnswer struct {
	User     string       `json:"user"`
	Users    []ScoredUser `json:"users"`
	Snapshot string       `json:"snapshot"`
}

// Recommendation is the answer for one user (GET /v1/recommend, one entry
// of a batch). Fallback is "popular" when the user is not in the snapshot:
// the items are then the most rated ones, scored by their rating counts.
type Recommendation struct {
	User     string       `json:"user"`
	Items    []ScoredItem `json:"items"`
	Fallback string       `json:"fallback,omitempty"`
	Snapshot string       `json:"snapshot,omitempty"`
}

// BatchAnswer is the answer to a POST with "users".
type BatchAnswer struct {
	Results  []Recommendation `json:"results"`
	Snapshot string           `json:"snapshot"`
}

// FoldInAnswer is the answer to a POST with "ratings".
type FoldInAnswer struct {
	Items        []ScoredItem `json:"items"`
	UnknownItems int          `json:"unknown_items"`
	Fallback     string       `json:"fallback,omitempty"`
	Snapshot     string       `json:"snapshot"`
}

// SimilarAnswer is the answer of GET /v1/similar.
type SimilarAnswer struct {
	Item     string       `json:"item"`
	Items    []ScoredItem `json:"items"`
	Snapshot string       `json:"snapshot"`
}

// RecommendRequest is the body of POST /v1/recommend: exactly one of
// User, Users and Ratings, and optionally k and filters.
type RecommendRequest struct {
	User    *string          `json:"user,omitempty"`
	Users   *[]string        `json:"users,omitempty"`
	Ratings *[]RatingRequest `json:"ratings,omitempty"`
	K       *int             `json:"k,omitempty"`
	// ExcludeSeen drops a known user's training items, or a folded-in
	// user's rated items.
	ExcludeSeen bool      `json:"exclude_seen,omitempty"`
	Exclude     []string  `json:"exclude,omitempty"`
	Restrict    *[]string `json:"restrict,omitempty"`
}

// RatingRequest is one rating of a user to fold in.
type RatingRequest struct {
	Item   string   `json:"item"`
	Rating *float64 `json:"rating"`
}

// errorAnswer is the body of every error status.
type errorAnswer struct {
	Error string `json:"error"`
}

// badRequest is an input error: 400 with its message.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func badf(format string, a ...any) error { return badRequest{fmt.Sprintf(format, a...)} }

// tooLarge is a 413: a body over MaxBodyBytes.
type tooLarge struct{ msg string }

func (e tooLarge) Error() string { return e.msg }

// notFound is a 404 with its message.
type notFound struct{ msg string }

func (e notFound) Error() string { return e.msg }

// endpoint answers a request from one snapshot with a value to encode as
// JSON (status 200) or an error (badRequest, tooLarge, notFound, or 500).
type endpoint func(r *http.Request, snap *snapshot) (any, error)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/recommend", s.instrument("recommend", s.getRecommend))
	mux.Handle("POST /v1/recommend", s.instrument("recommend_post", s.postRecommend))
	mux.Handle("GET /v1/similar", s.instrument("similar", s.getSimilar))
	mux.Handle("GET /v1/similar_users", s.instrument("similar_users", s.getSimilarUsers))
	mux.Handle("GET /healthz", s.instrument("healthz", nil))
	mux.HandleFunc("GET /ui", s.getUI)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{Registry: s.metrics.reg}))
	// Everything else: a JSON error like the endpoints' own.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			// A browser pointed at the server finds the try-it page.
			http.Redirect(w, r, "/ui", http.StatusFound)
			return
		}
		allow := map[string]string{"/v1/recommend": "GET, POST", "/v1/similar": "GET", "/v1/similar_users": "GET", "/healthz": "GET", "/metrics": "GET", "/ui": "GET"}[r.URL.Path]
		if allow == "" {
			writeJSON(w, http.StatusNotFound, errorAnswer{fmt.Sprintf("no endpoint %s (see /v1/recommend, /v1/similar, /v1/similar_users, /healthz, /metrics, /ui)", r.URL.Path)})
			return
		}
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorAnswer{fmt.Sprintf("%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, allow)})
	})
	return mux
}

// instrument reads the snapshot in service once, runs h on it, writes the
// answer and records the request's metrics. A nil h is the health check.
func (s *Server) instrument(name string, h endpoint) http.Handler {
	latency := s.metrics.latency.WithLabelValues(name)
	fallbacks := s.metrics.fallbacks.WithLabelValues(name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		snap := s.cur.Load()
		var code int
		var body any
		switch {
		case snap == nil:
			code, body = http.StatusServiceUnavailable, errorAnswer{"no snapshot loaded yet"}
		case h == nil:
			m := snap.ix.model
			code, body = http.StatusOK, map[string]any{"status": "ok", "snapshot": snap.id, "users": len(m.UserIDs), "items": len(m.ItemIDs)}
		default:
			v, err := h(r, snap)
			var br badRequest
			var nf notFound
			var tl tooLarge
			switch {
			case err == nil:
				code, body = http.StatusOK, v
				if n := countFallbacks(v); n > 0 {
					fallbacks.Add(float64(n))
				}
			case errors.As(err, &tl):
				code, body = http.StatusRequestEntityTooLarge, errorAnswer{tl.msg}
			case errors.As(err, &br):
				code, body = http.StatusBadRequest, errorAnswer{br.msg}
			case errors.As(err, &nf):
				code, body = http.StatusNotFound, errorAnswer{nf.msg}
			default:
				s.log.Error("request failed", "endpoint", name, "url", r.URL.String(), "err", err)
				code, body = http.StatusInternalServerError, errorAnswer{err.Error()}
			}
		}
		writeJSON(w, code, body)
		s.metrics.requests.WithLabelValues(name, strconv.Itoa(code)).Inc()
		latency.Observe(time.Since(start).Seconds())
	})
}

// countFallbacks counts the users of an answer who got the popular items
// instead of personal ones.
func countFallbacks(v any) int {
	n := 0
	switch a := v.(type) {
	case Recommendation:
		if a.Fallback != "" {
			n++
		}
	case BatchAnswer:
		for _, r := range a.Results {
			if r.Fallback != "" {
				n++
			}
		}
	case FoldInAnswer:
		if a.Fallback != "" {
			n++
		}
	}
	return n
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(errorAnswer{"encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// query checks a GET request's parameters: only those allowed, each at
// most once.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badf("query: %v", err)
	}
	for name, vals := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			return nil, badf("unknown parameter %q (allowed: %s)", name, strings.Join(allowed, ", "))
		}
		if len(vals) > 1 {
			return nil, badf("parameter %q given %d times", name, len(vals))
		}
	}
	return q, nil
}

// parseK reads k ("" means DefaultK).
func (s *Server) parseK(v string) (int, error) {
	if v == "" {
		return DefaultK, nil
	}
	k, err := strconv.Atoi(v)
	if err != nil || k < 1 || k > s.maxK {
		return 0, badf("k %q: want an integer from 1 to %d", v, s.maxK)
	}
	return k, nil
}

func (s *Server) checkK(k *int) (int, error) {
	if k == nil {
		return DefaultK, nil
	}
	if *k < 1 || *k > s.maxK {
		return 0, badf("k %d: want an integer from 1 to %d", *k, s.maxK)
	}
	return *k, nil
}

// itemRows maps item IDs to rows. IDs the snapshot lacks are left out: an
// item it does not hold can be neither excluded nor recommended, and
// callers' catalogues run ahead of or behind snapshots.
func itemRows(m *checkpoint.Model, ids []string) []int32 {
	rows := make([]int32, 0, len(ids))
	for _, id := range ids {
		if i, ok := m.Item(id); ok {
			rows = append(rows, i)
		}
	}
	return rows
}

// splitIDs splits a comma-separated list, dropping empty entries.
func splitIDs(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func items(m *checkpoint.Model, sc []Scored) []ScoredItem {
	out := make([]ScoredItem, len(sc))
	for j, e := range sc {
		out[j] = ScoredItem{Item: m.ItemIDs[e.Item], Score: e.Score}
	}
	return out
}

// filters is what a request asks besides its users.
type filters struct {
	k           int
	excludeSeen bool
	f           Filter
	explain     int // explain with this many top contributions (0: do not explain)
}

// DefaultExplainTop is how many contributions an explained item lists
// when the request does not say.
const DefaultExplainTop = 5

// explained turns explanations into answer items.
func explained(m *checkpoint.Model, ex []Explained) []ScoredItem {
	out := make([]ScoredItem, len(ex))
	for j, e := range ex {
		rem := e.Remainder
		out[j] = ScoredItem{Item: m.ItemIDs[e.Item], Score: e.Score, Remainder: &rem, Contributions: make([]ContributionItem, len(e.Contributions))}
		for c, con := range e.Contributions {
			out[j].Contributions[c] = ContributionItem{Item: m.ItemIDs[con.Item], Contribution: con.Contribution}
		}
	}
	return out
}

// recommendUser answers one user ID from the snapshot: the user's
// recommendations, or the popular items when the snapshot lacks them.
func recommendUser(snap *snapshot, user string, fl filters) (Recommendation, error) {
	m := snap.ix.model
	u, ok := m.User(user)
	if !ok {
		return Recommendation{User: user, Items: items(m, snap.ix.Popular(fl.k, fl.f)), Fallback: FallbackPopular}, nil
	}
	if fl.excludeSeen && !m.HasSeen() {
		return Recommendation{}, badf("exclude_seen: snapshot %s holds no training items (it is not a job's final snapshot)", snap.id)
	}
	f := fl.f
	f.ExcludeSeen = fl.excludeSeen
	if fl.explain > 0 {
		ex, err := snap.ix.Explain(u, fl.k, fl.explain, f)
		if errors.Is(err, ErrNoRatings) {
			return Recommendation{}, badf("explain: snapshot %s holds no training ratings (it is not a job's final snapshot, or predates them)", snap.id)
		}
		if err != nil {
			return Recommendation{}, err
		}
		return Recommendation{User: user, Items: explained(m, ex)}, nil
	}
	return Recommendation{User: user, Items: items(m, snap.ix.RecommendUser(u, fl.k, f))}, nil
}

// GET /v1/recommend?user=U&k=10[&exclude_seen=true][&exclude=I1,I2][&restrict=I3,I4]
func (s *Server) getRecommend(r *http.Request, snap *snapshot) (any, error) {
	q, err := query(r, "user", "k", "exclude_seen", "exclude", "restrict", "explain", "explain_top")
	if err != nil {
		return nil, err
	}
	user := q.Get("user")
	if user == "" {
		return nil, badf("user: missing (GET /v1/recommend?user=ID&k=10)")
	}
	var fl filters
	if fl.k, err = s.parseK(q.Get("k")); err != nil {
		return nil, err
	}
	if v := q.Get("exclude_seen"); v != "" {
		if fl.excludeSeen, err = strconv.ParseBool(v); err != nil {
			return nil, badf("exclude_seen %q: want true or false", v)
		}
	}
	if v := q.Get("explain"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, badf("explain %q: want true or false (or 1, 0)", v)
		}
		if on {
			fl.explain = DefaultExplainTop
		}
	}
	if v := q.Get("explain_top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > s.maxK {
			return nil, badf("explain_top %q: want an integer from 1 to %d", v, s.maxK)
		}
		if fl.explain == 0 {
			return nil, badf("explain_top goes with explain=true")
		}
		fl.explain = n
	}
	m := snap.ix.model
	fl.f.Exclude = itemRows(m, splitIDs(q.Get("exclude")))
	if q.Has("restrict") {
		ids := splitIDs(q.Get("restrict"))
		if len(ids) == 0 {
			return nil, badf("restrict: no item IDs (give restrict=I1,I2 or leave it out)")
		}
		fl.f.Restrict = itemRows(m, ids)
	}
	rec, err := recommendUser(snap, user, fl)
	if err != nil {
		return nil, err
	}
	rec.Snapshot = snap.id
	return rec, nil
}

// POST /v1/recommend
func (s *Server) postRecommend(r *http.Request, snap *snapshot) (any, error) {
	var req RecommendRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	given := 0
	for _, set := range []bool{req.User != nil, req.Users != nil, req.Ratings != nil} {
		if set {
			given++
		}
	}
	if given != 1 {
		return nil, badf(`give exactly one of "user", "users" or "ratings"`)
	}
	var fl filters
	var err error
	if fl.k, err = s.checkK(req.K); err != nil {
		return nil, err
	}
	fl.excludeSeen = req.ExcludeSeen
	m := snap.ix.model
	for j, id := range req.Exclude {
		if id == "" {
			return nil, badf("exclude[%d]: empty item ID", j)
		}
	}
	fl.f.Exclude = itemRows(m, req.Exclude)
	if req.Restrict != nil {
		for j, id := range *req.Restrict {
			if id == "" {
				return nil, badf("restrict[%d]: empty item ID", j)
			}
		}
		fl.f.Restrict = itemRows(m, *req.Restrict)
	}
	switch {
	case req.User != nil:
		if *req.User == "" {
			return nil, badf("user: empty ID")
		}
		rec, err := recommendUser(snap, *req.User, fl)
		if err != nil {
			return nil, err
		}
		rec.Snapshot = snap.id
		return rec, nil
	case req.Users != nil:
		users := *req.Users
		if len(users) == 0 || len(users) > MaxBatchUsers {
			return nil, badf("users: %d IDs; give 1 to %d", len(users), MaxBatchUsers)
		}
		if len(users)*fl.k > MaxBatchResults {
			return nil, badf("users × k: %d × %d = %d items; at most %d in one answer (ask for fewer users or a smaller k)", len(users), fl.k, len(users)*fl.k, MaxBatchResults)
		}
		ans := BatchAnswer{Results: make([]Recommendation, len(users)), Snapshot: snap.id}
		for j, u := range users {
			if u == "" {
				return nil, badf("users[%d]: empty ID", j)
			}
			if ans.Results[j], err = recommendUser(snap, u, fl); err != nil {
				return nil, err
			}
		}
		return ans, nil
	}
	return s.foldIn(snap, *req.Ratings, fl)
}

// foldIn answers a user the snapshot has never seen from their ratings.
func (s *Server) foldIn(snap *snapshot, in []RatingRequest, fl filters) (any, error) {
	m := snap.ix.model
	ratings := make([]Rating, 0, len(in))
	unknown := 0
	for j, r := range in {
		if r.Item == "" {
			return nil, badf("ratings[%d]: empty item ID", j)
		}
		if r.Rating == nil {
			return nil, badf("ratings[%d]: rating missing (give {\"item\": ID, \"rating\": NUMBER})", j)
		}
		v := float32(*r.Rating)
		if math.IsInf(float64(v), 0) || math.IsNaN(float64(v)) {
			return nil, badf("ratings[%d]: rating %g is out of range", j, *r.Rating)
		}
		i, ok := m.Item(r.Item)
		if !ok {
			unknown++
			continue
		}
		ratings = append(ratings, Rating{Item: i, Value: v})
	}
	ans := FoldInAnswer{UnknownItems: unknown, Snapshot: snap.id}
	if len(ratings) == 0 {
		ans.Items, ans.Fallback = items(m, snap.ix.Popular(fl.k, fl.f)), FallbackPopular
		return ans, nil
	}
	x, err := snap.ix.FoldIn(ratings)
	if errors.Is(err, ErrRatings) {
		return nil, badf("ratings: %v", err)
	}
	if err != nil {
		return nil, err
	}
	f := fl.f
	if fl.excludeSeen {
		f.Exclude = slices.Clip(f.Exclude)
		for _, r := range ratings {
			f.Exclude = append(f.Exclude, r.Item)
		}
	}
	ans.Items = items(m, snap.ix.Recommend(x, fl.k, f))
	return ans, nil
}

// decodeBody reads one JSON object of at most MaxBodyBytes, refusing
// unknown fields and trailing data.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("more than one JSON value")
			var tooBig *http.MaxBytesError
			if errors.As(terr, &tooBig) {
				err = terr
			}
		}
	}
	var tooBig *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
	case errors.As(err, &tooBig):
		return tooLarge{fmt.Sprintf("body: larger than %d bytes", MaxBodyBytes)}
	case errors.Is(err, io.EOF):
		return badf("body: empty; want a JSON object")
	case errors.As(err, &syn):
		return badf("body: invalid JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		return badf("body: field %q: %s is not a %s", typ.Field, typ.Value, typ.Type)
	default:
		return badf("body: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// GET /v1/similar_users?user=U&k=10
func (s *Server) getSimilarUsers(r *http.Request, snap *snapshot) (any, error) {
	q, err := query(r, "user", "k")
	if err != nil {
		return nil, err
	}
	id := q.Get("user")
	if id == "" {
		return nil, badf("user: missing (GET /v1/similar_users?user=ID&k=10)")
	}
	k, err := s.parseK(q.Get("k"))
	if err != nil {
		return nil, err
	}
	m := snap.ix.model
	u, ok := m.User(id)
	if !ok {
		return nil, notFound{fmt.Sprintf("user %q is not in snapshot %s", id, snap.id)}
	}
	sim := snap.ix.SimilarUsers(u, k)
	ans := SimilarUsersAnswer{User: id, Users: make([]ScoredUser, len(sim)), Snapshot: snap.id}
	for j, e := range sim {
		ans.Users[j] = ScoredUser{User: m.UserIDs[e.Item], Score: e.Score}
	}
	return ans, nil
}

// GET /v1/similar?item=I&k=10
func (s *Server) getSimilar(r *http.Request, snap *snapshot) (any, error) {
	q, err := query(r, "item", "k")
	if err != nil {
		return nil, err
	}
	id := q.Get("item")
	if id == "" {
		return nil, badf("item: missing (GET /v1/similar?item=ID&k=10)")
	}
	k, err := s.parseK(q.Get("k"))
	if err != nil {
		return nil, err
	}
	m := snap.ix.model
	i, ok := m.Item(id)
	if !ok {
		return nil, notFound{fmt.Sprintf("item %q is not in snapshot %s", id, snap.id)}
	}
	return SimilarAnswer{Item: id, Items: items(m, snap.ix.Similar(i, k)), Snapshot: snap.id}, nil
}
