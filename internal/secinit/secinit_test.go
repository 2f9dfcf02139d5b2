package secinit

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/cofactor-ml/cofactor/internal/natsauth"
)

func initDir(t *testing.T, mod func(*Config)) (Config, *Result) {
	t.Helper()
	c := DefaultConfig()
	c.Dir = filepath.Join(t.TempDir(), "secure")
	c.CoordinatorHosts = []string{"c1.example.internal", "10.0.0.5"}
	c.NATSHosts = []string{"nats-0.nats", "nats-1.nats"}
	c.ServeHosts = []string{"serve.example.internal"}
	c.NATS.StoreDir = filepath.Join(t.TempDir(), "js")
	if mod != nil {
		mod(&c)
	}
	res, err := Init(c)
	if err != nil {
		t.Fatal(err)
	}
	return c, res
}

func read(t *testing.T, c Config, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInitFiles: every file is there with its mode (0600 for secrets),
// in a 0700 directory.
func TestInitFiles(t *testing.T) {
	t.Parallel()
	c, res := initDir(t, nil)
	st, err := os.Stat(c.Dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("directory: %v, %v; want mode 0700", st.Mode().Perm(), err)
	}
	want := map[string]os.FileMode{
		CACert: 0o644, CAKey: 0o600, RaftCACert: 0o644, RaftCAKey: 0o600, RaftCert: 0o644, RaftKey: 0o600,
		CoordinatorCrt: 0o644, CoordinatorKey: 0o600, ServeCert: 0o644, ServeKey: 0o600, NATSCert: 0o644, NATSKey: 0o600,
		NATSConfig: 0o644, AdminToken: 0o600, ReadToken: 0o600,
		NKeyFile(natsauth.Coordinator): 0o600, NKeyFile(natsauth.Worker): 0o600, NKeyFile(natsauth.Client): 0o600,
	}
	if len(res.Files) != len(want) {
		t.Errorf("wrote %v, want %d files", res.Files, len(want))
	}
	for name, mode := range want {
		st, err := os.Stat(filepath.Join(c.Dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, st.Mode().Perm(), mode)
		}
	}
	for _, tok := range []string{AdminToken, ReadToken} {
		if s := strings.TrimSpace(string(read(t, c, tok))); len(s) != 64 {
			t.Errorf("%s: %d characters, want 64 (32 random bytes, hex)", tok, len(s))
		}
	}
	if a, r := read(t, c, AdminToken), read(t, c, ReadToken); string(a) == string(r) {
		t.Error("the admin and read tokens are the same")
	}
	// Each seed is an NKey user whose public key the result (and the
	// configuration) names.
	for _, r := range natsauth.Roles {
		kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(read(t, c, NKeyFile(r))))))
		if err != nil {
			t.Fatalf("%s seed: %v", r, err)
		}
		pub, _ := kp.PublicKey()
		if pub != res.NKeys[r] || !strings.Contains(string(read(t, c, NATSConfig)), pub) {
			t.Errorf("%s: public key %s, result %s, or not in nats.conf", r, pub, res.NKeys[r])
		}
	}
}

// TestInitCertificates: each certificate chains to its CA (raft's to the
// raft CA only), names the hosts given and the loopback ones, and has the
// uses its links need.
func TestInitCertificates(t *testing.T) {
	t.Parallel()
	c, _ := initDir(t, nil)
	pool := func(name string) *x509.CertPool {
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(read(t, c, name)) {
			t.Fatalf("%s: no certificate", name)
		}
		return p
	}
	ca, raftCA := pool(CACert), pool(RaftCACert)
	for _, leaf := range []struct {
		cert, key string
		roots     *x509.CertPool
		other     *x509.CertPool
		hosts     []string
		client    bool
	}{
		{RaftCert, RaftKey, raftCA, ca, []string{"c1.example.internal", "10.0.0.5", "127.0.0.1", "localhost"}, true},
		{CoordinatorCrt, CoordinatorKey, ca, raftCA, []string{"c1.example.internal", "10.0.0.5", "::1"}, true},
		{ServeCert, ServeKey, ca, raftCA, []string{"serve.example.internal", "127.0.0.1"}, false},
		{NATSCert, NATSKey, ca, raftCA, []string{"nats-0.nats", "nats-1.nats", "localhost"}, true},
	} {
		pair, err := tls.X509KeyPair(read(t, c, leaf.cert), read(t, c, leaf.key))
		if err != nil {
			t.Fatalf("%s: %v", leaf.cert, err)
		}
		x, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range leaf.hosts {
			if _, err := x.Verify(x509.VerifyOptions{Roots: leaf.roots, DNSName: h}); err != nil {
				t.Errorf("%s for %s: %v", leaf.cert, h, err)
			}
		}
		if _, err := x.Verify(x509.VerifyOptions{Roots: leaf.other}); err == nil {
			t.Errorf("%s verifies against the other CA", leaf.cert)
		}
		if err := x.VerifyHostname("elsewhere.example"); err == nil {
			t.Errorf("%s is valid for a host it was not given", leaf.cert)
		}
		_, err = x.Verify(x509.VerifyOptions{Roots: leaf.roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if leaf.client != (err == nil) {
			t.Errorf("%s: client use %v, want %v (%v)", leaf.cert, err == nil, leaf.client, err)
		}
	}
}

// TestInitNATSConfig: the configuration loads in nats-server's own parser
// with TLS, JetStream and the three NKey users, alone and as a member of
// a cluster whose name comes from the environment.
func TestInitNATSConfig(t *testing.T) {
	c, _ := initDir(t, nil)
	opts, err := server.ProcessConfigFile(filepath.Join(c.Dir, NATSConfig))
	if err != nil {
		t.Fatal(err)
	}
	if opts.TLSConfig == nil || !opts.JetStream || opts.StoreDir != c.NATS.StoreDir || len(opts.Nkeys) != 3 || opts.HTTPPort != 0 {
		t.Errorf("nats.conf: TLS %v, JetStream %v in %q, %d NKey users, http_port %d", opts.TLSConfig != nil, opts.JetStream, opts.StoreDir, len(opts.Nkeys), opts.HTTPPort)
	}

	t.Setenv("NATS_SERVER_NAME", "nats-1")
	storeDir := filepath.Join(t.TempDir(), "js-1")
	t.Setenv("NATS_STORE_DIR", storeDir)
	c, _ = initDir(t, func(c *Config) {
		c.NATS.ServerName = "$NATS_SERVER_NAME"
		c.NATS.StoreDir = "$NATS_STORE_DIR"
		c.NATS.HTTPPort = 8222
		c.NATS.Cluster = &natsauth.Cluster{Routes: []string{"nats-route://nats-0.nats:6222", "nats-route://nats-1.nats:6222", "nats-route://nats-2.nats:6222"}}
	})
	opts, err = server.ProcessConfigFile(filepath.Join(c.Dir, NATSConfig))
	if err != nil {
		t.Fatal(err)
	}
	if opts.ServerName != "nats-1" || opts.StoreDir != storeDir || opts.Cluster.Name != "cofactor" || opts.Cluster.Port != 6222 || len(opts.Routes) != 3 || opts.HTTPPort != 8222 {
		t.Errorf("cluster nats.conf: server %q, cluster %q port %d, %d routes, http_port %d", opts.ServerName, opts.Cluster.Name, opts.Cluster.Port, len(opts.Routes), opts.HTTPPort)
	}
	if opts.Cluster.TLSConfig == nil || opts.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("cluster routes without verified TLS: %+v", opts.Cluster.TLSConfig)
	}
}

// TestInitRefusesOverwrite: an existing file stops Init before it writes
// anything; Force overwrites every file with new secrets.
func TestInitRefusesOverwrite(t *testing.T) {
	t.Parallel()
	c, _ := initDir(t, nil)
	oldToken := read(t, c, AdminToken)
	if err := os.Remove(filepath.Join(c.Dir, CAKey)); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(c); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, CAKey)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused Init wrote %s: %v", CAKey, err)
	}
	if string(read(t, c, AdminToken)) != string(oldToken) {
		t.Error("a refused Init changed the admin token")
	}
	// KeepExisting keeps a complete directory, refuses a partial one.
	c.KeepExisting = true
	if res, err := Init(c); !errors.Is(err, ErrExists) {
		t.Fatalf("KeepExisting on a partial directory: %v, %+v; want ErrExists", err, res)
	}
	c.KeepExisting = false
	// A secret file made wider by hand is made 0600 again.
	if err := os.Chmod(filepath.Join(c.Dir, AdminToken), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Force = true
	if _, err := Init(c); err != nil {
		t.Fatalf("Init with Force: %v", err)
	}
	if string(read(t, c, AdminToken)) == string(oldToken) {
		t.Error("Force kept the old admin token")
	}
	if st, err := os.Stat(filepath.Join(c.Dir, AdminToken)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("overwritten admin token: mode %v, %v", st.Mode().Perm(), err)
	}
	forced := read(t, c, AdminToken)
	c.Force, c.KeepExisting = false, true
	res, err := Init(c)
	if err != nil || !res.Kept || string(read(t, c, AdminToken)) != string(forced) {
		t.Errorf("KeepExisting on a complete directory: %v, %+v, token changed %v", err, res, string(read(t, c, AdminToken)) != string(forced))
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no dir", func(c *Config) { c.Dir = "" }},
		{"short validity", func(c *Config) { c.Validity = 0 }},
		{"host with a port", func(c *Config) { c.CoordinatorHosts = []string{"c1:7000"} }},
		{"empty host", func(c *Config) { c.NATSHosts = []string{""} }},
	} {
		cfg := DefaultConfig()
		cfg.Dir = t.TempDir()
		c.mod(&cfg)
		if _, err := Init(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", c.name, err)
		}
	}
}

// TestInitWorkerIdentities: with Workers, each worker gets its own seed
// and nats.conf grants each only its own subjects; no shared worker seed
// is written.
func TestInitWorkerIdentities(t *testing.T) {
	t.Parallel()
	c, res := initDir(t, func(c *Config) { c.Workers = []string{"w1", "w2", "gpu-3"} })
	if _, err := os.Stat(filepath.Join(c.Dir, NKeyFile(natsauth.Worker))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the shared worker seed was written: %v", err)
	}
	conf := string(read(t, c, NATSConfig))
	for _, id := range c.Workers {
		st, err := os.Stat(filepath.Join(c.Dir, WorkerNKeyFile(id)))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v", WorkerNKeyFile(id), err)
			continue
		}
		kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(read(t, c, WorkerNKeyFile(id))))))
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		if pub != res.WorkerNKeys[id] || !strings.Contains(conf, pub) || !strings.Contains(conf, `"cofactor.w.`+id+`.rows"`) {
			t.Errorf("worker %s: public key %s (result %s) or its subjects missing from nats.conf", id, pub, res.WorkerNKeys[id])
		}
	}
	if _, err := server.ProcessConfigFile(filepath.Join(c.Dir, NATSConfig)); err != nil {
		t.Fatalf("nats.conf with worker identities: %v", err)
	}
	cfg := DefaultConfig()
	cfg.Dir, cfg.Workers = t.TempDir(), []string{"w1", "w1"}
	if _, err := Init(cfg); !errors.Is(err, ErrConfig) {
		t.Errorf("a worker named twice: %v", err)
	}
}
