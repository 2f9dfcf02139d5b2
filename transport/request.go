package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// ErrUnreachable is returned by [Request] when every attempt timed out or
// found no responder. It wraps the last attempt's error.
var ErrUnreachable = errors.New("transport: unreachable")

// Defaults of [RetryPolicy] fields left zero, and the longest pause.
const (
	DefaultRequestTimeout = 5 * time.Second
	DefaultAttempts       = 5
	DefaultBackoff        = 50 * time.Millisecond
	MaxBackoff            = 2 * time.Second
)

// RetryPolicy says how [Request] retries.
type RetryPolicy struct {
	// Timeout bounds each attempt; 0 means DefaultRequestTimeout.
	Timeout time.Duration
	// Attempts is the total number of attempts; 0 means retry until the
	// context ends (give the context a deadline then). A negative value
	// means 1.
	Attempts int
	// Backoff is the first pause between attempts; 0 means DefaultBackoff.
	// Each further pause doubles, up to MaxBackoff (a first pause above
	// MaxBackoff stays as it is).
	Backoff time.Duration
}

// DefaultRetry returns the policy used unless a caller needs another: 5 s
// per attempt, 5 attempts, pauses of 50 ms doubling up to 2 s.
func DefaultRetry() RetryPolicy {
	return RetryPolicy{Timeout: DefaultRequestTimeout, Attempts: DefaultAttempts, Backoff: DefaultBackoff}
}

// Request sends data to subject and waits for one reply. An attempt that
// times out or finds no responder (nats.ErrNoResponders: nobody subscribes
// yet, say while a worker restarts) is retried after a pause, until the
// policy's attempts run out — then the error wraps [ErrUnreachable] and the
// last attempt's error — or ctx ends — then it is ctx.Err(). Any other error
// (connection closed, payload over the server's max_payload, bad subject)
// is returned at once.
//
// A retried request may be delivered more than once (the first attempt may
// have arrived and only its reply been lost or late): every handler behind
// a request subject must be idempotent. A late reply to an earlier attempt
// is never returned for a later one.
func Request(ctx context.Context, nc *nats.Conn, subject string, data []byte, p RetryPolicy) (*nats.Msg, error) {
	timeout, backoff := p.Timeout, p.Backoff
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	if backoff <= 0 {
		backoff = DefaultBackoff
	}
	attempts := p.Attempts
	if attempts < 0 {
		attempts = 1
	}
	var last error
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		msg, err := nc.RequestWithContext(actx, subject, data)
		cancel()
		if err == nil {
			return msg, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !retryable(err) {
			return nil, fmt.Errorf("transport: request on %s: %w", subject, err)
		}
		last = err
		if attempts > 0 && n >= attempts {
			return nil, fmt.Errorf("%w: %s: %d attempts, last: %w", ErrUnreachable, subject, n, last)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		if backoff < MaxBackoff {
			backoff = min(2*backoff, MaxBackoff)
		}
	}
}

func retryable(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded)
}
