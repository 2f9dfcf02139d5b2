package coordinator

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// fuzzRoutes are the API's routes that take input: each POST and DELETE.
// {} is replaced by the fuzzed path value.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/v1/jobs"},
	{"POST", "/v1/jobs/{}/cancel"},
	{"POST", "/v1/schedules"},
	{"DELETE", "/v1/schedules/{}"},
	{"POST", "/v1/schedules/{}/pause"},
	{"POST", "/v1/schedules/{}/resume"},
	{"POST", "/v1/workers/{}/drain"},
	{"POST", "/v1/workers/{}/undrain"},
	{"POST", "/v1/cluster/join"},
	{"POST", "/v1/cluster/remove"},
}

// FuzzHTTPBodies sends arbitrary bodies and path values to every route
// that takes input, on a single-node leader: a bad request is answered
// with a 4xx and a message saying what is wrong, never a 5xx or a panic.
func FuzzHTTPBodies(f *testing.F) {
	for i := range fuzzRoutes {
		f.Add(uint8(i), "j1", []byte(`{}`))
		f.Add(uint8(i), "", []byte(`{"spec":{"input":"r.csv","iterations":-1}}`))
	}
	f.Add(uint8(0), "x", []byte(`{"spec":{"input":"r.csv","rank":0}}`))
	f.Add(uint8(0), "x", []byte(`{"job_id":"../x","spec":{"input":"r.csv"}}`))
	f.Add(uint8(2), "x", []byte(`{"name":"s","cron":"* * *","spec":{"input":"r.csv"}}`))
	f.Add(uint8(8), "x", []byte(`{"id":"","raft_addr":"nowhere"}`))
	f.Add(uint8(9), "x", []byte(`{"id":"nobody"}`))
	f.Add(uint8(0), "x", []byte(`[1,2`))

	n := fuzzNode(f)
	h := n.api.handler()
	f.Fuzz(func(t *testing.T, route uint8, param string, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		// Requests that would really change the group are not sent: a
		// joined voter that never answers would cost the node its quorum.
		switch rt.path {
		case "/v1/cluster/join":
			var s ServerInfo
			if json.Unmarshal(body, &s) == nil && s.ID != "" {
				t.Skip()
			}
		case "/v1/cluster/remove":
			var r RemoveRequest
			if json.Unmarshal(body, &r) == nil && r.ID == n.cfg.ID {
				t.Skip()
			}
		}
		path := rt.path
		if i := bytes.Index([]byte(path), []byte("{}")); i >= 0 {
			path = path[:i] + url.PathEscape(param) + path[i+2:]
		}
		req := httptest.NewRequest(rt.method, "http://coordinator"+path, bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		res := w.Result()
		msg, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, path, body, res.StatusCode, msg)
		}
		if res.StatusCode >= 400 {
			var e APIError
			if err := json.Unmarshal(msg, &e); err != nil || e.Message == "" {
				t.Fatalf("%s %s %q: %d without a message: %q", rt.method, path, body, res.StatusCode, msg)
			}
		}
	})
}

// fuzzNode starts a single-node coordinator (its own raft group on an
// in-process NATS server) and waits until it leads.
func fuzzNode(f testing.TB) *Node {
	f.Helper()
	ns, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: f.TempDir(), NoListen: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(ns.Shutdown)
	nc, err := ns.Connect()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(nc.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := DefaultConfig()
	cfg.ID, cfg.DataDir, cfg.RaftAddr, cfg.HTTPAddr, cfg.Bootstrap = "c1", f.TempDir(), addr, "", true
	n, err := New(cfg, WithConn(nc), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		f.Fatal(err)
	}
	if err := n.Start(f.Context()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			f.Fatal("the node did not become leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// TestRouterErrorsAreJSON: a path no route takes, or a method a route does
// not, is answered in JSON like every other error, with the router's
// status.
func TestRouterErrorsAreJSON(t *testing.T) {
	h := fuzzNode(t).api.handler()
	for _, tc := range []struct {
		method, path string
		status       int
		msg          string
	}{
		{"POST", "/v1/schedules/%2F/pause", 404, "POST /v1/schedules/%2F/pause: not found"},
		{"GET", "/v1/nothing", 404, "GET /v1/nothing: not found"},
		{"DELETE", "/v1/jobs", 405, "DELETE /v1/jobs: method not allowed (allowed: GET, HEAD, POST)"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, "http://coordinator"+tc.path, nil))
		var e APIError
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != tc.status || e.Message != tc.msg {
			t.Errorf("%s %s: %d %q (%v), want %d %q", tc.method, tc.path, w.Code, w.Body.String(), err, tc.status, tc.msg)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, ct)
		}
	}
}
