package coordinator

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// testNATS starts an in-process NATS server with JetStream and connects
// to it; both are closed when the test ends.
func testNATS(t testing.TB) (*embedded.Server, *nats.Conn) {
	t.Helper()
	ns, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: t.TempDir(), NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return ns, nc
}

// leaderNode starts the single in-memory coordinator c1 on nc (tune, when
// not nil, adjusts its configuration), logging nowhere, and waits until
// it leads. It is closed when the test ends.
func leaderNode(t testing.TB, nc *nats.Conn, tune func(*Config)) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ID, cfg.InMemory = "c1", true
	if tune != nil {
		tune(&cfg)
	}
	n, err := New(cfg, WithConn(nc), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("the node did not become leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}
