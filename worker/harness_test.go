package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/partition"
	"github.com/cofactor-ml/cofactor/transport"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// This file holds what the package's tests share: the networks workers
// run on (in memory, or an embedded NATS server), running workers, a fake
// coordinator leader, a small dataset and a single-process reference of
// the ALS phases.

// testTimeout bounds every wait of these tests: far above what any step
// takes, so that only a hang reaches it.
const testTimeout = 60 * time.Second

// network is what a test runs its workers on.
type network interface {
	// endpoint returns a transport for the test's own messages (on NATS,
	// a connection of its own, closed when the test ends).
	endpoint(t testing.TB) Transport
	// attach is the option that puts a worker on the network.
	attach(t testing.TB) Option
}

// memNetwork is the in-memory network: most tests run on it, since it
// starts in no time and has no server to wait for.
type memNetwork struct{ *memNet }

func (m memNetwork) endpoint(testing.TB) Transport { return m.memNet }
func (m memNetwork) attach(testing.TB) Option      { return WithTransport(m.memNet) }

// startMem returns an in-memory network with the given max payload (0:
// NATS's default).
func startMem(t testing.TB, maxPayload int) network {
	return memNetwork{newMemNet(t, maxPayload)}
}

// natsNetwork is an embedded NATS server; workers join it through
// WithConn, as the all-in-one mode does.
type natsNetwork struct{ e *embedded.Server }

func (n natsNetwork) endpoint(t testing.TB) Transport {
	return newNATSTransport(connect(t, n.e), transport.Security{}, "cofactor-test")
}
func (n natsNetwork) attach(t testing.TB) Option { return WithConn(connect(t, n.e)) }

// startNATS starts an embedded server (JetStream, in-process connections
// only) that is shut down when the test ends. maxPayload 0 keeps the
// server's default.
func startNATS(t testing.TB, maxPayload int) network {
	t.Helper()
	e, err := embedded.Start(embedded.Options{
		JetStream: true, StoreDir: t.TempDir(), NoListen: true, MaxPayload: int32(maxPayload),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return natsNetwork{e}
}

// onNetworks runs test as subtests on the in-memory network and on
// NATS: for what must behave the same on both.
func onNetworks(t *testing.T, maxPayload int, test func(t *testing.T, net network)) {
	t.Run("mem", func(t *testing.T) { test(t, startMem(t, maxPayload)) })
	t.Run("nats", func(t *testing.T) { test(t, startNATS(t, maxPayload)) })
}

// connect opens an in-process connection closed when the test ends.
func connect(t testing.TB, e *embedded.Server) *nats.Conn {
	t.Helper()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// quietLogger discards the workers' logs unless the test runs verbose.
func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is a worker configuration for tests: one solving thread,
// short timeouts.
func testConfig(id string) Config {
	cfg := DefaultConfig()
	cfg.ID = id
	cfg.Threads = 1
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.Retry = transport.RetryPolicy{Timeout: 2 * time.Second, Attempts: 5, Backoff: 20 * time.Millisecond}
	return cfg
}

// newWorker builds a worker on net without running it.
func newWorker(t testing.TB, net network, cfg Config) *Worker {
	t.Helper()
	w, err := New(cfg, net.attach(t), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// runWorker runs w until the test ends, and waits until its command and
// row subjects are subscribed.
func runWorker(t testing.TB, w *Worker) {
	t.Helper()
	// The first heartbeat is sent after both subscriptions exist.
	started := make(chan struct{}, 1)
	stop, err := w.tr.Subscribe(transport.HeartbeatSubject(w.ID()), func(data []byte, _ func([]byte) error) {
		var b wire.Heartbeat
		if json.Unmarshal(data, &b) == nil && b.Worker == w.ID() {
			select {
			case started <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker %s: Run: %v", w.ID(), err)
		}
	})
	select {
	case <-started:
	case <-time.After(testTimeout):
		t.Fatalf("worker %s did not start", w.ID())
	}
}

// startWorker builds and runs a worker.
func startWorker(t testing.TB, net network, cfg Config) *Worker {
	t.Helper()
	w := newWorker(t, net, cfg)
	runWorker(t, w)
	return w
}

// leader is a fake coordinator leader: it acknowledges every report and
// keeps them in arrival order.
type leader struct {
	mu      sync.Mutex
	reports []wire.Report
	changed chan struct{} // closed and replaced at each report
}

func startLeader(t testing.TB, net network) *leader {
	t.Helper()
	l := &leader{changed: make(chan struct{})}
	stop, err := net.endpoint(t).Subscribe(transport.ReportSubject("*"), func(data []byte, reply func([]byte) error) {
		var r wire.Report
		ack := wire.Ack{OK: true}
		if err := json.Unmarshal(data, &r); err != nil {
			ack = wire.Ack{Error: err.Error()}
		} else {
			l.mu.Lock()
			l.reports = append(l.reports, r)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
		b, _ := json.Marshal(ack)
		reply(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return l
}

// count returns how many reports so far satisfy match.
func (l *leader) count(match func(wire.Report) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reports {
		if match(r) {
			n++
		}
	}
	return n
}

// wait returns the reports satisfying match once there are at least n of
// them, failing the test after testTimeout.
func (l *leader) wait(t testing.TB, n int, match func(wire.Report) bool) []wire.Report {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		l.mu.Lock()
		var got []wire.Report
		for _, r := range l.reports {
			if match(r) {
				got = append(got, r)
			}
		}
		changed := l.changed
		l.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%d matching reports after %v, want %d; all reports: %+v", len(got), testTimeout, n, l.all())
		}
	}
}

func (l *leader) all() []wire.Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]wire.Report(nil), l.reports...)
}

// ask sends data to subject once and returns the answer.
func ask(t testing.TB, tr Transport, subject string, data []byte) []byte {
	t.Helper()
	answer, err := tr.Request(context.Background(), subject, data, transport.RetryPolicy{Timeout: 10 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatalf("request on %s: %v", subject, err)
	}
	return answer
}

// command sends c to a worker and returns its acknowledgement.
func command(t testing.TB, tr Transport, worker string, c wire.Command) wire.Ack {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	answer := ask(t, tr, transport.WorkerCmdSubject(worker), b)
	var ack wire.Ack
	if err := json.Unmarshal(answer, &ack); err != nil {
		t.Fatalf("command %s to %s: answer %q: %v", c.Type, worker, answer, err)
	}
	return ack
}

// mustCommand sends c and fails the test unless the worker accepts it.
func mustCommand(t testing.TB, tr Transport, worker string, c wire.Command) {
	t.Helper()
	if ack := command(t, tr, worker, c); !ack.OK || ack.Error != "" {
		t.Fatalf("command %s (iteration %d %s, epoch %d) to %s refused: %q", c.Type, c.Iteration, c.Side, c.Epoch, worker, ack.Error)
	}
}

// isPhase matches the phase reports of one step.
func isPhase(jobID string, epoch uint64, t int, side wire.Side) func(wire.Report) bool {
	return func(r wire.Report) bool {
		return r.Type == wire.RepPhase && r.Job == jobID && r.Epoch == epoch && r.Iteration == t && r.Side == side
	}
}

// smallSet is the rating set most tests use: small enough to solve in
// milliseconds, large enough that every block needs rows of every other.
func smallSet(implicit bool) synth.Config {
	return synth.Config{Users: 300, Items: 150, Ratings: 6000, Rank: 4, Noise: 0.3, Seed: 7, ZipfExponent: 0.8, Implicit: implicit}
}

// testSpec is a job over input with small settings.
func testSpec(input string, implicit bool) job.Spec {
	s := job.DefaultSpec()
	s.Input, s.Rank, s.Lambda, s.Iterations = input, 4, 0.05, 2
	s.Implicit = implicit
	if implicit {
		s.Lambda = 5
	}
	return s
}

// loadLayout builds the dataset and layout a worker's partition command
// builds from spec.
func loadLayout(t testing.TB, spec job.Spec, p, q int) (*partition.Dataset, *partition.Layout) {
	t.Helper()
	ds, _, err := job.LoadDataset(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	l, err := partition.NewLayout(ds, p, q)
	if err != nil {
		t.Fatal(err)
	}
	return ds, l
}

// reference computes the factors of the given number of half-iterations
// (users(1), items(1), users(2), ...) in one process on a 1×1 layout:
// the values every distributed layout must reproduce. x[t] and y[t] are
// the users and items after iteration t, in global index order.
func reference(t testing.TB, spec job.Spec, phases int) (x, y [][]float32) {
	t.Helper()
	_, l := loadLayout(t, spec, 1, 1)
	k := spec.Rank
	ub, ib := l.UserBlocks[0], l.ItemBlocks[0]
	initial := func(b *partition.Block, side als.Side) []float32 {
		v := make([]float32, b.Len()*k)
		for r, id := range b.IDs {
			als.InitRow(v[r*k:(r+1)*k], spec.Seed, side, id)
		}
		return v
	}
	x = [][]float32{initial(ub, als.UserSide)}
	y = [][]float32{initial(ib, als.ItemSide)}
	solver, err := als.NewSolver(spec.ALS(1))
	if err != nil {
		t.Fatal(err)
	}
	solve := func(b *partition.Block, prev, other []float32, loss bool) []float32 {
		gathered := make([]float32, 0, len(b.Needed)*k)
		for _, g := range b.Needed {
			gathered = append(gathered, other[int(g)*k:int(g)*k+k]...)
		}
		var yty []float64
		if spec.Implicit {
			yty = make([]float64, k*k)
			als.Gram(other, k, 1, yty)
		}
		out := append([]float32(nil), prev...)
		if _, err := solver.UpdateBlock(context.Background(), als.BlockUpdate{
			Rows: blockRows(b.Rows), Other: gathered, YtY: yty, X: out, Loss: loss,
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for p := 0; p < phases; p++ {
		if p%2 == 0 {
			x = append(x, solve(ub, x[len(x)-1], y[len(y)-1], false))
		} else {
			y = append(y, solve(ib, y[len(y)-1], x[len(x)-1], true))
		}
	}
	return x, y
}

// maxAbsDiff is the largest element-wise difference of two equally long
// vectors.
func maxAbsDiff(t testing.TB, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("lengths %d and %d differ", len(a), len(b))
	}
	var worst float64
	for i := range a {
		worst = max(worst, math.Abs(float64(a[i])-float64(b[i])))
	}
	return worst
}

// pseudoRandom fills a vector with reproducible values in [-1, 1).
func pseudoRandom(n int, seed uint64) []float32 {
	v := make([]float32, n)
	s := seed*0x9e3779b97f4a7c15 + 1
	for i := range v {
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		v[i] = float32(s>>40)/float32(1<<23) - 1
	}
	return v
}

// install gives w the job's blocks of a layout, as adopt would after
// loading them, with the given factor versions of every held block, and
// the owner lists users and items. Owners equal to w's ID are held.
func install(t testing.TB, w *Worker, id string, spec job.Spec, epoch uint64, l *partition.Layout, users, items []string, versions ...int) *jobState {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	solver, err := als.NewSolver(spec.ALS(1))
	if err != nil {
		t.Fatal(err)
	}
	js := &jobState{
		id: id, spec: spec, epoch: epoch, users: users, items: items,
		held: map[blockKey]*heldBlock{}, tasks: map[taskKey]*task{}, solver: solver, ctx: ctx, cancel: cancel,
	}
	for side, owners := range [][]string{users, items} {
		s := partition.Side(side)
		for b, owner := range owners {
			if owner != w.ID() {
				continue
			}
			blk := l.Blocks(s)[b]
			h := &heldBlock{blk: blk, k: spec.Rank, vers: map[int][]float32{}, grams: map[int][]float64{}}
			for _, v := range versions {
				h.vers[v] = factorValues(blk, spec.Rank, v)
			}
			js.held[blockKey{s, b}] = h
		}
	}
	w.mu.Lock()
	w.jobs[id] = js
	w.mu.Unlock()
	return js
}

// factorValues are the test values of a block's rows at version v.
func factorValues(blk *partition.Block, k, v int) []float32 {
	return pseudoRandom(blk.Len()*k, uint64(blk.Side)<<40|uint64(blk.Index)<<20|uint64(v))
}

func describe(h transport.Header) string {
	return fmt.Sprintf("%v side %d block %d peer %d chunk %d version %d", h.Type, h.Side, h.Block, h.Peer, h.Chunk, h.Iteration)
}
