package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/transport"
)

// Fault injection lives outside the worker's configuration: a faultHook
// reaches a worker only through withFaultHook, which the package's tests
// call, and through WithInjectedFaults, which exists only in builds with
// the faultinject tag (the worker binary the fault suite runs). A
// production build has neither the option nor the flags.

// faultHook disturbs a worker. It is nil in production.
type faultHook interface {
	// wrap returns the transport the worker uses instead of tr.
	wrap(tr Transport) Transport
	// beforeSolve runs before each block solve of a phase; an error
	// (ctx's, when it ends) fails the phase.
	beforeSolve(ctx context.Context) error
	// beforeExport runs before an export copies the final snapshot into
	// the --out directory.
	beforeExport()
	// afterIngestRound runs after an ingest round has done its work; an
	// error fails the round nonetheless, as a failure after the point of
	// no return would.
	afterIngestRound(round int) error
}

// withFaultHook sets the worker's fault hook.
func withFaultHook(h faultHook) Option {
	return func(w *Worker) error { w.faults = h; return nil }
}

// faults is what the fault suite injects: duplicated and delayed
// messages, checkpoint writes that fail, and slow block solves. The zero
// value injects nothing.
type faults struct {
	// dup is the probability that a report or row request is sent twice.
	dup float64
	// delay holds every report and row request back by a random time
	// below it.
	delay time.Duration
	// storeFailEvery makes every n-th checkpoint write fail with ENOSPC.
	storeFailEvery int
	// storeFullAfter makes every checkpoint write after the first n fail
	// with ENOSPC: the disk stays full.
	storeFullAfter int
	// seed seeds the random choices.
	seed uint64
	// solveDelay slows every block solve down by this much.
	solveDelay time.Duration
	// exportStall holds every export back by this much before it copies,
	// deaf to its context, as a process paused by the system would be: the
	// fault suite pauses the worker meanwhile so that it is declared lost
	// while its export is still to come.
	exportStall time.Duration
	// ingestFailRound fails the first run of that ingest round on this
	// worker after its work is done (0: none).
	ingestFailRound int
}

// errFaultSpec is wrapped by parseFaults's errors.
var errFaultSpec = errors.New("bad fault injection spec")

// parseFaults reads a spec such as "dup=0.3,delay=50ms,store-fail-every=3,
// store-full-after=10,export-stall=3s,ingest-fail-round=7,seed=7" (every
// key optional).
func parseFaults(spec string) (faults, error) {
	var f faults
	if strings.TrimSpace(spec) == "" {
		return f, nil
	}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return faults{}, fmt.Errorf("%w: %q is not key=value", errFaultSpec, kv)
		}
		if err := f.set(k, v); err != nil {
			return faults{}, fmt.Errorf("%w: %s: %v", errFaultSpec, k, err)
		}
	}
	return f, nil
}

// set sets the field of one spec key.
func (f *faults) set(k, v string) error {
	var err error
	switch k {
	case "dup":
		f.dup, err = strconv.ParseFloat(v, 64)
		if err == nil && (f.dup < 0 || f.dup > 1) {
			err = errors.New("must be in [0, 1]")
		}
	case "delay":
		f.delay, err = time.ParseDuration(v)
		if err == nil && f.delay < 0 {
			err = errors.New("must be ≥ 0")
		}
	case "store-fail-every":
		f.storeFailEvery, err = nonNegative(v)
	case "store-full-after":
		f.storeFullAfter, err = nonNegative(v)
	case "export-stall":
		f.exportStall, err = time.ParseDuration(v)
		if err == nil && f.exportStall < 0 {
			err = errors.New("must be ≥ 0")
		}
	case "ingest-fail-round":
		f.ingestFailRound, err = nonNegative(v)
	case "seed":
		f.seed, err = strconv.ParseUint(v, 10, 64)
	default:
		err = errors.New("unknown key (dup, delay, store-fail-every, store-full-after, export-stall, ingest-fail-round, seed)")
	}
	return err
}

func nonNegative(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err == nil && n < 0 {
		err = errors.New("must be ≥ 0")
	}
	return n, err
}

func (f faults) store() bool { return f.storeFailEvery > 0 || f.storeFullAfter > 0 }

func (f faults) String() string {
	return fmt.Sprintf("dup=%g,delay=%v,store-fail-every=%d,store-full-after=%d,export-stall=%v,ingest-fail-round=%d,seed=%d,solve-delay=%v",
		f.dup, f.delay, f.storeFailEvery, f.storeFullAfter, f.exportStall, f.ingestFailRound, f.seed, f.solveDelay)
}

// injector is the faultHook that applies faults.
type injector struct {
	f   faults
	mu  sync.Mutex
	rng *rand.Rand
	// ingestFailed: the ingest round of f.ingestFailRound has failed once.
	ingestFailed bool
}

func newInjector(f faults) *injector {
	return &injector{f: f, rng: rand.New(rand.NewPCG(f.seed, 0x636f666163746f72))}
}

func (in *injector) String() string { return in.f.String() }

func (in *injector) wrap(tr Transport) Transport {
	ft := &faultTransport{Transport: tr, in: in}
	if d, ok := tr.(DatasetOpener); ok {
		// Keep the optional capability.
		return struct {
			*faultTransport
			DatasetOpener
		}{ft, d}
	}
	return ft
}

func (in *injector) beforeSolve(ctx context.Context) error {
	if in.f.solveDelay <= 0 {
		return nil
	}
	select {
	case <-time.After(in.f.solveDelay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (in *injector) beforeExport() {
	if in.f.exportStall > 0 {
		time.Sleep(in.f.exportStall)
	}
}

// errInjectedIngest is the failure afterIngestRound injects.
var errInjectedIngest = errors.New("injected fault: the ingest round failed after its work")

func (in *injector) afterIngestRound(round int) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.f.ingestFailRound == 0 || round != in.f.ingestFailRound || in.ingestFailed {
		return nil
	}
	in.ingestFailed = true
	return fmt.Errorf("round %d: %w", round, errInjectedIngest)
}

// before delays a message and reports whether to send it twice.
func (in *injector) before(ctx context.Context) (dup bool) {
	in.mu.Lock()
	var d time.Duration
	if in.f.delay > 0 {
		d = time.Duration(in.rng.Int64N(int64(in.f.delay)))
	}
	dup = in.f.dup > 0 && in.rng.Float64() < in.f.dup
	in.mu.Unlock()
	if d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	return dup
}

// faultTransport delays and duplicates requests (the worker's reports and
// row requests) and fails checkpoint writes.
type faultTransport struct {
	Transport
	in *injector
}

// Request sends a duplicate first, and drops its answer.
func (t *faultTransport) Request(ctx context.Context, subject string, data []byte, p transport.RetryPolicy) ([]byte, error) {
	if t.in.before(ctx) {
		once := p
		once.Attempts = 1
		t.Transport.Request(ctx, subject, data, once)
	}
	return t.Transport.Request(ctx, subject, data, p)
}

func (t *faultTransport) OpenSnapshots(ctx context.Context, uri string) (*checkpoint.Repo, error) {
	r, err := t.Transport.OpenSnapshots(ctx, uri)
	if err == nil && t.in.f.store() {
		r.Store = &faultStore{Store: r.Store, f: t.in.f}
	}
	return r, err
}

// faultStore fails checkpoint writes as faults says.
type faultStore struct {
	checkpoint.Store
	f  faults
	mu sync.Mutex
	n  int
}

func (s *faultStore) Put(ctx context.Context, name string, data []byte) error {
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	if (s.f.storeFailEvery > 0 && n%s.f.storeFailEvery == 0) || (s.f.storeFullAfter > 0 && n > s.f.storeFullAfter) {
		return fmt.Errorf("injected fault: %w", syscall.ENOSPC)
	}
	return s.Store.Put(ctx, name, data)
}
