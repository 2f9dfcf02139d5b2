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

// Faults is fault injection for the fault suite (test/fault): duplicated
// and delayed messages, and a checkpoint store that fails its writes. The
// zero value injects nothing; production runs never set it.
type Faults struct {
	// Dup is the probability that a report or row request is sent twice.
	Dup float64
	// Delay holds every report and row request back by a random time
	// below it.
	Delay time.Duration
	// StoreFailEvery makes every n-th checkpoint write fail with ENOSPC.
	StoreFailEvery int
	// StoreFullAfter makes every checkpoint write after the first n fail
	// with ENOSPC: the disk stays full.
	StoreFullAfter int
	// Seed seeds the random choices.
	Seed uint64
}

// ErrFaultSpec is wrapped by ParseFaults's errors.
var ErrFaultSpec = errors.New("bad fault injection spec")

// ParseFaults reads a spec such as "dup=0.3,delay=50ms,store-fail-every=3,
// store-full-after=10,seed=7" (every key optional).
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	if strings.TrimSpace(spec) == "" {
		return f, nil
	}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return f, fmt.Errorf("%w: %q is not key=value", ErrFaultSpec, kv)
		}
		var err error
		switch k {
		case "dup":
			f.Dup, err = strconv.ParseFloat(v, 64)
			if err == nil && (f.Dup < 0 || f.Dup > 1) {
				err = errors.New("must be in [0, 1]")
			}
		case "delay":
			f.Delay, err = time.ParseDuration(v)
			if err == nil && f.Delay < 0 {
				err = errors.New("must be ≥ 0")
			}
		case "store-fail-every":
			f.StoreFailEvery, err = strconv.Atoi(v)
			if err == nil && f.StoreFailEvery < 0 {
				err = errors.New("must be ≥ 0")
			}
		case "store-full-after":
			f.StoreFullAfter, err = strconv.Atoi(v)
			if err == nil && f.StoreFullAfter < 0 {
				err = errors.New("must be ≥ 0")
			}
		case "seed":
			f.Seed, err = strconv.ParseUint(v, 10, 64)
		default:
			err = errors.New("unknown key (dup, delay, store-fail-every, store-full-after, seed)")
		}
		if err != nil {
			return Faults{}, fmt.Errorf("%w: %s: %v", ErrFaultSpec, k, err)
		}
	}
	return f, nil
}

func (f Faults) store() bool { return f.StoreFailEvery > 0 || f.StoreFullAfter > 0 }

// injector applies Faults to a worker's messages.
type injector struct {
	f   Faults
	mu  sync.Mutex
	rng *rand.Rand
}

func newInjector(f Faults) *injector {
	return &injector{f: f, rng: rand.New(rand.NewPCG(f.Seed, 0x636f666163746f72))}
}

// before delays a message and reports whether to send it twice.
func (in *injector) before(ctx context.Context) (dup bool) {
	if in == nil {
		return false
	}
	in.mu.Lock()
	var d time.Duration
	if in.f.Delay > 0 {
		d = time.Duration(in.rng.Int64N(int64(in.f.Delay)))
	}
	dup = in.f.Dup > 0 && in.rng.Float64() < in.f.Dup
	in.mu.Unlock()
	if d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	return dup
}

// request is transport.Request with the injected faults: a duplicate is
// sent first, and its answer is dropped.
func (w *Worker) injectedRequest(ctx context.Context, subject string, data []byte, p transport.RetryPolicy) ([]byte, error) {
	if w.inject.before(ctx) {
		once := p
		once.Attempts = 1
		w.tr.Request(ctx, subject, data, once)
	}
	return w.tr.Request(ctx, subject, data, p)
}

// faultStore fails checkpoint writes as Faults says.
type faultStore struct {
	checkpoint.Store
	f  Faults
	mu sync.Mutex
	n  int
}

func (s *faultStore) Put(ctx context.Context, name string, data []byte) error {
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	if (s.f.StoreFailEvery > 0 && n%s.f.StoreFailEvery == 0) || (s.f.StoreFullAfter > 0 && n > s.f.StoreFullAfter) {
		return fmt.Errorf("injected fault: %w", syscall.ENOSPC)
	}
	return s.Store.Put(ctx, name, data)
}
