package worker

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/testutil"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/partition"
	"github.com/cofactor-ml/cofactor/transport"
)

func TestParseFaults(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want faults
		bad  bool
	}{
		{spec: "", want: faults{}},
		{spec: "dup=0.25,delay=40ms,seed=9", want: faults{dup: 0.25, delay: 40 * time.Millisecond, seed: 9}},
		{spec: "store-fail-every=3, store-full-after=10", want: faults{storeFailEvery: 3, storeFullAfter: 10}},
		{spec: "export-stall=3s", want: faults{exportStall: 3 * time.Second}},
		{spec: "ingest-fail-round=7", want: faults{ingestFailRound: 7}},
		{spec: "ingest-fail-round=-7", bad: true},
		{spec: "export-stall=-1s", bad: true},
		{spec: "export-stall=soon", bad: true},
		{spec: "dup=2", bad: true},
		{spec: "delay=-1s", bad: true},
		{spec: "store-fail-every=x", bad: true},
		{spec: "store-full-after=-2", bad: true},
		{spec: "loss=0.1", bad: true},
		{spec: "dup", bad: true},
	} {
		got, err := parseFaults(tc.spec)
		if tc.bad {
			if !errors.Is(err, errFaultSpec) {
				t.Errorf("%q: err %v, want errFaultSpec", tc.spec, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
}

func TestFaultStoreFailsWrites(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		f    faults
		fail []bool // outcome of puts 1..6
	}{
		{faults{storeFailEvery: 3}, []bool{false, false, true, false, false, true}},
		{faults{storeFullAfter: 4}, []bool{false, false, false, false, true, true}},
	} {
		// Through the hook's transport, as the worker opens its stores.
		tr := newInjector(tc.f).wrap(newMemNet(t, 0))
		r, err := tr.OpenSnapshots(ctx, "dir:"+t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range tc.fail {
			err := r.Store.Put(ctx, "f", []byte("x"))
			if got := err != nil; got != want || (got && !errors.Is(err, syscall.ENOSPC)) {
				t.Errorf("%+v: put %d: %v, want failure %v (ENOSPC)", tc.f, i+1, err, want)
			}
		}
		r.Close()
	}
	// Without store faults the store is the one opened.
	r, err := newInjector(faults{dup: 0.5}).wrap(newMemNet(t, 0)).OpenSnapshots(ctx, "dir:"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Store.(checkpoint.DirStore); !ok {
		t.Errorf("store %T, want the directory store itself", r.Store)
	}
}

// TestInjectedFaults: duplicated and delayed requests and slowed solves
// change when a phase finishes, not what it computes.
func TestInjectedFaults(t *testing.T) {
	e := startMem(t, 0)
	l := startLeader(t, e)
	const solveDelay = 50 * time.Millisecond
	f := faults{dup: 1, delay: 5 * time.Millisecond, seed: 3, solveDelay: solveDelay}
	newFaulty := func(id string) *Worker {
		w, err := New(testConfig(id), e.attach(t), WithLogger(quietLogger()), withFaultHook(newInjector(f)))
		if err != nil {
			t.Fatal(err)
		}
		runWorker(t, w)
		return w
	}
	w1, w2 := newFaulty("w1"), newFaulty("w2")
	nc := e.endpoint(t)
	rl := watchRequests(t, e, "w2")
	spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
	mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdPartition, Job: "x", Spec: spec, UserBlocks: 2, ItemBlocks: 2})
	l.wait(t, 1, isType("x", wire.RepPartitioned))
	users, items := []string{"w1", "w2"}, []string{"w2", "w1"}
	c := phaseCommand("x", spec, 1, users, items, 1, wire.SideUsers)
	mustCommand(t, nc, "w1", c)
	mustCommand(t, nc, "w2", c)
	// Every report is sent twice, and the leader acknowledges both.
	reps := make([]wire.Report, 2)
	for _, r := range l.wait(t, 4, isPhase("x", 1, 1, wire.SideUsers)) {
		if reps[r.Block].Worker != "" && !reflect.DeepEqual(reps[r.Block], r) {
			t.Errorf("the two reports of block %d differ: %+v and %+v", r.Block, reps[r.Block], r)
		}
		reps[r.Block] = r
	}
	x, _ := reference(t, spec, 1)
	checkFactors(t, map[string]*Worker{"w1": w1, "w2": w2}, "x", partition.Users, users, 1, x[1], spec.Rank, reps)
	for _, r := range reps {
		if r.Stats.Seconds < solveDelay.Seconds() {
			t.Errorf("block %d solved in %.3f s, under the injected %v", r.Block, r.Stats.Seconds, solveDelay)
		}
	}
	rl.waitRepeats(t, 1) // w1's row requests to w2 were sent twice
}

// TestNoFaultsInConfig: fault injection is no part of the production
// configuration.
func TestNoFaultsInConfig(t *testing.T) {
	ct := reflect.TypeOf(Config{})
	for i := range ct.NumField() {
		if name := strings.ToLower(ct.Field(i).Name); strings.Contains(name, "inject") || strings.Contains(name, "fault") {
			t.Errorf("Config has field %s", ct.Field(i).Name)
		}
	}
}

// TestFaultTransportKeepsCapabilities: the hook's transport reaches a
// dataset store exactly when the transport it wraps does.
func TestFaultTransportKeepsCapabilities(t *testing.T) {
	in := newInjector(faults{dup: 0.5})
	if _, ok := in.wrap(newMemNet(t, 0)).(DatasetOpener); ok {
		t.Error("the in-memory transport wrapped claims a dataset store")
	}
	if _, ok := in.wrap(newNATSTransport(nil, transport.Security{}, "x")).(DatasetOpener); !ok {
		t.Error("the NATS transport wrapped lost its dataset store")
	}
}

// TestInjectedIngestFailure: ingest-fail-round fails that round's first
// run only, after its work, and no other round.
func TestInjectedIngestFailure(t *testing.T) {
	in := newInjector(faults{ingestFailRound: 7})
	for round := 1; round <= 9; round++ {
		err := in.afterIngestRound(round)
		if (round == 7) != (err != nil) || (err != nil && !errors.Is(err, errInjectedIngest)) {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if err := in.afterIngestRound(7); err != nil {
		t.Fatalf("round 7 run again: %v, want no second failure", err)
	}
	if err := newInjector(faults{}).afterIngestRound(7); err != nil {
		t.Fatalf("without the key: %v", err)
	}
}
