package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/wire"
)

// Every kind round-trips through the version-2 encoding to itself.
func TestCommandRoundTrip(t *testing.T) {
	for k, mk := range payloads {
		p := mk()
		if p.kind() != k {
			t.Errorf("payload of %s says it is %s", k, p.kind())
		}
		b, err := encodeCommand(t0, p)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		got, when, err := decodeCommand(b)
		if err != nil || got.kind() != k || !when.Equal(t0) {
			t.Errorf("%s: decoded %v at %v, %v", k, got, when, err)
		}
	}
	for _, bad := range []string{`{"v":2,"type":"job_submit"}`, `{"v":2,"type":"nope","payload":{}}`, `{"v":3,"type":"job_submit","payload":{}}`, `{"v":2,"type":"job_submit","payload":[1]}`} {
		if _, _, err := decodeCommand([]byte(bad)); !errors.Is(err, ErrCommand) {
			t.Errorf("%s: %v, want ErrCommand", bad, err)
		}
	}
}

// A raft log written by an earlier build (version 1 entries) replays to
// the state the same steps give in version 2; its workers_seen entries
// apply as nothing and its whole partition summary and manifest are
// reduced to what version 2 keeps.
func TestVersion1LogReplays(t *testing.T) {
	sum := summary()
	spec := testSpec(1)
	a := Assignment{Epoch: 1, Users: []string{"a", "b"}, Items: []string{"a"}}
	m := checkpoint.Manifest{ID: checkpoint.SnapshotID("j1", 1), Job: "j1", Iteration: 1, Final: true,
		Files: []checkpoint.FileInfo{{Name: "f", Bytes: 7}, {Name: "g", Bytes: 5}}}
	v1 := []map[string]any{
		{"type": "worker_registered", "worker": WorkerInfo{ID: "a", CPUs: 2}},
		{"type": "workers_seen", "workers": []string{"a"}},
		{"type": "job_submit", "job": "j1", "spec": spec},
		{"type": "job_partitioned", "job": "j1", "partitioned": sum},
		{"type": "job_assigned", "job": "j1", "assigned": a},
		{"type": "job_loaded", "job": "j1", "assigned": a, "seconds": 0.5},
		{"type": "phase_committed", "job": "j1", "phase": PhaseResult{Epoch: 1, Iteration: 1, Side: wire.SideUsers}},
		{"type": "phase_committed", "job": "j1", "phase": PhaseResult{Epoch: 1, Iteration: 1, Side: wire.SideItems, Ratings: 4, SSE: 1}},
		{"type": "checkpoint_committed", "job": "j1", "checkpoint": m},
		{"type": "job_note", "job": "j1", "reason": "slow"},
		{"type": "worker_drained", "job": "a"},
	}
	f := NewFSM()
	for i, c := range v1 {
		c["v"], c["time"] = 1, t0
		b, _ := json.Marshal(c)
		if res := f.Apply(&raft.Log{Index: uint64(i + 1), Data: b}); res != nil {
			t.Fatalf("entry %d (%s): %v", i, c["type"], res)
		}
	}
	var j Job
	var w WorkerInfo
	f.View(func(st *State) { j, w = *st.Jobs["j1"], *st.Workers["a"] })
	if j.Partition == nil || j.Partition.Users != sum.Users || j.Partition.UserBlocks != 2 || j.Partition.Summary.Name != "" {
		t.Fatalf("partition %+v", j.Partition)
	}
	if j.DoneIteration != 1 || j.DoneSide != wire.SideItems || len(j.Notes) != 1 || w.State != WorkerDraining {
		t.Fatalf("job done %d %s, notes %v; worker %s", j.DoneIteration, j.DoneSide, j.Notes, w.State)
	}
	if ref := j.ManifestRefs[m.ID]; ref.Files != 2 || ref.Bytes != 12 || j.Manifests[m.ID] == nil || len(j.Manifests[m.ID].Files) != 2 {
		t.Fatalf("checkpoint %+v, legacy manifest %v", ref, j.Manifests[m.ID])
	}
	if len(j.Events) != 8 {
		t.Fatalf("%d events: %v", len(j.Events), j.Events)
	}
}

// Prune drops finished jobs with their logs, and only those.
func TestPruneFinishedJobs(t *testing.T) {
	f := NewFSM()
	for _, id := range []string{"old", "mid", "new"} {
		runTo(t, f, id, 2, 0)
	}
	mustApply(t, f, &cancelCmd{Job: "old"})
	mustApplyAt(t, f, t0.Add(time.Hour), &cancelCmd{Job: "mid"})
	var expired []string
	f.View(func(st *State) { expired = st.expiredJobs(t0.Add(2*time.Hour), 1, 90*time.Minute) })
	if len(expired) != 1 || expired[0] != "old" {
		t.Fatalf("expired %v, want [old]", expired)
	}
	f.View(func(st *State) { expired = st.expiredJobs(t0.Add(2*time.Hour), 5, time.Minute) })
	if len(expired) != 2 {
		t.Fatalf("expired by age %v, want [old mid]", expired)
	}
	mustApply(t, f, &pruneCmd{Jobs: []string{"old", "new", "unknown"}})
	f.View(func(st *State) {
		if _, ok := st.Jobs["old"]; ok || len(st.Jobs) != 2 || len(st.Order) != 2 || st.Order[0] != "mid" || st.Order[1] != "new" {
			t.Fatalf("after prune: order %v, %d jobs", st.Order, len(st.Jobs))
		}
	})
}

// A snapshot taken is not changed by entries applied after it.
func TestSnapshotIsACopy(t *testing.T) {
	f := NewFSM()
	runTo(t, f, "j1", 4, 1)
	mustApply(t, f, &workerUpCmd{Worker: WorkerInfo{ID: "a"}})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var before []byte
	f.View(func(st *State) { before, _ = json.Marshal(st) })
	// Restart truncates the history in place; lost and notes mutate.
	mustApply(t, f, &assignedCmd{Job: "j1", Assignment: Assignment{Epoch: 2, Users: []string{"a", "a"}, Items: []string{"a"}, Restart: true, Reason: "x"}})
	mustApply(t, f, &workerLostCmd{Worker: "a"})
	mustApply(t, f, &noteCmd{Job: "j1", Text: "later"})
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	var after []byte
	g.View(func(st *State) { after, _ = json.Marshal(st) })
	if !bytes.Equal(before, after) {
		t.Fatalf("the snapshot changed after it was taken:\n%s\n%s", before, after)
	}
}

func TestRetentionConfig(t *testing.T) {
	for _, tc := range []struct {
		jobs int
		age  time.Duration
		ok   bool
	}{{1000, time.Hour, true}, {0, time.Hour, false}, {10, 0, false}} {
		c := DefaultConfig()
		c.ID, c.InMemory, c.RetainJobs, c.RetainAge = "c1", true, tc.jobs, tc.age
		if err := c.Validate(); tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("retain %d jobs, %v: %v", tc.jobs, tc.age, err)
		}
	}
}
