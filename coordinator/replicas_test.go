package coordinator

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cofactor-ml/cofactor/transport"
)

// TestReplicasNeedANATSCluster: --replicas 3 against a single NATS
// server is refused when the coordinator starts, saying why; 0 and 6 are
// refused by Validate.
func TestReplicasNeedANATSCluster(t *testing.T) {
	_, nc := testNATS(t)
	cfg := DefaultConfig()
	cfg.ID, cfg.InMemory, cfg.Replicas = "c1", true, 3
	n, err := New(cfg, WithConn(nc))
	if err != nil {
		t.Fatal(err)
	}
	err = n.Start(context.Background())
	n.Close()
	if !errors.Is(err, transport.ErrReplicas) || !strings.Contains(err.Error(), "at least 3") {
		t.Fatalf("3 replicas on one NATS server: %v", err)
	}
	t.Log(err)
	for _, r := range []int{0, 6} {
		cfg.Replicas = r
		if err := cfg.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("replicas %d: %v", r, err)
		}
	}
}
