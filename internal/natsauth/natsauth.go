// Package natsauth owns cofactor's NATS roles: which subjects a
// coordinator, a worker and a client (cofactor serve, cofactor snapshot)
// may publish and subscribe to, and the nats-server configuration that
// grants them.
//
// The permissions are allow lists: a role may use only what it needs.
//
//   - worker: publishes heartbeats and reports, requests rows from other
//     workers, answers the requests it receives (allow_responses), and uses
//     the JetStream API of the block and snapshot buckets only (and the
//     pointer bucket's API, without writing a pointer). It cannot
//     publish a worker command (cofactor.w.*.cmd): only coordinators
//     command workers. It cannot delete a stream.
//   - coordinator: commands workers, answers reports, and uses all of
//     JetStream (it creates, prunes and deletes buckets).
//   - client: reads the snapshot bucket and the latest-snapshot pointers;
//     it publishes nothing but JetStream API requests on those two
//     buckets (never a stream deletion or purge) and cannot publish into
//     them.
//
// The same [Permissions] feed both the generated nats-server
// configuration ([WriteServerConfig]) and the embedded server of tests
// (transport.EmbeddedOptions.Users), so what tests prove is what a
// deployed server enforces.
package natsauth

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/transport"
)

// Role is a kind of NATS user.
type Role string

// The roles.
const (
	Coordinator Role = "coordinator"
	Worker      Role = "worker"
	Client      Role = "client"
)

// Roles lists the roles in a fixed order.
var Roles = []Role{Coordinator, Worker, Client}

// ErrRole: a role name that is not one of Roles.
var ErrRole = errors.New("natsauth: unknown role")

// ParseRole parses a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("%w %q: want coordinator, worker or client", ErrRole, s)
}

// inbox is where nats.go receives replies (its default inbox prefix).
const inbox = "_INBOX.>"

// streamAPI is the JetStream API subjects about one stream: info,
// create, update, purge, message get, direct get, consumer create/delete.
func streamAPI(stream string) []string {
	return []string{
		"$JS.API.*.*." + stream,
		"$JS.API.*.*." + stream + ".>",
		"$JS.API.*.*.*." + stream,
		"$JS.API.*.*.*." + stream + ".>",
	}
}

func objStream(bucket string) string { return "OBJ_" + bucket }
func kvStream(bucket string) string  { return "KV_" + bucket }

// Permissions returns a role's permissions.
func Permissions(r Role) (transport.Permissions, error) {
	cmd := transport.WorkerCmdSubject("*")
	rows := transport.WorkerRowsSubject("*")
	switch r {
	case Worker:
		pub := []string{transport.SubjectHeartbeat, transport.SubjectReport, rows, "$JS.API.INFO"}
		for _, b := range []string{wire.BlockBucket, checkpoint.SnapshotBucket} {
			pub = append(pub, streamAPI(objStream(b))...)
			pub = append(pub, "$O."+b+".>")
		}
		// Opening the snapshot store opens its pointer bucket too;
		// moving a pointer ($KV.) stays the coordinators' job.
		pub = append(pub, streamAPI(kvStream(checkpoint.LatestBucket))...)
		return transport.Permissions{
			PublishAllow:   pub,
			PublishDeny:    []string{cmd, "$JS.API.STREAM.DELETE.>"},
			SubscribeAllow: []string{cmd, rows, inbox},
			Responses:      true,
		}, nil
	case Coordinator:
		return transport.Permissions{
			PublishAllow:   []string{cmd, "$JS.API.>", "$O.>", "$KV.>"},
			SubscribeAllow: []string{transport.SubjectHeartbeat, transport.SubjectReport, inbox},
			Responses:      true,
		}, nil
	case Client:
		pub := []string{"$JS.API.INFO"}
		pub = append(pub, streamAPI(objStream(checkpoint.SnapshotBucket))...)
		pub = append(pub, streamAPI(kvStream(checkpoint.LatestBucket))...)
		return transport.Permissions{
			PublishAllow:   pub,
			PublishDeny:    []string{"$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>"},
			SubscribeAllow: []string{inbox},
			Responses:      true,
		}, nil
	}
	return transport.Permissions{}, fmt.Errorf("%w %q", ErrRole, r)
}

// User is one NATS user of a role: a name whose password the server
// reads from an environment variable, or an NKey public key.
type User struct {
	Role Role
	// Name and PasswordEnv: the configuration says password: $PasswordEnv,
	// which nats-server resolves from its environment when it loads the
	// file, so the file holds no secret.
	Name, PasswordEnv string
	// NKey is the user's public NKey ("U..."); it replaces Name and
	// PasswordEnv.
	NKey string
}

// ServerConfig is what [WriteServerConfig] writes.
type ServerConfig struct {
	// Host and Port the server listens on (defaults 0.0.0.0 and 4222).
	Host string
	Port int
	// StoreDir enables JetStream with this storage directory ("" leaves
	// JetStream off; cofactor needs it unless blocks and snapshots are on
	// a shared filesystem).
	StoreDir string
	// MaxPayload in bytes; 0 keeps the server's default.
	MaxPayload int
	// TLSCert and TLSKey turn TLS on; TLSCA with VerifyClients makes
	// clients present a certificate signed by it.
	TLSCert, TLSKey, TLSCA string
	VerifyClients          bool
	// Users of the roles; at least one.
	Users []User
}

// ErrConfig is wrapped by Validate's errors.
var ErrConfig = errors.New("natsauth: invalid server configuration")

// Validate checks c.
func (c ServerConfig) Validate() error {
	if len(c.Users) == 0 {
		return fmt.Errorf("%w: no users", ErrConfig)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("%w: TLS needs both a certificate and a key", ErrConfig)
	}
	if c.VerifyClients && (c.TLSCert == "" || c.TLSCA == "") {
		return fmt.Errorf("%w: verifying client certificates needs TLS and a CA", ErrConfig)
	}
	seen := map[string]bool{}
	for _, u := range c.Users {
		if _, err := Permissions(u.Role); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
		key := u.Name
		if u.NKey != "" {
			key = u.NKey
			if !strings.HasPrefix(u.NKey, "U") {
				return fmt.Errorf("%w: NKey %q of the %s role is not a user public key (it starts with U)", ErrConfig, u.NKey, u.Role)
			}
		} else if u.Name == "" || u.PasswordEnv == "" {
			return fmt.Errorf("%w: a %s user needs a name and a password variable, or an NKey", ErrConfig, u.Role)
		}
		if seen[key] {
			return fmt.Errorf("%w: user %s listed twice", ErrConfig, key)
		}
		seen[key] = true
	}
	return nil
}

// WriteServerConfig writes a nats-server configuration file for c.
func WriteServerConfig(w io.Writer, c ServerConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	host, port := c.Host, c.Port
	if host == "" {
		host = "0.0.0.0"
	}
	if port == 0 {
		port = 4222
	}
	var b strings.Builder
	b.WriteString("# nats-server configuration for cofactor, written by `cofactor nats-config`.\n")
	b.WriteString("# Passwords are read from the environment when the server starts.\n")
	fmt.Fprintf(&b, "host: %s\nport: %d\n", quote(host), port)
	if c.MaxPayload > 0 {
		fmt.Fprintf(&b, "max_payload: %d\n", c.MaxPayload)
	}
	if c.StoreDir != "" {
		fmt.Fprintf(&b, "jetstream {\n  store_dir: %s\n}\n", quote(c.StoreDir))
	}
	if c.TLSCert != "" {
		fmt.Fprintf(&b, "tls {\n  cert_file: %s\n  key_file: %s\n", quote(c.TLSCert), quote(c.TLSKey))
		if c.TLSCA != "" {
			fmt.Fprintf(&b, "  ca_file: %s\n", quote(c.TLSCA))
		}
		if c.VerifyClients {
			b.WriteString("  verify: true\n")
		}
		b.WriteString("  timeout: 2\n}\n")
	}
	b.WriteString("authorization {\n")
	used := map[Role]bool{}
	for _, u := range c.Users {
		used[u.Role] = true
	}
	for _, r := range Roles {
		if !used[r] {
			continue // nats-server reads an unused variable as an unknown field
		}
		p, _ := Permissions(r)
		fmt.Fprintf(&b, "  %s = {\n", strings.ToUpper(string(r)))
		fmt.Fprintf(&b, "    publish = { allow = %s", list(p.PublishAllow))
		if len(p.PublishDeny) > 0 {
			fmt.Fprintf(&b, ", deny = %s", list(p.PublishDeny))
		}
		b.WriteString(" }\n")
		fmt.Fprintf(&b, "    subscribe = { allow = %s }\n", list(p.SubscribeAllow))
		if p.Responses {
			b.WriteString("    allow_responses = true\n")
		}
		b.WriteString("  }\n")
	}
	b.WriteString("  users = [\n")
	users := append([]User(nil), c.Users...)
	sort.SliceStable(users, func(i, j int) bool { return roleIndex(users[i].Role) < roleIndex(users[j].Role) })
	for _, u := range users {
		role := strings.ToUpper(string(u.Role))
		if u.NKey != "" {
			fmt.Fprintf(&b, "    { nkey: %s, permissions: $%s }\n", u.NKey, role)
		} else {
			fmt.Fprintf(&b, "    { user: %s, password: $%s, permissions: $%s }\n", quote(u.Name), u.PasswordEnv, role)
		}
	}
	b.WriteString("  ]\n}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func roleIndex(r Role) int {
	for i, x := range Roles {
		if x == r {
			return i
		}
	}
	return len(Roles)
}

// quote writes s as a double-quoted string of the configuration format
// (JSON escaping is a subset it reads).
func quote(s string) string { return strconv.Quote(s) }

func list(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// EmbeddedUsers converts users with their passwords (by PasswordEnv name)
// into an embedded server's users, with the roles' permissions.
func EmbeddedUsers(users []User, passwords map[string]string) ([]transport.EmbeddedUser, error) {
	out := make([]transport.EmbeddedUser, 0, len(users))
	for _, u := range users {
		p, err := Permissions(u.Role)
		if err != nil {
			return nil, err
		}
		out = append(out, transport.EmbeddedUser{User: u.Name, Password: passwords[u.PasswordEnv], NKey: u.NKey, Permissions: &p})
	}
	return out, nil
}
