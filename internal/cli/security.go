package cli

import (
	"context"
	"crypto/tls"
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

// natsFlags are how a process authenticates to NATS. Secrets come from
// files or the environment ($COFACTOR_NATS_PASSWORD), never from flags.
type natsFlags struct {
	sec transport.Security
}

func (o *natsFlags) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.sec.User, "nats-user", "", "NATS user name; the password comes from $"+transport.EnvNATSPassword+" or --nats-password-file (default $"+transport.EnvNATSUser+")")
	f.StringVar(&o.sec.PasswordFile, "nats-password-file", "", "file holding the NATS password")
	f.StringVar(&o.sec.NKeySeedFile, "nats-nkey", "", "NKey seed file (SU...) to authenticate to NATS with")
	f.StringVar(&o.sec.CredsFile, "nats-creds", "", "NATS credentials file (JWT and seed, for servers in operator mode)")
	f.StringVar(&o.sec.CAFile, "nats-ca", "", "PEM file of the CA that signed the NATS server's certificate (turns TLS on)")
	f.StringVar(&o.sec.CertFile, "nats-cert", "", "client certificate for NATS servers that verify clients")
	f.StringVar(&o.sec.KeyFile, "nats-key", "", "key of --nats-cert")
}

// security returns the flags' Security with the environment applied,
// checked.
func (o *natsFlags) security() (transport.Security, error) {
	s := o.sec.FromEnv()
	if s.NKeySeedFile != "" || s.CredsFile != "" {
		// The environment's user is for password logins only.
		if o.sec.User == "" {
			s.User, s.Password = "", ""
		}
	}
	if err := s.Validate(); err != nil {
		return s, usageError{err}
	}
	return s, nil
}

// dial connects to url as name with the flags' security.
func (o *natsFlags) dial(url, name string) (*nats.Conn, error) {
	s, err := o.security()
	if err != nil {
		return nil, err
	}
	opts, err := s.Options()
	if err != nil {
		return nil, usageError{err}
	}
	return transport.Dial(url, name, opts...)
}

// openStore opens a store URI, dialling nats:// and tls:// URIs itself so
// that the flags' credentials and TLS apply.
func (o *natsFlags) openStore(ctx context.Context, uri, name string) (*checkpoint.Repo, func(), error) {
	if !strings.HasPrefix(uri, "nats://") && !strings.HasPrefix(uri, "tls://") {
		r, err := checkpoint.OpenURI(ctx, uri, nil)
		if err != nil {
			return nil, nil, err
		}
		return r, r.Close, nil
	}
	nc, err := o.dial(uri, name)
	if err != nil {
		return nil, nil, err
	}
	r, err := checkpoint.OpenURI(ctx, "nats", nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return r, func() { r.Close(); nc.Close() }, nil
}

// httpServerFlags secure an HTTP API: TLS and the two roles' tokens.
type httpServerFlags struct {
	cert, key            string
	adminFile, readFile  string
	adminTokens, readTok []string
}

func (o *httpServerFlags) addFlags(cmd *cobra.Command, admin bool) {
	f := cmd.Flags()
	f.StringVar(&o.cert, "http-tls-cert", "", "PEM certificate to serve HTTPS with")
	f.StringVar(&o.key, "http-tls-key", "", "key of --http-tls-cert")
	if admin {
		f.StringVar(&o.adminFile, "admin-token-file", "", "file of admin tokens, one a line (submit, cancel, membership, schedules, drain; default $"+EnvAdminToken+")")
	}
	f.StringVar(&o.readFile, "read-token-file", "", "file of read-only tokens, one a line (status, jobs, snapshots; default $"+EnvReadToken+")")
}

// load reads the token files (or the environment).
func (o *httpServerFlags) load() error {
	var err error
	if o.adminFile != "" {
		if o.adminTokens, err = httpauth.ReadTokenFiles(o.adminFile); err != nil {
			return usageError{fmt.Errorf("--admin-token-file: %w", err)}
		}
	} else if v := strings.TrimSpace(os.Getenv(EnvAdminToken)); v != "" {
		o.adminTokens = []string{v}
	}
	if o.readFile != "" {
		if o.readTok, err = httpauth.ReadTokenFiles(o.readFile); err != nil {
			return usageError{fmt.Errorf("--read-token-file: %w", err)}
		}
	} else if v := strings.TrimSpace(os.Getenv(EnvReadToken)); v != "" {
		o.readTok = []string{v}
	}
	return nil
}

// listen opens addr, with TLS when a certificate is given, and returns
// the URL scheme.
func (o *httpServerFlags) listen(addr string) (net.Listener, string, error) {
	cfg, err := httpauth.ServerTLS(o.cert, o.key)
	if err != nil {
		return nil, "", usageError{err}
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
