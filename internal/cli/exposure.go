package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// ErrExposed is wrapped by CheckExposure's refusal: a daemon would listen
// beyond loopback with a link left open.
var ErrExposed = errors.New("listening beyond loopback without TLS and a token")

// Exposure is one address a daemon listens on, and what it lacks to be
// safe there: the flags that would secure it and are unset. An empty
// Missing means the listener is secured.
type Exposure struct {
	Flag    string   // the flag naming the address: "--http-addr"
	Addr    string   // host:port as given
	Missing []string // unset flags that secure it: "--http-tls-cert", "--admin-token-file"
}

// lookupTimeout bounds resolving a listener's host name: a name that does
// not resolve in time counts as reachable from outside.
const lookupTimeout = 2 * time.Second

// CheckExposure is the daemons' protected mode (like Redis's): a
// coordinator or `cofactor serve` listening on an address other hosts can
// reach, with TLS or tokens missing on that listener, refuses to start
// with a usage error (exit 2) that says which listener, what it lacks and
// that --insecure overrides. Loopback listeners may be open: only the
// machine's own users reach them. With insecure the open listeners are
// logged at WARN instead and nil is returned.
func CheckExposure(ctx context.Context, insecure bool, log *slog.Logger, listeners ...Exposure) error {
	var open []string
	for _, l := range listeners {
		if len(l.Missing) == 0 || Loopback(ctx, l.Addr) {
			continue
		}
		open = append(open, fmt.Sprintf("%s %s without %s", l.Flag, l.Addr, strings.Join(l.Missing, ", ")))
	}
	if len(open) == 0 {
		return nil
	}
	if insecure {
		if log != nil {
			for _, o := range open {
				log.Warn("--insecure: listening beyond loopback unprotected", "listener", o)
			}
		}
		return nil
	}
	return Usage(fmt.Errorf("refusing to start, %w: %s; anyone who can reach it can use it. Secure it (`cofactor security init DIR` writes the CA, certificates, NATS credentials and tokens; docs/security.md), listen on 127.0.0.1, or pass --insecure to run it open anyway",
		ErrExposed, strings.Join(open, "; ")))
}

// Loopback reports whether every address addr (host:port, or a bare
// host) listens on is a loopback one: 127.0.0.0/8, ::1, "localhost", or
// a name that resolves to loopback addresses only. An empty host (":8080")
// is every interface, and a name that does not resolve counts as
// reachable: the answer errs towards refusing.
func Loopback(ctx context.Context, addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return false
		}
	}
	return true
}

// Missing lists the flags among pairs (flag, value) whose value is empty.
func Missing(pairs ...string) []string {
	var out []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			out = append(out, pairs[i])
		}
	}
	return out
}
