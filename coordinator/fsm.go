package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
)

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
	// LowerBound is the fewest factor bytes an iteration of this
	// assignment can exchange (from the partition's row needs, which
	// stay in the summary blob): the API reports it.
	LowerBound int64 `json:"lower_bound,omitempty"`
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
	ID     string `json:"id"`
	CPUs   int    `json:"cpus"`
	Memory int64  `json:"memory"`
	// GatherBytes is the worker's bound on an item block's gather
	// (worker --gather-bytes; 0: whole gathers), for the sizing estimate.
	GatherBytes int64       `json:"gather_bytes,omitempty"`
	State       WorkerState `json:"state"`
	Boot        string      `json:"boot"`
	Registered  time.Time   `json:"registered"`
	LastSeen    time.Time   `json:"last_seen"`
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

	Partition *PartitionInfo `json:"partition,omitempty"`
	Assign    *Assignment    `json:"assign,omitempty"`
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
	// Checkpoints are the committed checkpoints, oldest first;
	// ManifestRefs names the manifest blobs of the newest ones (the final
	// snapshot's is written to the snapshot store again at the end, by
	// whichever leader finishes the job).
	Checkpoints  []job.CheckpointRef       `json:"checkpoints,omitempty"`
	ManifestRefs map[string]CheckpointInfo `json:"manifest_refs,omitempty"`
	// Manifests holds whole manifests as version-1 commands committed
	// them (a job running across the upgrade); new ones are blobs.
	Manifests   map[string]*checkpoint.Manifest `json:"manifests,omitempty"`
	ResumedFrom []int                           `json:"resumed_from,omitempty"`
	SnapshotID  string                          `json:"snapshot_id,omitempty"`
	// Events is the job's log: every committed step, oldest first (the
	// newest maxEvents).
	Events []Event `json:"events,omitempty"`
}

// BlobRef names a blob of the block store (wire.BlockBucket) and the
// SHA-256 of its bytes, which a reader checks: what the log holds instead
// of bulk data.
type BlobRef struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// PartitionInfo is what the replicated state keeps of a partition: the
// summary's counts, and the blob holding the whole summary (the P×Q row
// needs and the per-block sizes, which only the leader's sizing and
// lower bound read). Its JSON names are the summary's, so states written
// by earlier builds (which held the whole summary) read back.
type PartitionInfo struct {
	wire.PartitionCounts
	// Summary is the blob of the whole wire.PartitionSummary (zero for a
	// job partitioned by an earlier build).
	Summary BlobRef `json:"summary,omitzero"`
}

// partitionInfo is the log's part of a partition summary stored as blob.
func partitionInfo(s *wire.PartitionSummary, blob BlobRef) PartitionInfo {
	return PartitionInfo{PartitionCounts: s.PartitionCounts, Summary: blob}
}

// CheckpointInfo is a committed checkpoint as the log records it: its
// identity and size, and the blob of its manifest (the list of files,
// one per block, stays out of the log).
type CheckpointInfo struct {
	ID        string  `json:"id"`
	Iteration int     `json:"iteration"`
	Final     bool    `json:"final,omitempty"`
	Files     int     `json:"files"`
	Bytes     int64   `json:"bytes"`
	Manifest  BlobRef `json:"manifest,omitzero"`
}

// checkpointInfo is the log's part of manifest m stored as blob.
func checkpointInfo(m *checkpoint.Manifest, blob BlobRef) CheckpointInfo {
	c := CheckpointInfo{ID: m.ID, Iteration: m.Iteration, Final: m.Final, Files: len(m.Files), Manifest: blob}
	for _, f := range m.Files {
		c.Bytes += f.Bytes
	}
	return c
}

// Event is one line of a job's log.
type Event struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

// maxEvents bounds a job's log in the state machine.
const maxEvents = 2000

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
	// stats describe the entries this instance applied (not replicated).
	stats LogStats
}

// LogStats describe the raft log entries a state machine applied since
// the process started: what the log costs.
type LogStats struct {
	// Applied counts the entries applied.
	Applied uint64 `json:"applied"`
	// Largest is the size in bytes of the largest entry, and LargestKind
	// its command kind.
	Largest     int  `json:"largest"`
	LargestKind Kind `json:"largest_kind"`
}

// Stats returns what the state machine applied since it started.
func (f *FSM) Stats() LogStats {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.stats
}

// Index returns the raft index of the last entry applied.
func (f *FSM) Index() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.index
}

// NewFSM returns an empty state machine.
func NewFSM() *FSM { return &FSM{st: newState(), notify: make(chan struct{})} }

// Apply implements raft.FSM: it decodes the entry into its kind's
// payload and applies it. It returns nil or an error value (wrapping one
// of the sentinel errors above); on an error the state is unchanged.
func (f *FSM) Apply(l *raft.Log) any {
	p, now, err := decodeCommand(l.Data)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		err = p.apply(f.st, now)
	}
	if jp, ok := p.(jobPayload); ok && err == nil {
		f.st.logEvent(jp, now)
	}
	f.index = l.Index
	f.stats.Applied++
	if len(l.Data) > f.stats.Largest {
		f.stats.Largest, f.stats.LargestKind = len(l.Data), kindOf(p)
	}
	close(f.notify)
	f.notify = make(chan struct{})
	return err
}

func kindOf(p payload) Kind {
	if p == nil {
		return ""
	}
	return p.kind()
}

// logEvent appends the event of an applied job command to the job's log.
func (st *State) logEvent(p jobPayload, now time.Time) {
	j, ok := st.Jobs[p.jobID()]
	if !ok {
		return
	}
	if text := p.event(j); text != "" {
		j.Events = append(j.Events, Event{Time: now, Text: text})
		if len(j.Events) > maxEvents {
			j.Events = j.Events[len(j.Events)-maxEvents:]
		}
	}
}

// Changed returns a channel closed at the next Apply.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.notify
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

// Snapshot implements raft.FSM. It copies the state under the read lock
// (Apply mutates jobs in place) and leaves the encoding to Persist, which
// raft runs concurrently with further Applies.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &fsmSnapshot{st: f.st.clone()}, nil
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

// fsmSnapshot is a copy of the state that shares nothing Apply changes.
type fsmSnapshot struct{ st *State }

// Persist writes the state as JSON, outside the state machine's lock.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.st); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

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

// checkPartition refuses partition counts the driver could not use:
// block counts outside 1..job.MaxBlocks (it sizes assignments by them),
// negative user or item counts.
func checkPartition(p *PartitionInfo) error {
	switch {
	case p.UserBlocks < 1 || p.ItemBlocks < 1 || p.UserBlocks > job.MaxBlocks || p.ItemBlocks > job.MaxBlocks:
		return fmt.Errorf("%w: partition of %d×%d blocks outside 1..%d", ErrCommand, p.UserBlocks, p.ItemBlocks, job.MaxBlocks)
	case p.Users < 0 || p.Items < 0:
		return fmt.Errorf("%w: partition of %d users × %d items", ErrCommand, p.Users, p.Items)
	}
	return nil
}
