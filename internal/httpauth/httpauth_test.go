package httpauth

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	adminTok = "admin-token-0123456789"
	readTok  = "read-token-0123456789"
)

func TestWrap(t *testing.T) {
	tokens, err := NewTokens([]string{adminTok}, []string{readTok})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	api, page := tokens.Wrap(Read, ok), tokens.WrapBrowser(Read, ok)
	admin := tokens.Wrap(Admin, ok)
	cases := []struct {
		name    string
		h       http.Handler
		browser bool
		header  string // Authorization
		basicPW string // Basic password, when not ""
		want    int
	}{
		{"bearer", api, false, "Bearer " + readTok, "", 204},
		{"bearer lower case", api, false, "bearer " + readTok, "", 204},
		{"bearer upper case", api, false, "BEARER " + readTok, "", 204},
		{"bearer mixed case, extra spaces", api, false, "  BeArEr   " + readTok + " ", "", 204},
		{"no token", api, false, "", "", 401},
		{"unknown token", api, false, "Bearer " + strings.Repeat("x", 20), "", 401},
		{"scheme without token", api, false, "Bearer", "", 401},
		{"other scheme", api, false, "Token " + readTok, "", 401},
		{"basic on an API route", api, false, "", readTok, 401},
		{"basic on the page", page, true, "", readTok, 204},
		{"bearer on the page", page, true, "bearer " + readTok, "", 204},
		{"read token on an admin route", admin, false, "Bearer " + readTok, "", 403},
		{"admin token on an admin route", admin, false, "Bearer " + adminTok, "", 204},
		{"basic admin on an admin route", admin, false, "", adminTok, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x", nil)
			if c.header != "" {
				r.Header.Set("Authorization", c.header)
			}
			if c.basicPW != "" {
				r.SetBasicAuth("me", c.basicPW)
			}
			w := httptest.NewRecorder()
			c.h.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d: %s", w.Code, c.want, w.Body)
			}
			if w.Code == 401 {
				auth := strings.Join(w.Header().Values("WWW-Authenticate"), "; ")
				if !strings.Contains(auth, "Bearer") {
					t.Errorf("WWW-Authenticate %q offers no Bearer", auth)
				}
				if strings.Contains(auth, "Basic") != c.browser {
					t.Errorf("WWW-Authenticate %q: Basic offered on the wrong route", auth)
				}
				if strings.Contains(w.Body.String(), readTok) || strings.Contains(w.Body.String(), adminTok) {
					t.Errorf("refusal echoes a token: %s", w.Body)
				}
			}
			if c.basicPW != "" && !c.browser && !strings.Contains(w.Body.String(), "Basic authentication is accepted only by the status page") {
				t.Errorf("refusal of Basic credentials does not say why: %s", w.Body)
			}
		})
	}
}

func TestNoTokensOpen(t *testing.T) {
	tokens, err := NewTokens(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := tokens.Wrap(Admin, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/x", nil))
	if w.Code != 204 {
		t.Fatalf("open server refused: %d", w.Code)
	}
}

// TestServerErrorLogTLSHandshake: failed TLS handshakes (plain HTTP on
// the HTTPS port) log at debug level, not one WARN line each.
func TestServerErrorLogTLSHandshake(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.Config.ErrorLog = ServerErrorLog(logger)
	srv.StartTLS()
	defer srv.Close()
	const n = 5
	for range n {
		resp, err := http.Get("http://" + srv.Listener.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(buf.String(), "TLS handshake error") < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := buf.String()
	if got := strings.Count(out, "level=DEBUG"); got < n {
		t.Fatalf("%d debug lines for %d failed handshakes:\n%s", got, n, out)
	}
	if strings.Contains(out, "level=WARN") {
		t.Fatalf("a failed handshake logged a warning:\n%s", out)
	}
	ServerErrorLog(logger).Print("http: something else")
	if !strings.Contains(buf.String(), "level=WARN msg=\"http: something else\"") {
		t.Fatalf("other server errors are not warnings:\n%s", buf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
