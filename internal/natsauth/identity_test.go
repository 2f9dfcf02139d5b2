package natsauth_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/cofactor-ml/cofactor/internal/natsauth"
	"github.com/cofactor-ml/cofactor/transport"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// identityServer runs a real nats-server from WriteServerConfig with a
// coordinator and one NKey identity per worker (w1, w2).
func identityServer(t *testing.T) (url string, seeds map[string]string) {
	t.Helper()
	dir := t.TempDir()
	seeds = map[string]string{}
	users := []natsauth.User{{Role: natsauth.Coordinator, Name: "coord", PasswordEnv: "TEST_ID_COORD_PASSWORD"}}
	for _, id := range []string{"w1", "w2"} {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		seeds[id] = filepath.Join(dir, id+".nk")
		if err := os.WriteFile(seeds[id], seed, 0o600); err != nil {
			t.Fatal(err)
		}
		users = append(users, natsauth.User{Role: natsauth.Worker, NKey: pub, WorkerID: id})
	}
	t.Setenv("TEST_ID_COORD_PASSWORD", coordPass)
	var conf bytes.Buffer
	if err := natsauth.WriteServerConfig(&conf, natsauth.ServerConfig{Users: users}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(conf.String(), "WORKER = {") {
		t.Errorf("the shared worker role is defined though every worker has its own identity:\n%s", conf.String())
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
	return srv.ClientURL(), seeds
}

func dialIdentity(t *testing.T, url string, sec transport.Security, name string) (*nats.Conn, *violations) {
	t.Helper()
	opts, err := sec.Options()
	if err != nil {
		t.Fatal(err)
	}
	v := &violations{ch: make(chan struct{}, 1)}
	nc, err := transport.Dial(url, name, append(opts, nats.ErrorHandler(v.handler))...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc, v
}

// workerSecurity is how worker id connects with its own identity: its
// seed and its own inbox prefix, as worker.New sets it.
func workerSecurity(seeds map[string]string, id string) transport.Security {
	return transport.Security{NKeySeedFile: seeds[id], InboxPrefix: transport.WorkerInboxPrefix(id)}
}

// TestWorkerIdentities: with one NATS identity per worker, w2's
// credentials receive w2's commands, row requests, ingest messages and
// replies and none of w1's (each subscription refused by the server),
// cannot command w1, and so cannot answer a row request meant for w1: the
// requester gets w1's answer. w2 may still ask w1 for rows. w2 heartbeats
// and reports on its own subjects only: in w1's name it is refused.
func TestWorkerIdentities(t *testing.T) {
	url, seeds := identityServer(t)
	coord, _ := dialIdentity(t, url, transport.Security{User: "coord", Password: coordPass}, "coord")
	w1, _ := dialIdentity(t, url, workerSecurity(seeds, "w1"), "w1")
	w2, v2 := dialIdentity(t, url, workerSecurity(seeds, "w2"), "w2")
	refusedSubs, refusedPubs := 0, 0

	// Its own subjects: allowed.
	for _, subj := range []string{transport.WorkerCmdSubject("w2"), transport.WorkerRowsSubject("w2"), transport.WorkerIngestSubject("w2", "j1", 1)} {
		sub, err := w2.Subscribe(subj, func(m *nats.Msg) { m.Respond([]byte("w2")) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	w2.Flush()
	if m, err := coord.Request(transport.WorkerCmdSubject("w2"), []byte("c"), 2*time.Second); err != nil || string(m.Data) != "w2" {
		t.Fatalf("w2's command: %v", err)
	}
	if m, err := w1.Request(transport.WorkerIngestSubject("w2", "j1", 1), []byte("i"), 2*time.Second); err != nil || string(m.Data) != "w2" {
		t.Fatalf("an ingest message to w2: %v", err)
	}

	// w1 answers its own row requests.
	rows, err := w1.Subscribe(transport.WorkerRowsSubject("w1"), func(m *nats.Msg) { m.Respond([]byte("w1")) })
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Unsubscribe()
	w1.Flush()

	// w2 listening on w1's subjects and replies (and on every worker's):
	// refused.
	for _, subj := range []string{transport.WorkerCmdSubject("w1"), transport.WorkerRowsSubject("w1"), transport.WorkerIngestSubject("w1", "j1", 1),
		transport.WorkerRowsSubject("*"), "cofactor.w.>", transport.WorkerInboxPrefix("w1") + ".>", "_INBOX.>", "_INBOX.*.*"} {
		sub, err := w2.Subscribe(subj, func(m *nats.Msg) { m.Respond([]byte("forged by w2")) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		w2.Flush()
		v2.expect(t, `Subscription to "`+subj+`"`)
		refusedSubs++
	}
	// So a row request to w1, from w2 or the coordinator's side of the
	// world, is answered by w1 only.
	for i := 0; i < 20; i++ {
		m, err := w2.Request(transport.WorkerRowsSubject("w1"), []byte("q"), 2*time.Second)
		if err != nil || string(m.Data) != "w1" {
			t.Fatalf("row request %d to w1: %v, %q", i, err, m.Data)
		}
	}
	// Commanding another worker: refused.
	if err := w2.Publish(transport.WorkerCmdSubject("w1"), []byte("drain")); err != nil {
		t.Fatal(err)
	}
	w2.Flush()
	v2.expect(t, `Publish to "`+transport.WorkerCmdSubject("w1")+`"`)
	refusedPubs++

	// Heartbeats and reports: w2's own reach the coordinator.
	hb, err := coord.SubscribeSync(transport.HeartbeatSubject("*"))
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Unsubscribe()
	rep, err := coord.Subscribe(transport.ReportSubject("*"), func(m *nats.Msg) { m.Respond([]byte(m.Subject)) })
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Unsubscribe()
	coord.Flush()
	if err := w2.Publish(transport.HeartbeatSubject("w2"), []byte("hb")); err != nil {
		t.Fatal(err)
	}
	if m, err := hb.NextMsg(2 * time.Second); err != nil || m.Subject != transport.HeartbeatSubject("w2") {
		t.Fatalf("w2's heartbeat: %v", err)
	}
	if m, err := w2.Request(transport.ReportSubject("w2"), []byte("r"), 2*time.Second); err != nil || string(m.Data) != transport.ReportSubject("w2") {
		t.Fatalf("w2's report: %v", err)
	}
	// In w1's name: refused, and nothing reaches the coordinator.
	for _, subj := range []string{transport.HeartbeatSubject("w1"), transport.ReportSubject("w1"), transport.HeartbeatSubject("*"), transport.SubjectHeartbeat, transport.SubjectReport} {
		if err := w2.PublishRequest(subj, transport.WorkerInboxPrefix("w2")+".forged", []byte(`{"worker":"w1"}`)); err != nil {
			t.Fatal(err)
		}
		w2.Flush()
		v2.expect(t, `Publish to "`+subj+`"`)
		refusedPubs++
	}
	if m, err := hb.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("a heartbeat reached the coordinator on %s", m.Subject)
	}

	t.Logf("w2's identity: %d subscriptions and %d publishes refused", refusedSubs, refusedPubs)
}

// TestWorkerIdentityJetStream: a worker's own identity, whose replies
// arrive under its own inbox prefix only, writes and reads blocks and
// checkpoints through JetStream and the Object Store (whose replies and
// ordered consumers use the connection's inbox prefix).
func TestWorkerIdentityJetStream(t *testing.T) {
	url, seeds := identityServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coord, _ := dialIdentity(t, url, transport.Security{User: "coord", Password: coordPass}, "coord")
	if err := natsauth.EnsureBuckets(ctx, coord, 1); err != nil {
		t.Fatal(err)
	}
	w1, v1 := dialIdentity(t, url, workerSecurity(seeds, "w1"), "w1")
	w2, _ := dialIdentity(t, url, workerSecurity(seeds, "w2"), "w2")
	checkWorkerStores(ctx, t, w1, w2)
	v1.mu.Lock()
	defer v1.mu.Unlock()
	if len(v1.errs) > 0 {
		t.Fatalf("w1's JetStream use met errors: %v", v1.errs)
	}
}

func TestWorkerIdentityValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		users []natsauth.User
	}{
		{"not a worker", []natsauth.User{{Role: natsauth.Client, NKey: "UA", WorkerID: "w1"}}},
		{"bad ID", []natsauth.User{{Role: natsauth.Worker, NKey: "UA", WorkerID: "w.1"}}},
		{"wildcard ID", []natsauth.User{{Role: natsauth.Worker, NKey: "UA", WorkerID: "*"}}},
		{"twice", []natsauth.User{{Role: natsauth.Worker, NKey: "UA", WorkerID: "w1"}, {Role: natsauth.Worker, NKey: "UB", WorkerID: "w1"}}},
	} {
		if err := (natsauth.ServerConfig{Users: c.users}).Validate(); !errors.Is(err, natsauth.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", c.name, err)
		}
	}
	p, err := natsauth.WorkerPermissions("w7")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.SubscribeAllow {
		if (strings.Contains(s, "cofactor.w.") && !strings.HasPrefix(s, "cofactor.w.w7.")) ||
			(strings.HasPrefix(s, "_INBOX") && !strings.HasPrefix(s, "_INBOX.w7.")) {
			t.Errorf("worker w7 may subscribe to %s", s)
		}
	}
	for _, s := range p.PublishAllow {
		if strings.HasPrefix(s, transport.SubjectHeartbeat) && s != transport.HeartbeatSubject("w7") ||
			strings.HasPrefix(s, transport.SubjectReport) && s != transport.ReportSubject("w7") {
			t.Errorf("worker w7 may publish on %s", s)
		}
	}
}
