package coordinator

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
)

// commandV1 is a version-1 log entry: one struct of optional fields whose
// meaning depends on Type. Earlier builds wrote it; this one only reads
// it, converting each entry to its typed payload.
type commandV1 struct {
	Type        Kind                   `json:"type"`
	Time        time.Time              `json:"time"`
	Job         string                 `json:"job,omitempty"`
	Spec        *job.Spec              `json:"spec,omitempty"`
	Schedule    string                 `json:"schedule,omitempty"`
	Partitioned *wire.PartitionSummary `json:"partitioned,omitempty"`
	Assigned    *Assignment            `json:"assigned,omitempty"`
	Phase       *PhaseResult           `json:"phase,omitempty"`
	Evaluated   *Evaluation            `json:"evaluated,omitempty"`
	Finished    *Finish                `json:"finished,omitempty"`
	Worker      *WorkerInfo            `json:"worker,omitempty"`
	Server      *ServerInfo            `json:"server,omitempty"`
	Seconds     float64                `json:"seconds,omitempty"`
	Checkpoint  *checkpoint.Manifest   `json:"checkpoint,omitempty"`
	Snapshot    string                 `json:"snapshot,omitempty"`
	Reason      string                 `json:"reason,omitempty"`
	ScheduleDef *Schedule              `json:"schedule_def,omitempty"`
	Slot        time.Time              `json:"slot,omitzero"`
}

// v1Converters turn a version-1 entry into its payload; nil fields that
// the kind needs are refused.
var v1Converters = map[Kind]func(c *commandV1) (payload, bool){
	kindSubmit: func(c *commandV1) (payload, bool) {
		if c.Spec == nil {
			return nil, false
		}
		return &submitCmd{Job: c.Job, Spec: *c.Spec, Schedule: c.Schedule, Slot: c.Slot}, true
	},
	kindPartitioned: func(c *commandV1) (payload, bool) {
		if c.Partitioned == nil {
			return nil, false
		}
		return &partitionedCmd{Job: c.Job, Partition: partitionInfo(c.Partitioned, BlobRef{})}, true
	},
	kindAssigned: func(c *commandV1) (payload, bool) {
		if c.Assigned == nil {
			return nil, false
		}
		return &assignedCmd{Job: c.Job, Assignment: *c.Assigned}, true
	},
	kindLoaded: func(c *commandV1) (payload, bool) {
		if c.Assigned == nil {
			return nil, false
		}
		return &loadedCmd{Job: c.Job, Epoch: c.Assigned.Epoch, Seconds: c.Seconds}, true
	},
	kindPhase: func(c *commandV1) (payload, bool) {
		if c.Phase == nil {
			return nil, false
		}
		return &phaseCmd{Job: c.Job, Phase: *c.Phase}, true
	},
	kindEvaluated: func(c *commandV1) (payload, bool) {
		if c.Evaluated == nil {
			return nil, false
		}
		return &evaluatedCmd{Job: c.Job, Eval: *c.Evaluated}, true
	},
	kindFinished: func(c *commandV1) (payload, bool) {
		if c.Finished == nil {
			return nil, false
		}
		return &finishedCmd{Job: c.Job, Finish: *c.Finished, SnapshotID: c.Snapshot}, true
	},
	kindCancel: func(c *commandV1) (payload, bool) { return &cancelCmd{Job: c.Job}, true },
	kindNote:   func(c *commandV1) (payload, bool) { return &noteCmd{Job: c.Job, Text: c.Reason}, true },
	kindCheckpoint: func(c *commandV1) (payload, bool) {
		if c.Checkpoint == nil {
			return nil, false
		}
		m := *c.Checkpoint
		return &checkpointCmd{Job: c.Job, Checkpoint: checkpointInfo(&m, BlobRef{}), legacy: &m}, true
	},
	kindCheckpointBad: func(c *commandV1) (payload, bool) {
		return &checkpointBadCmd{Job: c.Job, Checkpoint: c.Snapshot, Reason: c.Reason}, true
	},
	kindWorkerUp: func(c *commandV1) (payload, bool) {
		if c.Worker == nil {
			return nil, false
		}
		return &workerUpCmd{Worker: *c.Worker}, true
	},
	// Version 1 carried the worker's and the schedule's name in Job.
	kindWorkerLost:    func(c *commandV1) (payload, bool) { return &workerLostCmd{Worker: c.Job}, true },
	kindWorkerDrain:   func(c *commandV1) (payload, bool) { return &workerDrainCmd{Worker: c.Job}, true },
	kindWorkerUndrain: func(c *commandV1) (payload, bool) { return &workerUndrainCmd{Worker: c.Job}, true },
	kindWorkersSeen:   func(c *commandV1) (payload, bool) { return &seenCmd{}, true },
	kindServer: func(c *commandV1) (payload, bool) {
		if c.Server == nil {
			return nil, false
		}
		return &serverCmd{Server: *c.Server}, true
	},
	kindServerGone: func(c *commandV1) (payload, bool) { return &serverGoneCmd{Server: c.Job}, true },
	kindScheduleAdd: func(c *commandV1) (payload, bool) {
		if c.ScheduleDef == nil {
			return nil, false
		}
		return &scheduleAddCmd{Schedule: *c.ScheduleDef}, true
	},
	kindScheduleRm:     func(c *commandV1) (payload, bool) { return &scheduleRmCmd{Name: c.Job}, true },
	kindSchedulePause:  func(c *commandV1) (payload, bool) { return &schedulePauseCmd{Name: c.Job}, true },
	kindScheduleResume: func(c *commandV1) (payload, bool) { return &scheduleResumeCmd{Name: c.Job}, true },
	kindScheduleSlot:   func(c *commandV1) (payload, bool) { return &scheduleSlotCmd{Name: c.Job, Slot: c.Slot}, true },
}

// decodeV1 converts a version-1 entry.
func decodeV1(data []byte) (payload, error) {
	var c commandV1
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCommand, err)
	}
	conv, ok := v1Converters[c.Type]
	if !ok {
		return nil, fmt.Errorf("%w: unknown type %q", ErrCommand, c.Type)
	}
	p, ok := conv(&c)
	if !ok {
		return nil, fmt.Errorf("%w: %s without its payload", ErrCommand, c.Type)
	}
	return p, nil
}
