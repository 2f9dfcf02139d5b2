package coordinator

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/transport"
)

// TestForgedWorkerMessagesDropped: the leader answers a report and records
// a heartbeat sent on the subject of the worker their payload names, and
// drops (no answer, nothing recorded, counted) those whose payload names
// another worker than their subject.
func TestForgedWorkerMessagesDropped(t *testing.T) {
	ns, nc := testNATS(t)
	n := leaderNode(t, nc, nil)
	sender, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	report := func(subject, worker string) error {
		b, _ := json.Marshal(wire.Report{Type: wire.RepPhase, Worker: worker, Job: "no-such-job"})
		_, err := sender.Request(subject, b, 500*time.Millisecond)
		return err
	}
	heartbeat := func(subject, worker string) {
		b, _ := json.Marshal(wire.Heartbeat{Worker: worker, Boot: "b", CPUs: 1, Time: time.Now().UTC()})
		if err := sender.Publish(subject, b); err != nil {
			t.Fatal(err)
		}
		sender.Flush()
	}
	forged := func(kind string) float64 { return testutil.ToFloat64(n.metrics.forged.WithLabelValues(kind)) }

	for _, c := range []struct {
		name, subject, worker string
		answered              bool
	}{
		{"own", transport.ReportSubject("w1"), "w1", true},
		{"in another's name", transport.ReportSubject("w1"), "w2", false},
		{"no worker in the payload", transport.ReportSubject("w1"), "", false},
	} {
		before := forged("report")
		err := report(c.subject, c.worker)
		if (err == nil) != c.answered {
			t.Errorf("report %s: answered=%v (%v), want %v", c.name, err == nil, err, c.answered)
		}
		if want := before + map[bool]float64{true: 0, false: 1}[c.answered]; forged("report") != want {
			t.Errorf("report %s: %v dropped, want %v", c.name, forged("report"), want)
		}
	}

	heartbeat(transport.HeartbeatSubject("w1"), "w2")
	heartbeat(transport.HeartbeatSubject("w3"), "w3")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := n.heard.lastSeen("w3"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("w3's own heartbeat was not recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// One subscription delivers in order: w2's forged heartbeat came first.
	for _, id := range []string{"w1", "w2"} {
		if _, ok := n.heard.lastSeen(id); ok {
			t.Errorf("a heartbeat sent on w1's subject in w2's name made %s heard", id)
		}
	}
	if got := forged("heartbeat"); got != 1 {
		t.Errorf("%v heartbeats dropped, want 1", got)
	}
	t.Logf("dropped: %v reports, %v heartbeats", forged("report"), forged("heartbeat"))
}
