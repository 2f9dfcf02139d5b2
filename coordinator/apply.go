package coordinator

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
)

// This file applies each command kind to the state: one method per kind,
// each deterministic (it reads the payload, its time and the state only)
// and all-or-nothing (an error leaves the state as it was).

// openJob returns the job a command names, refusing a finished one.
func (st *State) openJob(id string) (*Job, error) {
	j, ok := st.Jobs[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownJob, id)
	}
	if job.Finished(j.State) {
		return nil, fmt.Errorf("%w: job %s is %s", ErrStale, j.ID, j.State)
	}
	return j, nil
}

func (c *submitCmd) apply(st *State, now time.Time) error {
	if c.Job == "" {
		return fmt.Errorf("%w: submit without a job ID", ErrCommand)
	}
	if _, ok := st.Jobs[c.Job]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicate, c.Job)
	}
	st.Jobs[c.Job] = &Job{ID: c.Job, Spec: c.Spec, Schedule: c.Schedule, Slot: c.Slot, State: job.StatePending, Created: now}
	st.Order = append(st.Order, c.Job)
	if s, ok := st.Schedules[c.Schedule]; ok && c.Slot.After(s.LastSlot) {
		s.LastSlot = c.Slot // the slot is fired with its job, atomically
	}
	return nil
}

func (c *submitCmd) event(*Job) string {
	if c.Schedule != "" {
		return fmt.Sprintf("submitted by schedule %s for slot %s", c.Schedule, c.Slot.UTC().Format(time.RFC3339))
	}
	return "submitted"
}

func (c *partitionedCmd) apply(st *State, now time.Time) error {
	j, err := st.openJob(c.Job)
	if err != nil {
		return err
	}
	if j.Partition != nil {
		return fmt.Errorf("%w: job %s already partitioned", ErrStale, j.ID)
	}
	if err := checkPartition(&c.Partition); err != nil {
		return err
	}
	p := c.Partition
	j.Partition = &p
	j.State = job.StateRunning
	j.Started = now
	return nil
}

func (c *partitionedCmd) event(*Job) string {
	p := c.Partition
	return fmt.Sprintf("partitioned in %.2f s: %d users × %d items, %d training ratings, %d×%d blocks", p.Seconds, p.Users, p.Items, p.TrainRatings, p.UserBlocks, p.ItemBlocks)
}

func (c *assignedCmd) apply(st *State, now time.Time) error {
	j, err := st.openJob(c.Job)
	if err != nil {
		return err
	}
	a := c.Assignment
	if j.Partition == nil || len(a.Users) != j.Partition.UserBlocks || len(a.Items) != j.Partition.ItemBlocks {
		return fmt.Errorf("%w: assignment does not match the job's blocks", ErrCommand)
	}
	if j.Assign != nil && a.Epoch <= j.Assign.Epoch {
		return fmt.Errorf("%w: epoch %d after %d", ErrStale, a.Epoch, j.Assign.Epoch)
	}
	if a.Restart {
		if err := j.restart(&a, now); err != nil {
			return err
		}
	}
	j.Assign = &a
	return nil
}

// restart rolls a job back to the checkpoint assignment a resumes from
// (the initial factors when none).
func (j *Job) restart(a *Assignment, now time.Time) error {
	from := 0
	if a.Resume != "" {
		i, ok := j.checkpointRef(a.Resume)
		if !ok || j.Checkpoints[i].Bad {
			return fmt.Errorf("%w: resume from unknown or bad checkpoint %s", ErrCommand, a.Resume)
		}
		from = j.Checkpoints[i].Iteration
	}
	j.Restarts++
	j.ResumedFrom = append(j.ResumedFrom, from)
	how := "restarted from iteration 0"
	if a.Resume != "" {
		how = fmt.Sprintf("resumed from checkpoint %s (iteration %d)", a.Resume, from)
	}
	j.Notes = append(j.Notes, fmt.Sprintf("%s: %s after %d iterations: %s", now.UTC().Format(time.RFC3339), how, j.DoneIteration, a.Reason))
	j.DoneIteration, j.DoneSide, j.UsersPhase, j.Eval = from, wire.SideItems, nil, nil
	if from == 0 {
		j.DoneSide = wire.NoSide
	}
	if len(j.History) > from {
		j.History = j.History[:from]
	}
	return nil
}

func (c *assignedCmd) event(*Job) string {
	a := c.Assignment
	text := fmt.Sprintf("epoch %d assigned to %s", a.Epoch, strings.Join(distinct(a.Users, a.Items), ", "))
	if a.Restart {
		text += " (" + a.Reason + ")"
	}
	if a.Resume != "" {
		text += ", resuming from " + a.Resume
	}
	return text
}

func (c *loadedCmd) apply(st *State, _ time.Time) error {
	j, err := st.openJob(c.Job)
	if err != nil {
		return err
	}
	if j.Assign == nil || c.Epoch != j.Assign.Epoch {
		return fmt.Errorf("%w: load of another epoch", ErrStale)
	}
	j.LoadedEpoch = c.Epoch
	j.LoadSeconds += c.Seconds
	return nil
}

func (c *loadedCmd) event(*Job) string {
	return fmt.Sprintf("epoch %d loaded in %.2f s", c.Epoch, c.Seconds)
}

func (c *phaseCmd) apply(st *State, _ time.Time) error {
	j, err := st.openJob(c.Job)
	if err != nil {
		return err
	}
	return applyPhase(j, &c.Phase)
}

func (c *phaseCmd) event(*Job) string {
	p := c.Phase
	return fmt.Sprintf("iteration %d %s: %.3f s, %d bytes exchanged", p.Iteration, p.Side, p.Seconds, p.Bytes)
}

func (c *evaluatedCmd) apply(st *State, _ time.Time) error {
	j, err := st.openJob(c.Job)
	if err != nil {
		return err
	}
	e := c.Eval
	if j.Assign == nil || e.Epoch != j.Assign.Epoch || j.DoneIteration != j.Spec.Iterations || j.DoneSide != wire.SideItems || j.Eval != nil {
		return fmt.Errorf("%w: evaluation does not follow the last phase", ErrStale)
	}
	j.Eval = &e // its bytes are not a phase's: bytes_exchanged counts phases only
	if n := len(j.History); n > 0 && e.TestN > 0 && !j.Spec.Implicit {
		r := math.Sqrt(e.TestSSE / float64(e.TestN))
		j.History[n-1].TestRMSE = &r
	}
	return nil
}

func (c *evaluatedCmd) event(*Job) string { return "evaluated" }

func (c *finishedCmd) apply(st *State, now time.Time) error {
	j, err := st.openJob(c.Job)
	if err != nil {
		return err
	}
	fin := c.Finish
	if !job.Finished(fin.State) {
		return fmt.Errorf("%w: finish without a final state", ErrCommand)
	}
	j.State, j.Error, j.Kind, j.Snapshot, j.Finished = fin.State, fin.Error, fin.Kind, fin.Snapshot, now
	j.SnapshotID = c.SnapshotID
	return nil
}

func (c *finishedCmd) event(*Job) string {
	if c.Finish.Error != "" {
		return fmt.Sprintf("%s: %s", c.Finish.State, c.Finish.Error)
	}
	return c.Finish.State.String()
}

func (c *cancelCmd) apply(st *State, now time.Time) error {
	j, err := st.openJob(c.Job)
	if err != nil {
		return err
	}
	j.State, j.Finished, j.Error = job.StateCancelled, now, "cancelled by request"
	return nil
}

func (c *cancelCmd) event(*Job) string { return "cancelled" }

func (c *noteCmd) apply(st *State, now time.Time) error {
	j, err := st.openJob(c.Job)
	if err != nil {
		return err
	}
	j.Notes = append(j.Notes, fmt.Sprintf("%s: %s", now.UTC().Format(time.RFC3339), c.Text))
	return nil
}

func (c *noteCmd) event(*Job) string { return c.Text }

func (c *checkpointCmd) apply(st *State, _ time.Time) error {
	j, err := st.openJob(c.Job)
	if err != nil {
		return err
	}
	m := c.Checkpoint
	if m.Iteration > j.DoneIteration || (m.Iteration == j.DoneIteration && j.DoneSide != wire.SideItems) {
		return fmt.Errorf("%w: checkpoint of an iteration not done", ErrStale)
	}
	if c.legacy != nil && c.legacy.Job != j.ID {
		return fmt.Errorf("%w: checkpoint of another job", ErrStale)
	}
	ref := job.CheckpointRef{ID: m.ID, Iteration: m.Iteration, Final: m.Final}
	if i, ok := j.checkpointRef(m.ID); ok {
		j.Checkpoints[i] = ref // written again after a resume: good again
	} else {
		j.Checkpoints = append(j.Checkpoints, ref)
	}
	if c.legacy != nil {
		if j.Manifests == nil {
			j.Manifests = map[string]*checkpoint.Manifest{}
		}
		j.Manifests[m.ID] = c.legacy
	}
	if j.ManifestRefs == nil {
		j.ManifestRefs = map[string]CheckpointInfo{}
	}
	j.ManifestRefs[m.ID] = m
	j.pruneManifests()
	return nil
}

// pruneManifests keeps the manifests of the newest manifestsKept
// checkpoints and the final one.
func (j *Job) pruneManifests() {
	for len(j.ManifestRefs) > manifestsKept {
		oldest := ""
		for id, m := range j.ManifestRefs {
			if !m.Final && (oldest == "" || m.Iteration < j.ManifestRefs[oldest].Iteration) {
				oldest = id
			}
		}
		if oldest == "" {
			break
		}
		delete(j.ManifestRefs, oldest)
		delete(j.Manifests, oldest)
	}
}

func (c *checkpointCmd) event(*Job) string {
	m := c.Checkpoint
	kind := "checkpoint"
	if m.Final {
		kind = "final snapshot"
	}
	return fmt.Sprintf("%s %s committed (%d files, %d bytes)", kind, m.ID, m.Files, m.Bytes)
}

func (c *checkpointBadCmd) apply(st *State, now time.Time) error {
	j, err := st.openJob(c.Job)
	if err != nil {
		return err
	}
	if i, ok := j.checkpointRef(c.Checkpoint); ok {
		j.Checkpoints[i].Bad = true
		j.Notes = append(j.Notes, fmt.Sprintf("%s: checkpoint %s is damaged: %s", now.UTC().Format(time.RFC3339), c.Checkpoint, c.Reason))
	}
	return nil
}

func (c *checkpointBadCmd) event(*Job) string {
	return fmt.Sprintf("checkpoint %s found damaged: %s", c.Checkpoint, c.Reason)
}

// apply drops the listed jobs that are finished; others (unknown, or
// running again after all) are left alone.
func (c *pruneCmd) apply(st *State, _ time.Time) error {
	drop := map[string]bool{}
	for _, id := range c.Jobs {
		if j, ok := st.Jobs[id]; ok && job.Finished(j.State) {
			drop[id] = true
			delete(st.Jobs, id)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	order := st.Order[:0:0]
	for _, id := range st.Order {
		if !drop[id] {
			order = append(order, id)
		}
	}
	st.Order = order
	return nil
}

func (c *workerUpCmd) apply(st *State, now time.Time) error {
	w := c.Worker
	if w.ID == "" {
		return fmt.Errorf("%w: worker_registered without a worker ID", ErrCommand)
	}
	w.State, w.LastSeen = WorkerAlive, now // Boot: as the heartbeat said
	if old, ok := st.Workers[w.ID]; ok {
		w.Registered = old.Registered
	} else {
		w.Registered = now
	}
	st.Workers[w.ID] = &w
	return nil
}

func (c *workerLostCmd) apply(st *State, _ time.Time) error {
	if w, ok := st.Workers[c.Worker]; ok && w.State != WorkerDraining {
		w.State = WorkerLost
	}
	return nil
}

func (c *workerDrainCmd) apply(st *State, _ time.Time) error {
	w, ok := st.Workers[c.Worker]
	if !ok {
		return fmt.Errorf("%w: worker %s", ErrUnknownWorker, c.Worker)
	}
	w.State = WorkerDraining
	return nil
}

func (c *workerUndrainCmd) apply(st *State, _ time.Time) error {
	w, ok := st.Workers[c.Worker]
	if !ok {
		return fmt.Errorf("%w: worker %s", ErrUnknownWorker, c.Worker)
	}
	if w.State == WorkerDraining {
		w.State = WorkerLost // alive again at its next heartbeat
	}
	return nil
}

func (*seenCmd) apply(*State, time.Time) error { return nil }

func (c *serverCmd) apply(st *State, _ time.Time) error {
	if c.Server.ID == "" {
		return fmt.Errorf("%w: server_added without a server ID", ErrCommand)
	}
	s := c.Server
	st.Servers[s.ID] = &s
	return nil
}

func (c *serverGoneCmd) apply(st *State, _ time.Time) error {
	delete(st.Servers, c.Server)
	return nil
}

func (c *scheduleAddCmd) apply(st *State, _ time.Time) error {
	s := c.Schedule
	if s.Name == "" {
		return fmt.Errorf("%w: schedule_added without a schedule", ErrCommand)
	}
	if _, ok := st.Schedules[s.Name]; ok {
		return fmt.Errorf("%w: schedule %s", ErrDuplicate, s.Name)
	}
	st.Schedules[s.Name] = &s
	return nil
}

// schedule returns the named schedule.
func (st *State) schedule(name string) (*Schedule, error) {
	s, ok := st.Schedules[name]
	if !ok {
		return nil, fmt.Errorf("%w: schedule %s", ErrUnknownSchedule, name)
	}
	return s, nil
}

func (c *scheduleRmCmd) apply(st *State, _ time.Time) error {
	if _, err := st.schedule(c.Name); err != nil {
		return err
	}
	delete(st.Schedules, c.Name)
	return nil
}

func (c *schedulePauseCmd) apply(st *State, _ time.Time) error {
	s, err := st.schedule(c.Name)
	if err != nil {
		return err
	}
	s.Paused = true
	return nil
}

func (c *scheduleResumeCmd) apply(st *State, now time.Time) error {
	s, err := st.schedule(c.Name)
	if err != nil {
		return err
	}
	// Slots that passed while paused are not due: paused means skipped.
	if s.Paused && now.After(s.LastSlot) {
		s.LastSlot = now
	}
	s.Paused = false
	return nil
}

func (c *scheduleSlotCmd) apply(st *State, _ time.Time) error {
	s, err := st.schedule(c.Name)
	if err != nil {
		return err
	}
	if c.Slot.After(s.LastSlot) {
		s.LastSlot = c.Slot
	}
	return nil
}
