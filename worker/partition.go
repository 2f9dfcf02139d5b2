package worker

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/partition"
)

// partition reads the job's input, splits it into the commanded number of
// blocks and writes every block and both ID lists to the block store. It
// is idempotent: a repeat writes the same bytes under the same names.
func (w *Worker) partition(ctx context.Context, c *wire.Command) (*wire.PartitionSummary, error) {
	sum, err := w.cutAndStore(ctx, c)
	// The whole dataset is garbage now: give its pages back to the system
	// before this process loads its own blocks, or its resident memory
	// keeps the partitioning peak for the whole job.
	debug.FreeOSMemory()
	return sum, err
}

// cutAndStore does partition's work.
func (w *Worker) cutAndStore(ctx context.Context, c *wire.Command) (*wire.PartitionSummary, error) {
	start := time.Now()
	ds, skipped, err := job.LoadDataset(ctx, c.Spec)
	if err != nil {
		return nil, err
	}
	if c.UserBlocks < 1 || c.ItemBlocks < 1 {
		return nil, fmt.Errorf("partition command without block counts")
	}
	// Blocks are cut, stored and dropped one at a time: the partitioner
	// then holds the dataset and one block's ratings, not two copies of
	// every rating.
	layout, err := partition.PlanLayout(ds, c.UserBlocks, c.ItemBlocks)
	if err != nil {
		return nil, err
	}
	sum := &wire.PartitionSummary{PartitionCounts: wire.PartitionCounts{
		Users: ds.Users.Len(), Items: ds.Items.Len(),
		TrainRatings: ds.ByUser.NNZ(), TestRatings: ds.Test.Total, TestSkipped: ds.Test.Skipped,
		SkippedLines: skipped, Duplicates: ds.Duplicates,
		UserBlocks: len(layout.UserBlocks), ItemBlocks: len(layout.ItemBlocks),
		Mean: meanRating(ds.ByUser.Val),
	}}
	for _, side := range []partition.Side{partition.Users, partition.Items} {
		others := len(layout.Blocks(side.Other()))
		needs := make([][]int64, len(layout.Blocks(side)))
		for _, blk := range layout.Blocks(side) {
			needs[blk.Index] = make([]int64, others)
			for q := range others {
				needs[blk.Index][q] = int64(len(blk.NeededFrom(q)))
			}
			layout.CutRows(ds, blk)
			data, err := blk.MarshalBinary()
			blk.DropRows()
			if err != nil {
				return nil, err
			}
			if err := w.putRetrying(ctx, wire.BlockBlob(c.Job, wire.SideOf(side), blk.Index), data, "job", c.Job, "side", side, "block", blk.Index); err != nil {
				return nil, fmt.Errorf("storing %s block %d: %w", side, blk.Index, err)
			}
			sum.BlockBytes = append(sum.BlockBytes, int64(len(data)))
			sum.BlockRows = append(sum.BlockRows, int64(len(blk.IDs)))
		}
		if side == partition.Users {
			sum.UserNeeds = needs
		} else {
			sum.ItemNeeds = needs
		}
		d := ds.Users
		if side == partition.Items {
			d = ds.Items
		}
		if err := w.putRetrying(ctx, wire.IDsBlob(c.Job, wire.SideOf(side)), []byte(strings.Join(d.IDs(), "\n")), "job", c.Job, "ids", side); err != nil {
			return nil, fmt.Errorf("storing the %s IDs: %w", side, err)
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	w.log.Info("partitioned", "job", c.Job, "users", sum.Users, "items", sum.Items, "ratings", sum.TrainRatings,
		"blocks", fmt.Sprintf("%dx%d", sum.UserBlocks, sum.ItemBlocks), "seconds", sum.Seconds)
	return sum, nil
}

// meanRating is the mean of the training ratings (0 for none), summed in
// input order so that every partitioner finds the same value.
func meanRating(vals []float32) float64 {
	if len(vals) == 0 {
		return 0
	}
	var sum float64
	for _, v := range vals {
		sum += float64(v)
	}
	return sum / float64(len(vals))
}
