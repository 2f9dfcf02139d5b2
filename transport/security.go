package transport

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// Environment variables read by [Security.FromEnv]. Secrets travel in the
// environment or in files, never in argv, where any local user can read them
// from the process table.
const (
	// EnvNATSPassword holds the password of Security.User.
	EnvNATSPassword = "COFACTOR_NATS_PASSWORD"
	// EnvNATSUser supplies Security.User when no flag sets it.
	EnvNATSUser = "COFACTOR_NATS_USER"
)

// ErrSecurity is wrapped by the errors of [Security.Validate] and
// [Security.Options].
var ErrSecurity = errors.New("transport: NATS security")

// Security is how a process authenticates to NATS and checks the server:
// one of user/password, an NKey seed file or a credentials (JWT) file, and
// optionally TLS with a custom CA and a client certificate. The zero value
// means a plain, unauthenticated connection (the all-in-one mode). It is
// the one place coordinator, worker and the cofactor commands get their
// connection options from, so every process speaks to a secured server the
// same way.
//
// Security never holds a secret in a field that is printed: String omits
// the password, and [Security.Options] reads the NKey seed and credentials
// files when called, so a seed is never kept in memory longer than the
// nats.go client needs it.
type Security struct {
	// User and Password authenticate by name; Password comes from
	// PasswordFile or the environment, never a flag.
	User     string
	Password string
	// PasswordFile holds Password (first line; trailing white space
	// dropped).
	PasswordFile string
	// NKeySeedFile holds an NKey user seed ("SU..."); the server knows its
	// public key.
	NKeySeedFile string
	// CredsFile is a NATS credentials file (user JWT and NKey seed), for
	// servers run in operator mode.
	CredsFile string
	// CAFile holds the PEM certificate(s) that signed the server's
	// certificate; set it to use TLS with a private CA. A tls:// URL with no
	// CAFile trusts the system roots.
	CAFile string
	// CertFile and KeyFile are this client's certificate and key, for
	// servers that verify clients (mutual TLS).
	CertFile, KeyFile string
	// InboxPrefix replaces nats.go's "_INBOX" reply-subject prefix
	// (nats.CustomInboxPrefix); a worker sets [WorkerInboxPrefix] so that
	// its own identity needs to receive on its own inbox subjects only.
	// Request/reply, JetStream and Object Store calls all use it.
	InboxPrefix string
}

// FromEnv fills the password from EnvNATSPassword and the user from
// EnvNATSUser when they are not already set, and returns s.
func (s Security) FromEnv() Security {
	if s.User == "" {
		s.User = os.Getenv(EnvNATSUser)
	}
	if s.Password == "" && s.PasswordFile == "" {
		s.Password = os.Getenv(EnvNATSPassword)
	}
	return s
}

// Enabled reports whether s asks for anything beyond a plain connection.
func (s Security) Enabled() bool {
	return s.User != "" || s.NKeySeedFile != "" || s.CredsFile != "" || s.CAFile != "" || s.CertFile != ""
}

// String describes s without secrets, for logs.
func (s Security) String() string {
	var parts []string
	switch {
	case s.CredsFile != "":
		parts = append(parts, "auth=creds")
	case s.NKeySeedFile != "":
		parts = append(parts, "auth=nkey")
	case s.User != "":
		parts = append(parts, "auth=user:"+s.User)
	default:
		parts = append(parts, "auth=none")
	}
	if s.CAFile != "" || s.CertFile != "" {
		parts = append(parts, "tls")
	}
	if s.CertFile != "" {
		parts = append(parts, "client-cert")
	}
	return strings.Join(parts, " ")
}

// Validate checks that s names one way to authenticate and complete pairs
// of files; it does not read the files.
func (s Security) Validate() error {
	n := 0
	for _, set := range []bool{s.User != "", s.NKeySeedFile != "", s.CredsFile != ""} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return fmt.Errorf("%w: give one of user/password, an NKey seed file or a credentials file, not %d", ErrSecurity, n)
	case s.User == "" && (s.Password != "" || s.PasswordFile != ""):
		return fmt.Errorf("%w: a password needs a user name (--nats-user or $%s)", ErrSecurity, EnvNATSUser)
	case s.User != "" && s.Password == "" && s.PasswordFile == "":
		return fmt.Errorf("%w: user %q has no password: set $%s or pass --nats-password-file FILE", ErrSecurity, s.User, EnvNATSPassword)
	case s.Password != "" && s.PasswordFile != "":
		return fmt.Errorf("%w: the password comes from both $%s and a password file; unset one", ErrSecurity, EnvNATSPassword)
	case (s.CertFile == "") != (s.KeyFile == ""):
		return fmt.Errorf("%w: a client certificate needs both --nats-cert and --nats-key", ErrSecurity)
	}
	return nil
}

// Options returns the nats.go options that apply s: authentication first,
// then TLS. It reads the password file; the NKey seed and credentials
// files are read by nats.go at each (re)connect.
func (s Security) Options() ([]nats.Option, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var opts []nats.Option
	switch {
	case s.CredsFile != "":
		if err := readable(s.CredsFile, "credentials file"); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(s.CredsFile))
	case s.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(s.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("%w: NKey seed file %s: %w", ErrSecurity, s.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case s.User != "":
		pw := s.Password
		if s.PasswordFile != "" {
			var err error
			if pw, err = ReadSecretFile(s.PasswordFile); err != nil {
				return nil, fmt.Errorf("%w: password file: %w", ErrSecurity, err)
			}
		}
		opts = append(opts, nats.UserInfo(s.User, pw))
	}
	if s.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(s.InboxPrefix))
	}
	if s.CAFile != "" {
		if err := readable(s.CAFile, "CA file"); err != nil {
			return nil, err
		}
		opts = append(opts, nats.RootCAs(s.CAFile))
	}
	if s.CertFile != "" {
		if err := readable(s.CertFile, "client certificate"); err != nil {
			return nil, err
		}
		if err := readable(s.KeyFile, "client key"); err != nil {
			return nil, err
		}
		opts = append(opts, nats.ClientCert(s.CertFile, s.KeyFile))
	}
	return opts, nil
}

func readable(path, what string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSecurity, what, err)
	}
	return f.Close()
}

// MaxSecretFile bounds a secret file ([ReadSecretFile]).
const MaxSecretFile = 64 << 10

// ReadSecretFile reads a password or token file: its first non-empty line,
// with surrounding white space removed. An empty file is an error, so that
// a missing secret is not mistaken for an empty one.
func ReadSecretFile(path string) (string, error) {
	lines, err := ReadSecretLines(path)
	if err != nil {
		return "", err
	}
	return lines[0], nil
}

// ReadSecretLines reads a file of secrets, one a line (blank lines and
// lines starting with '#' are skipped). Several lines let a token be
// rotated: the old and the new one are both accepted for a while.
func ReadSecretLines(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxSecretFile {
		return nil, fmt.Errorf("%s: %d bytes, a secret file holds at most %d", path, st.Size(), MaxSecretFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no secret in the file (it is empty)", path)
	}
	return out, nil
}

// Permissions are what one NATS user may publish and subscribe to, in
// nats-server's terms: allow and deny lists of subjects (with wildcards),
// deny winning over allow, and Responses letting the user answer requests
// it received whatever their reply subject.
type Permissions struct {
	PublishAllow, PublishDeny     []string
	SubscribeAllow, SubscribeDeny []string
	Responses                     bool
}
