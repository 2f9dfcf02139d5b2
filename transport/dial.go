package transport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// DialRetryFor is how long [Dial] keeps retrying the first connection.
const DialRetryFor = 10 * time.Second

// dialRetryWait is the pause between first-connection attempts and the
// reconnect wait Dial sets.
const dialRetryWait = 250 * time.Millisecond

// Dial connects to the NATS server(s) at url (a comma-separated list is
// allowed) as client name, with defaults fit for long-running processes:
// reconnect forever (MaxReconnects(-1)) every 250 ms, and ping every 10 s
// so that a dead server is noticed within about 30 s. opts are applied
// after these defaults and override them.
//
// Dial returns only once connected: while the server refuses connections
// or cannot be reached it retries for up to DialRetryFor (10 s), then
// fails with the last error. Errors that retrying cannot fix
// (authorization, TLS, bad options) are returned at once.
func Dial(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	return dial(url, name, DialRetryFor, opts)
}

func dial(url, name string, retryFor time.Duration, opts []nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(dialRetryWait),
		nats.PingInterval(10 * time.Second),
	}, opts...)
	deadline := time.Now().Add(retryFor)
	for {
		nc, err := nats.Connect(url, all...)
		if err == nil {
			return nc, nil
		}
		if !dialRetryable(err) || time.Now().Add(dialRetryWait).After(deadline) {
			return nil, fmt.Errorf("transport: connect to %s: %w", url, err)
		}
		time.Sleep(dialRetryWait)
	}
}

func dialRetryable(err error) bool {
	var ne net.Error
	return errors.Is(err, nats.ErrNoServers) ||
		errors.As(err, &ne) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET)
}
