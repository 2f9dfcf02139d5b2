package job

import (
	"errors"
	"fmt"
)

// Iteration is one entry of a job's history.
type Iteration struct {
	Iteration      int      `json:"iteration"`
	TrainRMSE      *float64 `json:"train_rmse"`
	TestRMSE       *float64 `json:"test_rmse"`
	Seconds        float64  `json:"seconds"`
	BytesExchanged int64    `json:"bytes_exchanged"`
}

// Result is the JSON of a training job (CONTRACT.md): `train --json`,
// `job wait --json` and `job status --json` print it. Fields that do not
// apply are null, not absent.
type Result struct {
	JobID               string      `json:"job_id"`
	State               State       `json:"state"`
	Error               string      `json:"error,omitempty"`
	ErrorKind           string      `json:"error_kind,omitempty"` // "input" (exit 2) or "runtime" (exit 1)
	Rank                int         `json:"rank"`
	Lambda              float64     `json:"lambda"`
	Alpha               *float64    `json:"alpha,omitempty"`
	Iterations          int         `json:"iterations"`
	Implicit            bool        `json:"implicit"`
	Biases              bool        `json:"biases,omitempty"`
	NonNegative         bool        `json:"nonnegative,omitempty"`
	GlobalMean          *float64    `json:"global_mean,omitempty"`
	Solver              string      `json:"solver"`
	Users               int         `json:"users"`
	Items               int         `json:"items"`
	UserBlocks          int         `json:"user_blocks"`
	ItemBlocks          int         `json:"item_blocks"`
	Workers             int         `json:"workers"`
	TrainRatings        int64       `json:"train_ratings"`
	TestRatings         int64       `json:"test_ratings"`
	TestSkipped         int64       `json:"test_skipped"`
	SkippedLines        int64       `json:"skipped_lines"`
	Duplicates          int64       `json:"duplicates"`
	TrainRMSE           *float64    `json:"train_rmse"`
	TestRMSE            *float64    `json:"test_rmse"`
	TestMAE             *float64    `json:"test_mae,omitempty"`
	PrecisionAt10       *float64    `json:"precision_at_10"`
	NDCGAt10            *float64    `json:"ndcg_at_10"`
	Seconds             float64     `json:"seconds"`
	LoadSeconds         float64     `json:"load_seconds"`
	SecondsPerIteration float64     `json:"seconds_per_iteration"`
	BytesExchanged      int64       `json:"bytes_exchanged"`
	BytesLowerBound     int64       `json:"bytes_lower_bound"`
	Restarts            int         `json:"restarts"`
	Notes               []string    `json:"notes,omitempty"`
	Progress            *Progress   `json:"progress,omitempty"`
	History             []Iteration `json:"history"`
	// Checkpoint is the newest committed checkpoint (a resume point).
	Checkpoint *CheckpointRef `json:"checkpoint,omitempty"`
	// ResumedFrom lists, for each restart, the iteration training resumed
	// after (0: from the initial factors).
	ResumedFrom []int  `json:"resumed_from,omitempty"`
	Snapshot    string `json:"snapshot"`
	// SnapshotID is the final snapshot's ID in the job's store.
	SnapshotID string `json:"snapshot_id,omitempty"`
}

// CheckpointRef names a committed checkpoint.
type CheckpointRef struct {
	ID        string `json:"id"`
	Iteration int    `json:"iteration"`
	Final     bool   `json:"final,omitempty"`
	// Bad marks a checkpoint found damaged when a resume read it.
	Bad bool `json:"bad,omitempty"`
}

// Progress says where a running job is.
type Progress struct {
	Iteration int    `json:"iteration"` // the iteration under way (1-based)
	Phase     string `json:"phase"`     // partition, assign, load, users, items, checkpoint, evaluate, snapshot, export
	// Done is the share of the job's iterations completed, 0 to 1 (an
	// iteration whose users phase is committed counts half).
	Done float64 `json:"done"`
	// ElapsedSeconds is the time since the job was submitted.
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// RemainingSeconds estimates the time to the last iteration: the
	// iterations left at the mean time of the completed ones. Null until
	// an iteration has completed.
	RemainingSeconds *float64 `json:"remaining_seconds"`
}

// State is a job's state. Its text form is CONTRACT.md's "state" value.
type State string

// Job states: pending until partitioned, running, then one of the three
// final states.
const (
	StatePending   State = "pending"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

// ErrState is wrapped by UnmarshalText for a name that is not a state.
var ErrState = errors.New("job: not a job state")

// String returns the state's name.
func (s State) String() string { return string(s) }

// Valid reports whether s is one of the five states.
func (s State) Valid() bool {
	switch s {
	case StatePending, StateRunning, StateSucceeded, StateFailed, StateCancelled:
		return true
	}
	return false
}

// Finished reports whether s is final.
func (s State) Finished() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled
}

// MarshalText implements encoding.TextMarshaler ("" for the zero value).
func (s State) MarshalText() ([]byte, error) {
	if s != "" && !s.Valid() {
		return nil, fmt.Errorf("%w: %q", ErrState, string(s))
	}
	return []byte(s), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	v := State(b)
	if v != "" && !v.Valid() {
		return fmt.Errorf("%w: %q", ErrState, string(b))
	}
	*s = v
	return nil
}

// Finished reports whether state is final.
func Finished(state State) bool { return state.Finished() }

// Error kinds.
const (
	KindInput   = "input"
	KindRuntime = "runtime"
)
