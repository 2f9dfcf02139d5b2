package coordinator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// The leader drops finished jobs beyond RetainJobs by itself, keeping the
// newest and the unfinished.
func TestRetentionDropsOldJobs(t *testing.T) {
	ns, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: t.TempDir(), NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	saved := retainEvery
	retainEvery = 50 * time.Millisecond
	defer func() { retainEvery = saved }()
	cfg := DefaultConfig()
	cfg.ID, cfg.InMemory, cfg.RetainJobs = "c1", true, 2
	n, err := New(cfg, WithConn(nc), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("the node did not become leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 5 {
		id := fmt.Sprintf("j%d", i)
		if err := n.state.propose(ctx, &submitCmd{Job: id, Spec: *testSpec(1)}); err != nil {
			t.Fatal(err)
		}
		if i < 4 { // j4 stays pending: it is not finished
			if err := n.state.propose(ctx, &cancelCmd{Job: id}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var order []string
	for time.Now().Before(deadline) {
		n.fsm.View(func(st *State) { order = append(order[:0], st.Order...) })
		if len(order) == 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fmt.Sprint(order) != "[j2 j3 j4]" {
		t.Fatalf("jobs kept: %v, want [j2 j3 j4]", order)
	}
}
