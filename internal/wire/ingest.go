package wire

import (
	"fmt"

	"github.com/cofactor-ml/cofactor/partition"
)

// Distributed ingest of a --dataset job: the leader drives the rounds of
// partition.Ingest on every live worker with CmdIngest commands (one a
// round, the same command to every worker) and gathers one RepIngested
// report a worker and round. Epoch is the attempt: a random number the
// leader draws each time it starts the ingest (after a worker is lost, or
// on a new leader), so that nothing of an abandoned attempt is mixed into
// the new one; Iteration is the round.

// Ingest rounds, in order. Every worker finishes a round before any is
// given the next.
const (
	IngestScan       = 1 + iota // ScanIDs of the worker's shards
	IngestDict                  // DictReport
	IngestRanges                // SendRanges
	IngestNumber                // RangeReport
	IngestBounds                // BoundCandidates
	IngestRoute                 // SetLayout, SendBlockIDs, Route of the worker's shards
	IngestBuildUsers            // BuildUsers: user blocks to the block store
	IngestTranspose             // Transpose: user blocks' ratings to the item blocks' builders
	IngestBuildItems            // BuildItems: item blocks to the block store
	IngestRounds     = IngestBuildItems
)

// IngestCommand is the ingest part of a CmdIngest command.
type IngestCommand struct {
	// Workers are the ingest's workers by rank.
	Workers []string `json:"workers"`
	// Owners[k] is the rank that scans and routes shard k.
	Owners []int `json:"owners"`
	// Plan and Datasets: round IngestScan only (later rounds use what
	// the worker kept).
	Plan *partition.IngestPlan `json:"plan,omitempty"`
	// Datasets are the datasets whose files make Plan.Files, in order
	// (the training dataset, then the test dataset), at the generation
	// the plan was cut from.
	Datasets []DatasetRef `json:"datasets,omitempty"`
	// Ranges (IngestRanges), Offsets (IngestBounds) and Layout
	// (IngestRoute).
	Ranges  *partition.RangePlan    `json:"ranges,omitempty"`
	Offsets *partition.Offsets      `json:"offsets,omitempty"`
	Layout  *partition.IngestLayout `json:"layout,omitempty"`
}

// DatasetRef names one generation of a stored dataset and how many of the
// plan's files it holds.
type DatasetRef struct {
	Name       string `json:"name"`
	Generation string `json:"generation"`
	Files      int    `json:"files"`
}

// IngestReport is what a worker reports after an ingest round.
type IngestReport struct {
	Round  int                     `json:"round"`
	Rank   int                     `json:"rank"`
	Shards []partition.ShardReport `json:"shards,omitempty"`
	Dict   *partition.DictReport   `json:"dict,omitempty"`
	Range  *partition.RangeReport  `json:"range,omitempty"`
	Bound  *partition.BoundReport  `json:"bound,omitempty"`
	Build  *partition.BuildReport  `json:"build,omitempty"`
	Sums   []BlockSum              `json:"sums,omitempty"`
}

// BlockSum is the sum of a user block's training ratings, added in row
// order: the leader adds the blocks' sums in block order for the mean.
type BlockSum struct {
	Block int     `json:"block"`
	Sum   float64 `json:"sum"`
}

// Check validates an ingest command read from the wire.
func (c *IngestCommand) Check(round int) error {
	switch {
	case round < IngestScan || round > IngestRounds:
		return fmt.Errorf("%w: ingest round %d outside %d..%d", ErrBounds, round, IngestScan, IngestRounds)
	case len(c.Workers) == 0 || len(c.Workers) > partition.MaxIngestWorkers:
		return fmt.Errorf("%w: an ingest of %d workers", ErrBounds, len(c.Workers))
	case round == IngestScan && (c.Plan == nil || c.Plan.Workers != len(c.Workers) || len(c.Owners) != len(c.Plan.Shards)):
		return fmt.Errorf("%w: an ingest scan without a plan for its %d workers and shards", ErrBounds, len(c.Workers))
	case round == IngestRanges && c.Ranges == nil, round == IngestBounds && c.Offsets == nil, round == IngestRoute && c.Layout == nil:
		return fmt.Errorf("%w: ingest round %d without its plan", ErrBounds, round)
	}
	for _, o := range c.Owners {
		if o < 0 || o >= len(c.Workers) {
			return fmt.Errorf("%w: shard owner %d of %d workers", ErrBounds, o, len(c.Workers))
		}
	}
	return nil
}
