//go:build faultinject

package worker

import (
	"fmt"
	"time"
)

// WithInjectedFaults turns fault injection on, for the fault suite
// (test/fault): spec as parseFaults reads it ("dup=0.3,delay=50ms,
// store-fail-every=3,store-full-after=10,seed=7", every key optional), and
// solveDelay slows every block solve down. It exists only in builds with
// the faultinject tag; an empty spec and a zero delay inject nothing.
func WithInjectedFaults(spec string, solveDelay time.Duration) Option {
	return func(w *Worker) error {
		f, err := parseFaults(spec)
		if err != nil {
			return err
		}
		if solveDelay < 0 {
			return fmt.Errorf("%w: solve delay %v must be ≥ 0", errFaultSpec, solveDelay)
		}
		f.solveDelay = solveDelay
		if f == (faults{}) {
			return nil
		}
		return withFaultHook(newInjector(f))(w)
	}
}
