package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/cofactor-ml/cofactor/internal/job"
)

// Schedule is a recurring training job.
type Schedule struct {
	Name string   `json:"name"`
	Cron string   `json:"cron"`
	Spec job.Spec `json:"spec"`
	// Missed says what a leader does with slots that passed while no
	// leader could fire them: MissedRun fires the newest one once,
	// MissedSkip fires none of them.
	Missed string `json:"missed"`
	// WarmStart starts each job from the newest published snapshot of the
	// spec's model instead of random factors.
	WarmStart bool      `json:"warm_start"`
	Paused    bool      `json:"paused"`
	Created   time.Time `json:"created"`
	// LastSlot is the newest slot handled (fired or skipped); slots after
	// it are due.
	LastSlot time.Time `json:"last_slot,omitzero"`
}

// Missed-slot policies.
const (
	MissedRun  = "run"
	MissedSkip = "skip"
)

// cronParser accepts the five standard fields, an optional leading seconds
// field, and descriptors such as @daily and @every 20s.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron checks a schedule expression.
func ParseCron(expr string) (cron.Schedule, error) {
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%w: cron %q: %v", errBadRequest, expr, err)
	}
	return s, nil
}

// Validate checks a schedule before it is committed.
func (s *Schedule) Validate() error {
	if err := validJobID(s.Name); err != nil || len(s.Name) > 40 {
		return fmt.Errorf("%w: schedule name %q must be 1..40 letters, digits, - or _", errBadRequest, s.Name)
	}
	if _, err := ParseCron(s.Cron); err != nil {
		return err
	}
	if s.Missed != MissedRun && s.Missed != MissedSkip {
		return fmt.Errorf("%w: missed %q (want %s or %s)", errBadRequest, s.Missed, MissedRun, MissedSkip)
	}
	return s.Spec.Validate()
}

// maxDue bounds the slots examined at once (a long outage of a
// per-second schedule): older ones count as missed.
const maxDue = 10_000

// DueSlots returns the slots of s in (after, now], oldest first, and
// whether there were more than maxDue (the oldest dropped).
func DueSlots(s cron.Schedule, after, now time.Time) ([]time.Time, bool) {
	var due []time.Time
	for t := s.Next(after); !t.IsZero() && !t.After(now); t = s.Next(t) {
		due = append(due, t)
		if len(due) > maxDue {
			due = due[1:]
			return due, true
		}
	}
	return due, false
}

// SlotJobID is the job a schedule fires for a slot: a pure function of the
// two, so that no slot can ever start two jobs (the second submission of
// the same ID is refused by the state machine).
func SlotJobID(schedule string, slot time.Time) string {
	return schedule + "-" + strings.ToLower(slot.UTC().Format("20060102T150405Z"))
}

// fireSchedules runs on the leader: it fires every schedule's due slot.
// A slot is committed with its job (job_submit carries the slot), so a
// leader change cannot fire a slot again, and a slot in flight when the
// leader died is fired by the next leader under the same job ID.
func (n *Node) fireSchedules(ctx context.Context) {
	var list []Schedule
	n.fsm.View(func(st *State) {
		for _, s := range st.Schedules {
			if !s.Paused {
				list = append(list, *s)
			}
		}
	})
	sort.Slice(list, func(a, b int) bool { return list[a].Name < list[b].Name })
	now := n.clock()
	for _, s := range list {
		sched, err := ParseCron(s.Cron)
		if err != nil {
			continue // validated when added
		}
		after := s.LastSlot
		if after.IsZero() {
			after = s.Created
		}
		due, _ := DueSlots(sched, after, now)
		if len(due) == 0 {
			continue
		}
		newest := due[len(due)-1]
		if len(due) > 1 && s.Missed == MissedSkip {
			n.log.Info("skipping missed slots", "schedule", s.Name, "slots", len(due), "until", newest)
			if err := n.state.propose(ctx, &scheduleSlotCmd{Name: s.Name, Slot: newest}); err != nil {
				n.log.Warn("schedule slot not recorded", "schedule", s.Name, "err", err)
			}
			continue
		}
		spec := s.Spec
		if s.WarmStart {
			spec.WarmStart = n.latestSnapshot(ctx, spec)
		}
		id := SlotJobID(s.Name, newest)
		err = n.state.propose(ctx, &submitCmd{Job: id, Spec: spec, Schedule: s.Name, Slot: newest})
		switch {
		case err == nil:
			n.log.Info("schedule fired", "schedule", s.Name, "slot", newest, "job", id, "missed", len(due)-1)
		case errors.Is(err, ErrDuplicate):
			// Fired before (an earlier leader); record the slot.
			n.state.propose(ctx, &scheduleSlotCmd{Name: s.Name, Slot: newest})
		default:
			n.log.Warn("schedule not fired", "schedule", s.Name, "slot", newest, "err", err)
		}
	}
}

// latestSnapshot resolves a warm start: the newest published snapshot of
// the spec's model, or "" (a cold start) when there is none.
func (n *Node) latestSnapshot(ctx context.Context, spec job.Spec) string {
	repo, err := n.repo(ctx, spec.Store)
	if err != nil {
		n.log.Warn("warm start: store not opened; starting cold", "err", err)
		return ""
	}
	id, err := repo.Latest(ctx, spec.Model)
	if err != nil {
		n.log.Info("warm start: no published snapshot yet; starting cold", "model", spec.Model, "err", err)
		return ""
	}
	return id
}

// scheduler runs fireSchedules every tick while this node leads.
func (n *Node) scheduler(ctx context.Context) {
	tick := time.NewTicker(n.cfg.ScheduleTick)
	defer tick.Stop()
	for {
		n.fireSchedules(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// AddSchedule commits a new schedule (leader only).
func (n *Node) AddSchedule(ctx context.Context, s Schedule) error {
	if s.Missed == "" {
		s.Missed = MissedRun
	}
	if err := s.Validate(); err != nil {
		return err
	}
	if err := n.checkDatasets(ctx, s.Spec); err != nil {
		return err
	}
	s.Created, s.LastSlot, s.Paused = n.clock(), time.Time{}, false
	return n.state.propose(ctx, &scheduleAddCmd{Schedule: s})
}
