// Package httpauth guards cofactor's HTTP APIs (the coordinators' and
// cofactor serve's): bearer tokens with two roles, admin and read, and the
// TLS configurations of servers and clients.
//
// A request carries its token as "Authorization: Bearer TOKEN" (the
// scheme in any case, RFC 7235). Routes a browser opens (the status page,
// guarded by [Tokens.WrapBrowser]) also take it as the password of HTTP
// Basic authentication (any user name), which is what a browser sends
// when it prompts; every other route refuses Basic credentials. An admin
// token is also a read token. Tokens are compared in constant time; they
// are never logged or echoed in an error.
//
// With no tokens configured every route is open, as before security
// existed: the all-in-one mode and tests need no setup.
package httpauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"strings"
)

// EnvToken supplies a client's token when no --token-file is given.
const EnvToken = "COFACTOR_TOKEN"

// Role is what a route needs.
type Role int

// The roles, weakest first.
const (
	// Public routes need no token (liveness probes).
	Public Role = iota
	// Read routes: status, jobs, snapshots — what serving layers need.
	Read
	// Admin routes change the cluster: submit, cancel, membership,
	// schedules, drain.
	Admin
)

func (r Role) String() string {
	switch r {
	case Public:
		return "public"
	case Read:
		return "read"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Tokens are the accepted tokens of each role.
type Tokens struct {
	admin, read [][32]byte
}

// Errors of NewTokens.
var (
	// ErrEmptyToken: an empty string given as a token.
	ErrEmptyToken = errors.New("httpauth: empty token")
	// ErrShortToken: a token too short to resist guessing.
	ErrShortToken = errors.New("httpauth: token too short")
)

// MinTokenLen is the shortest token accepted: 16 bytes is 128 bits when
// the token is random hex or base64 of at least that much entropy.
const MinTokenLen = 16

// NewTokens returns the tokens of each role; nil or empty lists are
// allowed (no tokens at all means no authentication).
func NewTokens(admin, read []string) (*Tokens, error) {
	t := &Tokens{}
	for _, in := range []struct {
		list []string
		dst  *[][32]byte
		name string
	}{{admin, &t.admin, "admin"}, {read, &t.read, "read"}} {
		for i, s := range in.list {
			switch {
			case s == "":
				return nil, fmt.Errorf("%w: %s token %d", ErrEmptyToken, in.name, i+1)
			case len(s) < MinTokenLen:
				return nil, fmt.Errorf("%w: %s token %d has %d characters, at least %d needed", ErrShortToken, in.name, i+1, len(s), MinTokenLen)
			}
			*in.dst = append(*in.dst, sha256.Sum256([]byte(s)))
		}
	}
	return t, nil
}

// Enabled reports whether any token is configured.
func (t *Tokens) Enabled() bool { return t != nil && len(t.admin)+len(t.read) > 0 }

// roleOf returns the role a token grants (Public when none).
func (t *Tokens) roleOf(token string) Role {
	h := sha256.Sum256([]byte(token))
	role := Public
	// Compare with every token, so the time taken says nothing about
	// which one matched.
	for _, a := range t.read {
		if subtle.ConstantTimeCompare(h[:], a[:]) == 1 && role < Read {
			role = Read
		}
	}
	for _, a := range t.admin {
		if subtle.ConstantTimeCompare(h[:], a[:]) == 1 {
			role = Admin
		}
	}
	return role
}

// TokenOf returns the bearer token a request carries ("" for none).
func TokenOf(r *http.Request) string {
	scheme, v, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(v)
}

// browserTokenOf is TokenOf, or the password of Basic authentication.
func browserTokenOf(r *http.Request) string {
	if tok := TokenOf(r); tok != "" {
		return tok
	}
	if _, pw, ok := r.BasicAuth(); ok {
		return pw
	}
	return ""
}

// Check decides a request needing role need: 0 when allowed, else the
// HTTP status (401 or 403) and a message saying what to fix. Only a
// bearer token counts.
func (t *Tokens) Check(r *http.Request, need Role) (int, string) {
	return t.check(r, need, TokenOf)
}

// CheckBrowser is Check for a page a browser opened (WrapBrowser's
// rule: a Basic password counts too), e.g. to show a button only to
// those who may press it.
func (t *Tokens) CheckBrowser(r *http.Request, need Role) (int, string) {
	return t.check(r, need, browserTokenOf)
}

func (t *Tokens) check(r *http.Request, need Role, tokenOf func(*http.Request) string) (int, string) {
	if need == Public || !t.Enabled() {
		return 0, ""
	}
	tok := tokenOf(r)
	if tok == "" {
		msg := fmt.Sprintf("%s %s needs a %s token: send \"Authorization: Bearer TOKEN\" (cofactor: --token-file FILE or $%s)", r.Method, r.URL.Path, need, EnvToken)
		if _, _, basic := r.BasicAuth(); basic {
			msg += "; Basic authentication is accepted only by the status page"
		}
		return http.StatusUnauthorized, msg
	}
	got := t.roleOf(tok)
	switch {
	case got == Public:
		return http.StatusUnauthorized, fmt.Sprintf("%s %s: the token is not accepted here; send a %s token this server was started with", r.Method, r.URL.Path, need)
	case got < need:
		return http.StatusForbidden, fmt.Sprintf("%s %s needs the %s role and the token has the %s role; use an %s token", r.Method, r.URL.Path, need, got, need)
	}
	return 0, ""
}

// Wrap serves h only to requests whose bearer token has role need.
// Refusals are JSON {"error": "..."}; a 401 carries WWW-Authenticate.
func (t *Tokens) Wrap(need Role, h http.Handler) http.Handler {
	return t.wrap(need, h, false)
}

// WrapBrowser is Wrap for a page a browser opens: the token may also come
// as the password of Basic authentication, and a 401 offers Basic so
// that the browser asks for it.
func (t *Tokens) WrapBrowser(need Role, h http.Handler) http.Handler {
	return t.wrap(need, h, true)
}

func (t *Tokens) wrap(need Role, h http.Handler, browser bool) http.Handler {
	if need == Public || !t.Enabled() {
		return h
	}
	tokenOf := TokenOf
	if browser {
		tokenOf = browserTokenOf
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, msg := t.check(r, need, tokenOf)
		if status == 0 {
			h.ServeHTTP(w, r)
			return
		}
		if status == http.StatusUnauthorized {
			w.Header().Add("WWW-Authenticate", `Bearer realm="cofactor"`)
			if browser {
				w.Header().Add("WWW-Authenticate", `Basic realm="cofactor (password: token)"`)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
	})
}

// ReadTokenFiles reads the tokens of each file (one a line, see
// transport.ReadSecretLines' rules: blank lines and # comments skipped).
func ReadTokenFiles(paths ...string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		lines, err := readLines(p)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	return out, nil
}

// ClientToken returns the token a client sends: the first line of file,
// or $COFACTOR_TOKEN when file is "".
func ClientToken(file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv(EnvToken)), nil
	}
	lines, err := readLines(file)
	if err != nil {
		return "", err
	}
	return lines[0], nil
}

const maxTokenFile = 64 << 10

func readLines(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	if st.Size() > maxTokenFile {
		return nil, fmt.Errorf("token file %s: %d bytes, at most %d", path, st.Size(), maxTokenFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("token file %s holds no token", path)
	}
	return out, nil
}

// ServerTLS loads a certificate and key for an HTTPS server (nil, nil
// when both are ""). Rotating the pair takes a restart.
func ServerTLS(certFile, keyFile string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("HTTPS needs both --http-tls-cert and --http-tls-key")
	}
	if certFile == "" {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("HTTPS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// CertPool reads PEM certificates from file into a new pool.
func CertPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", file)
	}
	return p, nil
}

// ClientTLS returns the TLS configuration of an HTTPS client trusting the
// CA in caFile (nil: the system roots).
func ClientTLS(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pool, err := CertPool(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// ServerErrorLog returns an http.Server ErrorLog writing to l: a failed
// TLS handshake (a port scanner, a client without the CA, plain HTTP on
// the HTTPS port) at debug level, since anyone who can reach the port can
// cause one per connection; everything else at warn level.
func ServerErrorLog(l *slog.Logger) *log.Logger {
	return log.New(errorLogWriter{l}, "", 0)
}

type errorLogWriter struct{ l *slog.Logger }

func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.Contains(msg, "TLS handshake error") {
		level = slog.LevelDebug
	}
	w.l.Log(context.Background(), level, msg)
	return len(p), nil
}
