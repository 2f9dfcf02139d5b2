package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func apply(t *testing.T, f *FSM, p payload) error {
	t.Helper()
	return applyAt(t, f, t0, p)
}

func applyAt(t *testing.T, f *FSM, when time.Time, p payload) error {
	t.Helper()
	b, err := encodeCommand(when, p)
	if err != nil {
		t.Fatal(err)
	}
	res := f.Apply(&raft.Log{Data: b})
	if res == nil {
		return nil
	}
	return res.(error)
}

func mustApply(t *testing.T, f *FSM, p payload) {
	t.Helper()
	mustApplyAt(t, f, t0, p)
}

func mustApplyAt(t *testing.T, f *FSM, when time.Time, p payload) {
	t.Helper()
	if err := applyAt(t, f, when, p); err != nil {
		t.Fatalf("%s: %v", p.kind(), err)
	}
}

func testSpec(iterations int) *job.Spec {
	s := job.DefaultSpec()
	s.Input, s.Iterations = "ratings.csv", iterations
	return &s
}

func summary() *wire.PartitionSummary {
	return &wire.PartitionSummary{PartitionCounts: wire.PartitionCounts{Users: 10, Items: 5, TrainRatings: 40, UserBlocks: 2, ItemBlocks: 1},
		UserNeeds: [][]int64{{3}, {4}}, ItemNeeds: [][]int64{{5, 5}}}
}

func partitioned() PartitionInfo {
	return partitionInfo(summary(), BlobRef{Name: "j/summary", Size: 1, SHA256: "00"})
}

// runTo builds a job that is partitioned, assigned and has done the given
// number of full iterations.
func runTo(t *testing.T, f *FSM, id string, iterations, done int) {
	mustApply(t, f, &submitCmd{Job: id, Spec: *testSpec(iterations)})
	mustApply(t, f, &partitionedCmd{Job: id, Partition: partitioned()})
	a := &Assignment{Epoch: 1, Users: []string{"a", "b"}, Items: []string{"a"}}
	a.LowerBound = lowerBound(summary(), a, testSpec(iterations).Width())
	mustApply(t, f, &assignedCmd{Job: id, Assignment: *a})
	mustApply(t, f, &loadedCmd{Job: id, Epoch: a.Epoch, Seconds: 0.5})
	for it := 1; it <= done; it++ {
		mustApply(t, f, &phaseCmd{Job: id, Phase: PhaseResult{Epoch: 1, Iteration: it, Side: wire.SideUsers, TestN: 4, TestSSE: 4, Seconds: 1, Bytes: 100}})
		mustApply(t, f, &phaseCmd{Job: id, Phase: PhaseResult{Epoch: 1, Iteration: it, Side: wire.SideItems, Ratings: 40, SSE: 10, Seconds: 2, Bytes: 50}})
	}
}

func TestPhasesInOrder(t *testing.T) {
	f := NewFSM()
	runTo(t, f, "j1", 3, 1)
	// Out of order, wrong epoch, repeated: refused, state unchanged.
	for _, p := range []*PhaseResult{
		{Epoch: 1, Iteration: 2, Side: wire.SideItems},
		{Epoch: 1, Iteration: 1, Side: wire.SideItems},
		{Epoch: 2, Iteration: 2, Side: wire.SideUsers},
		{Epoch: 1, Iteration: 3, Side: wire.SideUsers},
	} {
		if err := apply(t, f, &phaseCmd{Job: "j1", Phase: *p}); !errors.Is(err, ErrStale) {
			t.Errorf("phase %+v: %v, want ErrStale", p, err)
		}
	}
	var j Job
	f.View(func(st *State) { j = *st.Jobs["j1"] })
	if it, side, ok := j.NextPhase(); !ok || it != 2 || side != wire.SideUsers {
		t.Fatalf("next phase %d %s %v", it, side, ok)
	}
	if len(j.History) != 1 || *j.History[0].TrainRMSE != 0.5 || j.History[0].Seconds != 3 || j.History[0].BytesExchanged != 150 {
		t.Fatalf("history %+v", j.History)
	}
	// The next user phase carries iteration 1's test error.
	mustApply(t, f, &phaseCmd{Job: "j1", Phase: PhaseResult{Epoch: 1, Iteration: 2, Side: wire.SideUsers, TestN: 4, TestSSE: 1}})
	f.View(func(st *State) { j = *st.Jobs["j1"] })
	if j.History[0].TestRMSE == nil || *j.History[0].TestRMSE != 0.5 {
		t.Fatalf("test RMSE of iteration 1: %v", j.History[0].TestRMSE)
	}
}

func TestReassignRestarts(t *testing.T) {
	f := NewFSM()
	runTo(t, f, "j1", 5, 2)
	// A stale epoch is refused.
	if err := apply(t, f, &assignedCmd{Job: "j1", Assignment: Assignment{Epoch: 1, Users: []string{"a", "a"}, Items: []string{"a"}}}); !errors.Is(err, ErrStale) {
		t.Fatalf("same epoch: %v", err)
	}
	// A shape that does not match the blocks is refused.
	if err := apply(t, f, &assignedCmd{Job: "j1", Assignment: Assignment{Epoch: 2, Users: []string{"a"}, Items: []string{"a"}}}); !errors.Is(err, ErrCommand) {
		t.Fatalf("bad shape: %v", err)
	}
	mustApply(t, f, &assignedCmd{Job: "j1", Assignment: Assignment{Epoch: 2, Users: []string{"a", "a"}, Items: []string{"a"}, Restart: true, Reason: "lost worker b"}})
	if err := apply(t, f, &loadedCmd{Job: "j1", Epoch: 1}); !errors.Is(err, ErrStale) {
		t.Fatalf("load of the old epoch: %v", err)
	}
	var j Job
	f.View(func(st *State) { j = *st.Jobs["j1"] })
	if j.LoadedEpoch != 1 {
		t.Fatalf("loaded epoch %d: the new epoch is not loaded yet", j.LoadedEpoch)
	}
	if j.Restarts != 1 || j.DoneIteration != 0 || j.DoneSide != "" || len(j.History) != 0 || len(j.Notes) != 1 {
		t.Fatalf("after restart: %+v", j)
	}
	if it, side, _ := j.NextPhase(); it != 1 || side != wire.SideUsers {
		t.Fatalf("next phase %d %s", it, side)
	}
	if err := apply(t, f, &phaseCmd{Job: "j1", Phase: PhaseResult{Epoch: 1, Iteration: 1, Side: wire.SideUsers}}); !errors.Is(err, ErrStale) {
		t.Fatalf("old epoch's phase accepted: %v", err)
	}
}

func TestFinishedJobsRefuseCommands(t *testing.T) {
	f := NewFSM()
	runTo(t, f, "j1", 1, 1)
	mustApply(t, f, &evaluatedCmd{Job: "j1", Eval: Evaluation{Epoch: 1, TestN: 4, TestSSE: 1, TestAE: 2}})
	mustApply(t, f, &finishedCmd{Job: "j1", Finish: Finish{State: job.StateSucceeded, Snapshot: "out"}})
	if err := apply(t, f, &cancelCmd{Job: "j1"}); !errors.Is(err, ErrStale) {
		t.Fatalf("cancel after success: %v", err)
	}
	if err := apply(t, f, &submitCmd{Job: "j1", Spec: *testSpec(1)}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate submit: %v", err)
	}
	if err := apply(t, f, &phaseCmd{Job: "nope"}); !errors.Is(err, ErrUnknownJob) {
		t.Fatalf("unknown job: %v", err)
	}
	if err := f.Apply(&raft.Log{Data: []byte("{")}); !errors.Is(err.(error), ErrCommand) {
		t.Fatalf("garbage: %v", err)
	}
	if err := f.Apply(&raft.Log{Data: []byte(`{"v":99,"type":"job_submit","payload":{}}`)}); err == nil {
		t.Fatal("a future command version was applied")
	}
	var r job.Result
	f.View(func(st *State) { r = st.Jobs["j1"].Result(t0.Add(time.Minute)) })
	if r.State != job.StateSucceeded || *r.TestRMSE != 0.5 || *r.TestMAE != 0.5 || r.Snapshot != "out" || r.TrainRMSE == nil {
		t.Fatalf("result %+v", r)
	}
	// Lower bound: user block 1 (on b) needs 4 rows from item block 0 (on
	// a); item block 0 needs 5 rows from user block 1: 9 rows of rank 10.
	if r.BytesLowerBound != 9*10*4 || r.Workers != 2 {
		t.Fatalf("lower bound %d, workers %d", r.BytesLowerBound, r.Workers)
	}
}

// Snapshot then Restore gives an identical state.
func TestSnapshotRestore(t *testing.T) {
	f := NewFSM()
	runTo(t, f, "j1", 4, 2)
	runTo(t, f, "j2", 2, 0)
	mustApply(t, f, &workerUpCmd{Worker: WorkerInfo{ID: "a", CPUs: 2}})
	mustApply(t, f, &workerUpCmd{Worker: WorkerInfo{ID: "b", CPUs: 4}})
	mustApplyAt(t, f, t0.Add(time.Second), &workerLostCmd{Worker: "b"})
	mustApply(t, f, &serverCmd{Server: ServerInfo{ID: "c1", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	var a, b []byte
	f.View(func(st *State) { a, _ = json.Marshal(st) })
	g.View(func(st *State) { b, _ = json.Marshal(st) })
	if !bytes.Equal(a, b) {
		t.Fatalf("restored state differs:\n%s\n%s", a, b)
	}
	// The restored machine goes on applying.
	mustApply(t, g, &phaseCmd{Job: "j1", Phase: PhaseResult{Epoch: 1, Iteration: 3, Side: wire.SideUsers}})
	if err := g.Restore(io.NopCloser(bytes.NewReader([]byte("{}")))); err == nil {
		t.Fatal("a snapshot without tables was restored")
	}
}

type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }
