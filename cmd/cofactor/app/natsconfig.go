package app

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/natsauth"
)

// natsConfigOptions are the flags of `cofactor nats-config`.
type natsConfigOptions struct {
	cfg   natsauth.ServerConfig
	users map[natsauth.Role]*string
	nkeys map[natsauth.Role]*string
	out   string
}

// PasswordEnv names the environment variable the generated configuration
// reads a role's password from.
func passwordEnv(r natsauth.Role) string {
	return "COFACTOR_NATS_" + strings.ToUpper(string(r)) + "_PASSWORD"
}

func (o *natsConfigOptions) build() error {
	o.cfg.Users = nil
	for _, r := range natsauth.Roles {
		switch {
		case *o.nkeys[r] != "":
			o.cfg.Users = append(o.cfg.Users, natsauth.User{Role: r, NKey: *o.nkeys[r]})
		case *o.users[r] != "":
			o.cfg.Users = append(o.cfg.Users, natsauth.User{Role: r, Name: *o.users[r], PasswordEnv: passwordEnv(r)})
		}
	}
	if err := o.cfg.Validate(); err != nil {
		return cli.Usage(err)
	}
	return nil
}

func newNATSConfigCmd(s streams) *cobra.Command {
	o := &natsConfigOptions{users: map[natsauth.Role]*string{}, nkeys: map[natsauth.Role]*string{}}
	cmd := &cobra.Command{
		Use:   "nats-config [--tls-cert F --tls-key F [--tls-ca F --verify-clients]] [--ROLE-nkey KEY] [--out FILE]",
		Short: "Write a nats-server configuration with cofactor's roles and their permissions",
		Long: `nats-config writes a nats-server configuration whose users are cofactor's
three roles, each allowed only the subjects it needs (docs/security.md):

  coordinator  commands workers, answers reports, all of JetStream
  worker       heartbeats, reports, row requests and answers, the block and
               snapshot buckets; it cannot command workers
  client       cofactor serve and snapshot: reads snapshots and pointers

A role logs in with a user name and a password the server reads from its
environment when it starts ($COFACTOR_NATS_<ROLE>_PASSWORD; the file holds
no secret), or with an NKey (--ROLE-nkey, a public key from
'cofactor nats-config nkey'). --ROLE-user "" leaves a role out.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.build(); err != nil {
				return err
			}
			var b bytes.Buffer
			if err := natsauth.WriteServerConfig(&b, o.cfg); err != nil {
				return cli.Usage(err)
			}
			if o.out == "" {
				_, err := s.out.Write(b.Bytes())
				return err
			}
			if err := cli.WriteFileAtomic(o.out, func(w io.Writer) error { _, err := w.Write(b.Bytes()); return err }); err != nil {
				return err
			}
			return os.Chmod(o.out, 0o600)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cfg.Host, "host", "0.0.0.0", "address the server listens on")
	f.IntVar(&o.cfg.Port, "port", 4222, "client port")
	f.StringVar(&o.cfg.StoreDir, "jetstream-dir", "", "JetStream storage directory (turns JetStream on)")
	f.IntVar(&o.cfg.MaxPayload, "max-payload", 0, "max_payload in bytes (default: the server's 1 MiB)")
	f.StringVar(&o.cfg.TLSCert, "tls-cert", "", "server certificate (turns TLS on)")
	f.StringVar(&o.cfg.TLSKey, "tls-key", "", "key of --tls-cert")
	f.StringVar(&o.cfg.TLSCA, "tls-ca", "", "CA of client certificates (with --verify-clients)")
	f.BoolVar(&o.cfg.VerifyClients, "verify-clients", false, "require client certificates signed by --tls-ca")
	for _, r := range natsauth.Roles {
		o.users[r], o.nkeys[r] = new(string), new(string)
		f.StringVar(o.users[r], string(r)+"-user", "cofactor-"+string(r), "user name of the "+string(r)+" role (password from $"+passwordEnv(r)+")")
		f.StringVar(o.nkeys[r], string(r)+"-nkey", "", "public NKey (U...) of the "+string(r)+" role, instead of a user and password")
	}
	f.StringVar(&o.out, "out", "", "write the configuration to this file (default: stdout)")
	cmd.AddCommand(newNKeyCmd(s))
	return cmd
}

func newNKeyCmd(s streams) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "nkey --out SEED_FILE",
		Short: "Create an NKey user: write its seed to a file (mode 0600) and print its public key",
		Long: `nkey creates a NATS user NKey. The seed (the secret) goes to --out, which must
not exist yet; the public key (U...), which the server's configuration names,
is printed on stdout. Give the seed file to the process (--nats-nkey FILE) and
the public key to 'cofactor nats-config --ROLE-nkey'.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return cli.Usagef("--out SEED_FILE is required")
			}
			kp, err := nkeys.CreateUser()
			if err != nil {
				return err
			}
			seed, err := kp.Seed()
			if err != nil {
				return err
			}
			pub, err := kp.PublicKey()
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return cli.Usage(fmt.Errorf("--out: %w", err))
			}
			if _, err := f.Write(append(seed, '\n')); err != nil {
				f.Close()
				os.Remove(out)
				return err
			}
			if err := f.Close(); err != nil {
				os.Remove(out)
				return err
			}
			fmt.Fprintln(s.out, pub)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the seed to (created, mode 0600)")
	return cmd
}
