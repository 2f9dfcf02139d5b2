package coordinator

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
)

// FuzzFSMApply applies arbitrary log entries (one per line) to a state
// machine holding a running job: none may panic, each is applied or
// refused with an error, and the state keeps its invariants and survives
// a snapshot and restore.
func FuzzFSMApply(f *testing.F) {
	seeds := []payload{
		&phaseCmd{Job: "j1", Phase: PhaseResult{Epoch: 1, Iteration: 2, Side: wire.SideUsers}},
		&assignedCmd{Job: "j1", Assignment: Assignment{Epoch: 2, Users: []string{"a", "b"}, Items: []string{"a"}, Restart: true}},
		&partitionedCmd{Job: "j2", Partition: partitioned()},
		&submitCmd{Job: "j2", Spec: *testSpec(3)},
		&workerUpCmd{Worker: WorkerInfo{ID: "c", Memory: 1 << 20}},
		&finishedCmd{Job: "j1", Finish: Finish{State: "failed", Error: "x"}},
		&scheduleAddCmd{Schedule: Schedule{Name: "s", Cron: "@every 1m", Spec: *testSpec(1)}},
		&pruneCmd{Jobs: []string{"j1", "j2"}},
		&checkpointCmd{Job: "j1", Checkpoint: CheckpointInfo{ID: "j1-1", Iteration: 1, Files: 3}},
	}
	for _, p := range seeds {
		b, _ := encodeCommand(t0, p)
		f.Add(b)
	}
	// Version-1 entries (earlier builds' logs) are read too.
	f.Add([]byte(`{"v":1,"type":"job_partitioned","job":"j1","partitioned":{"user_blocks":1000000000000}}`))
	f.Add([]byte(`{"v":1,"type":"job_assigned","job":"j1","assigned":{"epoch":9,"users":[],"items":[]}}`))
	f.Add([]byte("{}\n[]\nnull"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := NewFSM()
		runTo(t, fsm, "j1", 3, 1)
		for i, line := range bytes.SplitN(data, []byte("\n"), 8) {
			res := fsm.Apply(&raft.Log{Index: uint64(100 + i), Data: line})
			if _, isErr := res.(error); res != nil && !isErr {
				t.Fatalf("Apply returned %T, want nil or an error", res)
			}
		}
		fsm.View(func(st *State) { checkInvariants(t, st) })
		snap, err := fsm.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		sink := &memSink{}
		if err := snap.Persist(sink); err != nil {
			t.Fatal(err)
		}
		again := NewFSM()
		if err := again.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
			t.Fatalf("restoring the snapshot: %v", err)
		}
		again.View(func(st *State) { checkInvariants(t, st) })
	})
}

// checkInvariants checks what the driver and the API rely on.
func checkInvariants(t *testing.T, st *State) {
	t.Helper()
	if len(st.Order) != len(st.Jobs) {
		t.Fatalf("%d jobs in order, %d jobs", len(st.Order), len(st.Jobs))
	}
	for _, id := range st.Order {
		j, ok := st.Jobs[id]
		if !ok || j == nil {
			t.Fatalf("job %q ordered but missing", id)
		}
		if p := j.Partition; p != nil {
			if p.UserBlocks < 1 || p.ItemBlocks < 1 || p.UserBlocks > job.MaxBlocks || p.ItemBlocks > job.MaxBlocks {
				t.Fatalf("job %s: partition %d×%d blocks", id, p.UserBlocks, p.ItemBlocks)
			}
			if a := j.Assign; a != nil && (len(a.Users) != p.UserBlocks || len(a.Items) != p.ItemBlocks) {
				t.Fatalf("job %s: assignment of %d×%d blocks for %d×%d", id, len(a.Users), len(a.Items), p.UserBlocks, p.ItemBlocks)
			}
		}
		if j.DoneIteration < 0 || j.DoneIteration > j.Spec.Iterations || len(j.History) > j.Spec.Iterations {
			t.Fatalf("job %s: done %d, %d history entries, of %d iterations", id, j.DoneIteration, len(j.History), j.Spec.Iterations)
		}
		j.Result(time.Now()) // the API's view must not panic
	}
}
