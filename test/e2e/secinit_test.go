package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/natsauth"
	"github.com/cofactor-ml/cofactor/internal/secinit"
	"github.com/cofactor-ml/cofactor/internal/testutil"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/test/testcluster"
	"github.com/cofactor-ml/cofactor/transport"
)

// secured is a directory `cofactor security init` wrote.
type secured string

// file is the path of one of its files.
func (d secured) file(name string) string { return filepath.Join(string(d), name) }

// token reads one of its token files.
func (d secured) token(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(d.file(name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// cluster returns an empty cluster whose own API calls and CLI runs use
// d's CA and tokens over HTTPS; the caller sets NATSConfig or NATSURL.
func (d secured) cluster(t *testing.T) *testcluster.Cluster {
	c := testcluster.NewEmpty(t)
	c.HTTPS = true
	c.CLIFlags = []string{"--ca-file", d.file(secinit.CACert), "--token-file", d.file(secinit.AdminToken)}
	c.APIToken = d.token(t, secinit.ReadToken)
	c.APITLS = clientTLS(t, d.file(secinit.CACert))
	return c
}

// coordFlags are a coordinator's flags for d's files: the coordinator
// NKey over TLS, HTTPS, both tokens, raft mutual TLS.
func (d secured) coordFlags() []string {
	f := d.file
	return []string{
		"--nats-nkey", f(secinit.NKeyFile(natsauth.Coordinator)), "--nats-ca", f(secinit.CACert),
		"--http-tls-cert", f(secinit.CoordinatorCrt), "--http-tls-key", f(secinit.CoordinatorKey), "--http-tls-ca", f(secinit.CACert),
		"--admin-token-file", f(secinit.AdminToken), "--read-token-file", f(secinit.ReadToken),
		"--raft-tls-cert", f(secinit.RaftCert), "--raft-tls-key", f(secinit.RaftKey), "--raft-tls-ca", f(secinit.RaftCACert),
	}
}

// smallInput is a set a job trains in a second or two.
func smallInput(t *testing.T) string {
	t.Helper()
	return genSet(t, "--users", "1500", "--items", "600", "--ratings", "40000", "--rank", "6", "--noise", "0.2", "--seed", "11")
}

// TestSecurityInitCluster: what `cofactor security init` writes is all a
// secured cluster needs. nats-server runs its nats.conf (TLS, the three
// roles by NKey); three coordinators run raft mutual TLS with its raft
// certificate, HTTPS and its tokens; workers and `cofactor serve` log in
// with their roles' seeds; serve listens on every interface with HTTPS
// and a read token, so protected mode lets it start. A job gives the
// factors of `train --workers 1`, and serve answers only with the token.
func TestSecurityInitCluster(t *testing.T) {
	skipShort(t)
	start := time.Now()
	dir := filepath.Join(t.TempDir(), "secure")
	code, out, errs := runCLI(t, "security", "init", dir, "--jetstream-dir", filepath.Join(t.TempDir(), "jetstream"), "--nats-http-port", "0", "--json")
	var res secinit.Result
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("security init: exit %d, %q, %s", code, out, errs)
	}
	d := secured(dir)
	f, token := d.file, func(name string) string { return d.token(t, name) }
	c := d.cluster(t)
	c.NATSConfig = f(secinit.NATSConfig)
	c.StartBase(3, d.coordFlags()...)
	for _, id := range []string{"w1", "w2"} {
		c.StartWorkerArgs(id, "--nats-nkey", f(secinit.NKeyFile(natsauth.Worker)), "--nats-ca", f(secinit.CACert))
	}
	c.WaitReady(3, 2, 60*time.Second)
	t.Logf("cluster from security init ready in %v", time.Since(start).Round(time.Millisecond))

	// serve on every interface, secured with security init's files.
	servePort := 0
	sp, _ := testcluster.StartListeningEnv(t, c.Dir, "serve", testcluster.Bins.Cofactor,
		[]string{"COFACTOR_TOKEN=" + token(secinit.ReadToken)}, 1, func(p []int) []string {
			servePort = p[0]
			return []string{"serve", "--coordinator", c.URLs(), "--ca-file", f(secinit.CACert),
				"--nats-nkey", f(secinit.NKeyFile(natsauth.Client)), "--nats-ca", f(secinit.CACert),
				"--http-addr", fmt.Sprintf("0.0.0.0:%d", p[0]), "--http-tls-cert", f(secinit.ServeCert), "--http-tls-key", f(secinit.ServeKey),
				"--read-token-file", f(secinit.ReadToken)}
		}, func(p []int) bool { return testcluster.Dials(p[0]) })
	defer sp.Kill()

	input := smallInput(t)
	flags := []string{"--input", input, "--rank", "6", "--lambda", "0.05", "--iterations", "5", "--test-fraction", "0.1", "--seed", "2"}
	dist := filepath.Join(t.TempDir(), "cluster")
	id := c.Submit(append([]string{"--out", dist}, flags...)...)
	code, jr := c.WaitWithin(id, 3*time.Minute)
	if code != 0 || jr.State != job.StateSucceeded {
		t.Fatalf("job wait: exit %d, state %s, error %s", code, jr.State, jr.Error)
	}
	if d := testutil.DirDiff(t, dist, trainLocal(t, flags...)); d > 1e-5 {
		t.Errorf("the cluster's factors differ from train --workers 1 by %g", d)
	}

	// serve follows the job's snapshot and answers over HTTPS: /healthz
	// to anyone, a recommendation only with the read token.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.APITLS.RootCAs}}}
	defer hc.CloseIdleConnections()
	base := fmt.Sprintf("https://127.0.0.1:%d", servePort)
	get := func(path, tok string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testcluster.WaitForWithin(t, time.Minute, "serve to load the job's snapshot", func() bool {
		code, _ := get("/healthz", "")
		return code == http.StatusOK
	})
	if code, body := get("/v1/recommend?user=1&k=3", ""); code != http.StatusUnauthorized {
		t.Errorf("serve without a token: %d %s; want 401", code, body)
	}
	if code, body := get("/v1/recommend?user=1&k=3", token(secinit.ReadToken)); code != http.StatusOK || !strings.Contains(body, `"items"`) {
		t.Errorf("serve with the read token: %d %s", code, body)
	}
	// Every member and worker is in the cluster's view.
	var st coordinator.ClusterStatus
	code, out, errs = c.CLI("cluster", "status", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Servers) != 3 || len(st.Workers) != 2 {
		t.Errorf("cluster status: exit %d, %q, %s", code, out, errs)
	}
	t.Logf("whole test: %v", time.Since(start).Round(time.Millisecond))
}

// TestProtectedModeProcesses: the real binaries in protected mode. A
// coordinator and serve told to listen on every interface with nothing
// secured exit 2 at once, saying why and naming --insecure; with
// --insecure they start and answer; on 127.0.0.1 they need nothing.
func TestProtectedModeProcesses(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	nats, ports := testcluster.StartListening(t, dir, "nats", testcluster.Bins.NATS, 1, func(p []int) []string {
		return []string{"-a", "127.0.0.1", "-p", fmt.Sprint(p[0]), "-js", "-sd", filepath.Join(dir, "js")}
	}, func(p []int) bool { return testcluster.Dials(p[0]) })
	defer nats.Kill()
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", ports[0])
	snap := trainLocal(t, "--input", smallInput(t), "--rank", "4", "--iterations", "2")

	coordArgs := func(name, httpHost string, p []int) []string {
		return []string{"--id", name, "--data-dir", filepath.Join(dir, name), "--bootstrap", "--nats", natsURL,
			"--raft-addr", fmt.Sprintf("127.0.0.1:%d", p[0]), "--http-addr", fmt.Sprintf("%s:%d", httpHost, p[1])}
	}
	serveArgs := func(host string, p []int) []string {
		return []string{"serve", "--snapshot", snap, "--http-addr", fmt.Sprintf("%s:%d", host, p[0])}
	}
	refused := []struct {
		name, bin string
		args      []string
	}{
		{"coordinator", testcluster.Bins.Coordinator, coordArgs("c1", "0.0.0.0", []int{testcluster.FreePort(t), testcluster.FreePort(t)})},
		{"serve", testcluster.Bins.Cofactor, serveArgs("0.0.0.0", []int{testcluster.FreePort(t)})},
	}
	for _, r := range refused {
		p := testcluster.StartProc(t, dir, r.name+"-refused", r.bin, r.args...)
		testcluster.WaitFor(t, r.name+" to exit", p.Exited)
		tail := p.Tail()
		if code := p.Cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(tail, "error: refusing to start") || !strings.Contains(tail, "--insecure") {
			t.Errorf("%s on 0.0.0.0 unsecured: exit %d, log %q; want 2, refusing, naming --insecure", r.name, code, tail)
		}
	}

	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	answers := func(url string) bool {
		resp, err := hc.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	for _, tc := range []struct {
		name, host string
		insecure   bool
	}{
		{"on every interface with --insecure", "0.0.0.0", true},
		{"on loopback", "127.0.0.1", false},
	} {
		extra := []string{}
		if tc.insecure {
			extra = []string{"--insecure"}
		}
		id := "c-" + strings.ReplaceAll(tc.host, ".", "-")
		cp, cports := testcluster.StartListening(t, dir, id, testcluster.Bins.Coordinator, 2, func(p []int) []string {
			return append(coordArgs(id, tc.host, p), extra...)
		}, func(p []int) bool { return testcluster.Dials(p[1]) })
		testcluster.WaitFor(t, "coordinator "+tc.name+" to answer", func() bool {
			return answers(fmt.Sprintf("http://127.0.0.1:%d/v1/status", cports[1]))
		})
		if tc.insecure && !strings.Contains(cp.Tail(), "--insecure") {
			t.Errorf("coordinator %s logged no warning about --insecure:\n%s", tc.name, cp.Tail())
		}
		cp.Kill()
		sp, sports := testcluster.StartListening(t, dir, "serve"+id, testcluster.Bins.Cofactor, 1, func(p []int) []string {
			return append(serveArgs(tc.host, p), extra...)
		}, func(p []int) bool { return testcluster.Dials(p[0]) })
		testcluster.WaitFor(t, "serve "+tc.name+" to answer", func() bool {
			return answers(fmt.Sprintf("http://127.0.0.1:%d/healthz", sports[0]))
		})
		sp.Kill()
	}
}

// TestWorkerIdentitiesCluster: `security init --workers 2` gives w1 and
// w2 each its own NATS identity. A job trains with them to the factors of
// `train --workers 1`, while w2's credentials, used by an intruder to
// listen on w1's commands, row requests and replies (and answer them with
// forged rows) and to heartbeat and report in w1's name, are refused by
// the server; its reports in w1's name on w2's own subject are dropped by
// the coordinator: the job is unharmed.
func TestWorkerIdentitiesCluster(t *testing.T) {
	skipShort(t)
	dir := filepath.Join(t.TempDir(), "secure")
	if code, _, errs := runCLI(t, "security", "init", dir, "--workers", "2", "--jetstream-dir", filepath.Join(t.TempDir(), "jetstream"), "--nats-http-port", "0"); code != 0 {
		t.Fatalf("security init --workers 2: exit %d: %s", code, errs)
	}
	d := secured(dir)
	f := d.file
	if _, err := os.Stat(f(secinit.NKeyFile(natsauth.Worker))); err == nil {
		t.Fatal("security init --workers wrote the shared worker seed")
	}
	c := d.cluster(t)
	c.NATSConfig = f(secinit.NATSConfig)
	c.StartBase(1, d.coordFlags()...)
	for _, id := range []string{"w1", "w2"} {
		c.StartWorkerArgs(id, "--nats-nkey", f(secinit.WorkerNKeyFile(id)), "--nats-ca", f(secinit.CACert))
	}
	c.WaitReady(1, 2, 60*time.Second)

	// The intruder: w2's credentials, listening where w1 is commanded and
	// asked for rows, ready to answer with zeros.
	sec := transport.Security{NKeySeedFile: f(secinit.WorkerNKeyFile("w2")), CAFile: f(secinit.CACert), InboxPrefix: transport.WorkerInboxPrefix("w2")}
	opts, err := sec.Options()
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan string, 16)
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if strings.Contains(err.Error(), "Permissions Violation") {
			refused <- err.Error()
		}
	}))
	intruder, err := transport.Dial(c.NATSURL, "intruder", opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	var answered atomic.Int32
	expectRefusal := func(what string) {
		t.Helper()
		select {
		case e := <-refused:
			if !strings.Contains(e, what) {
				t.Errorf("refusal %q does not name %s", e, what)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("w2's credentials were not refused: %s", what)
		}
	}
	for _, subj := range []string{transport.WorkerRowsSubject("w1"), transport.WorkerCmdSubject("w1"), transport.WorkerInboxPrefix("w1") + ".>"} {
		if _, err := intruder.Subscribe(subj, func(m *nats.Msg) { answered.Add(1); m.Respond(make([]byte, 64)) }); err != nil {
			t.Fatal(err)
		}
		expectRefusal(`Subscription to "` + subj + `"`)
	}
	for _, subj := range []string{transport.HeartbeatSubject("w1"), transport.ReportSubject("w1")} {
		intruder.Publish(subj, []byte(`{"worker":"w1"}`))
		expectRefusal(`Publish to "` + subj + `"`)
	}

	input := smallInput(t)
	flags := []string{"--input", input, "--rank", "6", "--lambda", "0.05", "--iterations", "5", "--test-fraction", "0.1", "--seed", "2"}
	dist := filepath.Join(t.TempDir(), "cluster")
	id := c.Submit(append([]string{"--out", dist}, flags...)...)
	// While the job runs, the intruder reports on its own subject that w1
	// failed the job's phases: every coordinator drops these.
	forging := make(chan struct{})
	var forged, forgedAnswered atomic.Int32
	go func() {
		defer close(forging)
		for i := 0; i < 40; i++ {
			b, _ := json.Marshal(wire.Report{Type: wire.RepPhase, Worker: "w1", Job: id, Error: "forged failure"})
			forged.Add(1)
			if _, err := intruder.Request(transport.ReportSubject("w2"), b, 100*time.Millisecond); err == nil {
				forgedAnswered.Add(1)
			}
		}
	}()
	code, jr := c.WaitWithin(id, 3*time.Minute)
	<-forging
	if code != 0 || jr.State != job.StateSucceeded || jr.Workers != 2 {
		t.Fatalf("job wait: exit %d, state %s on %d workers, error %s", code, jr.State, jr.Workers, jr.Error)
	}
	if d := testutil.DirDiff(t, dist, trainLocal(t, flags...)); d > 1e-5 {
		t.Errorf("the cluster's factors differ from train --workers 1 by %g", d)
	}
	intruder.Flush()
	if n := answered.Load(); n != 0 {
		t.Errorf("the intruder received %d of w1's messages", n)
	}
	if n := forgedAnswered.Load(); n != 0 {
		t.Errorf("the coordinator answered %d of the reports forged in w1's name", n)
	}
	t.Logf("w2's credentials: 5 refusals; %d reports forged in w1's name, %d answered", forged.Load(), forgedAnswered.Load())
}

// TestSecureNATSClusterR3: the nats.conf `security init --nats-routes`
// writes runs a real 3-server NATS cluster — routes over TLS, each server
// verifying the others' certificates, names from $NATS_SERVER_NAME — and
// coordinators with --replicas 3 and every server's URL run a job on it
// to the factors of `train --workers 1`, one server SIGKILLed in the
// middle.
func TestSecureNATSClusterR3(t *testing.T) {
	skipShort(t)
	base := t.TempDir()
	dir := filepath.Join(base, "secure")
	type server struct {
		name            string
		port, routePort int
		p               *testcluster.Proc
	}
	var servers []*server
	var routes, urls []string
	for i := 1; i <= 3; i++ {
		s := &server{name: fmt.Sprintf("n%d", i), port: testcluster.FreePort(t), routePort: testcluster.FreePort(t)}
		servers = append(servers, s)
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", s.routePort))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", s.port))
	}
	code, _, errs := runCLI(t, "security", "init", dir, "--nats-http-port", "0", "--jetstream-dir", "$NATS_STORE_DIR",
		"--nats-server-name", "$NATS_SERVER_NAME", "--nats-routes", strings.Join(routes, ","))
	if code != 0 {
		t.Fatalf("security init: exit %d: %s", code, errs)
	}
	d := secured(dir)
	f := d.file
	for _, s := range servers {
		// One host: each server its own client and route port, and its
		// name and JetStream directory from its environment; the rest
		// is the shared nats.conf.
		env := []string{"NATS_SERVER_NAME=" + s.name, "NATS_STORE_DIR=" + filepath.Join(base, s.name+"-js")}
		s.p = testcluster.StartProcEnv(t, base, s.name, testcluster.Bins.NATS, env,
			"-c", f(secinit.NATSConfig), "-a", "127.0.0.1", "-p", fmt.Sprint(s.port),
			"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", s.routePort))
	}
	for _, s := range servers {
		if !waitDials(s.port) {
			t.Fatalf("%s does not listen:\n%s", s.name, s.p.Tail())
		}
	}
	testcluster.WaitForWithin(t, time.Minute, "the TLS routes to join the three servers", func() bool {
		for _, s := range servers {
			if strings.Count(s.p.Tail(), "Route connection created") < 1 {
				return false
			}
		}
		return true
	})

	c := d.cluster(t)
	c.NATSURL = strings.Join(urls, ",")
	c.CoordFlags = append([]string{"--replicas", "3"}, d.coordFlags()...)
	cd := &testcluster.Coord{ID: "c1", DataDir: filepath.Join(c.Dir, "c1")}
	c.Coords = append(c.Coords, cd)
	c.StartCoord(cd, true)
	for _, id := range []string{"w1", "w2"} {
		c.StartWorkerArgs(id, "--nats-nkey", f(secinit.NKeyFile(natsauth.Worker)), "--nats-ca", f(secinit.CACert))
	}
	c.WaitReady(1, 2, 2*time.Minute)

	input := smallInput(t)
	flags := []string{"--input", input, "--rank", "6", "--lambda", "0.05", "--iterations", "8", "--test-fraction", "0.1", "--seed", "2"}
	dist := filepath.Join(t.TempDir(), "cluster")
	id := c.Submit(append([]string{"--out", dist, "--checkpoint-every", "1"}, flags...)...)
	testcluster.WaitForWithin(t, time.Minute, "the job to reach iteration 2", func() bool {
		r := c.Job(id)
		return r != nil && (len(r.History) >= 2 || r.State != job.StateRunning && r.State != job.StatePending)
	})
	servers[1].p.Kill()
	code, jr := c.WaitWithin(id, 3*time.Minute)
	if code != 0 || jr.State != job.StateSucceeded {
		for _, s := range servers {
			t.Logf("--- %s:\n%s", s.name, s.p.Tail())
		}
		t.Fatalf("job wait: exit %d, state %s, error %s", code, jr.State, jr.Error)
	}
	if d := testutil.DirDiff(t, dist, trainLocal(t, flags...)); d > 1e-5 {
		t.Errorf("the cluster's factors differ from train --workers 1 by %g", d)
	}

	// A server without the cluster's certificates cannot join it: n1
	// closes its plain route at once, so what is published on it never
	// reaches the cluster.
	roguePort := testcluster.FreePort(t)
	rogue := testcluster.StartProc(t, base, "rogue", testcluster.Bins.NATS, "-a", "127.0.0.1", "-p", fmt.Sprint(roguePort),
		"-n", "rogue", "--cluster_name", "cofactor", "--cluster", fmt.Sprintf("nats://127.0.0.1:%d", testcluster.FreePort(t)),
		"--routes", routes[0])
	defer rogue.Kill()
	if !waitDials(roguePort) {
		t.Fatalf("the rogue server does not listen:\n%s", rogue.Tail())
	}
	sec := transport.Security{NKeySeedFile: f(secinit.NKeyFile(natsauth.Coordinator)), CAFile: f(secinit.CACert)}
	opts, err := sec.Options()
	if err != nil {
		t.Fatal(err)
	}
	listener, err := transport.Dial(urls[0], "listener", opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	got, err := listener.SubscribeSync(transport.HeartbeatSubject("*"))
	if err != nil {
		t.Fatal(err)
	}
	listener.Flush()
	intruder, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", roguePort))
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		intruder.Publish(transport.HeartbeatSubject("w1"), []byte("rogue heartbeat"))
		intruder.Flush()
		for {
			m, err := got.NextMsg(100 * time.Millisecond)
			if err != nil {
				break
			}
			if string(m.Data) == "rogue heartbeat" {
				t.Fatalf("a server without the cluster's certificate routed a message into it:\n%s", rogue.Tail())
			}
		}
	}
	if !strings.Contains(rogue.Tail(), "Router connection closed") {
		t.Errorf("the rogue server's route attempts were not closed:\n%s", rogue.Tail())
	}
}

func waitDials(port int) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if testcluster.Dials(port) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
