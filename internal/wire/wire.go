// Package wire defines the JSON control messages between the coordinator
// leader and the workers: commands (leader → worker, request/reply on the
// worker's command subject), reports (worker → leader, request/reply on
// the report subject) and heartbeats. Factor rows never travel here; they
// use transport's binary frames.
//
// # Delivery
//
// Commands and reports are retried until acknowledged, so either may
// arrive more than once: a worker runs each (job, epoch, phase) once and
// answers repeats from the result it holds; the leader ignores reports for
// a step it is not waiting for.
package wire

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// Command types.
const (
	CmdPartition  = "partition"  // read the input, write blocks to the blob store, report the summary
	CmdLoad       = "load"       // load the blocks assigned in this epoch and set their initial factors
	CmdPhase      = "phase"      // solve every owned block of Side for Iteration
	CmdEvaluate   = "evaluate"   // test metrics of the final factors, per owned user block
	CmdCheckpoint = "checkpoint" // write the owned blocks' factors of Iteration to the store
	CmdExport     = "export"     // copy the final snapshot from the store to the spec's Out directory
	CmdDrop       = "drop"       // forget the job (finished, cancelled, or a new epoch elsewhere)
	CmdIngest     = "ingest"     // one round of a dataset's distributed ingest (ingest.go)
)

// Command is a leader → worker message. It carries everything the worker
// needs, so a worker that restarted or missed earlier commands can act on
// it alone.
type Command struct {
	Type       string   `json:"type"`
	Job        string   `json:"job"`
	Spec       job.Spec `json:"spec"`
	Epoch      uint64   `json:"epoch,omitempty"`
	Users      []string `json:"users,omitempty"` // owner of each user block
	Items      []string `json:"items,omitempty"` // owner of each item block
	Iteration  int      `json:"iteration,omitempty"`
	Side       Side     `json:"side,omitempty"`
	UserBlocks int      `json:"user_blocks,omitempty"`
	ItemBlocks int      `json:"item_blocks,omitempty"`
	// Snapshot names a checkpoint: the one to write (checkpoint), to
	// resume from (load; empty: start from the initial factors), or to
	// export.
	Snapshot string `json:"snapshot,omitempty"`
	// Final marks the job's final snapshot: user blocks also write their
	// users' training items, for serving.
	Final bool `json:"final,omitempty"`
	// Mean is the global mean of a model with biases (from the partition
	// summary), which every solve and evaluation of it needs.
	Mean float64 `json:"mean,omitempty"`
	// Ingest is a CmdIngest command's round (ingest.go).
	Ingest *IngestCommand `json:"ingest,omitempty"`
}

// Ack answers a command or a report.
type Ack struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Report types.
const (
	RepPartitioned = "partitioned"
	RepLoaded      = "loaded"
	RepPhase       = "phase"
	RepEvaluated   = "evaluated"
	RepCheckpoint  = "checkpoint"
	RepExported    = "exported"
	RepIngested    = "ingested" // an ingest round done: Ingest
	RepFailed      = "failed"   // the command cannot succeed (bad input, disk full): Error, Kind
)

// Report is a worker → leader message.
type Report struct {
	Type      string                `json:"type"`
	Worker    string                `json:"worker"`
	Job       string                `json:"job"`
	Epoch     uint64                `json:"epoch,omitempty"`
	Iteration int                   `json:"iteration,omitempty"`
	Side      Side                  `json:"side,omitempty"`
	Block     int                   `json:"block"`
	Stats     BlockStats            `json:"stats"`
	Partition *PartitionSummary     `json:"partition,omitempty"`
	Files     []checkpoint.FileInfo `json:"files,omitempty"`
	Snapshot  string                `json:"snapshot,omitempty"`
	Error     string                `json:"error,omitempty"`
	// Peer names the worker that did not answer, for KindPeer failures.
	Peer string `json:"peer,omitempty"`
	Kind string `json:"kind,omitempty"` // job.KindInput, job.KindRuntime or KindCheckpoint
	// For is the command type a failure answers.
	For string `json:"for,omitempty"`
	// Ingest is a RepIngested report's content.
	Ingest *IngestReport `json:"ingest,omitempty"`
}

// BlockStats describe one block's phase.
type BlockStats struct {
	Rows     int64   `json:"rows"`
	Ratings  int64   `json:"ratings"`
	SSE      float64 `json:"sse"`
	TestN    int64   `json:"test_n"`
	TestSSE  float64 `json:"test_sse"`
	TestAE   float64 `json:"test_ae"`
	Bytes    int64   `json:"bytes"` // factor bytes received from other workers
	Seconds  float64 `json:"seconds"`
	Checksum uint32  `json:"checksum"` // CRC-32C of the new rows
	// Ranking sums (implicit evaluation): users evaluated and the sums of
	// their precision@K and NDCG@K.
	RankUsers    int64   `json:"rank_users"`
	PrecisionSum float64 `json:"precision_sum"`
	NDCGSum      float64 `json:"ndcg_sum"`
}

// PartitionCounts are a partition's counts: what the raft log keeps of a
// summary, and the summary's first fields (embedded, so the JSON is flat).
type PartitionCounts struct {
	Users        int     `json:"users"`
	Items        int     `json:"items"`
	TrainRatings int64   `json:"train_ratings"`
	TestRatings  int64   `json:"test_ratings"`
	TestSkipped  int64   `json:"test_skipped"`
	SkippedLines int64   `json:"skipped_lines"`
	Duplicates   int64   `json:"duplicates"`
	UserBlocks   int     `json:"user_blocks"`
	ItemBlocks   int     `json:"item_blocks"`
	Seconds      float64 `json:"seconds"`
	// Mean is the mean training rating: the global mean μ of a model
	// with biases.
	Mean float64 `json:"mean,omitempty"`
}

// PartitionSummary is what the partitioning worker reports.
type PartitionSummary struct {
	PartitionCounts
	// UserNeeds[p][q] is how many rows user block p needs from item block
	// q; ItemNeeds[q][p] likewise. They give the exchange's lower bound.
	UserNeeds [][]int64 `json:"user_needs"`
	ItemNeeds [][]int64 `json:"item_needs"`
	// BlockBytes is the encoded size of each block, users then items.
	BlockBytes []int64 `json:"block_bytes"`
	// BlockRows is each block's row count, users then items (absent from
	// older workers' summaries).
	BlockRows []int64 `json:"block_rows,omitempty"`
}

// KindCheckpoint marks a failure to read the checkpoint a load resumed
// from: the leader then marks it bad and falls back to an older one.
const KindCheckpoint = "checkpoint"

// KindPeer marks a failure caused by another worker not answering row
// requests. The leader does not count it against the step while that
// worker may still be declared lost by the heartbeat monitor: the lost
// worker's blocks are then reassigned, which is the real fix.
const KindPeer = "peer"

// KindIngestAttempt marks an ingest round that failed where it cannot be
// run again (partition.ErrRepeat: an earlier run of it handed over or
// dropped what it works on). Sending the round again cannot mend it: the
// leader abandons the attempt and starts the ingest again.
const KindIngestAttempt = "ingest-attempt"

// Heartbeat is published by every worker each heartbeat interval.
type Heartbeat struct {
	Worker string `json:"worker"`
	// Boot is random per worker process: a new value means the worker
	// restarted and lost what it held.
	Boot   string `json:"boot"`
	CPUs   int    `json:"cpus"`
	Memory int64  `json:"memory"` // bytes the worker may use for blocks
	// GatherBytes bounds what an item block of the worker gathers at once
	// (0: whole gathers); the leader's sizing estimate counts it.
	GatherBytes int64     `json:"gather_bytes,omitempty"`
	Time        time.Time `json:"time"`
}

// BlockBucket is the JetStream Object Store bucket of partitioned rating
// blocks and ID lists (the block store).
const BlockBucket = "cofactor-blocks"

// JobBlobs is the prefix of every blob of a job in the block store.
func JobBlobs(jobID string) string { return jobID + "/" }

// Blob names in the block store.
func BlockBlob(jobID string, side Side, block int) string {
	return jobID + "/" + string(side) + "/" + strconv.Itoa(block)
}

// SummaryBlob names the job's whole partition summary (JSON), which the
// leader stores there instead of committing it to the raft log.
func SummaryBlob(jobID string) string { return jobID + "/summary" }

// ManifestBlob names the manifest (JSON) of the job's checkpoint id, which
// the leader stores there instead of committing it to the raft log.
func ManifestBlob(jobID, id string) string { return jobID + "/manifests/" + id }

// IDsBlob names a side's external IDs (one per line, in index order).
func IDsBlob(jobID string, side Side) string { return jobID + "/ids/" + string(side) }

// ErrBounds marks a command whose counts or indices are out of range.
var ErrBounds = errors.New("command out of bounds")

// CheckBounds refuses a command whose block counts, assignment lengths or
// iteration a worker would size memory or index slices by, when they are
// outside what any valid job has: a command comes off the wire.
func (c *Command) CheckBounds() error {
	switch {
	case c.UserBlocks < 0 || c.UserBlocks > job.MaxBlocks || c.ItemBlocks < 0 || c.ItemBlocks > job.MaxBlocks:
		return fmt.Errorf("%w: %d×%d blocks outside 0..%d", ErrBounds, c.UserBlocks, c.ItemBlocks, job.MaxBlocks)
	case len(c.Users) > job.MaxBlocks || len(c.Items) > job.MaxBlocks:
		return fmt.Errorf("%w: an assignment of %d×%d blocks, more than %d", ErrBounds, len(c.Users), len(c.Items), job.MaxBlocks)
	case c.Iteration < 0 || c.Iteration > job.MaxIterations:
		return fmt.Errorf("%w: iteration %d outside 0..%d", ErrBounds, c.Iteration, job.MaxIterations)
	}
	return nil
}
