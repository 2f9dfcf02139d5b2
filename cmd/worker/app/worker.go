// Package app is the worker binary's command: flags → a worker.Config →
// a running worker.Worker until SIGTERM. It links no raft.
package app

import (
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/memtune"
	"github.com/cofactor-ml/cofactor/worker"
)

// Main runs the worker binary with args and returns its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return cli.Run(NewCommand(stdout, stderr), args, stderr)
}

// NewCommand returns the worker binary's command with its flags, writing
// to stdout and stderr. Main runs it.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	cfg := worker.DefaultConfig()
	var logs cli.LogFlags
	var natsAuth cli.NATSFlags
	var dataDir, metricsAddr string
	var buildOpts []func() worker.Option
	cmd := &cobra.Command{
		Use:   "worker --id ID --nats URL",
		Short: "Run a cofactor worker",
		Long: `worker connects to NATS, announces itself to the coordinators, and runs the
leader's commands: partitioning inputs into the block store, solving its
blocks' rows each phase, and serving its factor rows to the other workers.
The --input files and --out directories of jobs are read and written by
workers, so they must be reachable from every worker (a shared filesystem);
datasets stored with "cofactor dataset put" need none.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.Logger(stderr)
			if err != nil {
				return err
			}
			if dataDir != "" {
				if err := os.MkdirAll(dataDir, 0o750); err != nil {
					return err
				}
			}
			if cfg.NATSSecurity, err = natsAuth.Security(); err != nil {
				return err
			}
			opts := []worker.Option{worker.WithLogger(log)}
			for _, o := range buildOpts {
				opts = append(opts, o())
			}
			w, err := worker.New(cfg, opts...)
			if err != nil {
				return cli.Usage(err)
			}
			memtune.Limit(cfg.Memory)
			if metricsAddr != "" {
				stop, err := cli.ServeMetrics(metricsAddr, w.Registry(), log)
				if err != nil {
					return err
				}
				defer stop()
			}
			return w.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ID, "id", "", "this worker's ID")
	f.StringVar(&cfg.NATSURL, "nats", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated: every server of a NATS cluster, so that the connection moves to another when one goes")
	f.StringVar(&dataDir, "data-dir", "", "scratch directory (created if missing)")
	f.IntVar(&cfg.Threads, "threads", 0, "goroutines solving rows (default: all CPUs)")
	f.Int64Var(&cfg.Memory, "memory", 0, "bytes of memory this worker offers: the coordinator refuses assignments that need more, and the process keeps it as its soft memory limit (GOMEMLIMIT wins)")
	f.Int64Var(&cfg.GatherBytes, "gather-bytes", cfg.GatherBytes, "bound on the other side's rows an item block gathers at once: a block that needs more is solved in groups of items, and an item with more ratings than a segment holds one segment at a time; the same factors, more rows exchanged (0: gather whole blocks; docs/scaling.md)")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat", cfg.HeartbeatInterval, "heartbeat interval")
	f.StringVar(&metricsAddr, "metrics-addr", "", "host:port to serve Prometheus /metrics on (default: none)")
	natsAuth.AddFlags(cmd)
	for _, add := range buildFlags {
		buildOpts = append(buildOpts, add(f))
	}
	logs.AddFlags(cmd)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	return cli.Finish(cmd)
}

// buildFlags are flags that only some builds have: each registers its
// flags and returns what turns their values into a worker option. The
// faultinject build adds the fault suite's flags (faults.go); a
// production build has none.
var buildFlags []func(f *pflag.FlagSet) func() worker.Option
