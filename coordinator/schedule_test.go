package coordinator

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/internal/job"
)

func TestDueSlots(t *testing.T) {
	t.Parallel()
	every, err := ParseCron("@every 20s")
	if err != nil {
		t.Fatal(err)
	}
	daily, err := ParseCron("0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		after, now time.Time
		sched      interface{ Next(time.Time) time.Time }
		want       []time.Time
	}{
		{"none yet", t0, t0.Add(19 * time.Second), every, nil},
		{"one", t0, t0.Add(20 * time.Second), every, []time.Time{t0.Add(20 * time.Second)}},
		{"three", t0, t0.Add(65 * time.Second), every, []time.Time{t0.Add(20 * time.Second), t0.Add(40 * time.Second), t0.Add(60 * time.Second)}},
		{"daily", t0, t0.Add(48 * time.Hour), daily, []time.Time{
			time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)}},
	} {
		got, _ := DueSlots(tc.sched, tc.after.UTC(), tc.now.UTC())
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if !got[i].Equal(tc.want[i]) {
				t.Errorf("%s: slot %d is %v, want %v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
	if _, err := ParseCron("every now and then"); !errors.Is(err, errBadRequest) {
		t.Errorf("a bad expression: %v", err)
	}
	if a, b := SlotJobID("daily", t0), SlotJobID("daily", t0); a != b || validJobID(a) != nil {
		t.Errorf("slot job IDs %q %q", a, b)
	}
}

// fakeClock is a settable clock for the scheduler.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// scheduleNode is a single in-memory coordinator whose scheduler reads a
// fake clock. It has no workers, so fired jobs stay pending.
func scheduleNode(t *testing.T, clock *fakeClock) *Node {
	t.Helper()
	_, nc := testNATS(t)
	return leaderNode(t, nc, func(cfg *Config) { cfg.Clock, cfg.ScheduleTick = clock.Now, 10*time.Millisecond })
}

// jobsOf lists the jobs a schedule started, by ID.
func jobsOf(n *Node, schedule string) map[string]time.Time {
	out := map[string]time.Time{}
	n.fsm.View(func(st *State) {
		for id, j := range st.Jobs {
			if j.Schedule == schedule {
				out[id] = j.Slot
			}
		}
	})
	return out
}

func waitJobs(t *testing.T, n *Node, schedule string, want int) map[string]time.Time {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := jobsOf(n, schedule)
		if len(got) >= want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("schedule %s started %d jobs, want %d", schedule, len(got), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSchedulesWithAFakeClock(t *testing.T) {
	clock := &fakeClock{now: t0}
	n := scheduleNode(t, clock)
	ctx := context.Background()
	spec := job.DefaultSpec()
	spec.Input = "ratings.csv"
	for _, s := range []Schedule{
		{Name: "run", Cron: "@every 20s", Spec: spec},
		{Name: "skip", Cron: "@every 20s", Spec: spec, Missed: MissedSkip},
	} {
		if err := n.AddSchedule(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.AddSchedule(ctx, Schedule{Name: "run", Cron: "@daily", Spec: spec}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("a second schedule named run: %v", err)
	}
	if err := n.AddSchedule(ctx, Schedule{Name: "bad", Cron: "@sometimes", Spec: spec}); !errors.Is(err, errBadRequest) {
		t.Fatalf("a bad cron expression: %v", err)
	}

	// Each slot fires once, with the job ID of its slot.
	for i := 1; i <= 3; i++ {
		clock.Add(20 * time.Second)
		got := waitJobs(t, n, "run", i)
		slot := t0.Add(time.Duration(i) * 20 * time.Second)
		if s, ok := got[SlotJobID("run", slot)]; !ok || !s.Equal(slot) {
			t.Fatalf("after slot %d: jobs %v, want one for %v", i, got, slot)
		}
	}
	time.Sleep(100 * time.Millisecond) // many scheduler ticks: nothing more fires
	if got := jobsOf(n, "run"); len(got) != 3 {
		t.Fatalf("%d jobs after 3 slots", len(got))
	}
	if got := jobsOf(n, "skip"); len(got) != 3 {
		t.Fatalf("skip schedule: %d jobs after 3 on-time slots, want 3", len(got))
	}

	// Five slots pass at once (no leader could fire them): "run" starts
	// one job for the newest, "skip" none.
	clock.Add(100 * time.Second)
	got := waitJobs(t, n, "run", 4)
	newest := t0.Add(160 * time.Second)
	if _, ok := got[SlotJobID("run", newest)]; !ok || len(got) != 4 {
		t.Fatalf("after a gap: jobs %v, want one more, for %v", got, newest)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var last time.Time
		n.fsm.View(func(st *State) { last = st.Schedules["skip"].LastSlot })
		if last.Equal(newest) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("skip schedule's last slot %v, want %v", last, newest)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := jobsOf(n, "skip"); len(got) != 3 {
		t.Fatalf("skip schedule started %d jobs after the gap, want still 3", len(got))
	}

	// Paused: nothing fires; resumed: the paused slots are not due.
	if err := func() error {
		_, err := n.state.proposeAt(ctx, clock.Now(), &schedulePauseCmd{Name: "run"})
		return err
	}(); err != nil {
		t.Fatal(err)
	}
	clock.Add(60 * time.Second)
	time.Sleep(100 * time.Millisecond)
	if got := jobsOf(n, "run"); len(got) != 4 {
		t.Fatalf("a paused schedule fired: %d jobs", len(got))
	}
	if err := func() error {
		_, err := n.state.proposeAt(ctx, clock.Now(), &scheduleResumeCmd{Name: "run"})
		return err
	}(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := jobsOf(n, "run"); len(got) != 4 {
		t.Fatalf("resuming fired the paused slots: %d jobs", len(got))
	}
	clock.Add(20 * time.Second)
	waitJobs(t, n, "run", 5)

	// The same slot submitted again (a second leader) is refused.
	dup := SlotJobID("run", t0.Add(20*time.Second))
	if err := n.state.propose(ctx, &submitCmd{Job: dup, Spec: spec, Schedule: "run", Slot: t0.Add(20 * time.Second)}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("a slot fired twice: %v", err)
	}
	l := n.Schedules()
	if len(l.Schedules) != 2 || l.Schedules[0].Name != "run" || l.Schedules[0].Jobs != 5 {
		t.Fatalf("schedule list %+v", l)
	}
	if err := n.state.propose(ctx, &scheduleRmCmd{Name: "skip"}); err != nil {
		t.Fatal(err)
	}
	if err := n.state.propose(ctx, &scheduleRmCmd{Name: "skip"}); !errors.Is(err, ErrUnknownSchedule) {
		t.Fatalf("removing twice: %v", err)
	}
}
