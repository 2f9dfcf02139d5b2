package coordinator

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The leader drops finished jobs beyond RetainJobs by itself, keeping the
// newest and the unfinished.
func TestRetentionDropsOldJobs(t *testing.T) {
	_, nc := testNATS(t)
	saved := retainEvery
	retainEvery = 50 * time.Millisecond
	defer func() { retainEvery = saved }()
	n := leaderNode(t, nc, func(cfg *Config) { cfg.RetainJobs = 2 })
	ctx := context.Background()
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
	deadline := time.Now().Add(20 * time.Second)
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
