package worker

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/testutil"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/partition"
	"github.com/cofactor-ml/cofactor/transport"
)

// waitTask waits until the worker's task for the command c has finished
// (its reports sent and acknowledged).
func waitTask(t *testing.T, w *Worker, c wire.Command) {
	t.Helper()
	js := w.job(c.Job)
	if js == nil {
		t.Fatalf("worker %s does not hold job %s", w.ID(), c.Job)
	}
	js.mu.Lock()
	tk := js.tasks[taskKey{typ: c.Type, epoch: c.Epoch, iteration: c.Iteration, side: c.Side}]
	js.mu.Unlock()
	if tk == nil {
		t.Fatalf("worker %s has no task for %s %d %s", w.ID(), c.Type, c.Iteration, c.Side)
	}
	select {
	case <-tk.done:
	case <-time.After(testTimeout):
		t.Fatalf("task %s %d %s did not finish", c.Type, c.Iteration, c.Side)
	}
}

func isType(jobID, typ string) func(wire.Report) bool {
	return func(r wire.Report) bool { return r.Job == jobID && r.Type == typ }
}

// TestPartitionCommand: a partition command stores the layout's blocks and
// ID lists in the block store and reports the dataset's figures.
func TestPartitionCommand(t *testing.T) {
	onNetworks(t, 0, func(t *testing.T, e network) {
		l := startLeader(t, e)
		w := startWorker(t, e, testConfig("w1"))
		nc := e.endpoint(t)
		spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
		c := wire.Command{Type: wire.CmdPartition, Job: "p1", Spec: spec, UserBlocks: 2, ItemBlocks: 3}
		mustCommand(t, nc, "w1", c)
		waitTask(t, w, c)
		reps := l.wait(t, 1, isType("p1", wire.RepPartitioned))
		if len(reps) != 1 || len(l.all()) != 1 {
			t.Fatalf("reports %+v, want one partitioned report", l.all())
		}
		r := reps[0]
		if r.Worker != "w1" || r.Partition == nil {
			t.Fatalf("report %+v", r)
		}
		sum := r.Partition
		ds, lay := loadLayout(t, spec, 2, 3)
		if sum.Users != ds.Users.Len() || sum.Items != ds.Items.Len() || sum.TrainRatings != ds.ByUser.NNZ() ||
			sum.TestRatings != ds.Test.Total || sum.TestSkipped != ds.Test.Skipped || sum.Duplicates != ds.Duplicates ||
			sum.UserBlocks != 2 || sum.ItemBlocks != 3 || sum.SkippedLines != 0 {
			t.Errorf("summary %+v does not match the dataset (%d users, %d items, %d train, %d test)",
				sum, ds.Users.Len(), ds.Items.Len(), ds.ByUser.NNZ(), ds.Test.Total)
		}
		if sum.TrainRatings+sum.TestRatings != 6000 {
			t.Errorf("%d train + %d test ratings, want 6000", sum.TrainRatings, sum.TestRatings)
		}
		for _, side := range []struct {
			got  [][]int64
			side partition.Side
		}{{sum.UserNeeds, partition.Users}, {sum.ItemNeeds, partition.Items}} {
			var want [][]int64
			for _, blk := range lay.Blocks(side.side) {
				row := make([]int64, len(lay.Blocks(side.side.Other())))
				for q := range row {
					row[q] = int64(len(blk.NeededFrom(q)))
				}
				want = append(want, row)
			}
			if !reflect.DeepEqual(side.got, want) {
				t.Errorf("%s needs %v, want %v", side.side, side.got, want)
			}
		}

		// The blocks are in the block store, as the layout has them.
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		blobs, err := nc.OpenBlobs(ctx, DefaultBlobBucket)
		if err != nil {
			t.Fatal(err)
		}
		if len(sum.BlockBytes) != 5 {
			t.Fatalf("%d block sizes, want 5", len(sum.BlockBytes))
		}
		i := 0
		for _, side := range []partition.Side{partition.Users, partition.Items} {
			for _, want := range lay.Blocks(side) {
				data, err := blobs.Get(ctx, wire.BlockBlob("p1", wire.SideOf(side), want.Index), 1<<30)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(data)) != sum.BlockBytes[i] {
					t.Errorf("%s block %d: %d bytes stored, %d reported", side, want.Index, len(data), sum.BlockBytes[i])
				}
				i++
				got, err := partition.UnmarshalBlock(data)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got.IDs, want.IDs) || got.Start != want.Start || got.Side != side || got.Index != want.Index ||
					!reflect.DeepEqual(got.Rows, want.Rows) || !reflect.DeepEqual(got.Needed, want.Needed) ||
					!reflect.DeepEqual(got.Send, want.Send) || !reflect.DeepEqual(got.SendPtr, want.SendPtr) ||
					!reflect.DeepEqual(got.NeedPtr, want.NeedPtr) {
					t.Errorf("stored %s block %d differs from the layout's", side, want.Index)
				}
			}
			ids, err := blobs.Get(ctx, wire.IDsBlob("p1", wire.SideOf(side)), 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			d := ds.Users
			if side == partition.Items {
				d = ds.Items
			}
			if string(ids) != strings.Join(d.IDs(), "\n") {
				t.Errorf("stored %s IDs differ from the dataset's", side)
			}
		}
	})
}

// TestPartitionSmallMaxPayload: rows travel in chunks under the server's
// max_payload (TestFetchChunked), and so must rating blocks on their way
// through the block store: a job runs on a server with a small one.
func TestPartitionSmallMaxPayload(t *testing.T) {
	e := startNATS(t, smallPayload)
	l := startLeader(t, e)
	w := startWorker(t, e, testConfig("w1"))
	nc := e.endpoint(t)
	spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
	mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdPartition, Job: "p1", Spec: spec, UserBlocks: 1, ItemBlocks: 1})
	r := l.wait(t, 1, func(r wire.Report) bool { return r.Job == "p1" })[0]
	if r.Type != wire.RepPartitioned {
		t.Fatalf("partition at max_payload %d: %s report: %s", smallPayload, r.Type, r.Error)
	}
	c := phaseCommand("p1", spec, 1, []string{"w1"}, []string{"w1"}, 1, "users")
	reps := runPhase(t, nc, l, c)
	x, _ := reference(t, spec, 1)
	checkFactors(t, map[string]*Worker{"w1": w}, "p1", partition.Users, c.Users, 1, x[1], spec.Rank, reps)
}

// TestPhaseCommandRepeat: a phase reports once per owned block; the same
// command after it finished re-sends the same reports without solving
// again.
func TestPhaseCommandRepeat(t *testing.T) {
	e := startMem(t, 0)
	l := startLeader(t, e)
	w := startWorker(t, e, testConfig("w1"))
	nc := e.endpoint(t)
	spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
	mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdPartition, Job: "p1", Spec: spec, UserBlocks: 2, ItemBlocks: 3})
	l.wait(t, 1, isType("p1", wire.RepPartitioned))
	_, lay := loadLayout(t, spec, 2, 3)

	// w1 owns both user blocks (and the item blocks), another worker none.
	c := phaseCommand("p1", spec, 1, []string{"w1", "w1"}, []string{"w1", "w1", "w1"}, 1, "users")
	mustCommand(t, nc, "w1", c)
	waitTask(t, w, c)
	first := l.wait(t, 2, isPhase("p1", 1, 1, "users"))
	if len(first) != 2 || first[0].Block == first[1].Block {
		t.Fatalf("reports %+v, want one for each of the 2 user blocks", first)
	}
	js := w.job("p1")
	rows := map[int]*float32{}
	for _, r := range first {
		blk := lay.UserBlocks[r.Block]
		x, ok := js.block(partition.Users, r.Block).version(1)
		if !ok {
			t.Fatalf("user block %d has no version 1", r.Block)
		}
		rows[r.Block] = &x[0]
		if r.Worker != "w1" || r.Epoch != 1 || r.Stats.Rows != int64(blk.Len()) || r.Stats.Ratings != blk.Rows.NNZ() ||
			r.Stats.Checksum != checksum(x) {
			t.Errorf("report %+v does not describe user block %d (%d rows, %d ratings, checksum %08x)", r, r.Block, blk.Len(), blk.Rows.NNZ(), checksum(x))
		}
	}

	mustCommand(t, nc, "w1", c)
	all := l.wait(t, 4, isPhase("p1", 1, 1, "users"))
	for _, again := range all[2:] {
		orig := first[0]
		if again.Block == first[1].Block {
			orig = first[1]
		}
		// Equal statistics, seconds included: the reports were kept, not
		// recomputed.
		if !reflect.DeepEqual(again, orig) {
			t.Errorf("repeated report %+v differs from the first %+v", again, orig)
		}
	}
	for b, p := range rows {
		x, _ := js.block(partition.Users, b).version(1)
		if &x[0] != p {
			t.Errorf("user block %d was solved again", b)
		}
	}
}

// TestStaleEpochRefused: a command of an older epoch than the one the
// worker is at is refused in its acknowledgement.
func TestStaleEpochRefused(t *testing.T) {
	e := startMem(t, 0)
	l := startLeader(t, e)
	w := startWorker(t, e, testConfig("w1"))
	nc := e.endpoint(t)
	spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
	mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdPartition, Job: "p1", Spec: spec, UserBlocks: 1, ItemBlocks: 1})
	l.wait(t, 1, isType("p1", wire.RepPartitioned))
	c := phaseCommand("p1", spec, 2, []string{"w1"}, []string{"w1"}, 1, "users")
	mustCommand(t, nc, "w1", c)
	waitTask(t, w, c)
	old := c
	old.Epoch = 1
	ack := command(t, nc, "w1", old)
	if ack.OK || !strings.Contains(ack.Error, "stale epoch 1") {
		t.Errorf("ack %+v, want a refusal naming stale epoch 1", ack)
	}
	if n := l.count(isPhase("p1", 1, 1, "users")); n != 0 {
		t.Errorf("%d reports for the stale command", n)
	}
}

// TestStaleEpochRefusedWhileQueued: once a worker has accepted a command
// of epoch 3, a command of epoch 2 is stale even if the epoch-3 task has
// not started yet (it waits behind the job's running task). Accepting it
// lets the older epoch run after the newer one and roll the worker back.
func TestStaleEpochRefusedWhileQueued(t *testing.T) {
	e := startMem(t, 0)
	l := startLeader(t, e)
	w := startWorker(t, e, testConfig("w1"))
	nc := e.endpoint(t)
	spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
	mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdPartition, Job: "p1", Spec: spec, UserBlocks: 1, ItemBlocks: 1})
	l.wait(t, 1, isType("p1", wire.RepPartitioned))
	c1 := phaseCommand("p1", spec, 1, []string{"w1"}, []string{"w1"}, 1, "users")
	mustCommand(t, nc, "w1", c1)
	waitTask(t, w, c1)

	// Hold the job's task lock, as a long phase does.
	js := w.job("p1")
	js.exec.Lock()
	locked := true
	defer func() {
		if locked {
			js.exec.Unlock()
		}
	}()
	c3 := c1
	c3.Epoch = 3
	mustCommand(t, nc, "w1", c3)
	c2 := c1
	c2.Epoch = 2
	ack := command(t, nc, "w1", c2)
	js.exec.Unlock()
	locked = false
	if ack.OK || !strings.Contains(ack.Error, "stale epoch 2") {
		t.Errorf("epoch 2 command after epoch 3: ack %+v, want a refusal naming stale epoch 2", ack)
	}
	waitTask(t, w, c3)
	if ack.OK {
		waitTask(t, w, c2)
	}
	js.mu.Lock()
	epoch := js.epoch
	js.mu.Unlock()
	if epoch != 3 {
		t.Errorf("worker is at epoch %d after commands of epochs 3 and 2, want 3", epoch)
	}
}

// TestDropForgetsJob: after a drop, the worker no longer serves the job's
// rows.
func TestDropForgetsJob(t *testing.T) {
	e := startMem(t, 0)
	l := startLeader(t, e)
	w := startWorker(t, e, testConfig("w1"))
	nc := e.endpoint(t)
	spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
	mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdPartition, Job: "p1", Spec: spec, UserBlocks: 1, ItemBlocks: 1})
	l.wait(t, 1, isType("p1", wire.RepPartitioned))
	c := phaseCommand("p1", spec, 1, []string{"w1"}, []string{"w1"}, 1, "users")
	mustCommand(t, nc, "w1", c)
	waitTask(t, w, c)

	askRows := func() (transport.Header, error) {
		req := transport.Header{Type: transport.FrameRowsRequest, Side: uint8(partition.Users), Job: "p1", Epoch: 1,
			Iteration: 1, Peer: allRows, Cols: uint32(spec.Rank)}
		answer := ask(t, nc, transport.WorkerRowsSubject("w1"), transport.AppendFrame(nil, req, nil))
		h, payload, err := transport.DecodeFrame(answer)
		if err != nil {
			t.Fatal(err)
		}
		return h, transport.FrameErr(h, payload)
	}
	if h, err := askRows(); err != nil || h.Type != transport.FrameRows {
		t.Fatalf("before the drop: %v frame, %v", h.Type, err)
	}
	mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdDrop, Job: "p1"})
	if w.job("p1") != nil {
		t.Error("the job is still held after the drop")
	}
	_, err := askRows()
	if err == nil || !strings.Contains(err.Error(), "job p1 is not held by worker w1") {
		t.Errorf("after the drop: %v, want \"not held\"", err)
	}
	// Dropping an unknown job is harmless.
	mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdDrop, Job: "p1"})
}

// TestDroppedJobStaysDropped: a command of a dropped job's epoch that
// arrives after the drop (a resend that was still in flight) must not
// bring the job back: the worker would load its blocks again and hold
// them with nobody left to drop them.
func TestDroppedJobStaysDropped(t *testing.T) {
	e := startMem(t, 0)
	l := startLeader(t, e)
	w := startWorker(t, e, testConfig("w1"))
	nc := e.endpoint(t)
	spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
	mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdPartition, Job: "p1", Spec: spec, UserBlocks: 1, ItemBlocks: 1})
	l.wait(t, 1, isType("p1", wire.RepPartitioned))
	c := phaseCommand("p1", spec, 1, []string{"w1"}, []string{"w1"}, 1, "users")
	mustCommand(t, nc, "w1", c)
	waitTask(t, w, c)
	mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdDrop, Job: "p1"})

	ack := command(t, nc, "w1", c)
	if ack.OK {
		t.Errorf("a command of the dropped job was accepted")
	}
	if js := w.job("p1"); js != nil {
		waitTask(t, w, c)
		js.mu.Lock()
		held := len(js.held)
		js.mu.Unlock()
		t.Errorf("the dropped job is held again, with %d blocks", held)
	}
}

// TestPartitionMissingInput: a missing input fails the command as the
// caller's fault, with the file system's error.
func TestPartitionMissingInput(t *testing.T) {
	e := startMem(t, 0)
	l := startLeader(t, e)
	startWorker(t, e, testConfig("w1"))
	nc := e.endpoint(t)
	missing := filepath.Join(t.TempDir(), "missing.csv")
	_, osErr := os.Open(missing)
	if !errors.Is(osErr, os.ErrNotExist) {
		t.Fatalf("opening the missing file: %v", osErr)
	}
	spec := testSpec(missing, false)
	mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdPartition, Job: "p1", Spec: spec, UserBlocks: 1, ItemBlocks: 1})
	r := l.wait(t, 1, isType("p1", wire.RepFailed))[0]
	if r.Kind != job.KindInput || r.For != wire.CmdPartition || r.Error != osErr.Error() || r.Worker != "w1" {
		t.Errorf("report %+v, want kind %q for %q with error %q", r, job.KindInput, wire.CmdPartition, osErr.Error())
	}
	if n := l.count(isType("p1", wire.RepPartitioned)); n != 0 {
		t.Errorf("%d partitioned reports for a missing input", n)
	}
}

// TestMalformedCommand: a command that is not JSON, or whose spec is
// invalid, is refused in the acknowledgement.
func TestMalformedCommand(t *testing.T) {
	onNetworks(t, 0, func(t *testing.T, e network) {
		startWorker(t, e, testConfig("w1"))
		nc := e.endpoint(t)
		answer := ask(t, nc, transport.WorkerCmdSubject("w1"), []byte("{not json"))
		if !strings.Contains(string(answer), "malformed command") {
			t.Errorf("answer %s, want a malformed command error", answer)
		}
		spec := testSpec("ratings.csv", false)
		spec.Rank = 0
		ack := command(t, nc, "w1", wire.Command{Type: wire.CmdPartition, Job: "p1", Spec: spec, UserBlocks: 1, ItemBlocks: 1})
		if ack.OK || !strings.Contains(ack.Error, "rank 0") {
			t.Errorf("ack %+v, want a refusal naming rank 0", ack)
		}
		ack = command(t, nc, "w1", wire.Command{Type: wire.CmdPhase, Job: "p1", Spec: testSpec("ratings.csv", false), Epoch: 1, Iteration: 1, Side: "users"})
		if ack.OK || !strings.Contains(ack.Error, "without a block assignment") {
			t.Errorf("ack %+v, want a refusal of a phase without assignment", ack)
		}
	})
}

func TestTaskState(t *testing.T) {
	done := make(chan struct{})
	close(done)
	for _, tc := range []struct {
		t    *task
		want taskState
		name string
	}{
		{&task{done: make(chan struct{})}, taskRunning, "running"},
		{&task{done: done, reports: []wire.Report{{Type: wire.RepPhase}, {Type: wire.RepPhase}}}, taskDone, "done"},
		{&task{done: done}, taskDone, "done"},
		{&task{done: done, reports: []wire.Report{{Type: wire.RepFailed}}}, taskFailed, "failed"},
	} {
		got := tc.t.state()
		text, err := got.MarshalText()
		if got != tc.want || got.String() != tc.name || string(text) != tc.name || err != nil {
			t.Errorf("state %v (%q, %v), want %v named %q", got, text, err, tc.want, tc.name)
		}
	}
	if s := taskState(7).String(); s != "taskState(7)" {
		t.Errorf("unknown state named %q", s)
	}
}

// TestDropBefore: a phase drops the other side's versions older than the
// one it reads (nobody reads them again) and leaves its own side's alone.
func TestDropBefore(t *testing.T) {
	for _, tc := range []struct {
		name      string
		side      partition.Side
		v         int
		users     []int // versions left on the user block
		items     []int
		wantUsers []int
		wantItems []int
	}{
		{"item phase 2 drops users 1", partition.Users, 2, []int{1, 2}, []int{1}, []int{2}, []int{1}},
		{"user phase 3 drops items 1", partition.Items, 2, []int{2, 3}, []int{1, 2}, []int{2, 3}, []int{2}},
		{"nothing older", partition.Users, 0, []int{0}, []int{0}, []int{0}, []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			held := func(vs []int) *heldBlock {
				h := &heldBlock{k: 1, vers: map[int][]float32{}, grams: map[int][]float64{}}
				for _, v := range vs {
					h.vers[v] = []float32{float32(v)}
					h.grams[v] = []float64{float64(v)}
				}
				return h
			}
			js := &jobState{held: map[blockKey]*heldBlock{
				{partition.Users, 0}: held(tc.users),
				{partition.Items, 0}: held(tc.items),
			}}
			js.dropBefore(tc.side, tc.v)
			for _, c := range []struct {
				side partition.Side
				want []int
			}{{partition.Users, tc.wantUsers}, {partition.Items, tc.wantItems}} {
				h := js.held[blockKey{c.side, 0}]
				got := slices.Sorted(maps.Keys(h.vers))
				grams := slices.Sorted(maps.Keys(h.grams))
				if !slices.Equal(got, c.want) || !slices.Equal(grams, c.want) {
					t.Errorf("%s versions %v, Gram matrices %v; want %v", c.side, got, grams, c.want)
				}
			}
		})
	}
}

// TestStartSolve covers the two ways a block's solve starts: over a copy
// of the old factors, or over the old factors themselves, where a solve
// started again after an interruption gets the same array and the test
// errors computed before the first start.
func TestStartSolve(t *testing.T) {
	for _, inPlace := range []bool{false, true} {
		h := &heldBlock{blk: &partition.Block{Side: partition.Users}, k: 2, vers: map[int][]float32{1: {1, 2, 3, 4}}, grams: map[int][]float64{}}
		prev, _ := h.version(1)
		calls := 0
		test := func(p []float32) wire.BlockStats { calls++; return wire.BlockStats{TestN: int64(len(p))} }
		x, st, err := h.startSolve(2, inPlace, test)
		if err != nil || st.TestN != 4 || calls != 1 {
			t.Fatalf("inPlace=%v: first start: %v, %+v, %d test calls", inPlace, err, st, calls)
		}
		x[0] = 9 // a solve writes
		if _, held := h.version(1); held == inPlace {
			t.Errorf("inPlace=%v: version 1 held: %v", inPlace, held)
		}
		if (&x[0] == &prev[0]) != inPlace {
			t.Errorf("inPlace=%v: solve array is the old factors' array: %v", inPlace, &x[0] == &prev[0])
		}
		again, st2, err := h.startSolve(2, inPlace, test)
		switch {
		case inPlace && (err != nil || &again[0] != &x[0] || st2 != st || calls != 1):
			t.Errorf("restart in place: %v, same array %v, %+v, %d test calls", err, &again[0] == &x[0], st2, calls)
		case !inPlace && (err != nil || again[0] != 1):
			t.Errorf("restart over a copy: %v, first element %v", err, again[0])
		}
		h.finishSolve(2, x, wire.BlockStats{SSE: 5})
		if got, ok := h.solved(2); !ok || got.SSE != 5 {
			t.Errorf("inPlace=%v: solved(2) = %+v, %v", inPlace, got, ok)
		}
		if _, _, err := h.startSolve(4, inPlace, test); err == nil {
			t.Errorf("inPlace=%v: a start without the version before it did not fail", inPlace)
		}
	}
}
