package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
)

// CommandVersion is the version of the command format this build writes
// and the newest it applies.
const CommandVersion = 1

// Command types.
const (
	cmdSubmit         = "job_submit"
	cmdPartitioned    = "job_partitioned"
	cmdAssigned       = "job_assigned"
	cmdLoaded         = "job_loaded"
	cmdPhase          = "phase_committed"
	cmdEvaluated      = "job_evaluated"
	cmdFinished       = "job_finished"
	cmdCancel         = "job_cancel"
	cmdWorkerUp       = "worker_registered"
	cmdWorkerLost     = "worker_lost"
	cmdWorkersSeen    = "workers_seen"
	cmdServer         = "server_added"
	cmdServerGone     = "server_removed"
	cmdCheckpoint     = "checkpoint_committed"
	cmdScheduleAdd    = "schedule_added"
	cmdScheduleRm     = "schedule_removed"
	cmdSchedulePause  = "schedule_paused"
	cmdScheduleResume = "schedule_resumed"
	cmdScheduleSlot   = "schedule_slot"
	cmdWorkerDrain    = "worker_drained"
	cmdWorkerUndrain  = "worker_undrained"
	cmdNote           = "job_note"
	cmdCheckpointBad  = "checkpoint_bad"
)

// Command is one raft log entry, JSON-encoded. Exactly one payload field
// is set, matching Type. Time is chosen by the proposer.
type Command struct {
	V    int       `json:"v"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`

	Job         string                 `json:"job,omitempty"`
	Spec        *job.Spec              `json:"spec,omitempty"`
	Schedule    string                 `json:"schedule,omitempty"`
	Partitioned *wire.PartitionSummary `json:"partitioned,omitempty"`
	Assigned    *Assignment            `json:"assigned,omitempty"`
	Phase       *PhaseResult           `json:"phase,omitempty"`
	Evaluated   *Evaluation            `json:"evaluated,omitempty"`
	Finished    *Finish                `json:"finished,omitempty"`
	Worker      *WorkerInfo            `json:"worker,omitempty"`
	Workers     []string               `json:"workers,omitempty"`
	Server      *ServerInfo            `json:"server,omitempty"`
	Seconds     float64                `json:"seconds,omitempty"`
	Checkpoint  *checkpoint.Manifest   `json:"checkpoint,omitempty"`
	Snapshot    string                 `json:"snapshot,omitempty"`
	Reason      string                 `json:"reason,omitempty"`
	ScheduleDef *Schedule              `json:"schedule_def,omitempty"`
	Slot        time.Time              `json:"slot,omitzero"`
}

// Assignment maps blocks to workers for one epoch.
type Assignment struct {
	Epoch uint64   `json:"epoch"`
	Users []string `json:"users"` // owner of each user block
	Items []string `json:"items"` // owner of each item block
	// Restart is set when the assignment replaces one that lost a worker:
	// training goes back to Resume (Reason says why).
	Restart bool   `json:"restart,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Resume is the committed checkpoint the workers load (empty: the
	// initial factors).
	Resume string `json:"resume,omitempty"`
	// Boots is each owner's process identity when assigned: an owner that
	// restarted since holds nothing, so the assignment is void.
	Boots map[string]string `json:"boots,omitempty"`
}

// Owners returns the owners of side s's blocks.
func (a *Assignment) Owners(side wire.Side) []string {
	if side == wire.SideItems {
		return a.Items
	}
	return a.Users
}

// PhaseResult is a committed phase: every block of Side solved for
// Iteration, with the statistics summed over blocks in block order.
type PhaseResult struct {
	Epoch     uint64    `json:"epoch"`
	Iteration int       `json:"iteration"`
	Side      wire.Side `json:"side"`
	Rows      int64     `json:"rows"`
	Ratings   int64     `json:"ratings"`
	SSE       float64   `json:"sse"`
	TestN     int64     `json:"test_n"`
	TestSSE   float64   `json:"test_sse"`
	Bytes     int64     `json:"bytes"`
	Seconds   float64   `json:"seconds"`
	Checksums []uint32  `json:"checksums"`
}

// Evaluation is the final evaluation after the last iteration.
type Evaluation struct {
	Epoch        uint64  `json:"epoch"`
	TestN        int64   `json:"test_n"`
	TestSSE      float64 `json:"test_sse"`
	TestAE       float64 `json:"test_ae"`
	RankUsers    int64   `json:"rank_users"`
	PrecisionSum float64 `json:"precision_sum"`
	NDCGSum      float64 `json:"ndcg_sum"`
	Bytes        int64   `json:"bytes"`
}

// Finish ends a job.
type Finish struct {
	State    job.State `json:"state"`
	Error    string    `json:"error,omitempty"`
	Kind     string    `json:"kind,omitempty"`
	Snapshot string    `json:"snapshot,omitempty"`
}

// WorkerInfo is a worker as the cluster knows it.
type WorkerInfo struct {
	ID         string      `json:"id"`
	CPUs       int         `json:"cpus"`
	Memory     int64       `json:"memory"`
	State      WorkerState `json:"state"`
	Boot       string      `json:"boot"`
	Registered time.Time   `json:"registered"`
	LastSeen   time.Time   `json:"last_seen"`
}

// WorkerState is a worker's state in the replicated state and the API.
type WorkerState string

// Worker states. A draining worker is given no blocks; its blocks move to
// the others at the next step.
const (
	WorkerAlive    WorkerState = "alive"
	WorkerLost     WorkerState = "lost"
	WorkerDraining WorkerState = "draining"
)

// ErrWorkerState is wrapped by UnmarshalText for an unknown state.
var ErrWorkerState = errors.New("coordinator: not a worker state")

// String returns the state's name.
func (s WorkerState) String() string { return string(s) }

// MarshalText implements encoding.TextMarshaler.
func (s WorkerState) MarshalText() ([]byte, error) {
	switch s {
	case WorkerAlive, WorkerLost, WorkerDraining, "":
		return []byte(s), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrWorkerState, string(s))
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *WorkerState) UnmarshalText(b []byte) error {
	v := WorkerState(b)
	if _, err := v.MarshalText(); err != nil {
		return err
	}
	*s = v
	return nil
}

// ServerInfo is a coordinator's addresses.
type ServerInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// Job is a job in the state machine.
type Job struct {
	ID       string    `json:"id"`
	Spec     job.Spec  `json:"spec"`
	Schedule string    `json:"schedule,omitempty"`
	Slot     time.Time `json:"slot,omitzero"`
	State    job.State `json:"state"`
	Created  time.Time `json:"created"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Error    string    `json:"error,omitempty"`
	Kind     string    `json:"kind,omitempty"`

	Partition *wire.PartitionSummary `json:"partition,omitempty"`
	Assign    *Assignment            `json:"assign,omitempty"`
	// LoadedEpoch is the epoch whose blocks the workers have loaded;
	// phases wait for it.
	LoadedEpoch uint64  `json:"loaded_epoch,omitempty"`
	LoadSeconds float64 `json:"load_seconds,omitempty"`
	// Done is the last committed phase: iteration and side ("" before the
	// first phase of the current epoch).
	DoneIteration int             `json:"done_iteration"`
	DoneSide      wire.Side       `json:"done_side"`
	History       []job.Iteration `json:"history"`
	// pendingUsers holds the user phase of the iteration under way until
	// its item phase completes the history entry.
	UsersPhase *PhaseResult `json:"users_phase,omitempty"`
	Eval       *Evaluation  `json:"eval,omitempty"`
	Restarts   int          `json:"restarts"`
	Notes      []string     `json:"notes,omitempty"`
	Snapshot   string       `json:"snapshot,omitempty"`
	Bytes      int64        `json:"bytes"`
	// Checkpoints are the committed checkpoints, oldest first; Manifests
	// keeps the manifests of the newest ones (to rewrite them in the store
	// after a leader change, and for resuming).
	Checkpoints []job.CheckpointRef             `json:"checkpoints,omitempty"`
	Manifests   map[string]*checkpoint.Manifest `json:"manifests,omitempty"`
	ResumedFrom []int                           `json:"resumed_from,omitempty"`
	SnapshotID  string                          `json:"snapshot_id,omitempty"`
	// Events is the job's log: every committed step, oldest first (the
	// newest maxEvents).
	Events []Event `json:"events,omitempty"`
}

// Event is one line of a job's log.
type Event struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

// maxEvents bounds a job's log in the state machine.
const maxEvents = 2000

// eventText describes a job command that was applied, or "".
func eventText(c *Command, j *Job) string {
	switch c.Type {
	case cmdSubmit:
		if c.Schedule != "" {
			return fmt.Sprintf("submitted by schedule %s for slot %s", c.Schedule, c.Slot.UTC().Format(time.RFC3339))
		}
		return "submitted"
	case cmdPartitioned:
		p := c.Partitioned
		return fmt.Sprintf("partitioned in %.2f s: %d users × %d items, %d training ratings, %d×%d blocks", p.Seconds, p.Users, p.Items, p.TrainRatings, p.UserBlocks, p.ItemBlocks)
	case cmdAssigned:
		a := c.Assigned
		text := fmt.Sprintf("epoch %d assigned to %s", a.Epoch, strings.Join(distinct(a.Users, a.Items), ", "))
		if a.Restart {
			text += " (" + a.Reason + ")"
		}
		if a.Resume != "" {
			text += ", resuming from " + a.Resume
		}
		return text
	case cmdLoaded:
		return fmt.Sprintf("epoch %d loaded in %.2f s", c.Assigned.Epoch, c.Seconds)
	case cmdPhase:
		p := c.Phase
		return fmt.Sprintf("iteration %d %s: %.3f s, %d bytes exchanged", p.Iteration, p.Side, p.Seconds, p.Bytes)
	case cmdCheckpoint:
		var bytes int64
		for _, f := range c.Checkpoint.Files {
			bytes += f.Bytes
		}
		kind := "checkpoint"
		if c.Checkpoint.Final {
			kind = "final snapshot"
		}
		return fmt.Sprintf("%s %s committed (%d files, %d bytes)", kind, c.Checkpoint.ID, len(c.Checkpoint.Files), bytes)
	case cmdCheckpointBad:
		return fmt.Sprintf("checkpoint %s found damaged: %s", c.Snapshot, c.Reason)
	case cmdEvaluated:
		return "evaluated"
	case cmdFinished:
		if c.Finished.Error != "" {
			return fmt.Sprintf("%s: %s", c.Finished.State, c.Finished.Error)
		}
		return c.Finished.State.String()
	case cmdCancel:
		return "cancelled"
	case cmdNote:
		return c.Reason
	}
	return ""
}

// manifestsKept bounds the manifests a job keeps in the state machine.
const manifestsKept = 3

// GoodCheckpoint returns the newest committed checkpoint not marked bad.
func (j *Job) GoodCheckpoint() (job.CheckpointRef, bool) {
	for i := len(j.Checkpoints) - 1; i >= 0; i-- {
		if c := j.Checkpoints[i]; !c.Bad {
			return c, true
		}
	}
	return job.CheckpointRef{}, false
}

func (j *Job) checkpointRef(id string) (int, bool) {
	for i, c := range j.Checkpoints {
		if c.ID == id {
			return i, true
		}
	}
	return 0, false
}

// State is the replicated state.
type State struct {
	Jobs    map[string]*Job        `json:"jobs"`
	Order   []string               `json:"order"` // job IDs in submission order
	Workers map[string]*WorkerInfo `json:"workers"`
	Servers map[string]*ServerInfo `json:"servers"`
	// Schedules may be absent in snapshots of earlier builds.
	Schedules map[string]*Schedule `json:"schedules"`
}

func newState() *State {
	return &State{Jobs: map[string]*Job{}, Workers: map[string]*WorkerInfo{}, Servers: map[string]*ServerInfo{}, Schedules: map[string]*Schedule{}}
}

// Sentinel errors of Apply: the command was valid JSON but does not apply
// to the current state. The state is unchanged.
var (
	ErrUnknownJob = errors.New("coordinator: no such job")
	ErrStale      = errors.New("coordinator: stale command")
	ErrCommand    = errors.New("coordinator: malformed command")
	ErrDuplicate  = errors.New("coordinator: already exists")
	// ErrUnknownWorker: no worker of that ID.
	ErrUnknownWorker = errors.New("coordinator: no such worker")
	// ErrUnknownSchedule: no schedule of that name.
	ErrUnknownSchedule = errors.New("coordinator: no such schedule")
)

// FSM is the raft state machine. Apply must be deterministic: it depends
// only on the command and the current state.
type FSM struct {
	mu sync.RWMutex
	st *State
	// notify is closed and replaced after every Apply, so that readers can
	// wait for a change (job wait).
	notify chan struct{}
	// index is the raft index of the last entry applied.
	index uint64
}

// Index returns the raft index of the last entry applied.
func (f *FSM) Index() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.index
}

// NewFSM returns an empty state machine.
func NewFSM() *FSM { return &FSM{st: newState(), notify: make(chan struct{})} }

// Apply implements raft.FSM. It returns nil or an error value.
func (f *FSM) Apply(l *raft.Log) any {
	var c Command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fmt.Errorf("%w: %v", ErrCommand, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.apply(&c)
	if err == nil {
		if j, ok := f.st.Jobs[c.Job]; ok {
			if text := eventText(&c, j); text != "" {
				j.Events = append(j.Events, Event{Time: c.Time, Text: text})
				if len(j.Events) > maxEvents {
					j.Events = j.Events[len(j.Events)-maxEvents:]
				}
			}
		}
	}
	f.index = l.Index
	close(f.notify)
	f.notify = make(chan struct{})
	return err
}

// Changed returns a channel closed at the next Apply.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.notify
}

func (f *FSM) apply(c *Command) error {
	if c.V < 1 || c.V > CommandVersion {
		return fmt.Errorf("%w: version %d (this build applies 1..%d)", ErrCommand, c.V, CommandVersion)
	}
	st := f.st
	switch c.Type {
	case cmdSubmit:
		if c.Spec == nil || c.Job == "" {
			return fmt.Errorf("%w: submit without job or spec", ErrCommand)
		}
		if _, ok := st.Jobs[c.Job]; ok {
			return fmt.Errorf("%w: %s", ErrDuplicate, c.Job)
		}
		st.Jobs[c.Job] = &Job{ID: c.Job, Spec: *c.Spec, Schedule: c.Schedule, Slot: c.Slot, State: job.StatePending, Created: c.Time}
		st.Order = append(st.Order, c.Job)
		if s, ok := st.Schedules[c.Schedule]; ok && c.Slot.After(s.LastSlot) {
			s.LastSlot = c.Slot // the slot is fired with its job, atomically
		}
		return nil
	case cmdScheduleAdd:
		s := c.ScheduleDef
		if s == nil || s.Name == "" {
			return fmt.Errorf("%w: schedule_added without a schedule", ErrCommand)
		}
		if _, ok := st.Schedules[s.Name]; ok {
			return fmt.Errorf("%w: schedule %s", ErrDuplicate, s.Name)
		}
		cp := *s
		st.Schedules[s.Name] = &cp
		return nil
	case cmdScheduleRm, cmdSchedulePause, cmdScheduleResume, cmdScheduleSlot:
		s, ok := st.Schedules[c.Job]
		if !ok {
			return fmt.Errorf("%w: schedule %s", ErrUnknownSchedule, c.Job)
		}
		switch c.Type {
		case cmdScheduleRm:
			delete(st.Schedules, c.Job)
		case cmdSchedulePause:
			s.Paused = true
		case cmdScheduleResume:
			// Slots that passed while paused are not due: paused means
			// skipped.
			if s.Paused && c.Time.After(s.LastSlot) {
				s.LastSlot = c.Time
			}
			s.Paused = false
		case cmdScheduleSlot:
			if c.Slot.After(s.LastSlot) {
				s.LastSlot = c.Slot
			}
		}
		return nil
	case cmdWorkerUp:
		if c.Worker == nil {
			return fmt.Errorf("%w: worker_registered without worker", ErrCommand)
		}
		w := *c.Worker
		w.State, w.LastSeen = WorkerAlive, c.Time // Boot: as the heartbeat said
		if old, ok := st.Workers[w.ID]; ok {
			w.Registered = old.Registered
		} else {
			w.Registered = c.Time
		}
		st.Workers[w.ID] = &w
		return nil
	case cmdWorkerLost:
		if w, ok := st.Workers[c.Job]; ok && w.State != WorkerDraining { // the worker ID travels in Job
			w.State = WorkerLost
		}
		return nil
	case cmdWorkerDrain, cmdWorkerUndrain:
		w, ok := st.Workers[c.Job]
		if !ok {
			return fmt.Errorf("%w: worker %s", ErrUnknownWorker, c.Job)
		}
		if c.Type == cmdWorkerDrain {
			w.State = WorkerDraining
		} else if w.State == WorkerDraining {
			w.State = WorkerLost // alive again at its next heartbeat
		}
		return nil
	case cmdWorkersSeen:
		for _, id := range c.Workers {
			if w, ok := st.Workers[id]; ok && w.State == WorkerAlive {
				w.LastSeen = c.Time
			}
		}
		return nil
	case cmdServer:
		if c.Server == nil {
			return fmt.Errorf("%w: server_added without server", ErrCommand)
		}
		s := *c.Server
		st.Servers[s.ID] = &s
		return nil
	case cmdServerGone:
		delete(st.Servers, c.Job)
		return nil
	}
	j, ok := st.Jobs[c.Job]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownJob, c.Job)
	}
	if job.Finished(j.State) {
		return fmt.Errorf("%w: job %s is %s", ErrStale, j.ID, j.State)
	}
	switch c.Type {
	case cmdPartitioned:
		if c.Partitioned == nil || j.Partition != nil {
			return fmt.Errorf("%w: job %s already partitioned", ErrStale, j.ID)
		}
		if err := checkPartition(c.Partitioned); err != nil {
			return err
		}
		p := *c.Partitioned
		j.Partition = &p
		j.State = job.StateRunning
		j.Started = c.Time
		return nil
	case cmdAssigned:
		a := c.Assigned
		if a == nil || j.Partition == nil || len(a.Users) != j.Partition.UserBlocks || len(a.Items) != j.Partition.ItemBlocks {
			return fmt.Errorf("%w: assignment does not match the job's blocks", ErrCommand)
		}
		if j.Assign != nil && a.Epoch <= j.Assign.Epoch {
			return fmt.Errorf("%w: epoch %d after %d", ErrStale, a.Epoch, j.Assign.Epoch)
		}
		if a.Restart {
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
			j.Notes = append(j.Notes, fmt.Sprintf("%s: %s after %d iterations: %s", c.Time.UTC().Format(time.RFC3339), how, j.DoneIteration, a.Reason))
			j.DoneIteration, j.DoneSide, j.UsersPhase, j.Eval = from, wire.SideItems, nil, nil
			if from == 0 {
				j.DoneSide = ""
			}
			if len(j.History) > from {
				j.History = j.History[:from]
			}
		}
		cp := *a
		j.Assign = &cp
		return nil
	case cmdLoaded:
		if c.Assigned == nil || j.Assign == nil || c.Assigned.Epoch != j.Assign.Epoch {
			return fmt.Errorf("%w: load of another epoch", ErrStale)
		}
		j.LoadedEpoch = c.Assigned.Epoch
		j.LoadSeconds += c.Seconds
		return nil
	case cmdPhase:
		return applyPhase(j, c.Phase)
	case cmdCheckpoint:
		m := c.Checkpoint
		if m == nil || m.Job != j.ID || m.Iteration > j.DoneIteration || (m.Iteration == j.DoneIteration && j.DoneSide != wire.SideItems) {
			return fmt.Errorf("%w: checkpoint of an iteration not done", ErrStale)
		}
		ref := job.CheckpointRef{ID: m.ID, Iteration: m.Iteration, Final: m.Final}
		if i, ok := j.checkpointRef(m.ID); ok {
			j.Checkpoints[i] = ref // written again after a resume: good again
		} else {
			j.Checkpoints = append(j.Checkpoints, ref)
		}
		if j.Manifests == nil {
			j.Manifests = map[string]*checkpoint.Manifest{}
		}
		cp := *m
		j.Manifests[m.ID] = &cp
		// Keep the newest manifests (and the final one).
		for len(j.Manifests) > manifestsKept {
			oldest := ""
			for id, mm := range j.Manifests {
				if !mm.Final && (oldest == "" || mm.Iteration < j.Manifests[oldest].Iteration) {
					oldest = id
				}
			}
			if oldest == "" {
				break
			}
			delete(j.Manifests, oldest)
		}
		return nil
	case cmdCheckpointBad:
		if i, ok := j.checkpointRef(c.Snapshot); ok {
			j.Checkpoints[i].Bad = true
			j.Notes = append(j.Notes, fmt.Sprintf("%s: checkpoint %s is damaged: %s", c.Time.UTC().Format(time.RFC3339), c.Snapshot, c.Reason))
		}
		return nil
	case cmdEvaluated:
		e := c.Evaluated
		if e == nil || j.Assign == nil || e.Epoch != j.Assign.Epoch || j.DoneIteration != j.Spec.Iterations || j.DoneSide != wire.SideItems || j.Eval != nil {
			return fmt.Errorf("%w: evaluation does not follow the last phase", ErrStale)
		}
		cp := *e
		j.Eval = &cp // its bytes are not a phase's: bytes_exchanged counts phases only
		if n := len(j.History); n > 0 && e.TestN > 0 && !j.Spec.Implicit {
			r := math.Sqrt(e.TestSSE / float64(e.TestN))
			j.History[n-1].TestRMSE = &r
		}
		return nil
	case cmdFinished:
		fin := c.Finished
		if fin == nil || !job.Finished(fin.State) {
			return fmt.Errorf("%w: finish without a final state", ErrCommand)
		}
		j.State, j.Error, j.Kind, j.Snapshot, j.Finished = fin.State, fin.Error, fin.Kind, fin.Snapshot, c.Time
		j.SnapshotID = c.Snapshot
		return nil
	case cmdCancel:
		j.State, j.Finished, j.Error = job.StateCancelled, c.Time, "cancelled by request"
		return nil
	case cmdNote:
		j.Notes = append(j.Notes, fmt.Sprintf("%s: %s", c.Time.UTC().Format(time.RFC3339), c.Reason))
		return nil
	}
	return fmt.Errorf("%w: unknown type %q", ErrCommand, c.Type)
}

// CheckpointDue reports the iteration whose checkpoint is due: the last
// completed one, when it is a multiple of the spec's interval, not the last
// (the final snapshot covers that) and not yet committed.
func (j *Job) CheckpointDue() (int, bool) {
	t := j.DoneIteration
	c := j.Spec.CheckpointEvery
	if c == 0 || j.DoneSide != wire.SideItems || t == 0 || t%c != 0 || t >= j.Spec.Iterations {
		return 0, false
	}
	if i, ok := j.checkpointRef(checkpoint.SnapshotID(j.ID, t)); ok && !j.Checkpoints[i].Bad {
		return 0, false
	}
	return t, true
}

// NextPhase returns the phase that follows the last committed one, or
// ok=false when the last iteration is done.
func (j *Job) NextPhase() (iteration int, side wire.Side, ok bool) {
	switch j.DoneSide {
	case "":
		return 1, wire.SideUsers, j.Spec.Iterations >= 1
	case wire.SideUsers:
		return j.DoneIteration, wire.SideItems, true
	default:
		if j.DoneIteration >= j.Spec.Iterations {
			return 0, wire.NoSide, false
		}
		return j.DoneIteration + 1, wire.SideUsers, true
	}
}

func applyPhase(j *Job, p *PhaseResult) error {
	if p == nil || j.Assign == nil || p.Epoch != j.Assign.Epoch {
		return fmt.Errorf("%w: phase for another epoch", ErrStale)
	}
	t, side, ok := j.NextPhase()
	if !ok || p.Iteration != t || p.Side != side {
		return fmt.Errorf("%w: phase %d %s does not follow %d %s", ErrStale, p.Iteration, p.Side, j.DoneIteration, j.DoneSide)
	}
	cp := *p
	j.Bytes += p.Bytes
	if side == wire.SideUsers {
		// The user phase of iteration t evaluated the test error of
		// iteration t−1 with the rows it gathered.
		if n := len(j.History); n > 0 && p.TestN > 0 && !j.Spec.Implicit {
			r := math.Sqrt(p.TestSSE / float64(p.TestN))
			j.History[n-1].TestRMSE = &r
		}
		j.UsersPhase = &cp
	} else {
		it := job.Iteration{Iteration: t, Seconds: p.Seconds, BytesExchanged: p.Bytes}
		if u := j.UsersPhase; u != nil {
			it.Seconds += u.Seconds
			it.BytesExchanged += u.Bytes
		}
		if !j.Spec.Implicit && p.Ratings > 0 {
			r := math.Sqrt(p.SSE / float64(p.Ratings))
			it.TrainRMSE = &r
		}
		j.History = append(j.History, it)
		j.UsersPhase = nil
	}
	j.DoneIteration, j.DoneSide = t, side
	return nil
}

// View runs fn with read access to the state. fn must not keep references.
func (f *FSM) View(fn func(*State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.st)
}

// Snapshot implements raft.FSM.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := json.Marshal(f.st)
	if err != nil {
		return nil, err
	}
	return fsmSnapshot(b), nil
}

// Restore implements raft.FSM.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st := &State{}
	dec := json.NewDecoder(rc)
	if err := dec.Decode(st); err != nil {
		return fmt.Errorf("coordinator: restoring snapshot: %w", err)
	}
	if st.Jobs == nil || st.Workers == nil || st.Servers == nil {
		return errors.New("coordinator: restoring snapshot: missing tables")
	}
	if st.Schedules == nil {
		st.Schedules = map[string]*Schedule{}
	}
	f.mu.Lock()
	f.st = st
	close(f.notify)
	f.notify = make(chan struct{})
	f.mu.Unlock()
	return nil
}

type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s fsmSnapshot) Release() {}

// sortedAlive returns the IDs of live workers, sorted.
func (st *State) sortedAlive() []string {
	var ids []string
	for id, w := range st.Workers {
		if w.State == WorkerAlive {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// checkPartition refuses a partition summary whose shape the driver could
// not use: block counts outside 1..job.MaxBlocks, or per-block lists of
// another length. The driver sizes its assignment from these counts.
func checkPartition(p *wire.PartitionSummary) error {
	n := p.UserBlocks + p.ItemBlocks
	switch {
	case p.UserBlocks < 1 || p.ItemBlocks < 1 || p.UserBlocks > job.MaxBlocks || p.ItemBlocks > job.MaxBlocks:
		return fmt.Errorf("%w: partition of %d×%d blocks outside 1..%d", ErrCommand, p.UserBlocks, p.ItemBlocks, job.MaxBlocks)
	case len(p.UserNeeds) != p.UserBlocks || len(p.ItemNeeds) != p.ItemBlocks:
		return fmt.Errorf("%w: partition needs of %d×%d blocks for %d×%d", ErrCommand, len(p.UserNeeds), len(p.ItemNeeds), p.UserBlocks, p.ItemBlocks)
	case (p.BlockBytes != nil && len(p.BlockBytes) != n) || (p.BlockRows != nil && len(p.BlockRows) != n):
		return fmt.Errorf("%w: partition block sizes for %d or %d blocks, not %d", ErrCommand, len(p.BlockBytes), len(p.BlockRows), n)
	case p.Users < 0 || p.Items < 0:
		return fmt.Errorf("%w: partition of %d users × %d items", ErrCommand, p.Users, p.Items)
	}
	return nil
}
