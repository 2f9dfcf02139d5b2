package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/transport"
)

// memNet is an in-memory [Transport] for the package's tests: one network
// that every worker and the test itself use as their endpoint. Messages
// go to every subscriber of their subject, each subscriber handling its
// messages one at a time on a goroutine of its own, as NATS core delivers
// them; requests are retried as transport.Request retries them; blobs live
// in maps. Snapshot stores are opened without a connection, so only
// directory stores work.
//
// It keeps NATS's rules that the worker relies on: a message over the
// max payload is refused, a request nobody listens to fails with "no
// responders" (and is retried), only the first reply counts, and data is
// copied on the way so no two endpoints share a buffer.
type memNet struct {
	maxPayload int

	mu     sync.Mutex
	subs   map[string][]*memSub
	blobs  map[string]map[string][]byte // bucket → name → data
	closed bool
}

// defaultMaxPayload is the NATS server's default max_payload.
const defaultMaxPayload = 1 << 20

// newMemNet returns a network closed when the test ends; maxPayload 0
// means NATS's default.
func newMemNet(t testing.TB, maxPayload int) *memNet {
	if maxPayload == 0 {
		maxPayload = defaultMaxPayload
	}
	n := &memNet{maxPayload: maxPayload, subs: map[string][]*memSub{}, blobs: map[string]map[string][]byte{}}
	t.Cleanup(n.close)
	return n
}

// close stops every subscription and waits for their goroutines.
func (n *memNet) close() {
	n.mu.Lock()
	n.closed = true
	var all []*memSub
	for _, subs := range n.subs {
		all = append(all, subs...)
	}
	n.subs = map[string][]*memSub{}
	n.mu.Unlock()
	for _, s := range all {
		s.stop()
	}
}

// memMsg is a message queued for a subscriber.
type memMsg struct {
	data  []byte
	reply func([]byte) error
}

// memSub is one subscription: a queue drained by one goroutine.
type memSub struct {
	h       Handler
	mu      sync.Mutex
	queue   []memMsg
	wake    chan struct{} // a message was queued
	quit    chan struct{}
	done    chan struct{}
	stopped sync.Once
}

func (s *memSub) run() {
	defer close(s.done)
	for {
		select {
		case <-s.quit:
			return
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			m := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			select {
			case <-s.quit:
				return
			default:
			}
			s.h(m.data, m.reply)
		}
	}
}

func (s *memSub) push(m memMsg) {
	s.mu.Lock()
	s.queue = append(s.queue, m)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *memSub) stop() {
	s.stopped.Do(func() { close(s.quit) })
	<-s.done
}

var errMemClosed = errors.New("memnet: closed")

// deliver queues data for every subscriber of subject and reports how
// many there were.
func (n *memNet) deliver(subject string, data []byte, reply func([]byte) error) (int, error) {
	if len(data) > n.maxPayload {
		return 0, nats.ErrMaxPayload
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return 0, errMemClosed
	}
	count := 0
	for pattern, subs := range n.subs {
		if !subjectMatches(pattern, subject) {
			continue
		}
		for _, s := range subs {
			s.push(memMsg{data: append([]byte(nil), data...), reply: reply})
		}
		count += len(subs)
	}
	return count, nil
}

// subjectMatches reports whether subject matches pattern, whose "*"
// tokens match any one token (as a NATS subscription's do; ">" is not
// needed by the tests).
func subjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	if len(p) != len(s) {
		return false
	}
	for i := range p {
		if p[i] != "*" && p[i] != s[i] {
			return false
		}
	}
	return true
}

func noReply([]byte) error { return nil }

func (n *memNet) Publish(subject string, data []byte) error {
	_, err := n.deliver(subject, data, noReply)
	return err
}

func (n *memNet) Subscribe(subject string, h Handler) (func(), error) {
	s := &memSub{h: h, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, errMemClosed
	}
	n.subs[subject] = append(n.subs[subject], s)
	n.mu.Unlock()
	go s.run()
	return func() {
		n.mu.Lock()
		subs := n.subs[subject]
		for i, x := range subs {
			if x == s {
				n.subs[subject] = append(subs[:i:i], subs[i+1:]...)
				break
			}
		}
		n.mu.Unlock()
		// Not s.stop(): a handler may stop its own subscription.
		s.stopped.Do(func() { close(s.quit) })
	}, nil
}

// attempt sends one request and waits for the first reply until ctx ends.
func (n *memNet) attempt(ctx context.Context, subject string, data []byte) ([]byte, error) {
	replies := make(chan []byte, 1)
	reply := func(b []byte) error {
		if len(b) > n.maxPayload {
			return nats.ErrMaxPayload
		}
		n.mu.Lock()
		closed := n.closed
		n.mu.Unlock()
		if closed {
			return fmt.Errorf("%w: %w", ErrClosed, errMemClosed)
		}
		select {
		case replies <- append([]byte(nil), b...):
		default: // not the first reply: dropped, as NATS drops it
		}
		return nil
	}
	subs, err := n.deliver(subject, data, reply)
	if err != nil {
		return nil, err
	}
	if subs == 0 {
		return nil, nats.ErrNoResponders
	}
	select {
	case b := <-replies:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Request follows transport.Request's policy (timeouts, pauses doubling
// up to transport.MaxBackoff, attempts, errors).
func (n *memNet) Request(ctx context.Context, subject string, data []byte, p transport.RetryPolicy) ([]byte, error) {
	timeout, backoff, attempts := p.Timeout, p.Backoff, p.Attempts
	if timeout <= 0 {
		timeout = transport.DefaultRequestTimeout
	}
	if backoff <= 0 {
		backoff = transport.DefaultBackoff
	}
	if attempts < 0 {
		attempts = 1
	}
	for a := 1; ; a++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		b, err := n.attempt(actx, subject, data)
		cancel()
		if err == nil {
			return b, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("memnet: request on %s: %w", subject, err)
		}
		if attempts > 0 && a >= attempts {
			return nil, fmt.Errorf("%w: %s: %d attempts, last: %w", transport.ErrUnreachable, subject, a, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		if backoff < transport.MaxBackoff {
			backoff = min(2*backoff, transport.MaxBackoff)
		}
	}
}

func (n *memNet) MaxPayload() int { return n.maxPayload }

func (n *memNet) OpenBlobs(_ context.Context, bucket string) (Blobs, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.blobs[bucket] == nil {
		n.blobs[bucket] = map[string][]byte{}
	}
	return &memBlobs{n: n, bucket: bucket}, nil
}

func (n *memNet) OpenSnapshots(ctx context.Context, uri string) (*checkpoint.Repo, error) {
	u, err := checkpoint.ParseStoreURI(uri)
	if err != nil {
		return nil, err
	}
	return checkpoint.OpenStore(ctx, u, checkpoint.OpenOptions{})
}

// memBlobs is one bucket of a memNet.
type memBlobs struct {
	n      *memNet
	bucket string
}

func (b *memBlobs) Put(_ context.Context, name string, data []byte) error {
	b.n.mu.Lock()
	defer b.n.mu.Unlock()
	b.n.blobs[b.bucket][name] = append([]byte(nil), data...)
	return nil
}

func (b *memBlobs) Get(_ context.Context, name string, maxBytes int64) ([]byte, error) {
	b.n.mu.Lock()
	defer b.n.mu.Unlock()
	data, ok := b.n.blobs[b.bucket][name]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: %s: %q", transport.ErrNotFound, b.bucket, name)
	case int64(len(data)) > maxBytes:
		return nil, fmt.Errorf("%w: %s: %q is %d bytes, limit %d", transport.ErrTooLarge, b.bucket, name, len(data), maxBytes)
	}
	return append([]byte(nil), data...), nil
}
