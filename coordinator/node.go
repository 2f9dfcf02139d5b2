package coordinator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/httpauth"
	"github.com/cofactor-ml/cofactor/internal/natsauth"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/transport"
)

// Config is a coordinator's configuration.
type Config struct {
	// ID names the coordinator in the raft group.
	ID string
	// DataDir holds the raft log, stable store and snapshots. Unused with
	// InMemory.
	DataDir string
	// RaftAddr is the host:port raft listens on and advertises.
	RaftAddr string
	// HTTPAddr is the host:port of the HTTP API ("" for none; port 0 picks
	// a free port, see Node.HTTPAddr).
	HTTPAddr string
	// NATSURL is the NATS server (ignored with WithConn).
	NATSURL string
	// Bootstrap makes this node the first member of a new group. It is
	// ignored when the data directory already holds raft state.
	Bootstrap bool
	// Join is the HTTP URL of a member to ask for membership.
	Join string
	// InMemory keeps raft entirely in memory with an in-memory transport:
	// a single-node group for the all-in-one mode. Nothing survives a
	// restart.
	InMemory bool
	// WorkerTimeout is how long a worker may stay silent before it is
	// declared lost and its blocks reassigned.
	WorkerTimeout time.Duration
	// ResendInterval is how often the leader repeats a command it awaits
	// reports for (a lost message costs at most this much).
	ResendInterval time.Duration
	// MaxStepFailures is how many runtime failures a job step may report
	// before the job fails.
	MaxStepFailures int
	// SnapshotThreshold is raft's: log entries between snapshots.
	SnapshotThreshold uint64
	// PhaseTimeout is how long a step may run before the job reports it
	// (naming the workers it waits for); 0 disables the report. A slow
	// worker is not a lost one: the job keeps waiting.
	PhaseTimeout time.Duration
	// RetainJobs is how many finished jobs the replicated state keeps
	// (with their logs), and RetainAge how long: the leader drops the
	// oldest beyond either by a committed command. Both must be positive.
	RetainJobs int
	RetainAge  time.Duration
	// ScheduleTick is how often the leader looks for due schedule slots.
	ScheduleTick time.Duration
	// Clock tells the time for schedules (nil: time.Now); tests use a fake.
	Clock func() time.Time

	// Replicas is how many copies a clustered JetStream keeps of every
	// bucket the cluster creates (blocks, snapshots, pointers, datasets):
	// 1 (the default) on a single NATS server, 3 on a NATS cluster of 3
	// or more (docs/runbook.md). The node refuses to start when the NATS
	// cluster has fewer JetStream servers.
	Replicas int

	// NATSSecurity is how the node authenticates to NATS (zero: a plain
	// connection). Ignored with WithConn.
	NATSSecurity transport.Security
	// RaftTLS, when set, runs raft over mutual TLS between coordinators
	// (see TLSStreamLayer); all three files are needed.
	RaftTLS TLSFiles
	// HTTPTLS: Cert and Key serve the API over HTTPS; CA is what this
	// node trusts when it calls other coordinators (forwarding writes,
	// --join, cluster status). Every member must then use HTTPS.
	HTTPTLS TLSFiles
	// AdminTokens and ReadTokens guard the API; none leaves it open. The
	// node uses the first admin token for its own calls to other members,
	// so all members need the same admin tokens.
	AdminTokens, ReadTokens []string
}

// DefaultConfig returns the defaults: workers lost after 5 s of silence,
// commands repeated every 2 s, a job failing after 5 failures of a step,
// finished jobs kept up to 1000 and 30 days.
func DefaultConfig() Config {
	return Config{
		WorkerTimeout:     5 * time.Second,
		ResendInterval:    2 * time.Second,
		MaxStepFailures:   5,
		SnapshotThreshold: 1024,
		ScheduleTick:      200 * time.Millisecond,
		PhaseTimeout:      10 * time.Minute,
		Replicas:          1,
		RetainJobs:        1000,
		RetainAge:         30 * 24 * time.Hour,
	}
}

// ErrConfig is wrapped by Validate's errors.
var ErrConfig = errors.New("coordinator: invalid configuration")

// Validate checks c.
func (c Config) Validate() error {
	if err := transport.ValidID(c.ID); err != nil {
		return fmt.Errorf("%w: id: %w", ErrConfig, err)
	}
	for _, check := range []func() error{c.validateRaft, c.validateLimits, c.validateSecurity} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validateRaft checks the raft membership settings.
func (c Config) validateRaft() error {
	switch {
	case !c.InMemory && c.DataDir == "":
		return fmt.Errorf("%w: no data directory", ErrConfig)
	case !c.InMemory && c.RaftAddr == "":
		return fmt.Errorf("%w: no raft address", ErrConfig)
	case c.Bootstrap && c.Join != "":
		return fmt.Errorf("%w: --bootstrap and --join exclude each other", ErrConfig)
	case c.InMemory && c.RaftTLS.Set():
		return fmt.Errorf("%w: %w", ErrConfig, errRaftTLS)
	}
	return nil
}

// validateLimits checks the timeouts, counts and retention.
func (c Config) validateLimits() error {
	switch {
	case c.WorkerTimeout <= 0 || c.ResendInterval <= 0:
		return fmt.Errorf("%w: timeouts must be positive", ErrConfig)
	case c.ScheduleTick <= 0:
		return fmt.Errorf("%w: schedule tick must be positive", ErrConfig)
	case c.RetainJobs < 1:
		return fmt.Errorf("%w: retain jobs %d must be ≥ 1", ErrConfig, c.RetainJobs)
	case c.RetainAge <= 0:
		return fmt.Errorf("%w: retain age %v must be positive", ErrConfig, c.RetainAge)
	case c.Replicas < 1 || c.Replicas > transport.MaxReplicas:
		return fmt.Errorf("%w: replicas %d not in 1..%d", ErrConfig, c.Replicas, transport.MaxReplicas)
	case c.MaxStepFailures < 1:
		return fmt.Errorf("%w: max step failures %d must be ≥ 1", ErrConfig, c.MaxStepFailures)
	}
	return nil
}

// validateSecurity checks TLS files and tokens.
func (c Config) validateSecurity() error {
	switch {
	case c.RaftTLS.Set() && (c.RaftTLS.Cert == "" || c.RaftTLS.Key == "" || c.RaftTLS.CA == ""):
		return fmt.Errorf("%w: raft TLS needs --raft-tls-cert, --raft-tls-key and --raft-tls-ca", ErrConfig)
	case (c.HTTPTLS.Cert == "") != (c.HTTPTLS.Key == ""):
		return fmt.Errorf("%w: HTTPS needs both --http-tls-cert and --http-tls-key", ErrConfig)
	}
	if err := c.NATSSecurity.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if len(c.ReadTokens) > 0 && len(c.AdminTokens) == 0 {
		return fmt.Errorf("%w: read tokens without an admin token would leave no one able to submit jobs; give an admin token too", ErrConfig)
	}
	if _, err := httpauth.NewTokens(c.AdminTokens, c.ReadTokens); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Option configures a Node.
type Option func(*Node) error

// WithConn makes the node use nc instead of dialling Config.NATSURL. The
// node does not close it.
func WithConn(nc *nats.Conn) Option { return func(n *Node) error { n.nc = nc; return nil } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(n *Node) error { n.log = l; return nil } }

// Node is one coordinator.
type Node struct {
	cfg     Config
	log     *slog.Logger
	nc      *nats.Conn
	ownConn bool
	fsm     *FSM
	raft    *raft.Raft
	closers []io.Closer

	httpLn  net.Listener
	httpSrv *http.Server

	heard    *liveness        // the workers' heartbeats
	reportCh chan wire.Report // reports for the leader's driver

	metrics *metrics
	blobs   *blobStore  // summaries and manifests the log names
	state   *replicated // proposing, and the queries of the replicated state
	api     *api        // the HTTP API and web UI
	members *members    // raft membership and leadership

	tokens        *httpauth.Tokens // nil or empty: the API is open
	httpTLS       *tls.Config      // the API's server side (nil: plain HTTP)
	peerTLS       *tls.Config      // trust for calls to other members
	peerTransport *http.Transport  // shared by every call to other members
	peerHTTP      *http.Client     // uses peerTransport

	reposMu sync.Mutex
	repos   map[string]*checkpoint.Repo // snapshot stores by URI

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// repo opens (once) the snapshot store a job's spec names, dialling
// another NATS server with the node's own credentials.
func (n *Node) repo(ctx context.Context, uri string) (*checkpoint.Repo, error) {
	n.reposMu.Lock()
	defer n.reposMu.Unlock()
	if r, ok := n.repos[uri]; ok {
		return r, nil
	}
	u, err := checkpoint.ParseStoreURI(uri)
	if err != nil {
		return nil, err
	}
	r, err := checkpoint.OpenStore(ctx, u, checkpoint.OpenOptions{Conn: n.nc, Security: n.cfg.NATSSecurity, Name: "cofactor-coordinator-" + n.cfg.ID})
	if err != nil {
		return nil, fmt.Errorf("opening the snapshot store %q: %w", uri, err)
	}
	if n.repos == nil {
		n.repos = map[string]*checkpoint.Repo{}
	}
	n.repos[uri] = r
	return r, nil
}

// New checks cfg and builds a node; Start runs it.
func New(cfg Config, opts ...Option) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, log: slog.Default(), fsm: NewFSM(),
		heard:    newLiveness(),
		reportCh: make(chan wire.Report, 1024),
	}
	for _, o := range opts {
		if err := o(n); err != nil {
			return nil, err
		}
	}
	n.log = n.log.With("coordinator", cfg.ID)
	if err := n.initSecurity(); err != nil {
		return nil, err
	}
	n.metrics = newMetrics(n)
	n.blobs = &blobStore{n: n}
	n.state = &replicated{fsm: n.fsm, metrics: n.metrics, clock: n.clock}
	n.api = &api{n: n}
	n.members = &members{n: n}
	return n, nil
}

// Start opens raft, the HTTP API and the NATS subscriptions, and returns;
// the node runs until Close. ctx bounds the start: when it ends first,
// Start stops and returns its error (the node is closed); cancelling it
// afterwards does not stop the node.
func (n *Node) Start(ctx context.Context) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	// ctx bounds starting; what runs afterwards lives until Close.
	startCtx := ctx
	ctx, n.cancel = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.nc == nil {
		opts, err := n.cfg.NATSSecurity.Options()
		if err != nil {
			return err
		}
		nc, err := transport.Dial(n.cfg.NATSURL, "cofactor-coordinator-"+n.cfg.ID, opts...)
		if err != nil {
			return err
		}
		n.nc, n.ownConn = nc, true
	}
	if n.cfg.Replicas > 1 {
		// Refuse at once a NATS cluster too small for the copies asked
		// for, rather than warn forever in the background.
		if err := natsauth.EnsureBuckets(startCtx, n.nc, n.cfg.Replicas); errors.Is(err, transport.ErrReplicas) {
			return fmt.Errorf("coordinator %s: %w", n.cfg.ID, err)
		}
	}
	hasState, err := n.members.open()
	if err != nil {
		return err
	}
	if err := startCtx.Err(); err != nil {
		return err
	}
	if n.cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", n.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("coordinator %s: HTTP: %w", n.cfg.ID, err)
		}
		if n.httpTLS != nil {
			ln = tls.NewListener(ln, n.httpTLS)
		}
		n.httpLn = ln
		n.httpSrv = &http.Server{
			Handler:           n.api.handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second, // bodies are at most MaxRequestBody
			// A job wait long-polls for up to MaxWait before it answers.
			WriteTimeout: MaxWait + 30*time.Second,
			// Clients and members keep connections alive; one left idle
			// is closed, so a client that opens many holds none for long.
			IdleTimeout: 2 * time.Minute,
			ErrorLog:    httpauth.ServerErrorLog(n.log),
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.log.Error("HTTP server stopped", "err", err)
			}
		}()
	}
	hb, err := n.nc.Subscribe(transport.HeartbeatSubject("*"), n.onHeartbeat)
	if err != nil {
		return err
	}
	rep, err := n.nc.Subscribe(transport.ReportSubject("*"), n.onReport)
	if err != nil {
		return err
	}
	n.closers = append(n.closers, unsubscriber{hb}, unsubscriber{rep})
	if n.cfg.Join != "" && !hasState {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.members.join(ctx)
		}()
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.ensureBuckets(ctx)
	}()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.members.leadership(ctx)
	}()
	n.log.Info("coordinator started", "raft", n.cfg.RaftAddr, "http", n.HTTPAddr(), "bootstrap", n.cfg.Bootstrap && !hasState)
	return nil
}

type unsubscriber struct{ s *nats.Subscription }

func (u unsubscriber) Close() error { return u.s.Unsubscribe() }

// clock is the schedules' time.
func (n *Node) clock() time.Time {
	if n.cfg.Clock != nil {
		return n.cfg.Clock().UTC()
	}
	return time.Now().UTC()
}

// HTTPAddr is the address the HTTP API listens on ("" when it has none).
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// ID is the node's ID.
func (n *Node) ID() string { return n.cfg.ID }

// IsLeader reports whether this node is the raft leader now.
func (n *Node) IsLeader() bool { return n.members.isLeader() }

// Close stops the node: the leader's driver, the HTTP API, raft.
func (n *Node) Close() error {
	if n.cancel != nil {
		n.cancel()
	}
	if n.httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n.httpSrv.Shutdown(sctx)
		cancel()
	}
	n.wg.Wait()
	var errs []error
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown().Error())
	}
	for i := len(n.closers) - 1; i >= 0; i-- {
		errs = append(errs, n.closers[i].Close())
	}
	n.reposMu.Lock()
	for _, r := range n.repos {
		r.Close()
	}
	n.reposMu.Unlock()
	if n.ownConn && n.nc != nil {
		n.nc.Close()
	}
	if n.peerTransport != nil {
		n.peerTransport.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// Submit commits a new job (leader only) and returns its ID.
func (n *Node) Submit(ctx context.Context, req SubmitRequest) (string, error) {
	id, _, err := n.api.submit(ctx, req)
	return id, err
}
