package coordinator

import (
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
)

// TestProgressEstimate: a running job says how much of it is done, how
// long it has run and how long the iterations left should take at the
// pace of the completed ones.
func TestProgressEstimate(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, &submitCmd{Job: "pending", Spec: *testSpec(10)})
	runTo(t, f, "j1", 10, 2) // iterations of 3 s (1 s users + 2 s items)
	now := t0.Add(90 * time.Second)
	for _, tc := range []struct {
		name      string
		job       string
		users     bool // commit iteration 3's users phase first
		iteration int
		phase     string
		done      float64
		remaining float64 // -1: none yet
	}{
		{"pending", "pending", false, 0, "partition", 0, -1},
		{"2 of 10, checkpoint due", "j1", false, 2, "checkpoint", 0.2, 24},
		{"2.5 of 10", "j1", true, 3, "items", 0.25, 22.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.users {
				mustApply(t, f, &phaseCmd{Job: "j1", Phase: PhaseResult{Epoch: 1, Iteration: 3, Side: wire.SideUsers, Seconds: 1}})
			}
			var p job.Progress
			f.View(func(st *State) { p = *st.Jobs[tc.job].Result(now).Progress })
			if p.Iteration != tc.iteration || p.Phase != tc.phase || p.Done != tc.done || p.ElapsedSeconds != 90 {
				t.Errorf("iteration %d %s, done %g, elapsed %g s; want %d %s, %g, 90 s", p.Iteration, p.Phase, p.Done, p.ElapsedSeconds, tc.iteration, tc.phase, tc.done)
			}
			left := p.RemainingSeconds
			if tc.remaining < 0 && left != nil || tc.remaining >= 0 && (left == nil || *left != tc.remaining) {
				t.Errorf("remaining %v, want %g (-1: none)", left, tc.remaining)
			}
		})
	}
}
