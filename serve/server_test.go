package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
)

// testServer serves handModel as snapshot "s1".
func testServer(t *testing.T) (*Server, *httptest.Server, *checkpoint.Model) {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	m := handModel(t)
	if err := s.Load(m, "s1"); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts, m
}

// call sends a request and returns the status and the decoded JSON body.
func call(t *testing.T, ts *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: %d %q is not a JSON object: %v", method, path, resp.StatusCode, b, err)
	}
	return resp.StatusCode, v
}

// canon encodes v as JSON with the keys of objects sorted, for
// comparisons.
func canon(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	if b, err = json.Marshal(generic); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHTTPAnswers(t *testing.T) {
	t.Parallel()
	_, ts, _ := testServer(t)
	r := 1 / float32(1.4142135)
	rs, _ := json.Marshal(r)
	for _, tc := range []struct {
		name, method, path, body string
		want                     string
	}{
		{"GET a user", "GET", "/v1/recommend?user=u0&k=3", "",
			`{"items":[{"item":"i3","score":2},{"item":"i0","score":1},{"item":"i2","score":1}],"snapshot":"s1","user":"u0"}`},
		{"GET default k", "GET", "/v1/recommend?user=u1", "",
			`{"items":[{"item":"i1","score":1},{"item":"i2","score":1},{"item":"i0","score":0},{"item":"i3","score":0},{"item":"i4","score":0},{"item":"i5","score":0}],"snapshot":"s1","user":"u1"}`},
		{"GET filters", "GET", "/v1/recommend?user=u0&k=5&exclude_seen=true&exclude=i0,nope&restrict=i0,i1,i4,i3,zzz", "",
			`{"items":[{"item":"i4","score":1},{"item":"i1","score":0}],"snapshot":"s1","user":"u0"}`},
		{"GET unknown user: popular", "GET", "/v1/recommend?user=stranger&k=3&exclude=i1", "",
			`{"fallback":"popular","items":[{"item":"i4","score":9},{"item":"i0","score":5},{"item":"i2","score":5}],"snapshot":"s1","user":"stranger"}`},
		{"POST a user", "POST", "/v1/recommend", `{"user":"u0","k":2,"exclude_seen":true}`,
			`{"items":[{"item":"i0","score":1},{"item":"i4","score":1}],"snapshot":"s1","user":"u0"}`},
		{"POST restrict to nothing", "POST", "/v1/recommend", `{"user":"u0","restrict":[]}`,
			`{"items":[],"snapshot":"s1","user":"u0"}`},
		{"POST a batch", "POST", "/v1/recommend", `{"users":["u1","nobody","u0"],"k":1,"exclude":["i3"]}`,
			`{"results":[{"items":[{"item":"i1","score":1}],"user":"u1"},{"fallback":"popular","items":[{"item":"i1","score":9}],"user":"nobody"},{"items":[{"item":"i0","score":1}],"user":"u0"}],"snapshot":"s1"}`},
		{"POST no ratings: popular", "POST", "/v1/recommend", `{"ratings":[],"k":2}`,
			`{"fallback":"popular","items":[{"item":"i1","score":9},{"item":"i4","score":9}],"snapshot":"s1","unknown_items":0}`},
		{"POST only unknown items: popular", "POST", "/v1/recommend", `{"ratings":[{"item":"x","rating":3}],"k":1}`,
			`{"fallback":"popular","items":[{"item":"i1","score":9}],"snapshot":"s1","unknown_items":1}`},
		{"GET similar", "GET", "/v1/similar?item=i1&k=2", "",
			`{"item":"i1","items":[{"item":"i2","score":` + string(rs) + `},{"item":"i0","score":0}],"snapshot":"s1"}`},
		{"healthz", "GET", "/healthz", "", `{"items":6,"snapshot":"s1","status":"ok","users":3}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, v := call(t, ts, tc.method, tc.path, tc.body)
			if code != 200 {
				t.Fatalf("status %d: %v", code, v)
			}
			if got := canon(t, v); got != tc.want {
				t.Errorf("answer\n %s\nwant\n %s", got, tc.want)
			}
		})
	}
}

// A fold-in through HTTP answers like FoldIn + Recommend, excluding the
// rated items with exclude_seen, and counts the unknown items.
func TestHTTPFoldIn(t *testing.T) {
	t.Parallel()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	m := randomSpec(4, 10, 300, 8, false).model(t)
	if err := s.Load(m, "r1"); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	ratings := []Rating{{3, 4.5}, {17, 1}, {250, 3}}
	x, err := FoldIn(m, ratings, ModelConfig(m))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"ratings":[{"item":"i3","rating":4.5},{"item":"gone","rating":2},{"item":"i17","rating":1},{"item":"i250","rating":3}],"k":5,"exclude_seen":true}`
	code, v := call(t, ts, "POST", "/v1/recommend", body)
	if code != 200 {
		t.Fatalf("status %d: %v", code, v)
	}
	want := FoldInAnswer{Items: items(m, Recommend(m, x, 5, Filter{Exclude: []int32{3, 17, 250}})), UnknownItems: 1, Snapshot: "r1"}
	if got, w := canon(t, v), canon(t, want); got != w {
		t.Errorf("answer\n %s\nwant\n %s", got, w)
	}
}

func TestHTTPInputErrors(t *testing.T) {
	t.Parallel()
	_, ts, _ := testServer(t)
	big := `{"users":["` + strings.Repeat("x", MaxBodyBytes) + `"]}`
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string // a substring of "error"
	}{
		{"GET", "/v1/recommend", "", 400, "user: missing"},
		{"GET", "/v1/recommend?user=", "", 400, "user: missing"},
		{"GET", "/v1/recommend?user=u0&k=abc", "", 400, `k "abc": want an integer from 1 to 1000`},
		{"GET", "/v1/recommend?user=u0&k=0", "", 400, `k "0"`},
		{"GET", "/v1/recommend?user=u0&k=1001", "", 400, `k "1001"`},
		{"GET", "/v1/recommend?user=u0&exclude_seen=maybe", "", 400, `exclude_seen "maybe": want true or false`},
		{"GET", "/v1/recommend?user=u0&colour=red", "", 400, `unknown parameter "colour"`},
		{"GET", "/v1/recommend?user=u0&user=u1", "", 400, `parameter "user" given 2 times`},
		{"GET", "/v1/recommend?user=u0&restrict=", "", 400, "restrict: no item IDs"},
		{"GET", "/v1/recommend?user=u0&k=%zz", "", 400, "query:"},
		{"POST", "/v1/recommend", "", 400, "body: empty"},
		{"POST", "/v1/recommend", `{"user":`, 400, "body:"},
		{"POST", "/v1/recommend", `{"user":"u0"`, 400, "body:"},
		{"POST", "/v1/recommend", `{"user":"u0"} {}`, 400, "more than one JSON value"},
		{"POST", "/v1/recommend", `{"user":"u0"}}`, 400, "body:"},
		{"POST", "/v1/recommend", `{"user":"u0","colour":"red"}`, 400, `unknown field "colour"`},
		{"POST", "/v1/recommend", `{"user":"u0","k":"ten"}`, 400, `field "k": string is not a int`},
		{"POST", "/v1/recommend", `[1,2]`, 400, "body:"},
		{"POST", "/v1/recommend", `{}`, 400, `give exactly one of "user", "users" or "ratings"`},
		{"POST", "/v1/recommend", `{"user":"u0","users":["u1"]}`, 400, "give exactly one"},
		{"POST", "/v1/recommend", `{"user":""}`, 400, "user: empty ID"},
		{"POST", "/v1/recommend", `{"user":"u0","k":0}`, 400, "k 0: want an integer from 1 to 1000"},
		{"POST", "/v1/recommend", `{"users":[]}`, 400, "users: 0 IDs; give 1 to 1000"},
		{"POST", "/v1/recommend", `{"users":["u0",""]}`, 400, "users[1]: empty ID"},
		{"POST", "/v1/recommend", `{"user":"u0","exclude":[""]}`, 400, "exclude[0]: empty item ID"},
		{"POST", "/v1/recommend", `{"user":"u0","restrict":["i1",""]}`, 400, "restrict[1]: empty item ID"},
		{"POST", "/v1/recommend", `{"ratings":[{"item":"i1"}]}`, 400, "ratings[0]: rating missing"},
		{"POST", "/v1/recommend", `{"ratings":[{"item":"","rating":1}]}`, 400, "ratings[0]: empty item ID"},
		{"POST", "/v1/recommend", `{"ratings":[{"item":"i1","rating":1},{"item":"i2","rating":1e39}]}`, 400, "ratings[1]: rating 1e+39 is out of range"},
		{"POST", "/v1/recommend", `{"ratings":[{"item":"i1","rating":1e999}]}`, 400, "body:"},
		{"POST", "/v1/recommend", big, 413, "body: larger than 1048576 bytes"},
		{"GET", "/v1/similar", "", 400, "item: missing"},
		{"GET", "/v1/similar?item=i1&k=-3", "", 400, `k "-3"`},
		{"GET", "/v1/similar?item=i1&user=u0", "", 400, `unknown parameter "user"`},
		{"GET", "/v1/similar?item=nope", "", 404, `item "nope" is not in snapshot s1`},
		{"GET", "/v2/recommend", "", 404, "no endpoint /v2/recommend"},
		{"DELETE", "/v1/recommend", "", 405, "DELETE /v1/recommend: method not allowed (allowed: GET, POST)"},
		{"POST", "/v1/similar", "{}", 405, "method not allowed (allowed: GET)"},
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.body[:min(len(tc.body), 40)], func(t *testing.T) {
			code, v := call(t, ts, tc.method, tc.path, tc.body)
			msg, _ := v["error"].(string)
			if code != tc.code || !strings.Contains(msg, tc.want) || len(v) != 1 {
				t.Errorf("%d %v, want %d with an error containing %q", code, v, tc.code, tc.want)
			}
		})
	}
}

func TestHealthzBeforeAndAfterLoad(t *testing.T) {
	t.Parallel()
	var swaps []SwapEvent
	s, err := New(WithSwapHook(func(e SwapEvent) { swaps = append(swaps, e) }))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for _, path := range []string{"/healthz", "/v1/recommend?user=u0", "/v1/similar?item=i0"} {
		if code, v := call(t, ts, "GET", path, ""); code != 503 || v["error"] != "no snapshot loaded yet" {
			t.Errorf("%s before a load: %d %v, want 503", path, code, v)
		}
	}
	if err := s.Load(handModel(t), "first"); err != nil {
		t.Fatal(err)
	}
	if code, v := call(t, ts, "GET", "/healthz", ""); code != 200 || v["snapshot"] != "first" {
		t.Errorf("after a load: %d %v, want 200 naming the snapshot", code, v)
	}
	if err := s.Load(handModel(t), "second"); err != nil {
		t.Fatal(err)
	}
	if len(swaps) != 2 || swaps[0].ID != "first" || swaps[0].Previous != "" || swaps[1].ID != "second" || swaps[1].Previous != "first" || swaps[1].Items != 6 {
		t.Errorf("swap events %+v", swaps)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	_, ts, _ := testServer(t)
	call(t, ts, "GET", "/v1/recommend?user=u0", "")
	call(t, ts, "GET", "/v1/recommend?k=x", "")
	// Fallbacks: one user the snapshot lacks, two of a batch, one fold-in
	// of unknown items.
	call(t, ts, "GET", "/v1/recommend?user=stranger", "")
	call(t, ts, "POST", "/v1/recommend", `{"users":["u0","x","y"]}`)
	call(t, ts, "POST", "/v1/recommend", `{"ratings":[{"item":"nope","rating":1}]}`)
	resp, err := ts.Client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`cofactor_serve_requests_total{code="200",endpoint="recommend"} 2`,
		`cofactor_serve_requests_total{code="400",endpoint="recommend"} 1`,
		`cofactor_serve_request_seconds_count{endpoint="recommend"} 3`,
		`cofactor_serve_fallback_total{endpoint="recommend"} 1`,
		`cofactor_serve_fallback_total{endpoint="recommend_post"} 3`,
		`cofactor_serve_snapshot_swaps_total 1`,
		`cofactor_serve_snapshot_info{model="default",snapshot="s1"} 1`,
		`cofactor_serve_model_rows{side="items"} 6`,
		`cofactor_serve_model_rows{side="users"} 3`,
		`cofactor_serve_snapshot_load_failures_total 0`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []Option{WithThreads(0), WithMaxK(0), WithLogger(nil)} {
		if _, err := New(o); err == nil {
			t.Error("a bad option was accepted")
		}
	}
	s, err := New(WithMaxK(2), WithThreads(1), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(handModel(t), "s"); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if code, v := call(t, ts, "GET", "/v1/recommend?user=u0&k=3", ""); code != 400 || !strings.Contains(v["error"].(string), "from 1 to 2") {
		t.Errorf("k above WithMaxK: %d %v", code, v)
	}
}

// Follow skips a published snapshot that fails its checks and keeps the
// one in service; the next good one is swapped in.
func TestFollowSkipsBadSnapshot(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := t.TempDir()
	store := checkpoint.DirStore{Root: root}
	repo := checkpoint.NewRepo(store, store)
	var mu sync.Mutex
	var seen []string
	swapped := make(chan string, 10)
	s, err := New(WithSwapHook(func(e SwapEvent) {
		mu.Lock()
		seen = append(seen, e.ID)
		mu.Unlock()
		swapped <- e.ID
	}))
	if err != nil {
		t.Fatal(err)
	}
	good := randomSpec(1, 5, 20, 4, false)
	good.write(t, repo, "good")
	bad := randomSpec(2, 5, 20, 4, false)
	bad.write(t, repo, "bad")
	// Damage one factor file: same size, one byte flipped.
	name := "bad/" + checkpoint.FactorFileName(checkpoint.SideItems, 0)
	data, err := store.Get(ctx, name, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := store.Put(ctx, name, data); err != nil {
		t.Fatal(err)
	}
	next := randomSpec(3, 5, 20, 4, false)
	next.write(t, repo, "next")

	done := make(chan error, 1)
	go func() { done <- s.Follow(ctx, repo, "default") }()
	wait := func(id string) {
		t.Helper()
		select {
		case got := <-swapped:
			if got != id {
				t.Fatalf("swapped to %s, want %s", got, id)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no swap to %s", id)
		}
	}
	if err := repo.Publish(ctx, "default", "good"); err != nil {
		t.Fatal(err)
	}
	wait("good")
	if err := repo.Publish(ctx, "default", "bad"); err != nil {
		t.Fatal(err)
	}
	// The bad one is skipped: wait for the failure to be counted.
	deadline := time.Now().Add(5 * time.Second)
	for counter(t, s, "cofactor_serve_snapshot_load_failures_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the bad snapshot was not reported")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.Snapshot() != "good" {
		t.Errorf("in service %q after a bad publish, want good", s.Snapshot())
	}
	if err := repo.Publish(ctx, "default", "next"); err != nil {
		t.Fatal(err)
	}
	wait("next")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Follow returned %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []string{"good", "next"}) {
		t.Errorf("swaps %v", seen)
	}
}

// counter reads a counter of the server's registry.
func counter(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
