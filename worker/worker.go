package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/transport"
)

// Config is a worker process's configuration.
type Config struct {
	// ID names the worker in the cluster ([A-Za-z0-9_-], 1..64 chars).
	ID string
	// NATSURL is the NATS server to connect to (ignored with WithConn).
	NATSURL string
	// NATSSecurity is how the worker authenticates to NATS (zero: a
	// plain connection). Ignored with WithConn.
	NATSSecurity transport.Security
	// Threads is how many goroutines solve a block's rows (0: all CPUs).
	Threads int
	// HeartbeatInterval is how often the worker announces itself.
	HeartbeatInterval time.Duration
	// Memory is the memory the worker offers for blocks, in bytes (0:
	// not stated). It is advertised in heartbeats.
	Memory int64
	// BlobBucket is the JetStream Object Store bucket of rating blocks.
	BlobBucket string
	// FetchParallel bounds the row requests a block has in flight.
	FetchParallel int
	// GatherBytes bounds the other side's rows a block without test
	// ratings (an item block) gathers at once: a larger block is solved
	// in groups of rows, each gathering only its own ratings' rows, and
	// its rows longer than als.SegmentRows ratings one segment at a time
	// (0: gather every block whole). Smaller groups hold less and
	// exchange more, as a row needed by two groups is sent twice.
	GatherBytes int64
	// Retry is the policy of row requests and reports.
	Retry transport.RetryPolicy
}

// DefaultConfig returns the defaults: a heartbeat a second, all CPUs,
// eight requests in flight.
func DefaultConfig() Config {
	return Config{
		HeartbeatInterval: time.Second,
		BlobBucket:        DefaultBlobBucket,
		FetchParallel:     8,
		GatherBytes:       DefaultGatherBytes,
		Retry:             transport.DefaultRetry(),
	}
}

// DefaultGatherBytes is the default Config.GatherBytes: whole gathers,
// the fewest rows exchanged. A bound trades traffic for memory
// (docs/scaling.md).
const DefaultGatherBytes = 0

// DefaultBlobBucket holds rating blocks and ID lists.
const DefaultBlobBucket = wire.BlockBucket

// ErrConfig is wrapped by Validate's errors.
var ErrConfig = errors.New("worker: invalid configuration")

// Validate checks c.
func (c Config) Validate() error {
	if err := transport.ValidID(c.ID); err != nil {
		return fmt.Errorf("%w: id: %w", ErrConfig, err)
	}
	switch {
	case c.Threads < 0:
		return fmt.Errorf("%w: threads %d must be ≥ 0", ErrConfig, c.Threads)
	case c.HeartbeatInterval <= 0:
		return fmt.Errorf("%w: heartbeat interval %v must be positive", ErrConfig, c.HeartbeatInterval)
	case c.Memory < 0:
		return fmt.Errorf("%w: memory %d must be ≥ 0", ErrConfig, c.Memory)
	case c.BlobBucket == "":
		return fmt.Errorf("%w: no blob bucket", ErrConfig)
	case c.GatherBytes < 0:
		return fmt.Errorf("%w: gather bytes %d must be ≥ 0", ErrConfig, c.GatherBytes)
	case c.FetchParallel < 1:
		return fmt.Errorf("%w: fetch parallelism %d must be ≥ 1", ErrConfig, c.FetchParallel)
	}
	if err := c.NATSSecurity.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Option configures a Worker.
type Option func(*Worker) error

// WithConn makes the worker use nc instead of dialling Config.NATSURL (the
// all-in-one mode passes an in-process connection). The worker does not
// close it.
func WithConn(nc *nats.Conn) Option {
	return func(w *Worker) error {
		w.tr = newNATSTransport(nc, w.cfg.NATSSecurity, clientName(w.cfg.ID))
		return nil
	}
}

// WithTransport makes the worker talk over tr instead of dialling
// Config.NATSURL. The worker does not close it.
func WithTransport(tr Transport) Option {
	return func(w *Worker) error { w.tr = tr; return nil }
}

// closeRepos closes the snapshot stores the jobs still held opened (a
// store on another NATS server owns a connection of its own).
func (w *Worker) closeRepos() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, js := range w.jobs {
		js.mu.Lock()
		if js.repo != nil {
			js.repo.Close()
			js.repo = nil
		}
		js.mu.Unlock()
	}
}

// clientName is the NATS client name of worker id's connections.
func clientName(id string) string { return "cofactor-worker-" + id }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(w *Worker) error { w.log = l; return nil }
}

// Worker is one worker process's runtime.
type Worker struct {
	cfg   Config
	tr    Transport
	log   *slog.Logger
	blobs Blobs

	mu   sync.Mutex
	jobs map[string]*jobState
	// dropped remembers the newest epoch of each dropped job, so that a
	// command still in flight at the drop cannot bring the job back.
	dropped      map[string]uint64
	droppedOrder []string // oldest first, at most maxDropped

	boot string // random per process; see wire.Heartbeat.Boot

	wg      sync.WaitGroup // command tasks and row handlers
	serving chan struct{}  // bounds concurrent row handlers
	metrics *metrics
	faults  faultHook // nil but in tests and the fault suite
}

// New checks cfg and returns a worker. Run starts it.
func New(cfg Config, opts ...Option) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.NATSSecurity.InboxPrefix == "" {
		// Replies to this worker (its requests, JetStream and Object Store
		// calls, and those of the snapshot stores it dials) arrive under
		// its own prefix, the only inbox its own NATS identity may read.
		cfg.NATSSecurity.InboxPrefix = transport.WorkerInboxPrefix(cfg.ID)
	}
	w := &Worker{cfg: cfg, log: slog.Default(), jobs: map[string]*jobState{}, dropped: map[string]uint64{}, metrics: newMetrics(cfg.ID)}
	for _, o := range opts {
		if err := o(w); err != nil {
			return nil, err
		}
	}
	w.log = w.log.With("worker", cfg.ID)
	if w.faults != nil {
		w.log.Warn("fault injection is on", "faults", fmt.Sprint(w.faults))
	}
	var b [8]byte
	rand.Read(b[:])
	w.boot = hex.EncodeToString(b[:])
	w.serving = make(chan struct{}, 4*max(runtime.GOMAXPROCS(0), 2))
	return w, nil
}

// ID is the worker's ID.
func (w *Worker) ID() string { return w.cfg.ID }

// Run connects, serves commands and row requests, and heartbeats until ctx
// ends. It returns nil after a clean stop.
func (w *Worker) Run(ctx context.Context) error {
	if w.tr == nil {
		opts, err := w.cfg.NATSSecurity.Options()
		if err != nil {
			return fmt.Errorf("worker %s: %w", w.cfg.ID, err)
		}
		nc, err := transport.Dial(w.cfg.NATSURL, clientName(w.cfg.ID), opts...)
		if err != nil {
			return fmt.Errorf("worker %s: %w", w.cfg.ID, err)
		}
		defer nc.Close()
		w.tr = newNATSTransport(nc, w.cfg.NATSSecurity, clientName(w.cfg.ID))
	}
	if w.faults != nil {
		w.tr = w.faults.wrap(w.tr)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var err error
	for {
		w.blobs, err = w.tr.OpenBlobs(ctx, w.cfg.BlobBucket)
		if err == nil {
			break
		}
		w.log.Warn("block store not available yet", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
	stopCmds, err := w.tr.Subscribe(transport.WorkerCmdSubject(w.cfg.ID), func(data []byte, reply func([]byte) error) {
		w.onCommand(ctx, data, reply)
	})
	if err != nil {
		return err
	}
	stopRows, err := w.tr.Subscribe(transport.WorkerRowsSubject(w.cfg.ID), w.onRowRequest)
	if err != nil {
		stopCmds()
		return err
	}
	w.log.Info("worker started", "threads", w.cfg.Threads)
	w.heartbeat()
	tick := time.NewTicker(w.cfg.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			stopCmds()
			stopRows()
			cancel()
			w.wg.Wait()
			w.closeRepos()
			w.log.Info("worker stopped")
			return nil
		case <-tick.C:
			w.heartbeat()
		}
	}
}

func (w *Worker) heartbeat() {
	b, _ := json.Marshal(wire.Heartbeat{Worker: w.cfg.ID, Boot: w.boot, CPUs: runtime.GOMAXPROCS(0), Memory: w.cfg.Memory, GatherBytes: w.cfg.GatherBytes, Time: time.Now().UTC()})
	if err := w.tr.Publish(transport.HeartbeatSubject(w.cfg.ID), b); err != nil {
		w.log.Warn("heartbeat not sent", "err", err)
	}
}

// onCommand acknowledges a command at once and runs it in the background:
// the leader learns the outcome from reports.
func (w *Worker) onCommand(ctx context.Context, data []byte, reply func([]byte) error) {
	var c wire.Command
	ack := wire.Ack{OK: true}
	if err := json.Unmarshal(data, &c); err != nil {
		ack = wire.Ack{Error: "malformed command: " + err.Error()}
	} else if err := w.accept(ctx, &c); err != nil {
		ack = wire.Ack{Error: err.Error()}
	}
	b, _ := json.Marshal(ack)
	reply(b)
}

// report sends r to the leader until one acknowledges it or ctx ends.
func (w *Worker) report(ctx context.Context, r wire.Report) {
	r.Worker = w.cfg.ID
	b, _ := json.Marshal(r)
	p := w.cfg.Retry
	p.Attempts = 0 // until acknowledged: a leader election may be under way
	for ctx.Err() == nil {
		answer, err := w.tr.Request(ctx, transport.ReportSubject(w.cfg.ID), b, p)
		if err != nil {
			continue
		}
		var ack wire.Ack
		if json.Unmarshal(answer, &ack) == nil && (ack.OK || ack.Error != "") {
			if !ack.OK {
				w.log.Info("report refused", "type", r.Type, "job", r.Job, "reason", ack.Error)
			}
			return
		}
	}
}
