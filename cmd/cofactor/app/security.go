package app

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/natsauth"
	"github.com/cofactor-ml/cofactor/internal/secinit"
)

// securityInitOptions are the flags of `cofactor security init`.
type securityInitOptions struct {
	cfg       secinit.Config
	days      int
	workers   int
	workerIDs []string
	routes    []string
	cluster   natsauth.Cluster
	json      bool
}

// config checks the flags and returns the secinit configuration.
func (o *securityInitOptions) config(dir string) (secinit.Config, error) {
	c := o.cfg
	c.Dir = dir
	if o.days < 1 {
		return c, cli.Usagef("--days %d must be ≥ 1", o.days)
	}
	c.Validity = time.Duration(o.days) * 24 * time.Hour
	switch {
	case o.workers < 0:
		return c, cli.Usagef("--workers %d must be ≥ 0", o.workers)
	case o.workers > 0 && len(o.workerIDs) > 0:
		return c, cli.Usagef("--workers and --worker-ids are two ways to say the same: give one")
	case o.workers > 0:
		for i := 1; i <= o.workers; i++ {
			c.Workers = append(c.Workers, fmt.Sprintf("w%d", i))
		}
	default:
		c.Workers = o.workerIDs
	}
	if len(o.routes) > 0 {
		cl := o.cluster
		cl.Routes = o.routes
		c.NATS.Cluster = &cl
		if c.NATS.ServerName == "" {
			return c, cli.Usagef("--nats-routes needs --nats-server-name (each server of a cluster needs its own name; '$NATS_SERVER_NAME' reads it from the environment)")
		}
	}
	if err := c.Validate(); err != nil {
		return c, cli.Usage(err)
	}
	return c, nil
}

func newSecurityCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "security",
		Short: "Set up the certificates, NATS credentials and tokens of a secured cluster",
	}
	cmd.AddCommand(newSecurityInitCmd(s))
	return cmd
}

func newSecurityInitCmd(s streams) *cobra.Command {
	o := &securityInitOptions{cfg: secinit.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "init DIR [--coordinator-host H]... [--serve-host H]... [--nats-host H]... [--force]",
		Short: "Write a CA, certificates, per-role NATS credentials, a nats-server configuration and API tokens",
		Long: `security init writes into DIR (created with mode 0700) what a secured cluster
needs (docs/security.md):

  ca.pem, ca-key.pem            CA of the HTTPS and NATS certificates
  raft-ca.pem, raft-ca-key.pem  CA of the raft certificate only
  raft.pem, raft-key.pem        coordinators' raft mutual TLS (--raft-tls-*)
  coordinator.pem, -key.pem     coordinators' HTTPS (--http-tls-*)
  serve.pem, serve-key.pem      cofactor serve's HTTPS
  nats.pem, nats-key.pem        the NATS servers (clients and cluster routes)
  coordinator.nk, worker.nk,    NKey seeds of the three NATS roles (--nats-nkey);
  client.nk                     with --workers N, worker-w1.nk ... worker-wN.nk
                                instead of worker.nk: one identity per worker
  nats.conf                     nats-server configuration: the roles' NKeys and
                                permissions, TLS, JetStream, the cluster routes
  admin.token, read.token       API tokens (--admin-token-file, --read-token-file,
                                --token-file)

Keys, seeds and tokens get mode 0600. Every certificate names localhost,
127.0.0.1 and ::1 besides the hosts given. DIR's files are never overwritten
without --force: the command refuses (exit 2) before writing anything.
--keep-existing leaves a complete DIR as it is and exits 0.`,
		Args: cli.ExactlyOneArg("DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.config(args[0])
			if err != nil {
				return err
			}
			res, err := secinit.Init(c)
			switch {
			case errors.Is(err, secinit.ErrExists), errors.Is(err, secinit.ErrConfig):
				return cli.Usage(err)
			case err != nil:
				return err
			}
			if o.json {
				return cli.WriteJSON(s.out, res)
			}
			for _, f := range res.Files {
				fmt.Fprintln(s.out, filepath.Join(res.Dir, f))
			}
			if res.Kept {
				fmt.Fprintf(s.err, "kept the %d files in %s\n", len(res.Files), res.Dir)
				return nil
			}
			fmt.Fprintf(s.err, "wrote %d files to %s; docs/security.md says which process takes which\n", len(res.Files), res.Dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.cfg.CoordinatorHosts, "coordinator-host", nil, "DNS name or IP address of a coordinator (its --raft-addr and --http-addr host), for the raft and HTTPS certificates; repeat or comma-separate")
	f.StringSliceVar(&o.cfg.ServeHosts, "serve-host", nil, "DNS name or IP address clients reach cofactor serve by")
	f.StringSliceVar(&o.cfg.NATSHosts, "nats-host", nil, "DNS name or IP address of a NATS server (in clients' --nats URLs and the cluster routes)")
	f.StringVar(&o.cfg.ConfigDir, "config-dir", "", "where the NATS servers find DIR, for the paths in nats.conf (default: DIR, absolute)")
	f.StringVar(&o.cfg.NATS.Host, "nats-listen", o.cfg.NATS.Host, "address the NATS server listens on for clients")
	f.IntVar(&o.cfg.NATS.Port, "nats-port", o.cfg.NATS.Port, "NATS client port")
	f.IntVar(&o.cfg.NATS.HTTPPort, "nats-http-port", 8222, "NATS monitoring port for health checks (unauthenticated; 0: off)")
	f.StringVar(&o.cfg.NATS.StoreDir, "jetstream-dir", o.cfg.NATS.StoreDir, "JetStream storage directory of the NATS server")
	f.StringVar(&o.cfg.NATS.ServerName, "nats-server-name", "", "the NATS server's name; '$NATS_SERVER_NAME' lets the servers of a cluster share nats.conf")
	f.StringSliceVar(&o.routes, "nats-routes", nil, "route URLs of the NATS cluster's servers (nats-route://n1:6222,...): a 3-server cluster for --replicas 3")
	f.IntVar(&o.cluster.Port, "nats-cluster-port", 6222, "port the NATS servers' routes listen on")
	f.IntVar(&o.workers, "workers", 0, "give workers w1..wN each its own NATS identity (worker-wI.nk: it receives only its own commands and row requests) instead of the shared worker.nk")
	f.StringSliceVar(&o.workerIDs, "worker-ids", nil, "the same as --workers, for these worker IDs")
	f.IntVar(&o.days, "days", 365, "certificates' validity in days (the CAs': twice as long)")
	f.BoolVar(&o.cfg.Force, "force", false, "overwrite DIR's files")
	f.BoolVar(&o.cfg.KeepExisting, "keep-existing", false, "do nothing (exit 0) when DIR holds every file already: for a set-up step run at each start")
	f.BoolVar(&o.json, "json", false, "print the files and the roles' public NKeys as one JSON object")
	return cmd
}
