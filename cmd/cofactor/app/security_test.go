package app

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cofactor-ml/cofactor/internal/httpauth"
)

// TestServeAuth: with a read token, cofactor serve answers /healthz to
// anyone and every other route only with the token.
func TestServeAuth(t *testing.T) {
	const tok = "serve-read-token-0123456789"
	tokens, err := httpauth.NewTokens(nil, []string{tok})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := serveAuth(tokens, ok)
	cases := []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", http.StatusTeapot},
		{"/v1/recommend?user=1", "", http.StatusUnauthorized},
		{"/v1/recommend?user=1", "wrong-token-0123456789", http.StatusUnauthorized},
		{"/v1/recommend?user=1", tok, http.StatusTeapot},
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", tok, http.StatusTeapot},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", c.path, nil)
		if c.token != "" {
			r.Header.Set("Authorization", "Bearer "+c.token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s (token %q): %d, want %d: %s", c.path, c.token, w.Code, c.want, w.Body)
		}
	}
	// No tokens: open, as before.
	if got := serveAuth(&httpauth.Tokens{}, ok); got == nil {
		t.Fatal("nil handler")
	}
}
