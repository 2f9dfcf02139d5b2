package coordinator

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cofactor-ml/cofactor/internal/job"
)

// replicated is the replicated state as the rest of the node uses it:
// proposing commands through raft, and the queries every coordinator
// answers from its own copy (which may trail the leader's).
type replicated struct {
	fsm     *FSM
	raft    *raft.Raft // set once raft is open
	metrics *metrics
	clock   func() time.Time
}

// propose commits p through raft, timed now, and returns the state
// machine's answer. It fails with raft.ErrNotLeader on a follower. When it
// returns an error other than the state machine's, the command may or may
// not have been committed.
func (r *replicated) propose(ctx context.Context, p payload) error {
	_, err := r.proposeAt(ctx, time.Time{}, p)
	return err
}

// proposeAt is propose with the command's time t (zero: now), also
// returning the entry's raft index.
func (r *replicated) proposeAt(ctx context.Context, t time.Time, p payload) (uint64, error) {
	if t.IsZero() {
		t = time.Now().UTC()
	}
	b, err := encodeCommand(t, p)
	if err != nil {
		return 0, err
	}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	start := time.Now()
	f := r.raft.Apply(b, timeout)
	if err := f.Error(); err != nil {
		return 0, err
	}
	r.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	if resp, ok := f.Response().(error); ok && resp != nil {
		return 0, resp
	}
	return f.Index(), ctx.Err()
}

// waitApplied waits until the state machine has applied the entry at
// index, at most wait.
func (r *replicated) waitApplied(ctx context.Context, index uint64, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		changed := r.fsm.Changed()
		if r.fsm.Index() >= index {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		case <-t.C:
			return
		}
	}
}

// jobResult returns a job's result as of now.
func (r *replicated) jobResult(id string) (job.Result, error) {
	var res job.Result
	err := fmt.Errorf("%w: %s", ErrUnknownJob, id)
	r.fsm.View(func(st *State) {
		if j, ok := st.Jobs[id]; ok {
			res, err = j.Result(time.Now()), nil
		}
	})
	return res, err
}

// wait blocks until the job finishes or ctx ends, and returns its result.
// A job this node does not know yet is waited for too: a follower may trail
// the leader that accepted it. An unknown job ends the wait with
// ErrUnknownJob only when ctx does.
func (r *replicated) wait(ctx context.Context, id string) (job.Result, error) {
	for {
		changed := r.fsm.Changed()
		res, err := r.jobResult(id)
		if err == nil && job.Finished(res.State) {
			return res, nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return res, err
			}
			return res, ctx.Err()
		case <-changed:
		}
	}
}

// aliveWorkers is the number of workers the state machine holds alive.
func (r *replicated) aliveWorkers() int {
	var k int
	r.fsm.View(func(st *State) { k = len(st.sortedAlive()) })
	return k
}

// schedules lists the schedules with their next slot, in name order.
func (r *replicated) schedules() ScheduleList {
	out := ScheduleList{Schedules: []ScheduleStatus{}}
	now := r.clock()
	r.fsm.View(func(st *State) {
		count := map[string]int{}
		for _, j := range st.Jobs {
			if j.Schedule != "" {
				count[j.Schedule]++
			}
		}
		for _, s := range st.Schedules {
			ss := ScheduleStatus{Schedule: *s, Jobs: count[s.Name]}
			if sched, err := ParseCron(s.Cron); err == nil && !s.Paused {
				after := s.LastSlot
				if after.IsZero() {
					after = s.Created
				}
				ss.Next = sched.Next(after)
				if ss.Next.Before(now) { // due now
					ss.Next = now
				}
			}
			out.Schedules = append(out.Schedules, ss)
		}
	})
	sort.Slice(out.Schedules, func(a, b int) bool { return out.Schedules[a].Name < out.Schedules[b].Name })
	return out
}

// The node's exported queries, for in-process callers (allinone, tests).

// JobResult returns a job's result as of now.
func (n *Node) JobResult(id string) (job.Result, error) { return n.state.jobResult(id) }

// Wait blocks until the job finishes or ctx ends, and returns its result.
// A job this node does not know yet is waited for too: a follower may trail
// the leader that accepted it. An unknown job ends the wait with
// ErrUnknownJob only when ctx does.
func (n *Node) Wait(ctx context.Context, id string) (job.Result, error) { return n.state.wait(ctx, id) }

// AliveWorkers is the number of workers the state machine holds alive.
func (n *Node) AliveWorkers() int { return n.state.aliveWorkers() }

// Changed returns a channel closed at the next change of the replicated
// state.
func (n *Node) Changed() <-chan struct{} { return n.fsm.Changed() }

// Schedules lists the schedules with their next slot, in name order.
func (n *Node) Schedules() ScheduleList { return n.state.schedules() }

// LogStats describe the raft log entries this node applied since it
// started, and the index of the last entry in its log.
func (n *Node) LogStats() (LogStats, uint64) {
	var last uint64
	if n.state.raft != nil {
		last = n.state.raft.LastIndex()
	}
	return n.fsm.Stats(), last
}
