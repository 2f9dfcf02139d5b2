// Package testcluster runs cofactor as real processes — a nats-server,
// coordinators and workers built from this repository — on 127.0.0.1 with
// free ports, and drives them with the cofactor CLI, as an operator would.
// The end-to-end tests (test/e2e) and the fault suite (test/fault) share it.
//
// Every process is ended by the test's cleanup (SIGKILL by PID), so a test
// that fails half-way leaves nothing running.
package testcluster

import (
	"bytes"
	"context"
	"crypto/tls"
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
	"slices"
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

// Bins are the binaries under test, built once by Main.
var Bins struct {
	Dir                                 string
	Cofactor, Coordinator, Worker, NATS string
}

// Main builds the binaries into a temporary directory, runs the tests and
// removes the directory: call it from TestMain as os.Exit(Main(m)). Under
// -short nothing is built (the tests are expected to skip).
func Main(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "cofactor-testcluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	Bins.Dir = dir
	Bins.Cofactor = filepath.Join(dir, "cofactor")
	Bins.Coordinator = filepath.Join(dir, "coordinator")
	Bins.Worker = filepath.Join(dir, "worker")
	Bins.NATS = filepath.Join(dir, "nats-server")
	// The NATS server is built from the module this repository pins, so
	// nothing needs installing by hand. The faultinject tag gives the
	// worker the hidden --inject-faults and --inject-delay flags of the
	// fault scenarios; nothing else changes with it.
	for _, b := range [][]string{
		{"build", "-tags", "faultinject", "-o", dir + "/", "github.com/cofactor-ml/cofactor/cmd/..."},
		{"build", "-o", Bins.NATS, "github.com/nats-io/nats-server/v2"},
	} {
		cmd := exec.Command("go", b...)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "testcluster: go %s: %v\n", strings.Join(b, " "), err)
			return 1
		}
	}
	return m.Run()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Proc is one OS process of the test, logging to a file in the test's
// directory. It is always ended by the test's cleanup.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string
	done chan struct{}
	err  error
}

// StartProc starts bin with args, its output appended to dir/name.log.
func StartProc(t testing.TB, dir, name, bin string, args ...string) *Proc {
	t.Helper()
	return StartProcEnv(t, dir, name, bin, nil, args...)
}

// StartProcEnv is StartProc with env ("NAME=value") added to the test's
// environment: how secrets reach a process without appearing in argv.
func StartProcEnv(t testing.TB, dir, name, bin string, env []string, args ...string) *Proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Kill ends the process with SIGKILL and waits for it.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the process to stop (SIGTERM) and kills it after 10 s.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.Kill()
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Tail is the end of the process's log.
func (p *Proc) Tail() string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// StartListening starts a process whose listening address(es) come from
// args(ports), and waits until probe succeeds. Free ports are only free
// when they are picked: another test binary may take one first, so a
// process that exits before it listens is started again on new ports.
func StartListening(t testing.TB, dir, name, bin string, nPorts int, args func(ports []int) []string, probe func(ports []int) bool) (*Proc, []int) {
	t.Helper()
	return StartListeningEnv(t, dir, name, bin, nil, nPorts, args, probe)
}

// StartListeningEnv is StartListening with env added to the process's
// environment.
func StartListeningEnv(t testing.TB, dir, name, bin string, env []string, nPorts int, args func(ports []int) []string, probe func(ports []int) bool) (*Proc, []int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports := make([]int, nPorts)
		for i := range ports {
			ports[i] = FreePort(t)
		}
		p := StartProcEnv(t, dir, name, bin, env, args(ports)...)
		deadline := time.Now().Add(20 * time.Second)
		for !p.Exited() && time.Now().Before(deadline) {
			if probe(ports) {
				return p, ports
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !p.Exited() {
			t.Fatalf("%s did not start listening within 20 s:\n%s", name, p.Tail())
		}
		if attempt == 5 {
			t.Fatalf("%s exited %d times at start; last:\n%s", name, attempt, p.Tail())
		}
		t.Logf("%s exited at start (a port taken meanwhile?); retrying on new ports", name)
	}
}

// Dials reports whether a TCP connection to 127.0.0.1:port succeeds.
func Dials(port int) bool {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
	if err == nil {
		conn.Close()
	}
	return err == nil
}

// Coord is one coordinator's addresses and process.
type Coord struct {
	ID, RaftAddr, HTTPAddr, DataDir string
	P                               *Proc
}

// Cluster is a NATS server, coordinators and workers as processes.
type Cluster struct {
	T        testing.TB
	Dir      string
	NATSURL  string
	NATSPort int
	NATS     *Proc
	Coords   []*Coord
	// Workers and Metrics (worker → metrics URL) are guarded by Mu.
	Workers map[string]*Proc
	Metrics map[string]string
	Mu      sync.Mutex
	// CoordFlags are added to every coordinator's command line.
	CoordFlags []string
	// WorkerFlags are added to a worker's command line (by worker ID),
	// kept so that a restarted worker gets them again.
	WorkerFlags map[string][]string

	// The fields below run a secured cluster (docs/security.md); set them
	// after NewEmpty and before StartBase. Left zero, the cluster is the
	// open one of the all-in-one mode.

	// NATSConfig is a nats-server configuration file (from `cofactor
	// nats-config`: users, roles, TLS) the server is started with. The
	// harness still picks the address and port: -a and -p override the
	// file's.
	NATSConfig string
	// NATSEnv, CoordEnv and WorkerEnv ("NAME=value") are added to the
	// environment of the nats-server, every coordinator and every worker:
	// secrets travel there or in files, never in argv.
	NATSEnv, CoordEnv, WorkerEnv []string
	// HTTPS: the coordinators serve https (CoordFlags carry
	// --http-tls-cert), so their URLs and --join say https://.
	HTTPS bool
	// CLIFlags are put before the arguments of every command CLI, Submit
	// and Wait run (--ca-file, --token-file), and CLIEnv added to their
	// environment ($COFACTOR_TOKEN).
	CLIFlags, CLIEnv []string
	// APIToken and APITLS are the token the harness's own API client
	// (Status, WaitLeader, WaitReady, Job) sends and the TLS configuration
	// it trusts (nil: system roots).
	APIToken string
	APITLS   *tls.Config
}

// NewEmpty returns a cluster with no process started: call StartBase,
// StartWorker and WaitReady.
func NewEmpty(t testing.TB) *Cluster {
	return &Cluster{T: t, Dir: t.TempDir(), Workers: map[string]*Proc{}, Metrics: map[string]string{}, WorkerFlags: map[string][]string{}}
}

// New starts NATS, nCoord coordinators and nWorkers workers (w1, w2, …)
// and waits until all are ready.
func New(t testing.TB, nCoord, nWorkers int) *Cluster {
	t.Helper()
	c := NewEmpty(t)
	c.StartBase(nCoord)
	for i := 1; i <= nWorkers; i++ {
		c.StartWorker(fmt.Sprintf("w%d", i))
	}
	c.WaitReady(nCoord, nWorkers, 60*time.Second)
	return c
}

// StartBase starts NATS and nCoord coordinators (extra coordinator flags
// appended), and arranges for their logs to be shown when the test fails.
func (c *Cluster) StartBase(nCoord int, coordFlags ...string) {
	t := c.T
	t.Helper()
	c.CoordFlags = coordFlags
	var ports []int
	c.NATS, ports = StartListeningEnv(t, c.Dir, "nats", Bins.NATS, c.NATSEnv, 1, func(p []int) []string {
		return c.natsArgs(p[0])
	}, func(p []int) bool { return Dials(p[0]) })
	c.NATSURL, c.NATSPort = fmt.Sprintf("nats://127.0.0.1:%d", ports[0]), ports[0]
	c.StartCoords(nCoord, coordFlags...)
}

// StartCoords starts nCoord coordinators (extra coordinator flags
// appended) on c.NATSURL, and arranges for their and the workers' logs to
// be shown when the test fails. StartBase calls it after starting NATS; a
// test that runs NATS itself (a cluster of servers) sets NATSURL and calls
// it directly.
func (c *Cluster) StartCoords(nCoord int, coordFlags ...string) {
	t := c.T
	t.Helper()
	c.CoordFlags = coordFlags
	for i := 1; i <= nCoord; i++ {
		cd := &Coord{ID: fmt.Sprintf("c%d", i)}
		cd.DataDir = filepath.Join(c.Dir, cd.ID)
		c.Coords = append(c.Coords, cd)
		c.StartCoord(cd, i == 1)
		if i == 1 {
			c.WaitLeader(30 * time.Second)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, cd := range c.Coords {
				t.Logf("--- %s log tail:\n%s", cd.ID, cd.P.Tail())
			}
			c.Mu.Lock()
			for id, w := range c.Workers {
				t.Logf("--- %s log tail:\n%s", id, w.Tail())
			}
			c.Mu.Unlock()
		}
	})
}

func (c *Cluster) natsArgs(port int) []string {
	if c.NATSConfig != "" {
		return []string{"-c", c.NATSConfig, "-a", "127.0.0.1", "-p", fmt.Sprint(port)}
	}
	return []string{"-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", filepath.Join(c.Dir, "jetstream")}
}

// KillAll SIGKILLs every process of the cluster: NATS, coordinators and
// workers.
func (c *Cluster) KillAll() {
	for _, cd := range c.Coords {
		cd.P.Kill()
	}
	c.Mu.Lock()
	for _, w := range c.Workers {
		w.Kill()
	}
	c.Mu.Unlock()
	c.NATS.Kill()
}

// RestartNATS starts the NATS server again on its port and JetStream
// directory (after it was killed or stopped) and waits until it listens.
func (c *Cluster) RestartNATS() {
	c.T.Helper()
	c.NATS.Kill()
	c.NATS = StartProcEnv(c.T, c.Dir, "nats", Bins.NATS, c.NATSEnv, c.natsArgs(c.NATSPort)...)
	WaitFor(c.T, "NATS to listen again", func() bool { return Dials(c.NATSPort) })
}

// RestartCoord starts a stopped coordinator again on its addresses and
// raft state.
func (c *Cluster) RestartCoord(cd *Coord) {
	c.T.Helper()
	cd.P.Kill()
	cd.P = StartProcEnv(c.T, c.Dir, cd.ID, Bins.Coordinator, c.CoordEnv, append(c.coordArgs(cd), c.CoordFlags...)...)
}

// CoordArgs are the flags the harness starts coordinator cd with, before
// CoordFlags and --bootstrap or --join: for a test that starts a
// coordinator of its own with other flags.
func (c *Cluster) CoordArgs(cd *Coord) []string { return c.coordArgs(cd) }

// Scheme is the coordinators' URL scheme: https with HTTPS set.
func (c *Cluster) Scheme() string {
	if c.HTTPS {
		return "https"
	}
	return "http"
}

func (c *Cluster) coordArgs(cd *Coord) []string {
	return []string{"--id", cd.ID, "--data-dir", cd.DataDir, "--raft-addr", cd.RaftAddr, "--http-addr", cd.HTTPAddr,
		"--nats", c.NATSURL, "--worker-timeout", "3s", "--resend-interval", "1s", "--log-level", "debug"}
}

// RestartAll starts every process again on the same addresses and data
// directories (NATS on its JetStream directory, coordinators on their raft
// state, workers with their IDs), as an operator would after a power cut.
func (c *Cluster) RestartAll() {
	c.T.Helper()
	c.RestartNATS()
	for _, cd := range c.Coords {
		c.RestartCoord(cd)
	}
	c.Mu.Lock()
	ids := make([]string, 0, len(c.Workers))
	for id := range c.Workers {
		ids = append(ids, id)
	}
	c.Mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		c.StartWorker(id)
	}
	c.WaitReady(len(c.Coords), len(ids), 60*time.Second)
}

// WaitFor polls cond for up to 20 s.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitForWithin(t, 20*time.Second, what, cond)
}

// WaitForWithin polls cond for up to d.
func WaitForWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartCoord starts a coordinator on new free ports, bootstrapping the
// group or joining the first coordinator.
func (c *Cluster) StartCoord(cd *Coord, bootstrap bool) {
	cd.P, _ = StartListeningEnv(c.T, c.Dir, cd.ID, Bins.Coordinator, c.CoordEnv, 2, func(p []int) []string {
		cd.RaftAddr, cd.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", p[0]), fmt.Sprintf("127.0.0.1:%d", p[1])
		args := append(c.coordArgs(cd), c.CoordFlags...)
		if bootstrap {
			return append(args, "--bootstrap")
		}
		return append(args, "--join", c.Scheme()+"://"+c.Coords[0].HTTPAddr)
	}, func(p []int) bool { return Dials(p[1]) })
}

// StartWorker starts (or starts again) the worker id with the flags it was
// first started with.
func (c *Cluster) StartWorker(id string) {
	c.Mu.Lock()
	extra := c.WorkerFlags[id]
	c.Mu.Unlock()
	c.StartWorkerArgs(id, extra...)
}

// StartWorkerArgs starts a worker with extra flags, remembered for its
// restarts.
func (c *Cluster) StartWorkerArgs(id string, extra ...string) {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	if c.WorkerFlags == nil {
		c.WorkerFlags = map[string][]string{}
	}
	c.WorkerFlags[id] = extra
	w, ports := StartListeningEnv(c.T, c.Dir, id, Bins.Worker, c.WorkerEnv, 1, func(p []int) []string {
		return append(append(c.WorkerArgs(id), "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", p[0])), extra...)
	}, func(p []int) bool { return Dials(p[0]) })
	c.Workers[id] = w
	c.Metrics[id] = fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0])
}

// WorkerArgs are the flags the harness starts worker id with (without
// --metrics-addr and extra flags): for a test that starts a worker of its
// own, one expected to fail, say.
func (c *Cluster) WorkerArgs(id string) []string {
	return []string{"--id", id, "--nats", c.NATSURL, "--heartbeat", "500ms", "--log-level", "debug"}
}

// Worker returns the worker process id.
func (c *Cluster) Worker(id string) *Proc {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	p, ok := c.Workers[id]
	if !ok {
		c.T.Fatalf("no worker %s", id)
	}
	return p
}

// URLs lists every coordinator's HTTP URL: the CLI tries them in turn.
func (c *Cluster) URLs() string {
	var u []string
	for _, cd := range c.Coords {
		u = append(u, c.Scheme()+"://"+cd.HTTPAddr)
	}
	return strings.Join(u, ",")
}

// Client is an API client over every coordinator, sending APIToken and
// trusting APITLS.
func (c *Cluster) Client() *coordinator.Client {
	cl := coordinator.NewClient(c.URLs())
	cl.Token = c.APIToken
	cl.UseTLS(c.APITLS)
	return cl
}

// Status asks the cluster for its status through the API.
func (c *Cluster) Status() (*coordinator.ClusterStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Client().Cluster(ctx)
}

// WaitLeader waits up to d for a leader and returns its ID.
func (c *Cluster) WaitLeader(d time.Duration) string {
	c.T.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if st, err := c.Status(); err == nil && st.Leader != "" {
			return st.Leader
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.T.Fatalf("no leader within %v", d)
	return ""
}

// WaitReady waits for n voters (all reachable, one leader) and m live
// workers.
func (c *Cluster) WaitReady(n, m int, d time.Duration) {
	c.T.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		st, err := c.Status()
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
	c.T.Fatalf("cluster not ready within %v: %s", d, last)
}

// CoordByID returns the coordinator with that ID.
func (c *Cluster) CoordByID(id string) *Coord {
	for _, cd := range c.Coords {
		if cd.ID == id {
			return cd
		}
	}
	c.T.Fatalf("no coordinator %s", id)
	return nil
}

// CLI runs the cofactor CLI against the cluster and returns its exit code
// and output.
func (c *Cluster) CLI(args ...string) (int, string, string) {
	return RunCLIEnv(c.T, 0, c.CLIEnv, c.cliArgs(args)...)
}

// cliArgs puts --coordinator and CLIFlags before args.
func (c *Cluster) cliArgs(args []string) []string {
	return append(append([]string{"--coordinator", c.URLs()}, c.CLIFlags...), args...)
}

// RunCLI runs the cofactor CLI and returns its exit code and output.
func RunCLI(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	return RunCLIWithin(t, 0, args...)
}

// RunCLIWithin is RunCLI, failing the test if the command runs longer
// than d (0: no bound).
func RunCLIWithin(t testing.TB, d time.Duration, args ...string) (int, string, string) {
	t.Helper()
	return RunCLIEnv(t, d, nil, args...)
}

// RunCLIEnv is RunCLIWithin with env ("NAME=value") added to the
// command's environment.
func RunCLIEnv(t testing.TB, d time.Duration, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx := context.Background()
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, Bins.Cofactor, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	err := cmd.Run()
	code := 0
	if ctx.Err() != nil {
		t.Fatalf("cofactor %v ran longer than %v; stderr: %s", args, d, errb.String())
	}
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running cofactor %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// Submit submits a job through the CLI and returns its ID.
func (c *Cluster) Submit(args ...string) string {
	c.T.Helper()
	code, out, errs := c.CLI(append([]string{"job", "submit", "--json"}, args...)...)
	if code != 0 {
		c.T.Fatalf("job submit: exit %d: %s", code, errs)
	}
	var r coordinator.SubmitResponse
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.JobID == "" {
		c.T.Fatalf("job submit printed %q", out)
	}
	return r.JobID
}

// Wait waits for a job through the CLI and returns its exit code and
// result.
func (c *Cluster) Wait(id string) (int, *job.Result) {
	c.T.Helper()
	return c.WaitWithin(id, 0)
}

// WaitWithin is Wait, failing the test if the job has not finished
// within d (0: no bound).
func (c *Cluster) WaitWithin(id string, d time.Duration) (int, *job.Result) {
	c.T.Helper()
	code, out, errs := RunCLIEnv(c.T, d, c.CLIEnv, c.cliArgs([]string{"job", "wait", id, "--json"})...)
	var r job.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		c.T.Fatalf("job wait: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	return code, &r
}

// Job returns a job's current result through the API (nil while no
// coordinator answers).
func (c *Cluster) Job(id string) *job.Result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := c.Client().Job(ctx, id)
	if err != nil {
		return nil
	}
	return r
}

// WaitCheckpoint polls a job until its newest committed checkpoint is at
// iteration at least it, and returns that checkpoint.
func (c *Cluster) WaitCheckpoint(id string, it int, d time.Duration) job.CheckpointRef {
	c.T.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if r := c.Job(id); r != nil {
			if job.Finished(r.State) {
				c.T.Fatalf("job %s finished (%s) before checkpoint %d", id, r.State, it)
			}
			if r.Checkpoint != nil && r.Checkpoint.Iteration >= it {
				return *r.Checkpoint
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.T.Fatalf("job %s wrote no checkpoint at iteration %d within %v", id, it, d)
	return job.CheckpointRef{}
}

// WaitProgress polls a job until it reaches the given iteration (and is
// still running).
func (c *Cluster) WaitProgress(id string, iteration int, d time.Duration) {
	c.T.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if r := c.Job(id); r != nil {
			if job.Finished(r.State) {
				c.T.Fatalf("job %s finished (%s) before iteration %d", id, r.State, iteration)
			}
			if r.Progress != nil && r.Progress.Iteration >= iteration {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.T.Fatalf("job %s did not reach iteration %d within %v", id, iteration, d)
}

// WriteFile writes body to path.
func WriteFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// MetricSum scrapes every worker's /metrics and sums the named counter
// over all workers and label values.
func (c *Cluster) MetricSum(name string) float64 {
	c.T.Helper()
	c.Mu.Lock()
	urls := make(map[string]string, len(c.Metrics))
	for id, u := range c.Metrics {
		urls[id] = u
	}
	c.Mu.Unlock()
	var sum float64
	for _, url := range urls {
		if f, ok := Scrape(c.T, url)[name]; ok {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// Scrape fetches a /metrics URL and parses it with the Prometheus text
// parser.
func Scrape(t testing.TB, url string) map[string]*dto.MetricFamily {
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

// PNGDecode decodes a PNG image.
func PNGDecode(r io.Reader) (image.Image, error) { return png.Decode(r) }
