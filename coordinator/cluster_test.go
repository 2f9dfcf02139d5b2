package coordinator_test

// An in-process cluster: one embedded NATS server, three coordinator
// nodes with real raft TCP transports and HTTP APIs on 127.0.0.1, and two
// workers, all in this test process. The tests are an external package so
// that they can compare with allinone, which imports coordinator.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/allinone"
	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/internal/testutil"
	"github.com/cofactor-ml/cofactor/transport"
	"github.com/cofactor-ml/cofactor/transport/embedded"
	"github.com/cofactor-ml/cofactor/worker"
)

// clusterTimeout bounds every wait: far above what a step takes, so that
// only a hang reaches it.
const clusterTimeout = 90 * time.Second

// syncBuffer collects the cluster's logs, shown when a test fails.
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

type cluster struct {
	t      *testing.T
	ns     *embedded.Server
	log    *slog.Logger
	cfgs   []coordinator.Config
	nodes  []*coordinator.Node // nil while stopped
	open   []bool
	stopWk []func()
	conns  []*nats.Conn
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startCluster brings up NATS, three coordinators (the first bootstraps,
// the others join it) and two workers, and waits until the group has a
// leader, three voters and two live workers.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := startCoordinators(t, &syncBuffer{}, slog.LevelInfo, func(cfg *coordinator.Config) {
		cfg.WorkerTimeout = time.Second
		cfg.ResendInterval = 200 * time.Millisecond
	})
	for i := range 2 {
		c.startWorker(fmt.Sprintf("w%d", i+1))
	}
	c.waitFormed()
	return c
}

// startCoordinators brings up NATS and three coordinators (the first
// bootstraps, the others join it) logging into logs at level, each
// configuration adjusted by tune; the logs are printed if the test fails.
func startCoordinators(t *testing.T, logs *syncBuffer, level slog.Level, tune func(*coordinator.Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))}
	// Registered first, so it runs last, when nothing logs any more.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster logs:\n%s", logs.String())
		}
	})
	ns, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: t.TempDir(), NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	c.ns = ns
	t.Cleanup(ns.Shutdown)
	t.Cleanup(c.stopAll)
	for i := range 3 {
		cfg := coordinator.DefaultConfig()
		cfg.ID = fmt.Sprintf("c%d", i+1)
		cfg.DataDir = t.TempDir()
		cfg.RaftAddr = freeAddr(t)
		cfg.HTTPAddr = "127.0.0.1:0"
		tune(&cfg)
		if i == 0 {
			cfg.Bootstrap = true
		} else {
			cfg.Join = "http://" + c.nodes[0].HTTPAddr()
		}
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, nil)
		c.open = append(c.open, false)
		c.start(i)
	}
	return c
}

func (c *cluster) conn() *nats.Conn {
	c.t.Helper()
	nc, err := c.ns.Connect()
	if err != nil {
		c.t.Fatal(err)
	}
	c.conns = append(c.conns, nc)
	return nc
}

// start starts node i with its configuration.
func (c *cluster) start(i int) {
	c.t.Helper()
	n, err := coordinator.New(c.cfgs[i], coordinator.WithConn(c.conn()), coordinator.WithLogger(c.log))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	c.nodes[i], c.open[i] = n, true
	// A restart listens where the node did before, as a real one would.
	c.cfgs[i].HTTPAddr = n.HTTPAddr()
}

// stop closes node i.
func (c *cluster) stop(i int) {
	c.t.Helper()
	if !c.open[i] {
		return
	}
	c.open[i] = false
	if err := c.nodes[i].Close(); err != nil {
		c.t.Errorf("closing %s: %v", c.cfgs[i].ID, err)
	}
}

// restart starts node i again on its data directory, without joining.
func (c *cluster) restart(i int) {
	c.t.Helper()
	c.cfgs[i].Join = ""
	c.start(i)
}

// stopAll stops the workers, then the nodes, then closes the connections.
// A second call does nothing.
func (c *cluster) stopAll() {
	for _, stop := range c.stopWk {
		stop()
	}
	c.stopWk = nil
	for i := range c.nodes {
		c.stop(i)
	}
	for _, nc := range c.conns {
		nc.Close()
	}
	c.conns = nil
	// Keep-alive connections of the API clients and of the followers'
	// forwarding proxies would otherwise outlive the test.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}

func (c *cluster) startWorker(id string) { c.startWorkerMemory(id, 0) }

// startWorkerMemory starts a worker offering memory bytes (--memory).
func (c *cluster) startWorkerMemory(id string, memory int64) {
	c.t.Helper()
	cfg := worker.DefaultConfig()
	cfg.ID, cfg.Threads, cfg.Memory = id, 1, memory
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.Retry = transport.RetryPolicy{Timeout: time.Second, Attempts: 5, Backoff: 20 * time.Millisecond}
	w, err := worker.New(cfg, worker.WithConn(c.conn()), worker.WithLogger(c.log))
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	c.stopWk = append(c.stopWk, func() {
		cancel()
		if err := <-done; err != nil {
			c.t.Errorf("worker %s: %v", id, err)
		}
	})
}

// url is node i's API base URL.
func (c *cluster) url(i int) string { return "http://" + c.nodes[i].HTTPAddr() }

// client talks to the running nodes, in order.
func (c *cluster) client() *coordinator.Client {
	var urls []string
	for i := range c.nodes {
		if c.open[i] {
			urls = append(urls, c.url(i))
		}
	}
	return coordinator.NewClient(urls...)
}

// leader waits until a running node leads and returns its index.
func (c *cluster) leader() int {
	c.t.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for time.Now().Before(deadline) {
		for i, n := range c.nodes {
			if c.open[i] && n.IsLeader() {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no leader elected")
	return -1
}

// eventually polls cond every 20 ms until it returns nil, failing the test
// with its last error after clusterTimeout.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, clusterTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFormed waits until every node reports three servers with one leader
// and both workers alive.
func (c *cluster) waitFormed() {
	c.t.Helper()
	ctx := context.Background()
	eventually(c.t, "the group forms", func() error {
		for i := range c.nodes {
			st, err := coordinator.NewClient(c.url(i)).Cluster(ctx)
			if err != nil {
				return err
			}
			if err := formed(st); err != nil {
				return fmt.Errorf("%s: %w", c.cfgs[i].ID, err)
			}
		}
		return nil
	})
}

func formed(st *coordinator.ClusterStatus) error {
	roles := map[string]int{}
	for _, s := range st.Servers {
		roles[s.State]++
	}
	alive := 0
	for _, w := range st.Workers {
		if w.State == "alive" {
			alive++
		}
	}
	if len(st.Servers) != 3 || roles["leader"] != 1 || roles["follower"] != 2 || st.Leader == "" || alive != 2 {
		return fmt.Errorf("leader %q, servers %+v, workers %+v", st.Leader, st.Servers, st.Workers)
	}
	return nil
}

// smallSpec is a job on 400 users × 200 items × 8000 ratings at rank 4.
func smallSpec(t *testing.T, iterations int) job.Spec {
	t.Helper()
	spec := job.DefaultSpec()
	spec.Input = testutil.WriteRatings(t, synth.Config{Users: 400, Items: 200, Ratings: 8000, Rank: 4, Noise: 0.3, Seed: 11, ZipfExponent: 0.8})
	spec.Rank, spec.Lambda, spec.Iterations = 4, 0.05, iterations
	return spec
}

// waitJob waits until the job finishes, asking the given nodes.
func waitJob(t *testing.T, cl *coordinator.Client, id string) *job.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	res, err := cl.Wait(ctx, id, nil)
	if err != nil {
		t.Fatalf("waiting for job %s: %v", id, err)
	}
	return res
}

// waitProgress waits until node n's state machine has the job at
// iteration ≥ it.
func waitProgress(t *testing.T, n *coordinator.Node, id string, it int) {
	t.Helper()
	timeout := time.After(clusterTimeout)
	for {
		changed := n.Changed()
		res, err := n.JobResult(id)
		if err != nil {
			t.Fatal(err)
		}
		if job.Finished(res.State) {
			t.Fatalf("job %s is %s before iteration %d (%s)", id, res.State, it, res.Error)
		}
		if res.Progress != nil && res.Progress.Iteration >= it {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("job %s did not reach iteration %d", id, it)
		}
	}
}

// TestClusterForms: the group forms; every node answers the cluster
// status; writes to a follower are forwarded to the leader; a follower
// that was down while a job ran catches up after a restart on its data
// directory.
func TestClusterForms(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	lead := c.leader()
	var followers []int
	for i := range c.nodes {
		st, err := coordinator.NewClient(c.url(i)).Cluster(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.AnsweredBy != c.cfgs[i].ID || st.Leader != c.cfgs[lead].ID {
			t.Errorf("%s: answered by %s, leader %s, want %s", c.cfgs[i].ID, st.AnsweredBy, st.Leader, c.cfgs[lead].ID)
		}
		for _, s := range st.Servers {
			if s.HTTPAddress == "" || s.Address == "" {
				t.Errorf("%s lists server %+v without addresses", c.cfgs[i].ID, s)
			}
		}
		if i != lead {
			followers = append(followers, i)
		}
	}

	// One follower goes down; the job is submitted to the other.
	down, via := followers[0], followers[1]
	c.stop(down)
	spec := smallSpec(t, 3)
	cl := coordinator.NewClient(c.url(via))
	id, err := cl.Submit(ctx, coordinator.SubmitRequest{Spec: spec, JobID: "forwarded"})
	if err != nil {
		t.Fatalf("submit through follower %s: %v", c.cfgs[via].ID, err)
	}
	if id != "forwarded" {
		t.Fatalf("job ID %q", id)
	}
	// The follower may not have applied the submit yet: its /wait waits
	// for the job to appear.
	res := waitJob(t, cl, id)
	if res.State != job.StateSucceeded || len(res.History) != 3 || res.Workers != 2 {
		t.Fatalf("job %s: state %s (%s), %d iterations, %d workers", id, res.State, res.Error, len(res.History), res.Workers)
	}
	// A duplicate ID is refused, through the follower too.
	if _, err := cl.Submit(ctx, coordinator.SubmitRequest{Spec: spec, JobID: "forwarded"}); err == nil {
		t.Error("a second job with the same ID was accepted")
	}

	c.restart(down)
	eventually(t, "the restarted follower catches up", func() error {
		r, err := coordinator.NewClient(c.url(down)).Job(ctx, id)
		if err != nil {
			return err
		}
		if r.State != job.StateSucceeded {
			return fmt.Errorf("state %s", r.State)
		}
		return nil
	})
	if c.nodes[down].IsLeader() {
		t.Errorf("the restarted node %s took the lead", c.cfgs[down].ID)
	}
	c.waitFormed()
}

// TestClusterLeaderLoss: a job survives the loss of the leader in the
// middle, without restarting, and ends with the factors of an undisturbed
// one-worker run; the lost node catches up once restarted.
func TestClusterLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 30-iteration job on a 3-node cluster and on all-in-one: skipped under -short")
	}
	c := startCluster(t)
	ctx := context.Background()
	spec := smallSpec(t, 30)
	spec.Out = filepath.Join(t.TempDir(), "model")
	lead := c.leader()
	id, err := c.client().Submit(ctx, coordinator.SubmitRequest{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	waitProgress(t, c.nodes[lead], id, 3)
	c.stop(lead)
	// Without a leader nothing commits: the job is caught in the middle.
	for i, n := range c.nodes {
		if i == lead {
			continue
		}
		if r, err := n.JobResult(id); err != nil || job.Finished(r.State) {
			t.Fatalf("%s: job %s is %s (%v) when the leader is lost", c.cfgs[i].ID, id, r.State, err)
		}
	}
	next := c.leader()
	if next == lead {
		t.Fatal("the closed node still leads")
	}
	res := waitJob(t, c.client(), id)
	if res.State != job.StateSucceeded || res.Restarts != 0 || len(res.History) != 30 || res.Snapshot != spec.Out {
		t.Fatalf("job %s: state %s (%s), %d restarts, %d iterations, snapshot %q; notes %v",
			id, res.State, res.Error, res.Restarts, len(res.History), res.Snapshot, res.Notes)
	}
	got, err := checkpoint.ReadDir(context.Background(), spec.Out)
	if err != nil {
		t.Fatal(err)
	}

	// The same job, undisturbed, on one in-process worker.
	ref := spec
	ref.Out = filepath.Join(t.TempDir(), "model")
	rctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	ai, err := allinone.Start(rctx, allinone.Options{Workers: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	rres, err := ai.Run(rctx, ref, nil)
	if cerr := ai.Close(); cerr != nil {
		t.Errorf("closing all-in-one: %v", cerr)
	}
	if err != nil {
		t.Fatalf("all-in-one run: %v", err)
	}
	want, err := checkpoint.ReadDir(context.Background(), ref.Out)
	if err != nil {
		t.Fatal(err)
	}
	if d := testutil.SnapshotDiff(t, got, want); d > 1e-5 {
		t.Errorf("factors differ from the undisturbed one-worker run by %g", d)
	}
	if *res.TrainRMSE != *rres.TrainRMSE {
		t.Logf("train RMSE %v, one-worker run %v", *res.TrainRMSE, *rres.TrainRMSE)
	}

	// The lost leader comes back as a follower and learns the outcome.
	c.restart(lead)
	eventually(t, "the old leader catches up", func() error {
		r, err := c.nodes[lead].JobResult(id)
		if err != nil {
			return err
		}
		if r.State != job.StateSucceeded || r.Snapshot != spec.Out {
			return fmt.Errorf("state %s, snapshot %q", r.State, r.Snapshot)
		}
		return nil
	})
	c.waitFormed()
}

// rowAnswer asks a worker for a row of the job and returns the error it
// answers ("" for rows).
func rowAnswer(t *testing.T, nc *nats.Conn, workerID, jobID string, rank int) string {
	t.Helper()
	req := transport.Header{Type: transport.FrameRowsRequest, Job: jobID, Epoch: 1, Cols: uint32(rank)}
	msg, err := nc.Request(transport.WorkerRowsSubject(workerID), transport.AppendFrame(nil, req, nil), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h, payload, err := transport.DecodeFrame(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := transport.FrameErr(h, payload); err != nil {
		return err.Error()
	}
	return ""
}

// TestClusterCancel: a running job cancelled through the API ends
// cancelled, and the workers are told to forget it.
func TestClusterCancel(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	spec := smallSpec(t, job.MaxIterations)
	lead := c.leader()
	id, err := c.client().Submit(ctx, coordinator.SubmitRequest{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	waitProgress(t, c.nodes[lead], id, 2)
	nc := c.conn()
	for _, w := range []string{"w1", "w2"} {
		if msg := rowAnswer(t, nc, w, id, spec.Rank); strings.Contains(msg, "not held") {
			t.Fatalf("worker %s does not hold the running job: %s", w, msg)
		}
	}
	// Cancel through a follower: forwarded to the leader.
	via := (lead + 1) % len(c.nodes)
	res, err := coordinator.NewClient(c.url(via)).Cancel(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != job.StateCancelled {
		t.Fatalf("cancel answered state %s", res.State)
	}
	final := waitJob(t, c.client(), id)
	if final.State != job.StateCancelled || final.Error != "cancelled by request" {
		t.Errorf("job %s: state %s, error %q", id, final.State, final.Error)
	}
	for _, w := range []string{"w1", "w2"} {
		eventually(t, "worker "+w+" drops the job", func() error {
			if msg := rowAnswer(t, nc, w, id, spec.Rank); !strings.Contains(msg, "is not held by worker "+w) {
				return errors.New("answer: " + msg)
			}
			return nil
		})
	}
	// Cancelling again is refused: the job is over.
	_, err = c.client().Cancel(ctx, id)
	var ae *coordinator.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Errorf("second cancel: %v, want a 409 conflict", err)
	}
}

// TestClusterReadYourWrites: a job submitted through a follower is known
// to that follower when the submit returns, so that a client which then
// asks the same node about it (job status, as the CLI does after a
// submit) finds it. /wait already waits for a job it does not know yet;
// GET /v1/jobs/{id} answers 404 until the follower has applied the entry.
func TestClusterReadYourWrites(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	lead := c.leader()
	via := (lead + 1) % len(c.nodes)
	cl := coordinator.NewClient(c.url(via))
	spec := smallSpec(t, 1)
	for i := range 5 {
		id, err := cl.Submit(ctx, coordinator.SubmitRequest{Spec: spec, JobID: fmt.Sprintf("ryw-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Job(ctx, id); err != nil {
			t.Fatalf("submit %d: follower %s answered the submit, then: %v", i, c.cfgs[via].ID, err)
		}
	}
}

// TestNodeCloseReleasesRaftConnections: once every node of a group is
// closed, no goroutine is left serving a raft connection. (A node that
// closes without closing its pooled outgoing connections leaves its peers'
// handlers blocked reading them, and theirs keep its handlers alive: with
// the garbage collector off, as here, nothing ever ends them.)
func TestNodeCloseReleasesRaftConnections(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	c := startCluster(t)
	// A write replicated to both followers uses every connection kind.
	if _, err := c.client().Submit(context.Background(), coordinator.SubmitRequest{Spec: smallSpec(t, 1)}); err != nil {
		t.Fatal(err)
	}
	c.stopAll()
	const handler = "raft.(*NetworkTransport).handleConn"
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := countGoroutines(handler)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still in %s 5 s after every node closed", n, handler)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countGoroutines counts the goroutines with fn on their stack.
func countGoroutines(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}
