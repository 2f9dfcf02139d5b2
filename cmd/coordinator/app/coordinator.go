// Package app is the coordinator binary's command: flags → a
// coordinator.Config → a running coordinator.Node until SIGTERM.
package app

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/cli"
)

// Main runs the coordinator binary with args and returns its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return cli.Run(NewCommand(stdout, stderr), args, stderr)
}

// NewCommand returns the coordinator binary's command with its flags,
// writing to stdout and stderr. Main runs it; the
// configuration reference (docs/config.md) and the deploy-file checks read
// its flag set.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	cfg := coordinator.DefaultConfig()
	var logs cli.LogFlags
	var natsAuth cli.NATSFlags
	var httpSec cli.HTTPServerFlags
	cmd := &cobra.Command{
		Use:   "coordinator --id ID --data-dir DIR --raft-addr HOST:PORT --http-addr HOST:PORT --nats URL (--bootstrap | --join URL)",
		Short: "Run a member of the cofactor coordinator group",
		Long: `coordinator runs one member of the raft group that owns cofactor's jobs,
workers and block assignments. Start the first member with --bootstrap and the
others with --join pointing at any member's HTTP address. A member restarted
with the same --data-dir rejoins with its state.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.Logger(stderr)
			if err != nil {
				return err
			}
			if cfg.NATSSecurity, err = natsAuth.Security(); err != nil {
				return err
			}
			if err := httpSec.Load(); err != nil {
				return err
			}
			cfg.HTTPTLS.Cert, cfg.HTTPTLS.Key = httpSec.Cert, httpSec.Key
			cfg.AdminTokens, cfg.ReadTokens = httpSec.AdminTokens, httpSec.ReadTokens
			if err := cfg.Validate(); err != nil {
				return cli.Usage(err)
			}
			// Protected mode: raft and the API reachable from other hosts
			// must be authenticated, or the operator says --insecure.
			raft := cli.Exposure{Flag: "--raft-addr", Addr: cfg.RaftAddr,
				Missing: cli.Missing("--raft-tls-cert", cfg.RaftTLS.Cert, "--raft-tls-key", cfg.RaftTLS.Key, "--raft-tls-ca", cfg.RaftTLS.CA)}
			if err := cli.CheckExposure(cmd.Context(), httpSec.Insecure, log, httpSec.Exposure("--http-addr", cfg.HTTPAddr, true), raft); err != nil {
				return err
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
	f.StringVar(&cfg.NATSURL, "nats", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated: every server of a NATS cluster, so that the connection moves to another when one goes")
	f.BoolVar(&cfg.Bootstrap, "bootstrap", false, "start a new group with this node as its first member")
	f.StringVar(&cfg.Join, "join", "", "HTTP URL of a member to join")
	f.DurationVar(&cfg.WorkerTimeout, "worker-timeout", cfg.WorkerTimeout, "silence after which a worker is lost and its blocks reassigned")
	f.DurationVar(&cfg.ResendInterval, "resend-interval", cfg.ResendInterval, "how often an unanswered command to workers is repeated")
	f.DurationVar(&cfg.PhaseTimeout, "phase-timeout", cfg.PhaseTimeout, "report a job step running longer than this, naming the workers it waits for (0: never)")
	f.IntVar(&cfg.RetainJobs, "retain-jobs", cfg.RetainJobs, "finished jobs kept in the replicated state (with their logs); older ones are dropped")
	f.DurationVar(&cfg.RetainAge, "retain-age", cfg.RetainAge, "finished jobs older than this are dropped from the replicated state (with their logs)")
	f.IntVar(&cfg.Replicas, "replicas", cfg.Replicas, "copies a clustered JetStream keeps of every bucket (blocks, snapshots, pointers, datasets); needs that many NATS servers")
	f.StringVar(&cfg.RaftTLS.Cert, "raft-tls-cert", "", "PEM certificate of this coordinator for mutual TLS between coordinators (names its --raft-addr host)")
	f.StringVar(&cfg.RaftTLS.Key, "raft-tls-key", "", "key of --raft-tls-cert")
	f.StringVar(&cfg.RaftTLS.CA, "raft-tls-ca", "", "PEM file of the CA whose certificates the other coordinators present on raft")
	f.StringVar(&cfg.HTTPTLS.CA, "http-tls-ca", "", "PEM file of the CA that signed the other coordinators' HTTPS certificates (default: system roots)")
	httpSec.AddFlags(cmd, true)
	natsAuth.AddFlags(cmd)
	logs.AddFlags(cmd)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	return cli.Finish(cmd)
}
