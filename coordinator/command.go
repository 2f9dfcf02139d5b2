package coordinator

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// CommandVersion is the version of the command format this build writes.
// Version 2 carries one typed payload per kind; version 1 (a catch-all
// command of optional fields, written by earlier builds) is still read,
// so raft logs and snapshots of an older version replay.
const CommandVersion = 2

// Kind names a command kind: the "type" of a log entry.
type Kind string

// Command kinds. The names are those of version 1.
const (
	kindSubmit         Kind = "job_submit"
	kindPartitioned    Kind = "job_partitioned"
	kindAssigned       Kind = "job_assigned"
	kindLoaded         Kind = "job_loaded"
	kindPhase          Kind = "phase_committed"
	kindEvaluated      Kind = "job_evaluated"
	kindFinished       Kind = "job_finished"
	kindCancel         Kind = "job_cancel"
	kindNote           Kind = "job_note"
	kindCheckpoint     Kind = "checkpoint_committed"
	kindCheckpointBad  Kind = "checkpoint_bad"
	kindPrune          Kind = "jobs_pruned"
	kindWorkerUp       Kind = "worker_registered"
	kindWorkerLost     Kind = "worker_lost"
	kindWorkerDrain    Kind = "worker_drained"
	kindWorkerUndrain  Kind = "worker_undrained"
	kindWorkersSeen    Kind = "workers_seen" // version 1 only: liveness is no longer committed
	kindServer         Kind = "server_added"
	kindServerGone     Kind = "server_removed"
	kindScheduleAdd    Kind = "schedule_added"
	kindScheduleRm     Kind = "schedule_removed"
	kindSchedulePause  Kind = "schedule_paused"
	kindScheduleResume Kind = "schedule_resumed"
	kindScheduleSlot   Kind = "schedule_slot"
)

// Command is one raft log entry, JSON-encoded: the kind, the time chosen
// by the proposer, and the kind's payload.
type Command struct {
	V       int             `json:"v"`
	Type    Kind            `json:"type"`
	Time    time.Time       `json:"time"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// payload is the content of one command kind. apply changes st or
// returns an error and leaves it unchanged; now is the command's time.
type payload interface {
	kind() Kind
	apply(st *State, now time.Time) error
}

// jobPayload is a payload about one job: what it applies is also written
// to the job's log.
type jobPayload interface {
	payload
	jobID() string
	// event describes the applied command for the job's log ("" for
	// none).
	event(j *Job) string
}

// payloads makes an empty payload of each kind a version-2 entry may
// carry.
var payloads = map[Kind]func() payload{
	kindSubmit:         func() payload { return &submitCmd{} },
	kindPartitioned:    func() payload { return &partitionedCmd{} },
	kindAssigned:       func() payload { return &assignedCmd{} },
	kindLoaded:         func() payload { return &loadedCmd{} },
	kindPhase:          func() payload { return &phaseCmd{} },
	kindEvaluated:      func() payload { return &evaluatedCmd{} },
	kindFinished:       func() payload { return &finishedCmd{} },
	kindCancel:         func() payload { return &cancelCmd{} },
	kindNote:           func() payload { return &noteCmd{} },
	kindCheckpoint:     func() payload { return &checkpointCmd{} },
	kindCheckpointBad:  func() payload { return &checkpointBadCmd{} },
	kindPrune:          func() payload { return &pruneCmd{} },
	kindWorkerUp:       func() payload { return &workerUpCmd{} },
	kindWorkerLost:     func() payload { return &workerLostCmd{} },
	kindWorkerDrain:    func() payload { return &workerDrainCmd{} },
	kindWorkerUndrain:  func() payload { return &workerUndrainCmd{} },
	kindServer:         func() payload { return &serverCmd{} },
	kindServerGone:     func() payload { return &serverGoneCmd{} },
	kindScheduleAdd:    func() payload { return &scheduleAddCmd{} },
	kindScheduleRm:     func() payload { return &scheduleRmCmd{} },
	kindSchedulePause:  func() payload { return &schedulePauseCmd{} },
	kindScheduleResume: func() payload { return &scheduleResumeCmd{} },
	kindScheduleSlot:   func() payload { return &scheduleSlotCmd{} },
}

// encodeCommand is the log entry of p at time t.
func encodeCommand(t time.Time, p payload) ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Command{V: CommandVersion, Type: p.kind(), Time: t, Payload: b})
}

// decodeCommand reads a log entry of either version into its payload and
// time. Errors wrap ErrCommand.
func decodeCommand(data []byte) (payload, time.Time, error) {
	var c Command
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %v", ErrCommand, err)
	}
	switch c.V {
	case 1:
		p, err := decodeV1(data)
		return p, c.Time, err
	case CommandVersion:
	default:
		return nil, time.Time{}, fmt.Errorf("%w: version %d (this build applies 1..%d)", ErrCommand, c.V, CommandVersion)
	}
	mk, ok := payloads[c.Type]
	if !ok {
		return nil, time.Time{}, fmt.Errorf("%w: unknown type %q", ErrCommand, c.Type)
	}
	p := mk()
	if len(c.Payload) == 0 {
		return nil, time.Time{}, fmt.Errorf("%w: %s without a payload", ErrCommand, c.Type)
	}
	if err := json.Unmarshal(c.Payload, p); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %s: %v", ErrCommand, c.Type, err)
	}
	return p, c.Time, nil
}

// The payloads, one per kind. Each is applied by its own method in
// apply.go.
type (
	submitCmd struct {
		Job      string    `json:"job"`
		Spec     job.Spec  `json:"spec"`
		Schedule string    `json:"schedule,omitempty"`
		Slot     time.Time `json:"slot,omitzero"`
	}
	partitionedCmd struct {
		Job       string        `json:"job"`
		Partition PartitionInfo `json:"partition"`
	}
	assignedCmd struct {
		Job        string     `json:"job"`
		Assignment Assignment `json:"assignment"`
	}
	loadedCmd struct {
		Job     string  `json:"job"`
		Epoch   uint64  `json:"epoch"`
		Seconds float64 `json:"seconds"`
	}
	phaseCmd struct {
		Job   string      `json:"job"`
		Phase PhaseResult `json:"phase"`
	}
	evaluatedCmd struct {
		Job  string     `json:"job"`
		Eval Evaluation `json:"eval"`
	}
	finishedCmd struct {
		Job    string `json:"job"`
		Finish Finish `json:"finish"`
		// SnapshotID is the final snapshot's ID (none for a failure).
		SnapshotID string `json:"snapshot_id,omitempty"`
	}
	cancelCmd struct {
		Job string `json:"job"`
	}
	noteCmd struct {
		Job  string `json:"job"`
		Text string `json:"text"`
	}
	checkpointCmd struct {
		Job        string         `json:"job"`
		Checkpoint CheckpointInfo `json:"checkpoint"`
		// legacy is the whole manifest of a version-1 entry, kept in
		// the job as version 1 did (it has no blob to load it from).
		legacy *checkpoint.Manifest
	}
	checkpointBadCmd struct {
		Job        string `json:"job"`
		Checkpoint string `json:"checkpoint"`
		Reason     string `json:"reason"`
	}
	// pruneCmd drops finished jobs, with their events, from the state.
	pruneCmd struct {
		Jobs []string `json:"jobs"`
	}
	workerUpCmd struct {
		Worker WorkerInfo `json:"worker"`
	}
	workerLostCmd struct {
		Worker string `json:"worker"`
	}
	workerDrainCmd struct {
		Worker string `json:"worker"`
	}
	workerUndrainCmd struct {
		Worker string `json:"worker"`
	}
	// seenCmd is version 1's workers_seen: applied as nothing.
	seenCmd   struct{}
	serverCmd struct {
		Server ServerInfo `json:"server"`
	}
	serverGoneCmd struct {
		Server string `json:"server"`
	}
	scheduleAddCmd struct {
		Schedule Schedule `json:"schedule"`
	}
	scheduleRmCmd struct {
		Name string `json:"name"`
	}
	schedulePauseCmd struct {
		Name string `json:"name"`
	}
	scheduleResumeCmd struct {
		Name string `json:"name"`
	}
	scheduleSlotCmd struct {
		Name string    `json:"name"`
		Slot time.Time `json:"slot"`
	}
)

func (*submitCmd) kind() Kind         { return kindSubmit }
func (*partitionedCmd) kind() Kind    { return kindPartitioned }
func (*assignedCmd) kind() Kind       { return kindAssigned }
func (*loadedCmd) kind() Kind         { return kindLoaded }
func (*phaseCmd) kind() Kind          { return kindPhase }
func (*evaluatedCmd) kind() Kind      { return kindEvaluated }
func (*finishedCmd) kind() Kind       { return kindFinished }
func (*cancelCmd) kind() Kind         { return kindCancel }
func (*noteCmd) kind() Kind           { return kindNote }
func (*checkpointCmd) kind() Kind     { return kindCheckpoint }
func (*checkpointBadCmd) kind() Kind  { return kindCheckpointBad }
func (*pruneCmd) kind() Kind          { return kindPrune }
func (*workerUpCmd) kind() Kind       { return kindWorkerUp }
func (*workerLostCmd) kind() Kind     { return kindWorkerLost }
func (*workerDrainCmd) kind() Kind    { return kindWorkerDrain }
func (*workerUndrainCmd) kind() Kind  { return kindWorkerUndrain }
func (*seenCmd) kind() Kind           { return kindWorkersSeen }
func (*serverCmd) kind() Kind         { return kindServer }
func (*serverGoneCmd) kind() Kind     { return kindServerGone }
func (*scheduleAddCmd) kind() Kind    { return kindScheduleAdd }
func (*scheduleRmCmd) kind() Kind     { return kindScheduleRm }
func (*schedulePauseCmd) kind() Kind  { return kindSchedulePause }
func (*scheduleResumeCmd) kind() Kind { return kindScheduleResume }
func (*scheduleSlotCmd) kind() Kind   { return kindScheduleSlot }

func (c *submitCmd) jobID() string        { return c.Job }
func (c *partitionedCmd) jobID() string   { return c.Job }
func (c *assignedCmd) jobID() string      { return c.Job }
func (c *loadedCmd) jobID() string        { return c.Job }
func (c *phaseCmd) jobID() string         { return c.Job }
func (c *evaluatedCmd) jobID() string     { return c.Job }
func (c *finishedCmd) jobID() string      { return c.Job }
func (c *cancelCmd) jobID() string        { return c.Job }
func (c *noteCmd) jobID() string          { return c.Job }
func (c *checkpointCmd) jobID() string    { return c.Job }
func (c *checkpointBadCmd) jobID() string { return c.Job }
