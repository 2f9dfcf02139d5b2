// Package natsauth owns cofactor's NATS roles: which subjects a
// coordinator, a worker and a client (cofactor serve, cofactor snapshot)
// may publish and subscribe to, the JetStream buckets the cluster keeps,
// and the nats-server configuration that grants them.
//
// The permissions are exact allow lists: a role may use only what it
// needs, and JetStream API subjects are granted one verb and one stream
// at a time (never "$JS.API.*.*.<stream>", which also matches a stream's
// UPDATE, PURGE and CREATE).
//
//   - coordinator: commands workers, answers reports, and uses all of
//     JetStream: it creates the buckets ([EnsureBuckets]), prunes them
//     and moves the latest-snapshot pointers.
//   - worker: publishes heartbeats and reports, requests rows from other
//     workers, answers the requests it receives (allow_responses); it
//     writes (and purges) the block bucket, writes the snapshot bucket,
//     and reads the pointer and dataset buckets ([Grant]). It cannot command workers,
//     move a pointer, or create, update, purge or delete a stream of
//     another's.
//   - a worker's own identity ([WorkerPermissions], User.WorkerID): the
//     worker role narrowed to receiving that worker's subjects only, so
//     that one worker's credentials cannot read or answer another's
//     commands and row requests.
//   - client: reads the snapshot and pointer buckets, and stores, replaces
//     and removes datasets (cofactor dataset put|rm: write and purge on the
//     dataset bucket); it publishes nothing else.
//
// A stream update is the dangerous verb: it can add a subject transform
// or republish rule that routes a subject the role may publish into a
// bucket it may not write (a forged model pointer). Only coordinators
// may create or update streams.
//
// The same [Permissions] feed both the generated nats-server
// configuration ([WriteServerConfig]) and the embedded server of tests
// (embedded.Options.Users), so what tests prove is what a
// deployed server enforces; the tests check every JetStream API verb for
// every role and bucket against a real server.
package natsauth

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/dataset"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/transport"
	"github.com/cofactor-ml/cofactor/transport/embedded"
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

// Access is what a role may do with one bucket.
type Access int

// The levels of access, weakest first; each includes the ones before it.
const (
	// NoAccess: no subject of the bucket.
	NoAccess Access = iota
	// Read: look the bucket up (STREAM.INFO), get entries (STREAM.MSG.GET,
	// DIRECT.GET) and read or watch them through ephemeral consumers
	// (CONSUMER.CREATE, CONSUMER.DELETE of the consumers it made).
	Read
	// Write: Read, and publish entries on the bucket's data subjects.
	// Replacing an object with different bytes, or deleting one, also
	// purges the old chunks: without Purge that step is refused (and the
	// old chunks stay until the bucket is pruned).
	Write
	// Purge: Write, and purge the bucket's stream (object replacement and
	// deletion in an Object Store).
	Purge
	// Admin: every JetStream API request about the bucket, creating,
	// updating and deleting its stream included. Only coordinators.
	Admin
)

func (a Access) String() string {
	switch a {
	case NoAccess:
		return "none"
	case Read:
		return "read"
	case Write:
		return "write"
	case Purge:
		return "write+purge"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// grants is the whole policy of the non-coordinator roles: what each may
// do with each bucket (absent: NoAccess). A worker writes rating blocks
// (and replaces them when a partition is redone, hence Purge) and its
// blocks' checkpoint files, and looks the pointer bucket up when it opens
// the snapshot store; it never purges snapshots or moves a pointer. A
// client reads snapshots and pointers. Neither may create, update or
// delete a stream: a stream update can add a subject transform that
// routes a subject the role may publish into a bucket it may not write.
var grants = map[Role]map[string]Access{
	Worker: {
		wire.BlockBucket:          Purge,
		checkpoint.SnapshotBucket: Write,
		checkpoint.LatestBucket:   Read,
		dataset.Bucket:            Read,
	},
	Client: {
		checkpoint.SnapshotBucket: Read,
		checkpoint.LatestBucket:   Read,
		dataset.Bucket:            Purge,
	},
}

// Grant returns what role r may do with bucket (NoAccess for an unknown
// role or bucket).
func Grant(r Role, bucket string) Access {
	if r == Coordinator {
		for _, b := range Buckets {
			if b.Name == bucket {
				return Admin
			}
		}
		return NoAccess
	}
	return grants[r][bucket]
}

// apiSubjects returns the publish subjects that grant a on b: exact
// JetStream API subjects, one verb each, never a wildcard in the verb.
func apiSubjects(b Bucket, a Access) []string {
	s := b.Stream()
	var out []string
	if a >= Read {
		out = append(out,
			"$JS.API.STREAM.INFO."+s,
			"$JS.API.STREAM.MSG.GET."+s,
			"$JS.API.DIRECT.GET."+s,
			"$JS.API.DIRECT.GET."+s+".>",
			"$JS.API.CONSUMER.CREATE."+s,
			"$JS.API.CONSUMER.CREATE."+s+".>",
			"$JS.API.CONSUMER.DELETE."+s+".*",
		)
	}
	if a >= Write {
		out = append(out, b.Data())
	}
	if a >= Purge {
		out = append(out, "$JS.API.STREAM.PURGE."+s)
	}
	return out
}

// Permissions returns a role's permissions.
func Permissions(r Role) (transport.Permissions, error) {
	cmd := transport.WorkerCmdSubject("*")
	rows := transport.WorkerRowsSubject("*")
	// A dataset job's ingest: workers send each other its messages.
	ingest := transport.WorkerIngestSubject("*", "*", 0)
	ingest = ingest[:len(ingest)-1] + "*"
	heartbeat, report := transport.HeartbeatSubject("*"), transport.ReportSubject("*")
	var pub []string
	switch r {
	case Worker:
		pub = []string{heartbeat, report, rows, ingest}
	case Client:
	case Coordinator:
		// Coordinators own JetStream: they create, prune and delete the
		// buckets and move the pointers.
		return transport.Permissions{
			PublishAllow:   []string{cmd, "$JS.API.>", "$O.>", "$KV.>"},
			SubscribeAllow: []string{heartbeat, report, inbox},
			Responses:      true,
		}, nil
	default:
		return transport.Permissions{}, fmt.Errorf("%w %q", ErrRole, r)
	}
	for _, b := range Buckets {
		pub = append(pub, apiSubjects(b, Grant(r, b.Name))...)
	}
	p := transport.Permissions{PublishAllow: pub, SubscribeAllow: []string{inbox}, Responses: true}
	if r == Worker {
		p.SubscribeAllow = []string{cmd, rows, ingest, inbox}
	}
	return p, nil
}

// WorkerPermissions returns the permissions of one worker's own NATS
// identity (User.WorkerID): the worker role's, except that it receives
// only its own subjects — the commands, row requests and ingest messages
// sent to worker id, and the replies under its own inbox prefix
// (transport.WorkerInboxPrefix, which the worker sets on its
// connections) — and publishes heartbeats and reports only on its own
// subjects. Another worker's identity therefore cannot read that
// worker's commands, row requests or replies, nor answer its row
// requests: a row answer can only go to the inbox of a request its
// identity received (allow_responses), and a requester asks only the
// block's owner of the current assignment and checks that the answer is
// for the block, epoch and version it asked. Nor can it heartbeat or
// report in that worker's name: coordinators drop a heartbeat or report
// whose payload names another worker than its subject. It can still
// request rows from any worker and send ingest messages to any.
func WorkerPermissions(id string) (transport.Permissions, error) {
	if err := transport.ValidID(id); err != nil {
		return transport.Permissions{}, fmt.Errorf("%w: worker identity: %w", ErrConfig, err)
	}
	p, err := Permissions(Worker)
	if err != nil {
		return p, err
	}
	ingest := transport.WorkerIngestSubject(id, "*", 0)
	ingest = ingest[:len(ingest)-1] + "*"
	p.SubscribeAllow = []string{transport.WorkerCmdSubject(id), transport.WorkerRowsSubject(id), ingest, transport.WorkerInboxPrefix(id) + ".>"}
	own := map[string]string{transport.HeartbeatSubject("*"): transport.HeartbeatSubject(id), transport.ReportSubject("*"): transport.ReportSubject(id)}
	for i, s := range p.PublishAllow {
		if o, ok := own[s]; ok {
			p.PublishAllow[i] = o
		}
	}
	return p, nil
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
	// WorkerID makes a Worker user the identity of that one worker
	// ([WorkerPermissions]) instead of the role shared by all workers.
	WorkerID string
}

// Permissions returns the user's permissions: its role's, or its own
// worker's with WorkerID.
func (u User) Permissions() (transport.Permissions, error) {
	if u.WorkerID != "" {
		if u.Role != Worker {
			return transport.Permissions{}, fmt.Errorf("%w: a %s user cannot be worker %s's identity", ErrConfig, u.Role, u.WorkerID)
		}
		return WorkerPermissions(u.WorkerID)
	}
	return Permissions(u.Role)
}

// ServerConfig is what [WriteServerConfig] writes.
type ServerConfig struct {
	// Host and Port the server listens on (defaults 0.0.0.0 and 4222).
	Host string
	Port int
	// StoreDir enables JetStream with this storage directory ("" leaves
	// JetStream off; cofactor needs it unless blocks and snapshots are on
	// a shared filesystem). "$NAME" is read from the server's environment.
	StoreDir string
	// MaxPayload in bytes; 0 keeps the server's default.
	MaxPayload int
	// TLSCert and TLSKey turn TLS on; TLSCA with VerifyClients makes
	// clients present a certificate signed by it.
	TLSCert, TLSKey, TLSCA string
	VerifyClients          bool
	// Users of the roles; at least one.
	Users []User
	// ServerName names the server (JetStream in a cluster needs a name
	// unique among its servers). "$NAME" is written as a variable
	// nats-server reads from its environment, so that the servers of a
	// cluster can share one file.
	ServerName string
	// HTTPPort is the monitoring port (health checks); 0 leaves it off.
	HTTPPort int
	// Cluster joins the server to a NATS cluster (JetStream replicas need
	// one); nil runs it alone.
	Cluster *Cluster
}

// Cluster is a NATS cluster's routes. The routes use TLS when the server
// does, with the server's certificate and key, and verify the other
// servers' certificates against TLSCA: only servers with a certificate of
// that CA can join.
type Cluster struct {
	// Name of the cluster ("cofactor" when empty).
	Name string
	// Host and Port the routes listen on (defaults 0.0.0.0 and 6222).
	Host string
	Port int
	// Routes are the other servers' route URLs (nats-route://host:6222);
	// a server may list itself, which it skips.
	Routes []string
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
	if c.Cluster != nil {
		if len(c.Cluster.Routes) == 0 {
			return fmt.Errorf("%w: a cluster needs routes", ErrConfig)
		}
		if c.TLSCert != "" && c.TLSCA == "" {
			return fmt.Errorf("%w: TLS between the cluster's servers needs a CA to verify them", ErrConfig)
		}
		if c.ServerName == "" {
			return fmt.Errorf("%w: a server in a cluster needs a name", ErrConfig)
		}
	}
	seen := map[string]bool{}
	workers := map[string]bool{}
	for _, u := range c.Users {
		if _, err := u.Permissions(); err != nil {
			if errors.Is(err, ErrConfig) {
				return err
			}
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if u.WorkerID != "" {
			if workers[u.WorkerID] {
				return fmt.Errorf("%w: two identities for worker %s", ErrConfig, u.WorkerID)
			}
			workers[u.WorkerID] = true
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
	b.WriteString("# nats-server configuration of cofactor's roles, written by `cofactor nats-config` or `cofactor security init`.\n")
	b.WriteString("# Passwords are read from the environment when the server starts.\n")
	fmt.Fprintf(&b, "host: %s\nport: %d\n", quote(host), port)
	if c.ServerName != "" {
		fmt.Fprintf(&b, "server_name: %s\n", valueOrVariable(c.ServerName))
	}
	if c.HTTPPort > 0 {
		fmt.Fprintf(&b, "http_port: %d\n", c.HTTPPort)
	}
	if c.MaxPayload > 0 {
		fmt.Fprintf(&b, "max_payload: %d\n", c.MaxPayload)
	}
	if c.StoreDir != "" {
		fmt.Fprintf(&b, "jetstream {\n  store_dir: %s\n}\n", valueOrVariable(c.StoreDir))
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
	if cl := c.Cluster; cl != nil {
		name, chost, cport := cl.Name, cl.Host, cl.Port
		if name == "" {
			name = "cofactor"
		}
		if chost == "" {
			chost = "0.0.0.0"
		}
		if cport == 0 {
			cport = 6222
		}
		fmt.Fprintf(&b, "cluster {\n  name: %s\n  host: %s\n  port: %d\n  routes: %s\n", quote(name), quote(chost), cport, list(cl.Routes))
		if c.TLSCert != "" {
			// Routes authenticate each other by certificate: verify is
			// what keeps a stranger from joining as a server.
			fmt.Fprintf(&b, "  tls {\n    cert_file: %s\n    key_file: %s\n    ca_file: %s\n    verify: true\n    timeout: 2\n  }\n",
				quote(c.TLSCert), quote(c.TLSKey), quote(c.TLSCA))
		}
		b.WriteString("}\n")
	}
	b.WriteString("authorization {\n")
	used := map[Role]bool{}
	for _, u := range c.Users {
		if u.WorkerID == "" {
			used[u.Role] = true
		}
	}
	for _, r := range Roles {
		if !used[r] {
			continue // nats-server reads an unused variable as an unknown field
		}
		p, _ := Permissions(r)
		fmt.Fprintf(&b, "  %s = {\n", strings.ToUpper(string(r)))
		writePermissions(&b, p, "    ")
		b.WriteString("  }\n")
	}
	b.WriteString("  users = [\n")
	users := append([]User(nil), c.Users...)
	sort.SliceStable(users, func(i, j int) bool { return roleIndex(users[i].Role) < roleIndex(users[j].Role) })
	for _, u := range users {
		role := strings.ToUpper(string(u.Role))
		if u.WorkerID != "" {
			// One worker's own permissions, written out in its entry.
			p, _ := u.Permissions()
			fmt.Fprintf(&b, "    # worker %s\n", u.WorkerID)
			if u.NKey != "" {
				fmt.Fprintf(&b, "    { nkey: %s, permissions: {\n", u.NKey)
			} else {
				fmt.Fprintf(&b, "    { user: %s, password: $%s, permissions: {\n", quote(u.Name), u.PasswordEnv)
			}
			writePermissions(&b, p, "      ")
			b.WriteString("    } }\n")
			continue
		}
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

// writePermissions writes p's publish, subscribe and allow_responses
// lines, each line indented by indent.
func writePermissions(b *strings.Builder, p transport.Permissions, indent string) {
	fmt.Fprintf(b, "%spublish = { allow = %s", indent, list(p.PublishAllow))
	if len(p.PublishDeny) > 0 {
		fmt.Fprintf(b, ", deny = %s", list(p.PublishDeny))
	}
	b.WriteString(" }\n")
	fmt.Fprintf(b, "%ssubscribe = { allow = %s }\n", indent, list(p.SubscribeAllow))
	if p.Responses {
		fmt.Fprintf(b, "%sallow_responses = true\n", indent)
	}
}

// variable is a reference to an environment variable in a value.
var variable = regexp.MustCompile(`^\$[A-Za-z_][A-Za-z0-9_]*$`)

// valueOrVariable writes v quoted, or bare when it is a variable
// reference ($NAME) that nats-server resolves from its environment.
func valueOrVariable(v string) string {
	if variable.MatchString(v) {
		return v
	}
	return quote(v)
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
func EmbeddedUsers(users []User, passwords map[string]string) ([]embedded.User, error) {
	out := make([]embedded.User, 0, len(users))
	for _, u := range users {
		p, err := u.Permissions()
		if err != nil {
			return nil, err
		}
		out = append(out, embedded.User{User: u.Name, Password: passwords[u.PasswordEnv], NKey: u.NKey, Permissions: &p})
	}
	return out, nil
}
