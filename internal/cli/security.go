package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/httpauth"
	"github.com/cofactor-ml/cofactor/transport"
)

// Environment variables of the HTTP servers' tokens (besides the files).
const (
	EnvAdminToken = "COFACTOR_ADMIN_TOKEN"
	EnvReadToken  = "COFACTOR_READ_TOKEN"
)

// NATSFlags are how a process authenticates to NATS. Secrets come from
// files or the environment ($COFACTOR_NATS_PASSWORD), never from flags.
type NATSFlags struct {
	Sec transport.Security
}

// AddFlags registers the --nats-* flags on cmd.
func (o *NATSFlags) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Sec.User, "nats-user", "", "NATS user name; the password comes from $"+transport.EnvNATSPassword+" or --nats-password-file (default $"+transport.EnvNATSUser+")")
	f.StringVar(&o.Sec.PasswordFile, "nats-password-file", "", "file holding the NATS password")
	f.StringVar(&o.Sec.NKeySeedFile, "nats-nkey", "", "NKey seed file (SU...) to authenticate to NATS with")
	f.StringVar(&o.Sec.CredsFile, "nats-creds", "", "NATS credentials file (JWT and seed, for servers in operator mode)")
	f.StringVar(&o.Sec.CAFile, "nats-ca", "", "PEM file of the CA that signed the NATS server's certificate (turns TLS on)")
	f.StringVar(&o.Sec.CertFile, "nats-cert", "", "client certificate for NATS servers that verify clients")
	f.StringVar(&o.Sec.KeyFile, "nats-key", "", "key of --nats-cert")
}

// Security returns the flags' Security with the environment applied,
// checked (a usage error when it does not hold together).
func (o *NATSFlags) Security() (transport.Security, error) {
	s := o.Sec.FromEnv()
	if s.NKeySeedFile != "" || s.CredsFile != "" {
		// The environment's user is for password logins only.
		if o.Sec.User == "" {
			s.User, s.Password = "", ""
		}
	}
	if err := s.Validate(); err != nil {
		return s, Usage(err)
	}
	return s, nil
}

// Dial connects to url as name with the flags' security.
func (o *NATSFlags) Dial(url, name string) (*nats.Conn, error) {
	s, err := o.Security()
	if err != nil {
		return nil, err
	}
	opts, err := s.Options()
	if err != nil {
		return nil, Usage(err)
	}
	return transport.Dial(url, name, opts...)
}

// OpenStore opens the snapshot store u as NATS client name, with the
// flags' credentials and TLS for any server it dials. The cluster's own
// store (u.Kind StoreCluster) is reached on clusterNATS, a NATS URL the
// caller found (a --nats flag, or the coordinators' /v1/config). done
// releases the store and its connection.
func (o *NATSFlags) OpenStore(ctx context.Context, u checkpoint.StoreURI, clusterNATS, name string) (repo *checkpoint.Repo, done func(), err error) {
	if u.Kind != checkpoint.StoreCluster {
		sec, err := o.Security()
		if err != nil {
			return nil, nil, err
		}
		r, err := checkpoint.OpenStore(ctx, u, checkpoint.OpenOptions{Security: sec, Name: name})
		if err != nil {
			return nil, nil, err
		}
		return r, r.Close, nil
	}
	if clusterNATS == "" {
		return nil, nil, Usagef("the cluster's store needs a NATS URL")
	}
	nc, err := o.Dial(clusterNATS, name)
	if err != nil {
		return nil, nil, err
	}
	r, err := checkpoint.OpenStore(ctx, u, checkpoint.OpenOptions{Conn: nc})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return r, func() { r.Close(); nc.Close() }, nil
}

// HTTPServerFlags secure an HTTP API: TLS and the two roles' tokens.
type HTTPServerFlags struct {
	Cert, Key               string
	adminFile, readFile     string
	AdminTokens, ReadTokens []string
	// Insecure lets the daemon listen beyond loopback with TLS or tokens
	// missing (CheckExposure).
	Insecure bool
}

// AddFlags registers the TLS and token flags on cmd; admin adds the
// admin tokens' flag.
func (o *HTTPServerFlags) AddFlags(cmd *cobra.Command, admin bool) {
	f := cmd.Flags()
	f.StringVar(&o.Cert, "http-tls-cert", "", "PEM certificate to serve HTTPS with")
	f.StringVar(&o.Key, "http-tls-key", "", "key of --http-tls-cert")
	if admin {
		f.StringVar(&o.adminFile, "admin-token-file", "", "file of admin tokens, one a line (submit, cancel, membership, schedules, drain; default $"+EnvAdminToken+")")
	}
	f.StringVar(&o.readFile, "read-token-file", "", "file of read-only tokens, one a line (status, jobs, snapshots; default $"+EnvReadToken+")")
	f.BoolVar(&o.Insecure, "insecure", false, "start even when listening beyond loopback without TLS and tokens (protected mode off; docs/security.md)")
}

// Exposure describes the HTTP listener at addr (given by flag) for
// CheckExposure: it needs a certificate, and tokens of the role the
// server requires of every caller (admin for a coordinator, whose members
// also call each other with it; read for serve). Call it after Load.
func (o *HTTPServerFlags) Exposure(flag, addr string, admin bool) Exposure {
	e := Exposure{Flag: flag, Addr: addr}
	if o.Cert == "" {
		e.Missing = append(e.Missing, "--http-tls-cert")
	}
	switch {
	case admin && len(o.AdminTokens) == 0:
		e.Missing = append(e.Missing, "--admin-token-file")
	case !admin && len(o.ReadTokens) == 0:
		e.Missing = append(e.Missing, "--read-token-file")
	}
	return e
}

// Load reads the token files (or the environment).
func (o *HTTPServerFlags) Load() error {
	var err error
	if o.adminFile != "" {
		if o.AdminTokens, err = httpauth.ReadTokenFiles(o.adminFile); err != nil {
			return Usage(fmt.Errorf("--admin-token-file: %w", err))
		}
	} else if v := strings.TrimSpace(os.Getenv(EnvAdminToken)); v != "" {
		o.AdminTokens = []string{v}
	}
	if o.readFile != "" {
		if o.ReadTokens, err = httpauth.ReadTokenFiles(o.readFile); err != nil {
			return Usage(fmt.Errorf("--read-token-file: %w", err))
		}
	} else if v := strings.TrimSpace(os.Getenv(EnvReadToken)); v != "" {
		o.ReadTokens = []string{v}
	}
	return nil
}

// Listen opens addr, with TLS when a certificate is given, and returns
// the URL scheme.
func (o *HTTPServerFlags) Listen(addr string) (net.Listener, string, error) {
	cfg, err := httpauth.ServerTLS(o.Cert, o.Key)
	if err != nil {
		return nil, "", Usage(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--http-addr: %w", err)
	}
	if cfg == nil {
		return ln, "http", nil
	}
	return tls.NewListener(ln, cfg), "https", nil
}

// StoreFlagError words a store URI's parse error after the flag that
// gave it: `--store "dir:" names no directory`, a usage error.
func StoreFlagError(flag string, err error) error {
	var ue *checkpoint.URIError
	if errors.As(err, &ue) {
		return Usagef("%s %q %s", flag, ue.URI, ue.Reason)
	}
	return Usage(fmt.Errorf("%s: %w", flag, err))
}
