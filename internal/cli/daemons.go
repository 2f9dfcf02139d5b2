package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/worker"
)

// logOptions are the logging flags of the long-running binaries.
type logOptions struct {
	level, format string
}

func (o *logOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.level, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&o.format, "log-format", "text", "text or json")
}

func (o *logOptions) logger(w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(o.level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", o.level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(o.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", o.format)
}

// runDaemon executes a daemon's root command and maps errors to exit codes.
func runDaemon(cmd *cobra.Command, args []string, stderr io.Writer) int {
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return exitCode(err)
	}
	return ExitOK
}

// CoordinatorMain runs the coordinator binary.
func CoordinatorMain(args []string, stdout, stderr io.Writer) int {
	return runDaemon(NewCoordinatorCommand(stdout, stderr), args, stderr)
}

// NewCoordinatorCommand returns the coordinator binary's command with its
// flags, writing to stdout and stderr. CoordinatorMain runs it; the
// configuration reference (docs/config.md) and the deploy-file checks read
// its flag set.
func NewCoordinatorCommand(stdout, stderr io.Writer) *cobra.Command {
	cfg := coordinator.DefaultConfig()
	var logs logOptions
	var natsAuth natsFlags
	var httpSec httpServerFlags
	cmd := &cobra.Command{
		Use:   "coordinator --id ID --data-dir DIR --raft-addr HOST:PORT --http-addr HOST:PORT --nats URL (--bootstrap | --join URL)",
		Short: "Run a member of the cofactor coordinator group",
		Long: `coordinator runs one member of the raft group that owns cofactor's jobs,
workers and block assignments. Start the first member with --bootstrap and the
others with --join pointing at any member's HTTP address. A member restarted
with the same --data-dir rejoins with its state.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.logger(stderr)
			if err != nil {
				return err
			}
			if cfg.NATSSecurity, err = natsAuth.security(); err != nil {
				return err
			}
			if err := httpSec.load(); err != nil {
				return err
			}
			cfg.HTTPTLS.Cert, cfg.HTTPTLS.Key = httpSec.cert, httpSec.key
			cfg.AdminTokens, cfg.ReadTokens = httpSec.adminTokens, httpSec.readTok
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			n, err := coordinator.New(cfg, coordinator.WithLogger(log))
			if err != nil {
				return err
			}
			if err := n.Start(cmd.Context()); err != nil {
				return err
			}
			<-cmd.Context().Done()
			log.Info("shutting down")
			return n.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ID, "id", "", "this coordinator's ID in the raft group")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory of the raft log and snapshots")
	f.StringVar(&cfg.RaftAddr, "raft-addr", "", "host:port for raft (listened on and advertised)")
	f.StringVar(&cfg.HTTPAddr, "http-addr", "", "host:port of the HTTP API")
	f.StringVar(&cfg.NATSURL, "nats", "nats://127.0.0.1:4222", "NATS server URL")
	f.BoolVar(&cfg.Bootstrap, "bootstrap", false, "start a new group with this node as its first member")
	f.StringVar(&cfg.Join, "join", "", "HTTP URL of a member to join")
	f.DurationVar(&cfg.WorkerTimeout, "worker-timeout", cfg.WorkerTimeout, "silence after which a worker is lost and its blocks reassigned")
	f.DurationVar(&cfg.ResendInterval, "resend-interval", cfg.ResendInterval, "how often an unanswered command to workers is repeated")
	f.DurationVar(&cfg.PhaseTimeout, "phase-timeout", cfg.PhaseTimeout, "report a job step running longer than this, naming the workers it waits for (0: never)")
	f.StringVar(&cfg.RaftTLS.Cert, "raft-tls-cert", "", "PEM certificate of this coordinator for mutual TLS between coordinators (names its --raft-addr host)")
	f.StringVar(&cfg.RaftTLS.Key, "raft-tls-key", "", "key of --raft-tls-cert")
	f.StringVar(&cfg.RaftTLS.CA, "raft-tls-ca", "", "PEM file of the CA whose certificates the other coordinators present on raft")
	f.StringVar(&cfg.HTTPTLS.CA, "http-tls-ca", "", "PEM file of the CA that signed the other coordinators' HTTPS certificates (default: system roots)")
	httpSec.addFlags(cmd, true)
	natsAuth.addFlags(cmd)
	logs.addFlags(cmd)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	return cmd
}

// WorkerMain runs the worker binary.
func WorkerMain(args []string, stdout, stderr io.Writer) int {
	return runDaemon(NewWorkerCommand(stdout, stderr), args, stderr)
}

// NewWorkerCommand returns the worker binary's command with its flags,
// writing to stdout and stderr. WorkerMain runs it.
func NewWorkerCommand(stdout, stderr io.Writer) *cobra.Command {
	cfg := worker.DefaultConfig()
	var logs logOptions
	var natsAuth natsFlags
	var dataDir, metricsAddr string
	cmd := &cobra.Command{
		Use:   "worker --id ID --nats URL",
		Short: "Run a cofactor worker",
		Long: `worker connects to NATS, announces itself to the coordinators, and runs the
leader's commands: partitioning inputs into the block store, solving its
blocks' rows each phase, and serving its factor rows to the other workers.
Input files and --out directories of jobs are read and written by workers, so
they must be reachable from every worker (a shared filesystem).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.logger(stderr)
			if err != nil {
				return err
			}
			if dataDir != "" {
				if err := os.MkdirAll(dataDir, 0o750); err != nil {
					return err
				}
			}
			if cfg.NATSSecurity, err = natsAuth.security(); err != nil {
				return err
			}
			w, err := worker.New(cfg, worker.WithLogger(log))
			if err != nil {
				return usageError{err}
			}
			if metricsAddr != "" {
				stop, err := serveMetrics(metricsAddr, w.Registry(), log)
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
	f.StringVar(&cfg.NATSURL, "nats", "nats://127.0.0.1:4222", "NATS server URL")
	f.StringVar(&dataDir, "data-dir", "", "scratch directory (created if missing)")
	f.IntVar(&cfg.Threads, "threads", 0, "goroutines solving rows (default: all CPUs)")
	f.Int64Var(&cfg.Memory, "memory", 0, "bytes of memory offered for blocks (advertised)")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat", cfg.HeartbeatInterval, "heartbeat interval")
	f.StringVar(&metricsAddr, "metrics-addr", "", "host:port to serve Prometheus /metrics on (default: none)")
	natsAuth.addFlags(cmd)
	f.DurationVar(&cfg.InjectDelay, "inject-delay", 0, "fault injection for tests: slow every block solve by this much")
	f.MarkHidden("inject-delay")
	f.Var(faultsFlag{&cfg.Faults}, "inject-faults", "fault injection for tests: dup=P,delay=D,store-fail-every=N,store-full-after=N,seed=S")
	f.MarkHidden("inject-faults")
	logs.addFlags(cmd)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	return cmd
}

// NewCofactorCommand returns the cofactor command tree that Main runs, for
// the configuration reference and the checks of documented command lines.
// Executing it directly skips Main's exit-code mapping.
func NewCofactorCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	return newRoot(streams{stdin, stdout, stderr})
}

// serveMetrics serves a Prometheus registry on addr/metrics until stop.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, nil
}

// faultsFlag parses --inject-faults into a worker.Faults.
type faultsFlag struct{ f *worker.Faults }

func (v faultsFlag) String() string {
	if v.f == nil || *v.f == (worker.Faults{}) {
		return ""
	}
	return fmt.Sprintf("%+v", *v.f)
}

func (v faultsFlag) Set(s string) error {
	f, err := worker.ParseFaults(s)
	if err != nil {
		return err
	}
	*v.f = f
	return nil
}

func (faultsFlag) Type() string { return "spec" }
