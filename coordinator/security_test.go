package coordinator_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nkeys"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/natsauth"
	"github.com/cofactor-ml/cofactor/internal/testcerts"
	"github.com/cofactor-ml/cofactor/transport"
	"github.com/cofactor-ml/cofactor/transport/embedded"
	"github.com/cofactor-ml/cofactor/worker"
)

const (
	adminToken = "admin-token-0123456789abcdef"
	readToken  = "read-token-0123456789abcdef"
)

// secureCluster is three coordinators and two workers with every link
// secured: NATS with TLS, client certificates and role users (from the
// generated server configuration), raft over mutual TLS, the API over
// HTTPS with admin and read tokens.
type secureCluster struct {
	t       *testing.T
	dir     string
	ca      *testcerts.CA // signs every certificate of the cluster
	nodes   []*coordinator.Node
	natsURL string
	stop    []func()
	tlsCfg  *tls.Config // trusts ca
}

func (c *secureCluster) natsSec(role natsauth.Role, pair *testcerts.Pair, seed string) transport.Security {
	s := transport.Security{CAFile: c.ca.File, CertFile: pair.CertFile, KeyFile: pair.KeyFile}
	switch role {
	case natsauth.Coordinator:
		s.User, s.Password = "coord", "coord-pass-123"
	case natsauth.Worker:
		s.NKeySeedFile = seed
	}
	return s
}

func startSecureCluster(t *testing.T) *secureCluster {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster logs:\n%s", logs.String())
		}
	})
	dir := t.TempDir()
	c := &secureCluster{t: t, dir: dir, ca: testcerts.NewCA(t, dir, "cluster")}
	c.tlsCfg = &tls.Config{RootCAs: c.ca.Pool()}
	t.Cleanup(func() {
		for i := len(c.stop) - 1; i >= 0; i-- {
			c.stop[i]()
		}
	})

	// NATS from the generated configuration.
	kp, _ := nkeys.CreateUser()
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	seedFile := filepath.Join(dir, "worker.nk")
	must(t, os.WriteFile(seedFile, seed, 0o600))
	t.Setenv("SEC_TEST_COORD_PASSWORD", "coord-pass-123")
	srvPair := c.ca.Issue(t, "nats")
	var conf bytes.Buffer
	must(t, natsauth.WriteServerConfig(&conf, natsauth.ServerConfig{
		TLSCert: srvPair.CertFile, TLSKey: srvPair.KeyFile, TLSCA: c.ca.File, VerifyClients: true,
		Users: []natsauth.User{{Role: natsauth.Coordinator, Name: "coord", PasswordEnv: "SEC_TEST_COORD_PASSWORD"}, {Role: natsauth.Worker, NKey: pub}},
	}))
	confFile := filepath.Join(dir, "nats.conf")
	must(t, os.WriteFile(confFile, conf.Bytes(), 0o600))
	ns, err := embedded.Start(embedded.Options{ConfigFile: confFile, JetStream: true, StoreDir: filepath.Join(dir, "js")})
	must(t, err)
	c.stop = append(c.stop, ns.Shutdown)
	c.natsURL = ns.ClientURL()

	for i := range 3 {
		id := fmt.Sprintf("c%d", i+1)
		pair := c.ca.Issue(t, id)
		cfg := coordinator.DefaultConfig()
		cfg.ID, cfg.DataDir, cfg.RaftAddr, cfg.HTTPAddr = id, t.TempDir(), freeAddr(t), "127.0.0.1:0"
		cfg.WorkerTimeout, cfg.ResendInterval = time.Second, 200*time.Millisecond
		cfg.NATSURL = c.natsURL
		cfg.NATSSecurity = c.natsSec(natsauth.Coordinator, pair, "")
		cfg.RaftTLS = coordinator.TLSFiles{Cert: pair.CertFile, Key: pair.KeyFile, CA: c.ca.File}
		cfg.HTTPTLS = coordinator.TLSFiles{Cert: pair.CertFile, Key: pair.KeyFile, CA: c.ca.File}
		cfg.AdminTokens, cfg.ReadTokens = []string{adminToken}, []string{readToken}
		if i == 0 {
			cfg.Bootstrap = true
		} else {
			cfg.Join = "https://" + c.nodes[0].HTTPAddr()
		}
		n, err := coordinator.New(cfg, coordinator.WithLogger(log))
		must(t, err)
		must(t, n.Start(context.Background()))
		c.nodes = append(c.nodes, n)
		c.stop = append(c.stop, func() { n.Close() })
	}
	for i := range 2 {
		id := fmt.Sprintf("w%d", i+1)
		cfg := worker.DefaultConfig()
		cfg.ID, cfg.Threads, cfg.HeartbeatInterval = id, 1, 200*time.Millisecond
		cfg.NATSURL = c.natsURL
		cfg.NATSSecurity = c.natsSec(natsauth.Worker, c.ca.Issue(t, id), seedFile)
		cfg.Retry = transport.RetryPolicy{Timeout: time.Second, Attempts: 5, Backoff: 20 * time.Millisecond}
		w, err := worker.New(cfg, worker.WithLogger(log))
		must(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		c.stop = append(c.stop, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker %s: %v", id, err)
			}
		})
	}
	cl := c.client(adminToken)
	eventually(t, "the secure group forms", func() error {
		st, err := cl.Cluster(context.Background())
		if err != nil {
			return err
		}
		return formed(st)
	})
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (c *secureCluster) url(i int) string { return "https://" + c.nodes[i].HTTPAddr() }

// client talks to every node with token, trusting the cluster's CA.
func (c *secureCluster) client(token string) *coordinator.Client {
	var urls []string
	for i := range c.nodes {
		urls = append(urls, c.url(i))
	}
	cl := coordinator.NewClient(urls...)
	cl.Token = token
	cl.UseTLS(c.tlsCfg)
	return cl
}

// TestSecureClusterRunsJob: with every link secured, a job submitted
// through a follower (forwarded to the leader with the caller's token over
// HTTPS) runs to success on workers that authenticate to NATS with NKeys.
func TestSecureClusterRunsJob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a secured three-coordinator cluster")
	}
	c := startSecureCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	follower := -1
	for i, n := range c.nodes {
		if !n.IsLeader() {
			follower = i
		}
	}
	admin := coordinator.NewClient(c.url(follower))
	admin.Token = adminToken
	admin.UseTLS(c.tlsCfg)
	id, err := admin.Submit(ctx, coordinator.SubmitRequest{Spec: smallSpec(t, 3)})
	if err != nil {
		t.Fatalf("submit through follower %d: %v", follower, err)
	}
	res, err := c.client(readToken).Wait(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != job.StateSucceeded || res.TrainRMSE == nil || *res.TrainRMSE > 1 {
		t.Fatalf("job %s: state %s, error %q, train RMSE %v", id, res.State, res.Error, res.TrainRMSE)
	}
	t.Logf("job %s succeeded with everything secured: train RMSE %.4f", id, *res.TrainRMSE)

	// A running job's page has a cancel button for an admin token only
	// (sent as a browser sends it, the Basic password); the form refuses
	// a read token.
	long := smallSpec(t, job.MaxIterations)
	running, err := admin.Submit(ctx, coordinator.SubmitRequest{Spec: long})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: c.tlsCfg}}
	for _, tc := range []struct {
		method, token string
		want          int
		button        bool
	}{
		{"GET", readToken, 200, false},
		{"GET", adminToken, 200, true},
		{"POST", readToken, 403, false},
	} {
		path := "/ui/jobs/" + running
		if tc.method == "POST" {
			path += "/cancel"
		}
		hr, _ := http.NewRequest(tc.method, c.url(follower)+path, nil)
		hr.SetBasicAuth("me", tc.token)
		resp, err := hc.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || strings.Contains(string(body), `id="cancel"`) != tc.button {
			t.Errorf("%s %s as %s: %d, cancel button %v; want %d, %v", tc.method, path, tc.token, resp.StatusCode, !tc.button, tc.want, tc.button)
		}
	}
	if _, err := admin.Cancel(ctx, running); err != nil {
		t.Fatal(err)
	}

	// The read token reads and cannot write.
	reader := c.client(readToken)
	if _, err := reader.Jobs(ctx); err != nil {
		t.Fatalf("read token listing jobs: %v", err)
	}
	_, err = reader.Cancel(ctx, id)
	var ae *coordinator.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || !strings.Contains(ae.Message, "admin") {
		t.Fatalf("read token cancelling: %v, want 403 naming the admin role", err)
	}
}

// TestHTTPRefusals: missing and unknown tokens get 401, a read token on an
// admin route 403, on every node (followers check before forwarding), and
// plain HTTP or an untrusted certificate do not get through.
func TestHTTPRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a secured three-coordinator cluster")
	}
	c := startSecureCluster(t)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: c.tlsCfg}}
	type req struct {
		method, path, token string
		want                int
		mention             string
	}
	cases := []req{
		{"GET", "/v1/status", "", 200, ""},
		{"GET", "/v1/jobs", "", 401, "Authorization: Bearer"},
		{"GET", "/v1/jobs", "wrong-token-0123456789", 401, "not accepted"},
		{"GET", "/v1/jobs", readToken, 200, ""},
		{"GET", "/v1/cluster", readToken, 200, ""},
		{"GET", "/metrics", "", 401, "read token"},
		{"GET", "/metrics", readToken, 200, ""},
		{"GET", "/ui", "", 401, ""},
		{"GET", "/v1/config", adminToken, 200, ""},
		{"POST", "/v1/jobs", "", 401, ""},
		{"POST", "/v1/jobs", readToken, 403, "admin role"},
		{"POST", "/v1/cluster/join", readToken, 403, "admin role"},
		{"POST", "/v1/cluster/remove", readToken, 403, "admin role"},
		{"POST", "/v1/workers/w1/drain", readToken, 403, "admin role"},
		{"POST", "/v1/schedules", readToken, 403, "admin role"},
		{"DELETE", "/v1/schedules/x", readToken, 403, "admin role"},
		{"POST", "/v1/jobs/x/cancel", readToken, 403, "admin role"},
		{"POST", "/v1/jobs/x/cancel", adminToken, 404, ""},
	}
	for i := range c.nodes {
		for _, r := range cases {
			hr, _ := http.NewRequest(r.method, c.url(i)+r.path, strings.NewReader("{}"))
			if r.token != "" {
				hr.Header.Set("Authorization", "Bearer "+r.token)
			}
			resp, err := hc.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != r.want || !strings.Contains(string(body), r.mention) {
				t.Errorf("node %d %s %s (token %q): %d %s, want %d mentioning %q", i, r.method, r.path, r.token, resp.StatusCode, body, r.want, r.mention)
			}
			if resp.StatusCode == 401 || resp.StatusCode == 403 {
				var e struct{ Error string }
				if json.Unmarshal(body, &e) != nil || e.Error == "" {
					t.Errorf("%s %s: refusal is not JSON {\"error\"}: %s", r.method, r.path, body)
				}
			}
		}
	}
	// The bearer scheme in any case (RFC 7235); Basic credentials only on
	// the status page; a body over the limit is 413 on every node (a
	// follower forwards it and the leader refuses it).
	big := `{"pad": "` + strings.Repeat("x", coordinator.MaxRequestBody) + `"}`
	for i := range c.nodes {
		for _, e := range []struct {
			method, path, auth, body string
			basic, chunked           bool
			want                     int
		}{
			{"GET", "/v1/jobs", "bearer " + readToken, "", false, false, 200},
			{"GET", "/v1/jobs", "BEARER " + readToken, "", false, false, 200},
			{"GET", "/v1/jobs", "", "", true, false, 401},
			{"POST", "/v1/jobs", "", "{}", true, false, 401},
			{"POST", "/v1/jobs", "Bearer " + adminToken, big, false, false, 413},
			{"POST", "/v1/schedules", "Bearer " + adminToken, big, false, false, 413},
			{"POST", "/v1/jobs", "Bearer " + adminToken, big, false, true, 413}, // no length announced
		} {
			hr, _ := http.NewRequest(e.method, c.url(i)+e.path, strings.NewReader(e.body))
			if e.chunked {
				hr.ContentLength = -1
			}
			if e.auth != "" {
				hr.Header.Set("Authorization", e.auth)
			}
			if e.basic {
				hr.SetBasicAuth("me", adminToken)
			}
			resp, err := hc.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != e.want {
				t.Errorf("node %d %s %s (%q, basic %v, %d bytes): %d %s, want %d", i, e.method, e.path, e.auth, e.basic, len(e.body), resp.StatusCode, body, e.want)
			}
		}
	}
	// The status page takes the token as a Basic password (what a browser
	// prompts for).
	hr, _ := http.NewRequest("GET", c.url(0)+"/ui", nil)
	hr.SetBasicAuth("me", readToken)
	if resp, err := hc.Do(hr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/ui with Basic auth: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Plain HTTP to the HTTPS port fails; so does a client that does not
	// trust the cluster's CA.
	if resp, err := http.Get("http://" + c.nodes[0].HTTPAddr() + "/v1/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("plain HTTP answered %d", resp.StatusCode)
		}
	}
	if _, err := http.Get(c.url(0) + "/v1/status"); err == nil {
		t.Fatal("a client without the CA connected")
	}
}

// TestRaftRefusals: raft peers without a client certificate from the
// cluster's CA cannot talk to a coordinator's raft port.
func TestRaftRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a secured three-coordinator cluster")
	}
	c := startSecureCluster(t)
	var raftAddr string
	for _, s := range mustCluster(t, c).Servers {
		if s.ID == "c1" {
			raftAddr = s.Address
		}
	}
	rogueCA := testcerts.NewCA(t, t.TempDir(), "rogue")
	roguePair := rogueCA.Issue(t, "c9")
	good := c.ca.Issue(t, "tester")
	vote := func(layer raft.StreamLayer) error {
		trans := raft.NewNetworkTransport(layer, 1, 2*time.Second, io.Discard)
		defer func() { trans.CloseStreams(); trans.Close() }()
		var resp raft.RequestVoteResponse
		return trans.RequestVote("c1", raft.ServerAddress(raftAddr), &raft.RequestVoteRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("c9"), Addr: []byte("127.0.0.1:1")},
			Term:      1, LastLogIndex: 0, LastLogTerm: 0,
		}, &resp)
	}
	cases := []struct {
		name   string
		layer  func() raft.StreamLayer
		refuse bool
	}{
		{"plain TCP", func() raft.StreamLayer { return plainLayer(t) }, true},
		{"TLS without a client certificate", func() raft.StreamLayer {
			return tlsLayer(t, &tls.Config{RootCAs: c.ca.Pool(), MinVersion: tls.VersionTLS13})
		}, true},
		{"client certificate of another CA", func() raft.StreamLayer {
			return tlsLayer(t, &tls.Config{RootCAs: c.ca.Pool(), Certificates: []tls.Certificate{roguePair.TLS}, MinVersion: tls.VersionTLS13})
		}, true},
		{"the cluster's CA (control)", func() raft.StreamLayer {
			return tlsLayer(t, &tls.Config{RootCAs: c.ca.Pool(), Certificates: []tls.Certificate{good.TLS}, MinVersion: tls.VersionTLS13})
		}, false},
	}
	for _, tc := range cases {
		err := vote(tc.layer())
		if tc.refuse && err == nil {
			t.Errorf("%s: the vote request was answered", tc.name)
		}
		if !tc.refuse && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		t.Logf("%s: %v", tc.name, err)
	}
}

func mustCluster(t *testing.T, c *secureCluster) *coordinator.ClusterStatus {
	st, err := c.client(readToken).Cluster(context.Background())
	must(t, err)
	return st
}

// rawLayer is a client-only stream layer for the refusal tests: it dials
// with dial and accepts nothing.
type rawLayer struct {
	net.Listener
	dial func(addr string, timeout time.Duration) (net.Conn, error)
}

func (l rawLayer) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.dial(string(a), timeout)
}

func plainLayer(t *testing.T) raft.StreamLayer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	return rawLayer{ln, func(a string, d time.Duration) (net.Conn, error) { return net.DialTimeout("tcp", a, d) }}
}

func tlsLayer(t *testing.T, cfg *tls.Config) raft.StreamLayer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	return rawLayer{ln, func(a string, d time.Duration) (net.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: d}, "tcp", a, cfg)
	}}
}

func TestSecurityConfigValidate(t *testing.T) {
	base := coordinator.DefaultConfig()
	base.ID, base.DataDir, base.RaftAddr = "c1", "d", "127.0.0.1:1"
	cases := []struct {
		name string
		mod  func(*coordinator.Config)
	}{
		{"raft TLS without CA", func(c *coordinator.Config) { c.RaftTLS = coordinator.TLSFiles{Cert: "c", Key: "k"} }},
		{"raft TLS in memory", func(c *coordinator.Config) {
			c.InMemory = true
			c.RaftTLS = coordinator.TLSFiles{Cert: "c", Key: "k", CA: "a"}
		}},
		{"HTTPS cert without key", func(c *coordinator.Config) { c.HTTPTLS.Cert = "c" }},
		{"read token without admin", func(c *coordinator.Config) { c.ReadTokens = []string{readToken} }},
		{"short token", func(c *coordinator.Config) { c.AdminTokens = []string{"short"} }},
		{"NATS user without password", func(c *coordinator.Config) { c.NATSSecurity.User = "u" }},
	}
	for _, tc := range cases {
		cfg := base
		tc.mod(&cfg)
		if err := cfg.Validate(); !errors.Is(err, coordinator.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", tc.name, err)
		}
	}
}
