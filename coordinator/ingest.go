package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cofactor-ml/cofactor/dataset"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/partition"
)

// Distributed ingest of a --dataset job: the partition step of the driver
// for jobs whose input is in the cluster's dataset store. Every live
// worker takes part: the leader cuts the datasets' files into shards,
// hands them round-robin to the workers (ranked in ID order), and drives
// the rounds of partition.Ingest (wire.IngestScan … wire.IngestBuildItems),
// one command a round to every worker, planning between rounds from what
// they report. No process holds the whole input: the leader sees counts,
// samples and block bounds; each worker its shards' bytes, its hash and
// ID ranges and the blocks it builds. The blocks land in the block store
// under the names a single worker's partition uses, so assignment, load
// and the phases do not know which way a job was partitioned.
//
// An attempt is all nine rounds on one set of workers. Losing one of them
// (or its restart) abandons the attempt: the driver's next step starts a
// new one over the workers alive then, with a new attempt number, so the
// shards of the lost worker are scanned by the others. The result does not
// depend on the number of workers, so the job ends as it would have.

// ingestShardsPerWorker is how many shards each worker is given, about:
// several, so that workers that finish early are not idle long.
const ingestShardsPerWorker = 4

// ingest runs the distributed ingest of j's datasets over alive and returns
// the partition summary.
func (d *driver) ingest(ctx context.Context, j *Job, alive []string, p, q int) (*wire.PartitionSummary, error) {
	start := time.Now()
	plan, refs, err := d.ingestPlan(ctx, j, len(alive), p, q)
	if err != nil {
		return nil, err
	}
	owners := make([]int, len(plan.Shards))
	for k := range owners {
		owners[k] = k % len(alive)
	}
	var b [8]byte
	rand.Read(b[:])
	attempt := binary.LittleEndian.Uint64(b[:]) | 1
	// await treats a watched worker whose boot changed as lost: an
	// attempt cannot survive a worker's restart, which forgets its share.
	jj := *j
	jj.Assign = &Assignment{Boots: map[string]string{}}
	boots := d.boots()
	for _, id := range alive {
		jj.Assign.Boots[id] = boots[id]
	}
	d.n.log.Info("ingest started", "job", j.ID, "workers", len(alive), "shards", len(plan.Shards), "attempt", fmt.Sprintf("%x", attempt))
	r := &ingestRun{d: d, j: &jj, alive: alive, attempt: attempt, owners: owners}

	shards, err := r.scan(ctx, plan, refs)
	if err != nil {
		return nil, err
	}
	layout, err := r.layout(ctx, plan)
	if err != nil {
		return nil, err
	}
	builds, userSums, err := r.build(ctx, layout)
	if err != nil {
		return nil, err
	}
	s, err := partition.Summarize(plan, layout, shards, builds)
	if err != nil {
		return nil, &stepFailure{kind: job.KindRuntime, msg: fmt.Sprintf("ingest: %v", err)}
	}
	sum := &wire.PartitionSummary{
		PartitionCounts: wire.PartitionCounts{
			Users: s.Users, Items: s.Items, TrainRatings: s.TrainRatings,
			TestRatings: s.TestRatings, TestSkipped: s.TestSkipped, SkippedLines: s.SkippedLines, Duplicates: s.Duplicates,
			UserBlocks: s.UserBlocks, ItemBlocks: s.ItemBlocks, Seconds: time.Since(start).Seconds(),
		},
		UserNeeds: s.UserNeeds, ItemNeeds: s.ItemNeeds, BlockBytes: s.BlockBytes, BlockRows: s.BlockRows,
	}
	if s.TrainRatings > 0 {
		var total float64
		for _, v := range userSums { // block order: the same mean on every leader
			total += v
		}
		sum.Mean = total / float64(s.TrainRatings)
	}
	d.n.log.Info("job ingested", "job", j.ID, "workers", len(alive), "shards", len(plan.Shards), "seconds", sum.Seconds)
	return sum, nil
}

// scan runs round 1 and checks that every file held a rating.
func (r *ingestRun) scan(ctx context.Context, plan *partition.IngestPlan, refs []wire.DatasetRef) ([]partition.ShardReport, error) {
	reps, err := r.round(ctx, wire.IngestScan, &wire.IngestCommand{Plan: plan, Datasets: refs})
	if err != nil {
		return nil, err
	}
	shards := make([]partition.ShardReport, 0, len(plan.Shards))
	for _, rep := range reps {
		shards = append(shards, rep.Shards...)
	}
	slices.SortFunc(shards, func(a, b partition.ShardReport) int { return a.Shard - b.Shard })
	if err := partition.CheckScan(plan, shards); err != nil {
		return nil, ingestFailure(err)
	}
	return shards, nil
}

// layout runs rounds 2 to 5: the ID ranges, their numbering, the block
// bounds.
func (r *ingestRun) layout(ctx context.Context, plan *partition.IngestPlan) (*partition.IngestLayout, error) {
	alive := r.alive
	reps, err := r.round(ctx, wire.IngestDict, &wire.IngestCommand{})
	if err != nil {
		return nil, err
	}
	dicts := make([]partition.DictReport, len(reps))
	for k, rep := range reps {
		if rep.Dict == nil {
			return nil, fmt.Errorf("worker %s reported no dictionary", alive[k])
		}
		dicts[k] = *rep.Dict
	}
	ranges := partition.PlanRanges(dicts, len(alive))
	if _, err = r.round(ctx, wire.IngestRanges, &wire.IngestCommand{Ranges: &ranges}); err != nil {
		return nil, err
	}
	if reps, err = r.round(ctx, wire.IngestNumber, &wire.IngestCommand{}); err != nil {
		return nil, err
	}
	rr := make([]partition.RangeReport, len(reps))
	for k, rep := range reps {
		if rep.Range == nil {
			return nil, fmt.Errorf("worker %s reported no ID range", alive[k])
		}
		rr[k] = *rep.Range
	}
	p, q := plan.UserBlocks, plan.ItemBlocks
	if r.j.Spec.UserBlocks == 0 {
		// No --blocks: the layout follows the training part's size.
		var users, items, ratings int64
		for _, rep := range rr {
			users, items, ratings = users+rep.Users.IDs, items+rep.Items.IDs, ratings+rep.Users.Count
		}
		p, q = autoBlocks(len(alive), users, items, ratings)
	}
	off, err := partition.PlanOffsets(rr, p, q)
	if err != nil {
		return nil, ingestFailure(err)
	}
	if reps, err = r.round(ctx, wire.IngestBounds, &wire.IngestCommand{Offsets: &off}); err != nil {
		return nil, err
	}
	br := make([]partition.BoundReport, len(reps))
	for k, rep := range reps {
		if rep.Bound == nil {
			return nil, fmt.Errorf("worker %s reported no block bounds", alive[k])
		}
		br[k] = *rep.Bound
	}
	layout, err := partition.PlanBounds(br, ranges, off)
	if err != nil {
		return nil, &stepFailure{kind: job.KindRuntime, msg: fmt.Sprintf("ingest: %v", err)}
	}
	return &layout, nil
}

// build runs rounds 6 to 9: every rating to its user block's builder;
// the user blocks to the block store; their ratings to the item blocks'
// builders; the item blocks to the block store. It returns the builds and
// each user block's sum of ratings.
func (r *ingestRun) build(ctx context.Context, layout *partition.IngestLayout) ([]partition.BuildReport, []float64, error) {
	if _, err := r.round(ctx, wire.IngestRoute, &wire.IngestCommand{Layout: layout}); err != nil {
		return nil, nil, err
	}
	var builds []partition.BuildReport
	userSums := make([]float64, len(layout.UserBounds)-1)
	for _, round := range []int{wire.IngestBuildUsers, wire.IngestTranspose, wire.IngestBuildItems} {
		reps, err := r.round(ctx, round, &wire.IngestCommand{})
		if err != nil {
			return nil, nil, err
		}
		if round == wire.IngestTranspose {
			continue
		}
		for k, rep := range reps {
			if rep.Build == nil {
				return nil, nil, fmt.Errorf("worker %s reported no blocks", r.alive[k])
			}
			builds = append(builds, *rep.Build)
			for _, s := range rep.Sums {
				if s.Block < 0 || s.Block >= len(userSums) {
					return nil, nil, fmt.Errorf("worker %s reported the sum of user block %d of %d", r.alive[k], s.Block, len(userSums))
				}
				userSums[s.Block] = s.Sum
			}
		}
	}
	return builds, userSums, nil
}

// ingestPlan reads the datasets' manifests and cuts their files into
// shards for w workers.
func (d *driver) ingestPlan(ctx context.Context, j *Job, w, p, q int) (*partition.IngestPlan, []wire.DatasetRef, error) {
	opts, err := j.Spec.ScanOptions()
	if err != nil {
		return nil, nil, &stepFailure{kind: job.KindInput, msg: err.Error()}
	}
	store, err := dataset.Open(ctx, d.n.nc)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the dataset store: %w", err)
	}
	plan := &partition.IngestPlan{
		Workers: w, Scan: opts, UserBlocks: p, ItemBlocks: q,
		Split: partition.SplitOptions{TestFraction: j.Spec.TestFraction, Seed: j.Spec.Seed, Folds: j.Spec.Folds, Fold: j.Spec.Fold},
	}
	var refs []wire.DatasetRef
	for k, name := range []string{j.Spec.Dataset, j.Spec.TestDataset} {
		if name == "" {
			continue
		}
		m, err := store.Info(ctx, name)
		if err != nil {
			return nil, nil, ingestFailure(err)
		}
		files := m.Indexes()
		for _, sh := range partition.CutShards(files, opts.Format, ingestShardsPerWorker*w, k == 1) {
			sh.File += len(plan.Files)
			plan.Shards = append(plan.Shards, sh)
		}
		plan.Files = append(plan.Files, files...)
		refs = append(refs, wire.DatasetRef{Name: name, Generation: m.Generation, Files: len(m.Files)})
	}
	// Every message must fit the server's max_payload, and so must the
	// answer to a lookup (four bytes an ID of at least three in the
	// question), with room for headers.
	limit := (int(d.n.nc.MaxPayload()) - 1024) * 3 / 4
	if limit < partition.MinBufferBytes {
		return nil, nil, &stepFailure{kind: job.KindRuntime, msg: fmt.Sprintf("the NATS server's max_payload of %d bytes is too small for an ingest (at least %d)",
			d.n.nc.MaxPayload(), partition.MinBufferBytes*4/3+1024)}
	}
	plan.BufferBytes = min(partition.DefaultBufferBytes(w), limit)
	if err := plan.Validate(); err != nil {
		return nil, nil, &stepFailure{kind: job.KindInput, msg: err.Error()}
	}
	return plan, refs, nil
}

// ingestFailure turns the dataset's faults (missing, damaged, a bad or
// empty file) into the job's failure; other errors are retried.
func ingestFailure(err error) error {
	if job.IsInputError(err) || errors.Is(err, dataset.ErrNotFound) || errors.Is(err, dataset.ErrCorrupt) ||
		errors.Is(err, dataset.ErrMissingChunk) || errors.Is(err, partition.ErrIndex) {
		return &stepFailure{kind: job.KindInput, msg: err.Error()}
	}
	return err
}

// ingestRun is one attempt's rounds.
type ingestRun struct {
	d       *driver
	j       *Job
	alive   []string
	attempt uint64
	owners  []int
}

// round sends one round's command to every worker of the attempt and
// returns their reports by rank.
func (r *ingestRun) round(ctx context.Context, round int, ic *wire.IngestCommand) ([]*wire.IngestReport, error) {
	ic.Workers, ic.Owners = r.alive, r.owners
	c := wire.Command{Type: wire.CmdIngest, Job: r.j.ID, Spec: r.j.Spec, Epoch: r.attempt, Iteration: round, Ingest: ic}
	reps := make([]*wire.IngestReport, len(r.alive))
	got := 0
	var mu sync.Mutex
	r.d.waiting = func() string {
		mu.Lock()
		defer mu.Unlock()
		var missing []string
		for k, rep := range reps {
			if rep == nil {
				missing = append(missing, r.alive[k])
			}
		}
		return fmt.Sprintf("ingest round %d on %s", round, strings.Join(missing, ", "))
	}
	defer func() { r.d.waiting = nil }()
	err := r.d.await(ctx, r.j, r.alive, r.alive, c, func(rep wire.Report) bool {
		if rep.Type != wire.RepIngested || rep.Epoch != r.attempt || rep.Iteration != round || rep.Ingest == nil {
			return false
		}
		k := slices.Index(r.alive, rep.Worker)
		if k < 0 || rep.Ingest.Rank != k || rep.Ingest.Round != round {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if reps[k] == nil {
			got++
		}
		reps[k] = rep.Ingest
		return got == len(reps)
	})
	if err != nil {
		return nil, err
	}
	return reps, nil
}
