// Package e2e runs cofactor as real processes — a nats-server, coordinators
// and workers built from this repository — on 127.0.0.1 with free ports,
// and drives them with the cofactor CLI, as an operator would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// bins are the binaries under test, built once by TestMain.
var bins struct {
	dir                                 string
	cofactor, coordinator, worker, nats string
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // every test skips; nothing to build
	}
	dir, err := os.MkdirTemp("", "cofactor-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins.dir = dir
	bins.cofactor = filepath.Join(dir, "cofactor")
	bins.coordinator = filepath.Join(dir, "coordinator")
	bins.worker = filepath.Join(dir, "worker")
	bins.nats = filepath.Join(dir, "nats-server")
	// The NATS server is built from the module this repository pins, so
	// nothing needs installing by hand.
	for _, b := range [][]string{
		{"build", "-o", dir + "/", "github.com/cofactor-ml/cofactor/cmd/..."},
		{"build", "-o", bins.nats, "github.com/nats-io/nats-server/v2"},
	} {
		cmd := exec.Command("go", b...)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n", strings.Join(b, " "), err)
			return 1
		}
	}
	return m.Run()
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is one OS process of the test, logging to a file in the test's
// directory. It is always ended by the test's cleanup.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProc(t *testing.T, dir, name, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the process to stop (SIGTERM) and kills it after 10 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startListening starts a process whose listening address(es) come from
// args(ports), and waits until probe succeeds. Free ports are only free
// when they are picked: another test binary may take one first, so a
// process that exits before it listens is started again on new ports.
func startListening(t *testing.T, dir, name, bin string, nPorts int, args func(ports []int) []string, probe func(ports []int) bool) (*proc, []int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports := make([]int, nPorts)
		for i := range ports {
			ports[i] = freePort(t)
		}
		p := startProc(t, dir, name, bin, args(ports)...)
		deadline := time.Now().Add(20 * time.Second)
		for !p.exited() && time.Now().Before(deadline) {
			if probe(ports) {
				return p, ports
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !p.exited() {
			t.Fatalf("%s did not start listening within 20 s:\n%s", name, p.tail())
		}
		if attempt == 5 {
			t.Fatalf("%s exited %d times at start; last:\n%s", name, attempt, p.tail())
		}
		t.Logf("%s exited at start (a port taken meanwhile?); retrying on new ports", name)
	}
}

// dials reports whether a TCP connection to 127.0.0.1:port succeeds.
func dials(port int) bool {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
	if err == nil {
		conn.Close()
	}
	return err == nil
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// coord is one coordinator's addresses and process.
type coord struct {
	id, raftAddr, httpAddr, dataDir string
	p                               *proc
}

// cluster is a NATS server, coordinators and workers as processes.
type cluster struct {
	t        *testing.T
	dir      string
	natsURL  string
	natsPort int
	nats     *proc
	coords   []*coord
	workers  map[string]*proc
	metrics  map[string]string // worker → metrics URL
	mu       sync.Mutex
	// coordFlags are added to every coordinator's command line.
	coordFlags []string
}

func newCluster(t *testing.T, nCoord, nWorkers int) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), workers: map[string]*proc{}, metrics: map[string]string{}}
	c.startBase(nCoord)
	for i := 1; i <= nWorkers; i++ {
		c.startWorker(fmt.Sprintf("w%d", i))
	}
	c.waitReady(nCoord, nWorkers, 60*time.Second)
	return c
}

// startBase starts NATS and nCoord coordinators (extra coordinator flags
// appended), and arranges for their logs to be shown when the test fails.
func (c *cluster) startBase(nCoord int, coordFlags ...string) {
	t := c.t
	t.Helper()
	c.coordFlags = coordFlags
	var ports []int
	c.nats, ports = startListening(t, c.dir, "nats", bins.nats, 1, func(p []int) []string {
		return []string{"-a", "127.0.0.1", "-p", fmt.Sprint(p[0]), "-js", "-sd", filepath.Join(c.dir, "jetstream")}
	}, func(p []int) bool { return dials(p[0]) })
	c.natsURL, c.natsPort = fmt.Sprintf("nats://127.0.0.1:%d", ports[0]), ports[0]
	for i := 1; i <= nCoord; i++ {
		cd := &coord{id: fmt.Sprintf("c%d", i)}
		cd.dataDir = filepath.Join(c.dir, cd.id)
		c.coords = append(c.coords, cd)
		c.startCoord(cd, i == 1)
		if i == 1 {
			c.waitLeader(30 * time.Second)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, cd := range c.coords {
				t.Logf("--- %s log tail:\n%s", cd.id, cd.p.tail())
			}
			for id, w := range c.workers {
				t.Logf("--- %s log tail:\n%s", id, w.tail())
			}
		}
	})
}

// killAll SIGKILLs every process of the cluster: NATS, coordinators and
// workers.
func (c *cluster) killAll() {
	for _, cd := range c.coords {
		cd.p.kill()
	}
	c.mu.Lock()
	for _, w := range c.workers {
		w.kill()
	}
	c.mu.Unlock()
	c.nats.kill()
}

// restartAll starts every process again on the same addresses and data
// directories (NATS on its JetStream directory, coordinators on their raft
// state, workers with their IDs), as an operator would after a power cut.
func (c *cluster) restartAll() {
	c.t.Helper()
	c.nats = startProc(c.t, c.dir, "nats", bins.nats, "-a", "127.0.0.1", "-p", fmt.Sprint(c.natsPort), "-js", "-sd", filepath.Join(c.dir, "jetstream"))
	waitFor(c.t, "NATS to listen again", func() bool { return dials(c.natsPort) })
	for _, cd := range c.coords {
		cd.p = startProc(c.t, c.dir, cd.id, bins.coordinator, "--id", cd.id, "--data-dir", cd.dataDir, "--raft-addr", cd.raftAddr,
			"--http-addr", cd.httpAddr, "--nats", c.natsURL, "--worker-timeout", "3s", "--resend-interval", "1s", "--log-level", "debug")
	}
	c.mu.Lock()
	ids := make([]string, 0, len(c.workers))
	for id := range c.workers {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	for _, id := range ids {
		c.startWorker(id)
	}
	c.waitReady(len(c.coords), len(ids), 60*time.Second)
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *cluster) startCoord(cd *coord, bootstrap bool) {
	cd.p, _ = startListening(c.t, c.dir, cd.id, bins.coordinator, 2, func(p []int) []string {
		cd.raftAddr, cd.httpAddr = fmt.Sprintf("127.0.0.1:%d", p[0]), fmt.Sprintf("127.0.0.1:%d", p[1])
		args := []string{"--id", cd.id, "--data-dir", cd.dataDir, "--raft-addr", cd.raftAddr, "--http-addr", cd.httpAddr,
			"--nats", c.natsURL, "--worker-timeout", "3s", "--resend-interval", "1s", "--log-level", "debug"}
		args = append(args, c.coordFlags...)
		if bootstrap {
			return append(args, "--bootstrap")
		}
		return append(args, "--join", "http://"+c.coords[0].httpAddr)
	}, func(p []int) bool { return dials(p[1]) })
}

func (c *cluster) startWorker(id string) { c.startWorkerArgs(id) }

// startWorkerArgs starts a worker with extra flags.
func (c *cluster) startWorkerArgs(id string, extra ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ports := startListening(c.t, c.dir, id, bins.worker, 1, func(p []int) []string {
		return append([]string{"--id", id, "--nats", c.natsURL, "--heartbeat", "500ms", "--log-level", "debug",
			"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", p[0])}, extra...)
	}, func(p []int) bool { return dials(p[0]) })
	c.workers[id] = w
	c.metrics[id] = fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0])
}

// urls lists every coordinator's HTTP URL: the CLI tries them in turn.
func (c *cluster) urls() string {
	var u []string
	for _, cd := range c.coords {
		u = append(u, "http://"+cd.httpAddr)
	}
	return strings.Join(u, ",")
}

func (c *cluster) client() *coordinator.Client { return coordinator.NewClient(c.urls()) }

// status asks the cluster for its status through the API.
func (c *cluster) status() (*coordinator.ClusterStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.client().Cluster(ctx)
}

func (c *cluster) waitLeader(d time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if st, err := c.status(); err == nil && st.Leader != "" {
			return st.Leader
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("no leader within %v", d)
	return ""
}

// waitReady waits for n voters (all reachable, one leader) and m live
// workers.
func (c *cluster) waitReady(n, m int, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		st, err := c.status()
		if err == nil {
			leaders, up, alive := 0, 0, 0
			for _, s := range st.Servers {
				if s.State == "leader" {
					leaders++
				}
				if s.State == "leader" || s.State == "follower" {
					up++
				}
			}
			for _, w := range st.Workers {
				if w.State == "alive" {
					alive++
				}
			}
			if len(st.Servers) == n && up == n && leaders == 1 && alive >= m {
				return
			}
			b, _ := json.Marshal(st)
			last = string(b)
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("cluster not ready within %v: %s", d, last)
}

// coordByID returns the coordinator with that ID.
func (c *cluster) coordByID(id string) *coord {
	for _, cd := range c.coords {
		if cd.id == id {
			return cd
		}
	}
	c.t.Fatalf("no coordinator %s", id)
	return nil
}

// cli runs the cofactor CLI against the cluster and returns its exit code
// and output.
func (c *cluster) cli(args ...string) (int, string, string) {
	return runCLI(c.t, append([]string{"--coordinator", c.urls()}, args...)...)
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bins.cofactor, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running cofactor %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// submit submits a job through the CLI and returns its ID.
func (c *cluster) submit(args ...string) string {
	c.t.Helper()
	code, out, errs := c.cli(append([]string{"job", "submit", "--json"}, args...)...)
	if code != 0 {
		c.t.Fatalf("job submit: exit %d: %s", code, errs)
	}
	var r coordinator.SubmitResponse
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.JobID == "" {
		c.t.Fatalf("job submit printed %q", out)
	}
	return r.JobID
}

// wait waits for a job through the CLI and returns its result.
func (c *cluster) wait(id string) (int, *job.Result) {
	c.t.Helper()
	code, out, errs := c.cli("job", "wait", id, "--json")
	var r job.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		c.t.Fatalf("job wait: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	return code, &r
}

// waitCheckpoint polls a job until its newest committed checkpoint is at
// iteration at least it, and returns that checkpoint.
func (c *cluster) waitCheckpoint(id string, it int, d time.Duration) job.CheckpointRef {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := c.client().Job(ctx, id)
		cancel()
		if err == nil {
			if job.Finished(r.State) {
				c.t.Fatalf("job %s finished (%s) before checkpoint %d", id, r.State, it)
			}
			if r.Checkpoint != nil && r.Checkpoint.Iteration >= it {
				return *r.Checkpoint
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("job %s wrote no checkpoint at iteration %d within %v", id, it, d)
	return job.CheckpointRef{}
}

// waitProgress polls a job until it reaches the given iteration (and is
// still running).
func (c *cluster) waitProgress(id string, iteration int, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := c.client().Job(ctx, id)
		cancel()
		if err == nil {
			if job.Finished(r.State) {
				c.t.Fatalf("job %s finished (%s) before iteration %d", id, r.State, iteration)
			}
			if r.Progress != nil && r.Progress.Iteration >= iteration {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("job %s did not reach iteration %d within %v", id, iteration, d)
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// metricSum scrapes every worker's /metrics and sums the named counter
// over all workers and label values.
func (c *cluster) metricSum(name string) float64 {
	c.t.Helper()
	var sum float64
	for id, url := range c.metrics {
		resp, err := http.Get(url)
		if err != nil {
			c.t.Fatalf("scraping %s: %v", id, err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			c.t.Fatalf("parsing %s's metrics: %v", id, err)
		}
		if f, ok := fams[name]; ok {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// scrape fetches a /metrics URL and parses it with the Prometheus text
// parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

func pngDecode(r io.Reader) (image.Image, error) { return png.Decode(r) }
