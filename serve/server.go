package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cofactor-ml/cofactor/checkpoint"
)

// Limits of the HTTP API.
const (
	// DefaultMaxK is the largest k a request may ask for, unless WithMaxK
	// says otherwise.
	DefaultMaxK = 1000
	// DefaultK is k when a request gives none.
	DefaultK = 10
	// MaxBodyBytes bounds a POST body (1 MiB).
	MaxBodyBytes = 1 << 20
	// MaxBatchUsers bounds the users of one batch request.
	MaxBatchUsers = 1000
	// MaxBatchResults bounds users × k of one batch request: the answer's
	// size (about 40 bytes an item) and the time it takes.
	MaxBatchResults = 100_000
)

// rewatchPause is how long Follow waits before watching again when a
// repository's watch ends on its own.
const rewatchPause = time.Second

// Server answers recommendation queries over HTTP from the snapshot in
// service, which Load or Follow replace at any time. Each request reads
// the snapshot once and answers from it alone: a swap never mixes two
// snapshots in one answer and never fails a request in flight (the old
// snapshot stays in memory until its last request is done).
type Server struct {
	log     *slog.Logger
	threads int
	maxK    int
	onSwap  func(SwapEvent)

	cur     atomic.Pointer[snapshot]
	loadMu  sync.Mutex // serialises swaps
	metrics *metrics
	handler http.Handler
}

// snapshot is a snapshot in service.
type snapshot struct {
	ix *Index
	id string
}

// SwapEvent describes one snapshot put in service.
type SwapEvent struct {
	// ID is the snapshot now in service; Previous the one it replaced
	// ("" for the first).
	ID, Previous string
	// At is when the snapshot began answering requests.
	At time.Time
	// Load is how long opening (Follow) and indexing it took.
	Load         time.Duration
	Users, Items int
}

// Option configures a Server.
type Option func(*Server) error

// WithLogger sets where the server logs (default: discarded).
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) error {
		if l == nil {
			return errors.New("serve: nil logger")
		}
		s.log = l
		return nil
	}
}

// WithThreads sets how many goroutines index a new snapshot (default: one
// per CPU).
func WithThreads(n int) Option {
	return func(s *Server) error {
		if n < 1 {
			return fmt.Errorf("serve: threads %d must be ≥ 1", n)
		}
		s.threads = n
		return nil
	}
}

// WithMaxK sets the largest k a request may ask for (default DefaultMaxK).
func WithMaxK(n int) Option {
	return func(s *Server) error {
		if n < 1 {
			return fmt.Errorf("serve: max k %d must be ≥ 1", n)
		}
		s.maxK = n
		return nil
	}
}

// WithSwapHook has f called after every swap, in the goroutine that made
// it (Load's caller, or Follow's), with the new snapshot already
// answering. f must return quickly: the next swap waits for it.
func WithSwapHook(f func(SwapEvent)) Option {
	return func(s *Server) error {
		s.onSwap = f
		return nil
	}
}

// New returns a server with no snapshot: it answers 503 until Load or
// Follow puts one in service.
func New(opts ...Option) (*Server, error) {
	s := &Server{
		log:     slog.New(slog.DiscardHandler),
		threads: runtime.GOMAXPROCS(0),
		maxK:    DefaultMaxK,
		metrics: newMetrics(),
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes()
	return s, nil
}

// Handler is the HTTP API: GET and POST /v1/recommend, GET /v1/similar,
// GET /healthz and GET /metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// Registry is the server's Prometheus registry (served on /metrics).
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// Snapshot returns the ID of the snapshot in service ("" before the
// first).
func (s *Server) Snapshot() string {
	if cur := s.cur.Load(); cur != nil {
		return cur.id
	}
	return ""
}

// Index returns the index of the snapshot in service and its ID (nil
// before the first).
func (s *Server) Index() (*Index, string) {
	if cur := s.cur.Load(); cur != nil {
		return cur.ix, cur.id
	}
	return nil, ""
}

// Load indexes m and puts it in service as snapshot id. Requests already
// running finish on the snapshot they started with. On error (a manifest
// whose hyper-parameters are invalid) the snapshot in service stays.
func (s *Server) Load(m *checkpoint.Model, id string) error {
	return s.load(m, id, time.Now())
}

func (s *Server) load(m *checkpoint.Model, id string, start time.Time) error {
	ix, err := NewIndex(m, s.threads)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	prev := s.cur.Swap(&snapshot{ix: ix, id: id})
	ev := SwapEvent{ID: id, At: time.Now(), Users: len(m.UserIDs), Items: len(m.ItemIDs)}
	ev.Load = ev.At.Sub(start)
	if prev != nil {
		ev.Previous = prev.id
	}
	s.metrics.swaps.Inc()
	s.metrics.info.Reset()
	s.metrics.info.WithLabelValues(id, m.Manifest.Model).Set(1)
	s.metrics.rows.WithLabelValues(checkpoint.SideUsers).Set(float64(ev.Users))
	s.metrics.rows.WithLabelValues(checkpoint.SideItems).Set(float64(ev.Items))
	s.log.Info("snapshot in service", "snapshot", id, "previous", ev.Previous, "users", ev.Users, "items", ev.Items,
		"rank", m.Rank, "load_seconds", ev.Load.Seconds())
	if s.onSwap != nil {
		s.onSwap(ev)
	}
	return nil
}

// Follow keeps the server on the newest published snapshot of model in
// repo: it watches the model's latest pointer (repo.Watch) and, for each
// new ID, opens the snapshot (checking every file's size and CRC) and
// swaps it in. A snapshot that fails to open is logged, counted
// (cofactor_serve_snapshot_load_failures_total) and skipped: the one in
// service stays until the pointer moves again. When the repository's
// watch ends on its own, Follow watches again after a pause. It returns
// nil once ctx ends, or the error of the first Watch call.
func (s *Server) Follow(ctx context.Context, repo *checkpoint.Repo, model string) error {
	ids, err := repo.Watch(ctx, model)
	if err != nil {
		return err
	}
	for {
		for id := range ids {
			if id == s.Snapshot() {
				continue
			}
			start := time.Now()
			m, err := repo.Open(ctx, id)
			if err == nil {
				err = s.load(m, id, start)
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.metrics.loadFailures.Inc()
				s.log.Error("published snapshot not loaded; keeping the one in service", "model", model,
					"snapshot", id, "in_service", s.Snapshot(), "err", err)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("the watch of the latest pointer ended; watching again", "model", model)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(rewatchPause):
			}
			if ids, err = repo.Watch(ctx, model); err == nil {
				break
			}
			s.log.Warn("watching the latest pointer", "model", model, "err", err)
		}
	}
}
