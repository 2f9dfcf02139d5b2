package e2e

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/httpauth"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/testcerts"
	"github.com/cofactor-ml/cofactor/internal/testutil"
	"github.com/cofactor-ml/cofactor/test/testcluster"
)

// writeSecret writes a secret file the way an operator should: mode 0600.
func writeSecret(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// secureSetup is the secrets and certificates of a secured cluster, all
// made at test time in one 0700 directory.
type secureSetup struct {
	dir                       string
	ca, raftCA                *testcerts.CA
	adminToken, readToken     string
	adminFile, readFile       string
	coordPassword, clientPass string
	workerSeed                string
	natsConf                  string
	coordFlags                []string
	// raftFlags are the --raft-tls-* part of coordFlags.
	raftFlags []string
}

func newSecureSetup(t *testing.T) *secureSetup {
	t.Helper()
	s := &secureSetup{dir: t.TempDir()}
	if err := os.Chmod(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// One CA for NATS and HTTPS, raft its own (as docs/security.md
	// advises: any certificate the raft CA signs can join the group).
	s.ca = testcerts.NewCA(t, s.dir, "cofactor")
	s.raftCA = testcerts.NewCA(t, s.dir, "raft")
	natsCert := s.ca.Issue(t, "nats")
	// Every coordinator runs on 127.0.0.1, so one certificate (its IP SAN)
	// serves them all; on real hosts each has its own.
	coordCert := s.ca.Issue(t, "coordinator")
	coordRaft := s.raftCA.Issue(t, "coordinator")

	s.adminToken, s.readToken = randomHex(t, 32), randomHex(t, 32)
	s.adminFile = writeSecret(t, filepath.Join(s.dir, "admin.token"), s.adminToken)
	s.readFile = writeSecret(t, filepath.Join(s.dir, "read.token"), s.readToken)
	s.coordPassword, s.clientPass = randomHex(t, 24), randomHex(t, 24)

	// The workers log in with an NKey whose seed the real binary makes.
	s.workerSeed = filepath.Join(s.dir, "worker.nk")
	code, pub, errs := runCLI(t, "nats-config", "nkey", "--out", s.workerSeed)
	if code != 0 {
		t.Fatalf("nats-config nkey: exit %d: %s", code, errs)
	}
	s.natsConf = filepath.Join(s.dir, "nats.conf")
	code, _, errs = runCLI(t, "nats-config", "--host", "127.0.0.1", "--jetstream-dir", filepath.Join(s.dir, "jetstream"),
		"--tls-cert", natsCert.CertFile, "--tls-key", natsCert.KeyFile, "--tls-ca", s.ca.File, "--verify-clients",
		"--worker-nkey", strings.TrimSpace(pub), "--out", s.natsConf)
	if code != 0 {
		t.Fatalf("nats-config: exit %d: %s", code, errs)
	}
	for _, f := range []string{s.natsConf, s.workerSeed, s.adminFile, natsCert.KeyFile, coordRaft.KeyFile} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, %v; want 0600", filepath.Base(f), st.Mode().Perm(), err)
		}
	}

	s.raftFlags = []string{"--raft-tls-cert", coordRaft.CertFile, "--raft-tls-key", coordRaft.KeyFile, "--raft-tls-ca", s.raftCA.File}
	s.coordFlags = append([]string{
		// The password comes from $COFACTOR_NATS_PASSWORD (CoordEnv).
		"--nats-user", "cofactor-coordinator",
		"--nats-ca", s.ca.File, "--nats-cert", coordCert.CertFile, "--nats-key", coordCert.KeyFile,
		"--http-tls-cert", coordCert.CertFile, "--http-tls-key", coordCert.KeyFile, "--http-tls-ca", s.ca.File,
		"--admin-token-file", s.adminFile, "--read-token-file", s.readFile,
	}, s.raftFlags...)
	return s
}

// workerTLS issues a worker its NATS client certificate (the server
// verifies clients) and returns the flags naming it.
func (s *secureSetup) workerTLS(t *testing.T, id string) []string {
	t.Helper()
	p := s.ca.Issue(t, id)
	return []string{"--nats-ca", s.ca.File, "--nats-cert", p.CertFile, "--nats-key", p.KeyFile}
}

// startSecureCluster runs nats-server with the configuration of `cofactor
// nats-config` (TLS with client certificates, the three roles), three
// coordinators with raft mutual TLS, HTTPS and token files, and nWorkers
// workers logging in with the worker NKey over TLS.
func startSecureCluster(t *testing.T, s *secureSetup, nWorkers int) *cluster {
	t.Helper()
	c := testcluster.NewEmpty(t)
	c.NATSConfig = s.natsConf
	c.NATSEnv = []string{"COFACTOR_NATS_COORDINATOR_PASSWORD=" + s.coordPassword, "COFACTOR_NATS_CLIENT_PASSWORD=" + s.clientPass}
	c.CoordEnv = []string{"COFACTOR_NATS_PASSWORD=" + s.coordPassword}
	c.HTTPS = true
	// The CLI sends the admin token from its file by default (wait,
	// remove-coordinator); the harness's own status polls get by with the
	// read token.
	c.CLIFlags = []string{"--ca-file", s.ca.File, "--token-file", s.adminFile}
	c.APIToken = s.readToken
	c.APITLS = clientTLS(t, s.ca.File)
	c.StartBase(3, s.coordFlags...)
	for i := 1; i <= nWorkers; i++ {
		id := fmt.Sprintf("w%d", i)
		c.StartWorkerArgs(id, append([]string{"--nats-nkey", s.workerSeed}, s.workerTLS(t, id)...)...)
	}
	c.WaitReady(3, nWorkers, 60*time.Second)
	return c
}

func clientTLS(t *testing.T, caFile string) *tls.Config {
	t.Helper()
	cfg, err := httpauth.ClientTLS(caFile)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// secureCLI runs the cofactor CLI against c with only the flags and
// environment given: no token unless env or args carry one.
func secureCLI(t *testing.T, c *cluster, s *secureSetup, env []string, args ...string) (int, string, string) {
	t.Helper()
	return secureCLIAt(t, c.URLs(), s, env, args...)
}

// secureCLIAt is secureCLI against the coordinators at urls.
func secureCLIAt(t *testing.T, urls string, s *secureSetup, env []string, args ...string) (int, string, string) {
	t.Helper()
	// An empty $COFACTOR_TOKEN, so that one in the test's own environment
	// cannot stand in for the token a case leaves out.
	env = append([]string{"COFACTOR_TOKEN="}, env...)
	return testcluster.RunCLIEnv(t, time.Minute, env, append([]string{"--coordinator", urls, "--ca-file", s.ca.File}, args...)...)
}

// statusWorkers is the IDs of the workers `cluster status --json` lists
// (asked with the read token from $COFACTOR_TOKEN).
func statusWorkers(t *testing.T, c *cluster, s *secureSetup) []string {
	t.Helper()
	code, out, errs := secureCLI(t, c, s, []string{"COFACTOR_TOKEN=" + s.readToken}, "cluster", "status", "--json")
	if code != 0 {
		t.Fatalf("cluster status with the read token: exit %d: %s", code, errs)
	}
	var st coordinator.ClusterStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("cluster status printed %q", out)
	}
	var ids []string
	for _, w := range st.Workers {
		ids = append(ids, w.ID)
	}
	return ids
}

// The secured cluster as separate OS processes, every link authenticated
// and encrypted with certificates and secrets made at test time: a job
// submitted over HTTPS with the admin token gives the factors of `train
// --workers 1`, and each credential is refused where it does not belong.
func TestSecureClusterProcesses(t *testing.T) {
	skipShort(t)
	train := testutil.SharedData(t, "ml-latest-small/split-seed42/ratings.train.csv")
	test := testutil.SharedData(t, "ml-latest-small/split-seed42/ratings.test.csv")
	start := time.Now()
	s := newSecureSetup(t)
	c := startSecureCluster(t, s, 2)
	t.Logf("secured cluster ready in %v", time.Since(start).Round(time.Millisecond))

	// No token: the API answers 401, the CLI exits 1 (a runtime failure)
	// with one error line naming the token it lacks.
	code, _, errs := secureCLI(t, c, s, nil, "cluster", "status")
	if code != 1 || !strings.HasPrefix(errs, "error: ") || !strings.Contains(errs, "needs a read token") {
		t.Errorf("cluster status without a token: exit %d, stderr %q; want 1 and a message naming the read token", code, errs)
	}

	flags := []string{"--input", train, "--test", test, "--rank", "10", "--lambda", "0.1", "--iterations", "10"}
	dist := filepath.Join(t.TempDir(), "cluster")
	// Submitted to a follower alone, with the admin token in
	// $COFACTOR_TOKEN: the follower forwards it to the leader over HTTPS
	// with the caller's token.
	leader := c.WaitLeader(10 * time.Second)
	follower := c.Coords[0]
	if follower.ID == leader {
		follower = c.Coords[1]
	}
	code, out, errs := secureCLIAt(t, "https://"+follower.HTTPAddr, s, []string{"COFACTOR_TOKEN=" + s.adminToken},
		append([]string{"job", "submit", "--json", "--out", dist}, flags...)...)
	var sub coordinator.SubmitResponse
	if code != 0 || json.Unmarshal([]byte(out), &sub) != nil || sub.JobID == "" {
		t.Fatalf("job submit through follower %s: exit %d, stdout %q, stderr %q", follower.ID, code, out, errs)
	}
	id := sub.JobID

	// The read token cannot cancel it (403); the job runs on.
	code, _, errs = secureCLI(t, c, s, []string{"COFACTOR_TOKEN=" + s.readToken}, "job", "cancel", id)
	if code != 1 || !strings.Contains(errs, "needs the admin role") {
		t.Errorf("job cancel with the read token: exit %d, stderr %q; want 1 and a message naming the admin role", code, errs)
	}

	code, res := c.WaitWithin(id, 3*time.Minute)
	if code != 0 || res.State != job.StateSucceeded {
		t.Fatalf("job wait: exit %d, state %s, error %s", code, res.State, res.Error)
	}
	if res.Workers != 2 || res.Snapshot != dist {
		t.Errorf("job ran on %d workers, snapshot %q", res.Workers, res.Snapshot)
	}
	t.Logf("secured cluster: test RMSE %.4f, %.4f s/iteration", *res.TestRMSE, res.SecondsPerIteration)
	local := trainLocal(t, flags...)
	if d := testutil.DirDiff(t, dist, local); d > 1e-5 {
		t.Errorf("secured cluster's factors differ from train --workers 1 by %g", d)
	}

	t.Run("worker refused", func(t *testing.T) { secureWorkerRefused(t, c, s) })
	t.Run("coordinator refused", func(t *testing.T) { secureCoordinatorRefused(t, c, s) })
	t.Logf("whole test: %v", time.Since(start).Round(time.Millisecond))
}

// secureWorkerRefused starts workers with credentials that are not the
// worker role's: the client role's (it logs in but may not touch the
// block store, heartbeat or take commands) and a wrong password (refused
// at connect). Neither appears in the cluster's status.
func secureWorkerRefused(t *testing.T, c *cluster, s *secureSetup) {
	wrongPW := writeSecret(t, filepath.Join(s.dir, "wrong.password"), randomHex(t, 24))
	for _, tc := range []struct {
		id   string
		env  []string
		args []string
		// exits: refused at connect, so the process ends (exit code 1);
		// else it stays up and logs the server's refusals.
		exits bool
		log   string
	}{
		{id: "wclient", env: []string{"COFACTOR_NATS_PASSWORD=" + s.clientPass}, args: []string{"--nats-user", "cofactor-client"}, log: "permissions violation"},
		{id: "wbadpw", args: []string{"--nats-user", "cofactor-coordinator", "--nats-password-file", wrongPW}, exits: true, log: "authorization violation"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			args := append(append(c.WorkerArgs(tc.id), tc.args...), s.workerTLS(t, tc.id)...)
			p := testcluster.StartProcEnv(t, c.Dir, tc.id, testcluster.Bins.Worker, tc.env, args...)
			testcluster.WaitFor(t, tc.id+" to log "+tc.log, func() bool {
				return strings.Contains(strings.ToLower(p.Tail()), tc.log)
			})
			if tc.exits {
				testcluster.WaitFor(t, tc.id+" to exit", p.Exited)
				if code := p.Cmd.ProcessState.ExitCode(); code != 1 {
					t.Errorf("%s exited %d, want 1:\n%s", tc.id, code, p.Tail())
				}
			} else {
				// Several heartbeat intervals (500 ms) pass with the
				// worker up and refused.
				time.Sleep(2 * time.Second)
				if p.Exited() {
					t.Errorf("%s exited:\n%s", tc.id, p.Tail())
				}
			}
			if ids := statusWorkers(t, c, s); slices.Contains(ids, tc.id) || len(ids) != 2 {
				t.Errorf("cluster status lists workers %v; want w1 and w2 only", ids)
			}
			p.Kill()
		})
	}
}

// secureCoordinatorRefused starts a fourth coordinator with everything
// but a raft certificate the group's CA signed — none at all (plain raft),
// or one of a foreign CA. With the admin token it may ask to join over
// HTTPS, and is made a voter, but the members' raft will not talk to it:
// it never learns a leader or a log entry, and the leader logs the refused
// dials. Then the admin token removes it again.
func secureCoordinatorRefused(t *testing.T, c *cluster, s *secureSetup) {
	base := slices.Clone(s.coordFlags[:len(s.coordFlags)-len(s.raftFlags)])
	rogue := testcerts.NewCA(t, s.dir, "rogue").Issue(t, "coordinator")
	for _, tc := range []struct {
		name, id string
		flags    []string
	}{
		{"no raft certificate", "c4", base},
		{"foreign raft CA", "c5", append(slices.Clone(base), "--raft-tls-cert", rogue.CertFile, "--raft-tls-key", rogue.KeyFile, "--raft-tls-ca", s.raftCA.File)},
	} {
		t.Run(tc.name, func(t *testing.T) { secureCoordinatorRefusedOne(t, c, tc.id, tc.flags) })
	}
}

func secureCoordinatorRefusedOne(t *testing.T, c *cluster, id string, flags []string) {
	leader := c.CoordByID(c.WaitLeader(10 * time.Second))
	cd := &testcluster.Coord{ID: id, DataDir: filepath.Join(c.Dir, id)}
	p, _ := testcluster.StartListeningEnv(t, c.Dir, cd.ID, testcluster.Bins.Coordinator, c.CoordEnv, 2, func(ports []int) []string {
		cd.RaftAddr, cd.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
		return append(append(c.CoordArgs(cd), flags...), "--join", c.URLs())
	}, func(ports []int) bool { return testcluster.Dials(ports[1]) })
	defer p.Kill()
	// The join request itself is allowed (admin token, HTTPS).
	testcluster.WaitFor(t, id+" to be added", func() bool { return strings.Contains(p.Tail(), "joined the cluster") })
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: c.APITLS.Clone()}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		// /v1/status is public: a liveness probe needs no token.
		resp, err := hc.Get("https://" + cd.HTTPAddr + "/v1/status")
		if err != nil {
			t.Fatalf("%s /v1/status: %v", id, err)
		}
		var ns coordinator.NodeStatus
		err = json.NewDecoder(resp.Body).Decode(&ns)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /v1/status: %s, %v", id, resp.Status, err)
		}
		if ns.Leader != "" || ns.LastIndex != 0 {
			t.Fatalf("%s got into the group without a valid raft certificate: %+v", id, ns)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if p.Exited() {
		t.Fatalf("%s exited:\n%s", id, p.Tail())
	}
	if tail := leader.P.Tail(); !strings.Contains(tail, "raft TLS dial "+cd.RaftAddr) {
		t.Errorf("the leader %s logged no refused raft dial to %s:\n%s", leader.ID, cd.RaftAddr, tail)
	}
	code, _, errs := c.CLI("cluster", "remove-coordinator", id)
	if code != 0 {
		t.Fatalf("cluster remove-coordinator %s: exit %d: %s", id, code, errs)
	}
	c.WaitReady(3, 2, 30*time.Second)
}
