//go:build fault

package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cofactor-ml/cofactor/test/testcluster"
)

// natsServer is one nats-server process of a natsCluster: its client and
// route ports and JetStream directory stay the same across restarts.
type natsServer struct {
	name            string
	port, routePort int
	monitorPort     int // /connz: which clients it holds
	dir             string
	p               *testcluster.Proc
	stopped         bool // SIGSTOPped
}

// natsCluster is three nats-server processes in one NATS cluster with
// JetStream, on 127.0.0.1 free ports: the storage the coordinators'
// --replicas 3 copies every bucket across.
type natsCluster struct {
	t       *testing.T
	dir     string
	servers []*natsServer
}

func startNATSCluster(t *testing.T, dir string, n int) *natsCluster {
	t.Helper()
	nc := &natsCluster{t: t, dir: dir}
	for i := 1; i <= n; i++ {
		nc.servers = append(nc.servers, &natsServer{
			name: fmt.Sprintf("n%d", i), port: testcluster.FreePort(t), routePort: testcluster.FreePort(t), monitorPort: testcluster.FreePort(t),
			dir: filepath.Join(dir, fmt.Sprintf("n%d-js", i)),
		})
	}
	for _, s := range nc.servers {
		nc.start(s)
	}
	nc.waitJetStream(time.Minute)
	return nc
}

func (nc *natsCluster) routes() string {
	var r []string
	for _, s := range nc.servers {
		r = append(r, fmt.Sprintf("nats-route://127.0.0.1:%d", s.routePort))
	}
	return strings.Join(r, ",")
}

// URLs is the client URL list every coordinator and worker gets.
func (nc *natsCluster) URLs() string {
	var u []string
	for _, s := range nc.servers {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", s.port))
	}
	return strings.Join(u, ",")
}

func (nc *natsCluster) start(s *natsServer) {
	nc.t.Helper()
	s.p = testcluster.StartProc(nc.t, nc.dir, s.name, testcluster.Bins.NATS,
		"-a", "127.0.0.1", "-p", fmt.Sprint(s.port), "-m", fmt.Sprint(s.monitorPort), "-n", s.name, "-js", "-sd", s.dir,
		"--cluster_name", "cofactor", "--cluster", fmt.Sprintf("nats://127.0.0.1:%d", s.routePort), "--routes", nc.routes())
	s.stopped = false
	testcluster.WaitFor(nc.t, s.name+" to listen", func() bool { return testcluster.Dials(s.port) })
}

// clients returns the names of the cofactor processes (coordinators and
// workers) connected to server i, from its monitoring endpoint.
func (nc *natsCluster) clients(i int) []string {
	nc.t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/connz?limit=1000", nc.servers[i].monitorPort))
	if err != nil {
		nc.t.Fatalf("%s /connz: %v", nc.servers[i].name, err)
	}
	defer resp.Body.Close()
	var cz struct {
		Connections []struct {
			Name string `json:"name"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cz); err != nil {
		nc.t.Fatalf("%s /connz: %v", nc.servers[i].name, err)
	}
	var names []string
	for _, c := range cz.Connections {
		if strings.HasPrefix(c.Name, "cofactor-") {
			names = append(names, c.Name)
		}
	}
	return names
}

// busiest is the server holding the most cofactor processes (the first
// of them from start on, for ties).
func (nc *natsCluster) busiest(start int) (int, []string) {
	best, names := -1, []string(nil)
	for k := range nc.servers {
		i := (start + k) % len(nc.servers)
		if c := nc.clients(i); best < 0 || len(c) > len(names) {
			best, names = i, c
		}
	}
	return best, names
}

// kill SIGKILLs server i; restart starts it again on its ports and data.
func (nc *natsCluster) kill(i int) { nc.servers[i].p.Kill() }

func (nc *natsCluster) restart(i int) {
	nc.t.Helper()
	nc.servers[i].p.Kill()
	nc.start(nc.servers[i])
}

// stop SIGSTOPs server i (it holds its connections but answers nothing);
// cont resumes it.
func (nc *natsCluster) stop(i int) {
	nc.t.Helper()
	if err := nc.servers[i].p.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		nc.t.Fatal(err)
	}
	nc.servers[i].stopped = true
}

func (nc *natsCluster) cont(i int) {
	nc.t.Helper()
	if err := nc.servers[i].p.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		nc.t.Fatal(err)
	}
	nc.servers[i].stopped = false
}

// waitJetStream waits until JetStream answers through every running
// server and, once the buckets exist, until each bucket's stream has all
// its replicas current: a server that comes back has caught up.
func (nc *natsCluster) waitJetStream(d time.Duration) {
	nc.t.Helper()
	testcluster.WaitForWithin(nc.t, d, "the NATS cluster's JetStream to be whole", func() bool {
		for _, s := range nc.servers {
			if s.stopped {
				continue
			}
			if !jetStreamWhole(fmt.Sprintf("nats://127.0.0.1:%d", s.port)) {
				return false
			}
		}
		return true
	})
}

func jetStreamWhole(url string) bool {
	conn, err := nats.Connect(url, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return false
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		return false
	}
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			return false
		}
		info := st.CachedInfo()
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
	}
	return names.Err() == nil
}

// startOnNATSCluster starts three coordinators with --replicas 3 and three
// workers, all given every NATS server's URL.
func startOnNATSCluster(t *testing.T, nc *natsCluster) *testcluster.Cluster {
	t.Helper()
	c := testcluster.NewEmpty(t)
	c.NATSURL = nc.URLs()
	c.StartCoords(3, "--replicas", "3")
	for i := 1; i <= 3; i++ {
		c.StartWorker(fmt.Sprintf("w%d", i))
	}
	c.WaitReady(3, 3, time.Minute)
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range nc.servers {
				t.Logf("--- %s log tail:\n%s", s.name, s.p.Tail())
			}
		}
	})
	// Every bucket has its three copies.
	nc.waitJetStream(time.Minute)
	return c
}

// r3Scenario runs a scenario's repetitions on a fresh cluster of three
// NATS servers and three coordinators with --replicas 3 and three
// workers; run is one repetition (i counts them) returning the factor
// difference from the undisturbed run.
func r3Scenario(t *testing.T, name string, seed uint64, run func(t *testing.T, nc *natsCluster, c *testcluster.Cluster, i int, rng *rand.Rand) float64) {
	nc := startNATSCluster(t, t.TempDir(), 3)
	c := startOnNATSCluster(t, nc)
	reference(t)
	ty := newTally(t, name)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), seed))
	for i := range runs(t) {
		ty.run(i, func(t *testing.T) float64 { return run(t, nc, c, i, rng) })
	}
}

// snapshotsReadable lists the cluster store's snapshots through the NATS
// URLs given and pulls and verifies each one job published (every one
// with job ""): each is whole. It returns how many it checked.
func snapshotsReadable(t *testing.T, urls, job string) int {
	t.Helper()
	code, out, errs := testcluster.RunCLIWithin(t, time.Minute, "snapshot", "list", "--nats", urls, "--json")
	if code != 0 {
		t.Fatalf("snapshot list: exit %d: %s", code, errs)
	}
	var list struct {
		Snapshots []struct {
			ID  string `json:"id"`
			Job string `json:"job"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("snapshot list printed %q: %v", out, err)
	}
	n := 0
	for _, s := range list.Snapshots {
		if job != "" && s.Job != job {
			continue
		}
		dir := filepath.Join(t.TempDir(), s.ID)
		if code, _, errs := testcluster.RunCLIWithin(t, time.Minute, "snapshot", "pull", s.ID, "--nats", urls, "--out", dir); code != 0 {
			t.Errorf("snapshot pull %s: exit %d: %s", s.ID, code, errs)
			continue
		}
		if code, _, errs := testcluster.RunCLI(t, "snapshot", "verify", dir); code != 0 {
			t.Errorf("snapshot verify %s: exit %d: %s", s.ID, code, errs)
		}
		n++
	}
	return n
}

// One of three NATS servers SIGKILLed in the middle of a job whose
// buckets have three copies (--replicas 3) — the one most coordinators and
// workers are connected to: they move to the others, JetStream keeps a
// quorum, and the job ends with the undisturbed factors. With the server
// still down, every snapshot in the store (this run's and the earlier
// ones') is pulled and verifies. The server is started again and catches
// up before the next run.
func TestNATSServerKilledR3(t *testing.T) {
	r3Scenario(t, "1 of 3 NATS servers SIGKILL (R3)", 20, func(t *testing.T, nc *natsCluster, c *testcluster.Cluster, i int, rng *rand.Rand) float64 {
		victim := i % 3
		id, dist := submitOut(t, c)
		if killPoints[1].wait(t, c, id, rng) {
			// The server most processes are connected to: they must
			// move to the others.
			var held []string
			victim, held = nc.busiest(i % 3)
			t.Logf("killing NATS server %s mid-phase; connected to it: %v", nc.servers[victim].name, held)
			if len(held) == 0 {
				t.Errorf("no coordinator or worker was connected to %s: nothing had to reconnect", nc.servers[victim].name)
			}
			nc.kill(victim)
		} else {
			t.Logf("the job finished before the kill")
		}
		start := time.Now()
		res := mustSucceed(t, c, id)
		took := time.Since(start)
		t.Logf("job done %.1f s after the kill; restarts %d, notes %v", took.Seconds(), res.Restarts, res.Notes)
		if keep := os.Getenv("COFACTOR_FAULT_SLOW_LOGS"); keep != "" && took > 30*time.Second {
			// A slow recovery: keep every process's log to read.
			dst := filepath.Join(keep, fmt.Sprintf("%s-run%d", t.Name(), i))
			logs, _ := filepath.Glob(filepath.Join(c.Dir, "*.log"))
			more, _ := filepath.Glob(filepath.Join(nc.dir, "*.log"))
			for _, l := range append(logs, more...) {
				if b, err := os.ReadFile(l); err == nil && os.MkdirAll(dst, 0o755) == nil {
					os.WriteFile(filepath.Join(dst, filepath.Base(l)), b, 0o644)
				}
			}
			t.Logf("logs of the slow run kept in %s", dst)
		}
		d := compare(t, dist)
		var up []string
		for j, s := range nc.servers {
			if j != victim {
				up = append(up, fmt.Sprintf("nats://127.0.0.1:%d", s.port))
			}
		}
		n := snapshotsReadable(t, strings.Join(up, ","), "")
		t.Logf("%d snapshots pulled and verified with %s down", n, nc.servers[victim].name)
		if n == 0 {
			t.Errorf("no snapshot in the store")
		}
		nc.restart(victim)
		nc.waitJetStream(2 * time.Minute)
		c.WaitReady(3, 3, time.Minute)
		return d
	})
}

// Two of three NATS servers SIGSTOPped in the middle of a job: the one
// left has no JetStream quorum, so no checkpoint or snapshot can be
// written and the job stalls (its committed state stays as it was); once
// the two resume, the job finishes with the undisturbed factors and every
// snapshot verifies.
func TestTwoNATSServersStoppedR3(t *testing.T) {
	r3Scenario(t, "2 of 3 NATS servers SIGSTOP (R3)", 21, func(t *testing.T, nc *natsCluster, c *testcluster.Cluster, i int, rng *rand.Rand) float64 {
		left := i % 3
		id, dist := submitOut(t, c)
		if !killPoints[1].wait(t, c, id, rng) {
			t.Fatal("the job finished before the servers were stopped")
		}
		var stopped []int
		var held []string
		for j := range nc.servers {
			if j != left {
				held = append(held, nc.clients(j)...)
				stopped = append(stopped, j)
			}
		}
		for _, j := range stopped {
			nc.stop(j)
		}
		t.Logf("stopped NATS servers %v, %s left; connected to them: %v", stopped, nc.servers[left].name, held)
		committed := func() string {
			r := c.Job(id)
			if r == nil {
				return "no answer"
			}
			ck := ""
			if r.Checkpoint != nil {
				ck = r.Checkpoint.ID
			}
			return fmt.Sprintf("%s, %d history entries, checkpoint %q", r.State, len(r.History), ck)
		}
		// What was in flight settles, then nothing more commits.
		time.Sleep(3 * time.Second)
		before := committed()
		time.Sleep(10 * time.Second)
		after := committed()
		if after != before {
			t.Errorf("the job committed progress without a JetStream quorum: %q, then %q", before, after)
		}
		if strings.HasPrefix(after, "failed") {
			t.Errorf("the job failed while NATS had no quorum: %s", after)
		}
		t.Logf("stalled for 10 s at: %s", after)
		resumed := time.Now()
		for _, j := range stopped {
			nc.cont(j)
		}
		res := mustSucceed(t, c, id)
		t.Logf("job done %.1f s after the servers resumed; restarts %d, notes %v", time.Since(resumed).Seconds(), res.Restarts, res.Notes)
		d := compare(t, dist)
		nc.waitJetStream(2 * time.Minute)
		if n := snapshotsReadable(t, nc.URLs(), ""); n == 0 {
			t.Errorf("no snapshot in the store")
		} else {
			t.Logf("%d snapshots pulled and verified", n)
		}
		c.WaitReady(3, 3, time.Minute)
		return d
	})
}
