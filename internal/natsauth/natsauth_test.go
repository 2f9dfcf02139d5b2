package natsauth_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"go.uber.org/goleak"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/leaktest"
	"github.com/cofactor-ml/cofactor/internal/natsauth"
	"github.com/cofactor-ml/cofactor/internal/testcerts"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/transport"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Ignored()...) }

// secureServer is a real nats-server loaded from the configuration
// WriteServerConfig generates: TLS with client certificates, a
// coordinator and a client user with passwords, a worker with an NKey.
type secureServer struct {
	srv       *embedded.Server
	ca        *testcerts.CA
	client    *testcerts.Pair // a certificate any role presents
	dir       string
	workerKey string // the worker's NKey seed file
}

const (
	coordPass  = "coord-secret-1"
	clientPass = "client-secret-1"
)

func startSecure(t *testing.T) *secureServer {
	t.Helper()
	dir := t.TempDir()
	ca := testcerts.NewCA(t, dir, "nats")
	srvPair := ca.Issue(t, "nats-server")
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	seedFile := filepath.Join(dir, "worker.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_COORD_PASSWORD", coordPass)
	t.Setenv("TEST_CLIENT_PASSWORD", clientPass)
	var conf bytes.Buffer
	err = natsauth.WriteServerConfig(&conf, natsauth.ServerConfig{
		TLSCert: srvPair.CertFile, TLSKey: srvPair.KeyFile, TLSCA: ca.File, VerifyClients: true,
		Users: []natsauth.User{
			{Role: natsauth.Coordinator, Name: "coord", PasswordEnv: "TEST_COORD_PASSWORD"},
			{Role: natsauth.Worker, NKey: pub},
			{Role: natsauth.Client, Name: "serve", PasswordEnv: "TEST_CLIENT_PASSWORD"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(conf.String(), coordPass) {
		t.Fatal("the configuration holds a password")
	}
	confFile := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(confFile, conf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := embedded.Start(embedded.Options{ConfigFile: confFile, JetStream: true, StoreDir: filepath.Join(dir, "js")})
	if err != nil {
		t.Fatalf("%v\n%s", err, conf.String())
	}
	t.Cleanup(srv.Shutdown)
	return &secureServer{srv: srv, ca: ca, client: ca.Issue(t, "client"), dir: dir, workerKey: seedFile}
}

func (s *secureServer) sec(role natsauth.Role) transport.Security {
	sec := transport.Security{CAFile: s.ca.File, CertFile: s.client.CertFile, KeyFile: s.client.KeyFile}
	switch role {
	case natsauth.Coordinator:
		sec.User, sec.Password = "coord", coordPass
	case natsauth.Worker:
		sec.NKeySeedFile = s.workerKey
	case natsauth.Client:
		sec.User, sec.Password = "serve", clientPass
	}
	return sec
}

// violations collects the server's asynchronous permission errors.
type violations struct {
	mu   sync.Mutex
	errs []string
	ch   chan struct{}
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	v.errs = append(v.errs, err.Error())
	v.mu.Unlock()
	select {
	case v.ch <- struct{}{}:
	default:
	}
}

// expect waits for a violation naming subject.
func (v *violations) expect(t *testing.T, subject string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		v.mu.Lock()
		for _, e := range v.errs {
			if strings.Contains(e, "Permissions Violation") && strings.Contains(e, subject) {
				v.mu.Unlock()
				return
			}
		}
		v.mu.Unlock()
		select {
		case <-v.ch:
		case <-deadline:
			t.Fatalf("no permission violation for %s; errors: %v", subject, v.errs)
		}
	}
}

func (s *secureServer) connect(t *testing.T, role natsauth.Role) (*nats.Conn, *violations) {
	t.Helper()
	opts, err := s.sec(role).Options()
	if err != nil {
		t.Fatal(err)
	}
	v := &violations{ch: make(chan struct{}, 1)}
	opts = append(opts, nats.ErrorHandler(v.handler))
	nc, err := transport.Dial(s.srv.ClientURL(), "test-"+string(role), opts...)
	if err != nil {
		t.Fatalf("%s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	return nc, v
}

func TestRefusedConnections(t *testing.T) {
	s := startSecure(t)
	good := s.sec(natsauth.Coordinator)
	other := testcerts.NewCA(t, t.TempDir(), "rogue")
	rogue := other.Issue(t, "rogue")
	cases := []struct {
		name string
		sec  transport.Security
		want string
	}{
		{"no credentials", transport.Security{CAFile: s.ca.File, CertFile: good.CertFile, KeyFile: good.KeyFile}, "authorization"},
		{"wrong password", func() transport.Security { x := good; x.Password = "guess"; return x }(), "authorization"},
		{"unknown NKey", func() transport.Security {
			kp, _ := nkeys.CreateUser()
			seed, _ := kp.Seed()
			f := filepath.Join(t.TempDir(), "x.nk")
			os.WriteFile(f, seed, 0o600)
			return transport.Security{NKeySeedFile: f, CAFile: s.ca.File, CertFile: good.CertFile, KeyFile: good.KeyFile}
		}(), "authorization"},
		{"server not trusted", func() transport.Security { x := good; x.CAFile = other.File; return x }(), "certificate"},
		{"client certificate from another CA", func() transport.Security {
			x := good
			x.CertFile, x.KeyFile = rogue.CertFile, rogue.KeyFile
			return x
		}(), ""},
		{"no client certificate", func() transport.Security { x := good; x.CertFile, x.KeyFile = "", ""; return x }(), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts, err := c.sec.Options()
			if err != nil {
				t.Fatal(err)
			}
			nc, err := nats.Connect(s.srv.ClientURL(), append(opts, nats.NoReconnect(), nats.Timeout(2*time.Second))...)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(strings.ToLower(err.Error()), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
	// A plain (non-TLS) connection is refused too.
	if nc, err := nats.Connect(s.srv.ClientURL(), nats.UserInfo("coord", coordPass), nats.NoReconnect(), nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a plain connection was accepted")
	}
}

// TestWorkerPermissions: a worker can do its job (heartbeats, reports,
// rows, blocks and checkpoints in JetStream) and cannot command workers.
func TestWorkerPermissions(t *testing.T) {
	s := startSecure(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coord, _ := s.connect(t, natsauth.Coordinator)
	if err := natsauth.EnsureBuckets(ctx, coord, 1); err != nil {
		t.Fatal(err)
	}
	w1, v1 := s.connect(t, natsauth.Worker)
	w2, _ := s.connect(t, natsauth.Worker)

	// Reports: worker → coordinator by request/reply.
	rep, err := coord.Subscribe(transport.ReportSubject("*"), func(m *nats.Msg) { m.Respond([]byte("ok")) })
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Unsubscribe()
	hb, err := coord.SubscribeSync(transport.HeartbeatSubject("*"))
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Unsubscribe()
	coord.Flush()
	if m, err := w1.Request(transport.ReportSubject("w1"), []byte("r"), 2*time.Second); err != nil || string(m.Data) != "ok" {
		t.Fatalf("report: %v", err)
	}
	if err := w1.Publish(transport.HeartbeatSubject("w1"), []byte("hb")); err != nil {
		t.Fatal(err)
	}
	if _, err := hb.NextMsg(2 * time.Second); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	// Commands: coordinator → worker, answered.
	cmd, err := w2.Subscribe(transport.WorkerCmdSubject("w2"), func(m *nats.Msg) { m.Respond([]byte("done")) })
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.Unsubscribe()
	rows, err := w2.Subscribe(transport.WorkerRowsSubject("w2"), func(m *nats.Msg) { m.Respond([]byte("rows")) })
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Unsubscribe()
	w2.Flush()
	if m, err := coord.Request(transport.WorkerCmdSubject("w2"), []byte("c"), 2*time.Second); err != nil || string(m.Data) != "done" {
		t.Fatalf("command: %v", err)
	}
	if m, err := w1.Request(transport.WorkerRowsSubject("w2"), []byte("q"), 2*time.Second); err != nil || string(m.Data) != "rows" {
		t.Fatalf("rows: %v", err)
	}
	// The block store and checkpoints.
	checkWorkerStores(ctx, t, w1, w2)

	// Refused: a worker commanding another worker, listening to
	// heartbeats, moving a snapshot pointer, deleting a stream.
	w1.Publish(transport.WorkerCmdSubject("w2"), []byte("evil"))
	v1.expect(t, transport.WorkerCmdSubject("w2"))
	if _, err := w1.SubscribeSync(transport.HeartbeatSubject("*")); err == nil {
		w1.Flush()
		v1.expect(t, transport.HeartbeatSubject("*"))
	}
	w1.Publish("$KV."+checkpoint.LatestBucket+".latest.default", []byte("evil"))
	v1.expect(t, "$KV."+checkpoint.LatestBucket)
	w1.Publish("$JS.API.STREAM.DELETE.OBJ_"+wire.BlockBucket, nil)
	v1.expect(t, "$JS.API.STREAM.DELETE")
}

// checkWorkerStores: worker w1 writes a block of several chunks that w2
// reads back, and writes a checkpoint file.
func checkWorkerStores(ctx context.Context, t *testing.T, w1, w2 *nats.Conn) {
	t.Helper()
	blobs, err := transport.OpenBlobs(ctx, w1, wire.BlockBucket)
	if err != nil {
		t.Fatalf("worker opening the block bucket: %v", err)
	}
	data := bytes.Repeat([]byte("block"), 300_000) // several chunks
	if err := blobs.Put(ctx, "j/b0", data); err != nil {
		t.Fatalf("worker writing a block: %v", err)
	}
	other, err := transport.OpenBlobs(ctx, w2, wire.BlockBucket)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := other.Get(ctx, "j/b0", 1<<30); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("worker reading a block: %v", err)
	}
	store, err := checkpoint.OpenBlobStore(ctx, w1)
	if err != nil {
		t.Fatalf("worker opening the snapshot store: %v", err)
	}
	if err := store.Put(ctx, "snap/u0", []byte("factors")); err != nil {
		t.Fatalf("worker writing a checkpoint: %v", err)
	}
}

// TestClientPermissions: a serving client reads snapshots and pointers and
// writes nothing.
func TestClientPermissions(t *testing.T) {
	s := startSecure(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coord, _ := s.connect(t, natsauth.Coordinator)
	cs, err := checkpoint.OpenBlobStore(ctx, coord)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Put(ctx, "s1/manifest.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := cs.SetLatest(ctx, "default", "s1"); err != nil {
		t.Fatal(err)
	}
	cl, v := s.connect(t, natsauth.Client)
	st, err := checkpoint.OpenBlobStore(ctx, cl)
	if err != nil {
		t.Fatalf("client opening the store: %v", err)
	}
	if id, err := st.Latest(ctx, "default"); err != nil || id != "s1" {
		t.Fatalf("client reading the pointer: %q, %v", id, err)
	}
	if b, err := st.Get(ctx, "s1/manifest.json", 1<<20); err != nil || string(b) != "{}" {
		t.Fatalf("client reading a snapshot file: %v", err)
	}
	names, err := st.List(ctx, "s1/")
	if err != nil || len(names) != 1 {
		t.Fatalf("client listing: %v %v", names, err)
	}
	watch, err := st.Watch(ctx, "default")
	if err != nil {
		t.Fatalf("client watching: %v", err)
	}
	if err := cs.SetLatest(ctx, "default", "s2"); err != nil {
		t.Fatal(err)
	}
	for id := range watch {
		if id == "s2" {
			break
		}
	}

	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	defer wcancel()
	if err := st.Put(wctx, "s3/manifest.json", []byte("{}")); err == nil {
		t.Fatal("a client wrote a snapshot file")
	}
	v.expect(t, "$O."+checkpoint.SnapshotBucket)
	cl.Publish(transport.WorkerCmdSubject("w1"), []byte("evil"))
	v.expect(t, transport.WorkerCmdSubject("w1"))
	cl.Publish("$JS.API.STREAM.PURGE.OBJ_"+checkpoint.SnapshotBucket, nil)
	v.expect(t, "$JS.API.STREAM.PURGE")
}

func TestServerConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		c    natsauth.ServerConfig
	}{
		{"no users", natsauth.ServerConfig{}},
		{"no password variable", natsauth.ServerConfig{Users: []natsauth.User{{Role: natsauth.Worker, Name: "w"}}}},
		{"bad role", natsauth.ServerConfig{Users: []natsauth.User{{Role: "admin", Name: "w", PasswordEnv: "P"}}}},
		{"seed instead of public key", natsauth.ServerConfig{Users: []natsauth.User{{Role: natsauth.Worker, NKey: "SUAB"}}}},
		{"twice", natsauth.ServerConfig{Users: []natsauth.User{{Role: natsauth.Worker, Name: "w", PasswordEnv: "P"}, {Role: natsauth.Client, Name: "w", PasswordEnv: "Q"}}}},
		{"verify without CA", natsauth.ServerConfig{TLSCert: "c", TLSKey: "k", VerifyClients: true, Users: []natsauth.User{{Role: natsauth.Worker, Name: "w", PasswordEnv: "P"}}}},
		{"cluster without routes", natsauth.ServerConfig{ServerName: "n1", Cluster: &natsauth.Cluster{}, Users: []natsauth.User{{Role: natsauth.Worker, Name: "w", PasswordEnv: "P"}}}},
		{"cluster without a server name", natsauth.ServerConfig{Cluster: &natsauth.Cluster{Routes: []string{"nats-route://n1:6222"}}, Users: []natsauth.User{{Role: natsauth.Worker, Name: "w", PasswordEnv: "P"}}}},
		{"cluster TLS without CA", natsauth.ServerConfig{ServerName: "n1", TLSCert: "c", TLSKey: "k", Cluster: &natsauth.Cluster{Routes: []string{"nats-route://n1:6222"}}, Users: []natsauth.User{{Role: natsauth.Worker, Name: "w", PasswordEnv: "P"}}}},
	}
	for _, c := range cases {
		if err := c.c.Validate(); !errors.Is(err, natsauth.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", c.name, err)
		}
	}
}

// TestEmbeddedUsers: the embedded server given the roles' users directly
// (no configuration file) enforces the same permissions.
func TestEmbeddedUsers(t *testing.T) {
	users, err := natsauth.EmbeddedUsers([]natsauth.User{{Role: natsauth.Worker, Name: "w", PasswordEnv: "W"}}, map[string]string{"W": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := embedded.Start(embedded.Options{Users: users, TLS: nil})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	if _, err := nats.Connect(srv.ClientURL(), nats.NoReconnect()); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("anonymous connect: %v", err)
	}
	v := &violations{ch: make(chan struct{}, 1)}
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("w", "pw"), nats.ErrorHandler(v.handler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Publish(transport.WorkerCmdSubject("x"), nil)
	v.expect(t, transport.WorkerCmdSubject("x"))
}

// TestEnsureBuckets: every bucket of Buckets exists afterwards (a bucket
// added to the list must be created too), a second call changes nothing,
// and three replicas on one server are refused with ErrReplicas.
func TestEnsureBuckets(t *testing.T) {
	srv, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 2 {
		if err := natsauth.EnsureBuckets(ctx, nc, 1); err != nil {
			t.Fatal(err)
		}
	}
	js, _ := jetstream.New(nc)
	for _, b := range natsauth.Buckets {
		st, err := js.Stream(ctx, b.Stream())
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 1 {
			t.Errorf("%s: %d replicas", b.Name, r)
		}
	}
	err = natsauth.EnsureBuckets(ctx, nc, 3)
	if !errors.Is(err, transport.ErrReplicas) || !strings.Contains(err.Error(), "at least 3") {
		t.Fatalf("3 replicas on one server: %v", err)
	}
	t.Log(err)
	if err := natsauth.EnsureBuckets(ctx, nc, 0); !errors.Is(err, transport.ErrReplicas) {
		t.Fatalf("0 replicas: %v", err)
	}
}
