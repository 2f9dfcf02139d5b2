//go:build faultinject

package app

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/cofactor-ml/cofactor/worker"
)

// The fault suite (test/fault, through test/testcluster) builds the worker
// with the faultinject tag, which adds these hidden flags.
func init() {
	buildFlags = append(buildFlags, func(f *pflag.FlagSet) func() worker.Option {
		var spec string
		var delay time.Duration
		f.DurationVar(&delay, "inject-delay", 0, "fault injection for tests: slow every block solve by this much")
		f.MarkHidden("inject-delay")
		f.StringVar(&spec, "inject-faults", "", "fault injection for tests: dup=P,delay=D,store-fail-every=N,store-full-after=N,export-stall=D,ingest-fail-round=R,seed=S")
		f.MarkHidden("inject-faults")
		return func() worker.Option { return worker.WithInjectedFaults(spec, delay) }
	})
}
