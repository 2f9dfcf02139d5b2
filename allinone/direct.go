package allinone

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/partition"
)

// Train runs one job in this process and returns its result, as Start,
// Run and Close would. With one worker it runs the job directly (Direct):
// the same blocks, row solves, sums and snapshot as the cluster's single
// worker, without the machinery a single worker does not need — the
// embedded NATS server, the blocks encoded into its object store and read
// back, the checkpoints no other process can read. progress, if not nil,
// is called whenever the job's state changes.
func Train(ctx context.Context, spec job.Spec, o Options, progress func(job.Result)) (job.Result, error) {
	o = o.withDefaults()
	if o.Workers == 1 && Direct(spec) {
		return runDirect(ctx, spec, o, progress)
	}
	c, err := Start(ctx, o)
	if err != nil {
		return job.Result{}, err
	}
	defer c.Close()
	return c.Run(ctx, spec, progress)
}

// Direct reports whether Train can run spec without the cluster: its
// input is a file (a --dataset job is ingested from the cluster's store),
// and its snapshot goes somewhere that outlives the process — an Out
// directory, or a store other than the embedded cluster's.
func Direct(spec job.Spec) bool {
	u, err := checkpoint.ParseStoreURI(spec.Store)
	return err == nil && spec.Input != "" && spec.Dataset == "" && (spec.Out != "" || u.Kind != checkpoint.StoreCluster)
}

// direct is a job run by runDirect. Each side's factors are one array in
// global row order, a block's rows a slice of it, and there is one
// version: a phase reads the other side and overwrites its own side's
// rows, which nothing reads before the phase is over (the user phase's
// test error uses a block's rows before solving them).
type direct struct {
	spec    job.Spec
	o       Options
	log     *slog.Logger
	res     job.Result
	created time.Time
	k       int
	mean    float32
	layout  *partition.Layout
	f       [2][]float32 // users, items
	solver  *als.Solver
	buf     []float32 // gathered rows of a block that needs only some
	yty     []float64
	store   checkpoint.StoreURI
	repo    *checkpoint.Repo
	// stage is a temporary directory holding the final snapshot on its
	// way to Out when the store is the embedded cluster's (which a direct
	// run does not start).
	stage        string
	checkpoints  []string // committed intermediate checkpoints, oldest first
	usersSeconds float64  // the current iteration's user phase
	evalRMSE     *float64 // the final evaluation's test RMSE
	progress     func(job.Result)
}

// runDirect runs spec on one in-process worker without the cluster.
func runDirect(ctx context.Context, spec job.Spec, o Options, progress func(job.Result)) (job.Result, error) {
	if err := spec.Validate(); err != nil {
		return job.Result{}, err
	}
	d := &direct{spec: spec, o: o, log: o.Logger, created: time.Now(), k: spec.Width(), progress: progress}
	d.res = job.Result{
		JobID: coordinator.NewJobID(), State: job.StateRunning,
		Rank: spec.Rank, Lambda: spec.Lambda, Iterations: spec.Iterations, Implicit: spec.Implicit,
		Solver: string(spec.ALS(0).SolverUsed()), Biases: spec.Biases, NonNegative: spec.NonNegative,
		Workers: 1, History: []job.Iteration{},
	}
	if spec.Implicit {
		a := spec.Alpha
		d.res.Alpha = &a
	}
	defer d.close()
	err := d.run(ctx)
	d.res.Seconds = time.Since(d.created).Seconds()
	if err == nil {
		return d.res, nil
	}
	if ctx.Err() != nil {
		return d.res, ctx.Err()
	}
	d.res.State, d.res.Error, d.res.ErrorKind = job.StateFailed, err.Error(), job.KindRuntime
	if job.IsInputError(err) {
		d.res.ErrorKind = job.KindInput
	}
	d.log.Warn("job failed", "job", d.res.JobID, "kind", d.res.ErrorKind, "err", err)
	return d.res, &JobError{Result: d.res}
}

func (d *direct) close() {
	if d.repo != nil {
		d.repo.Close()
	}
	if d.stage != "" {
		os.RemoveAll(d.stage)
	}
}

func (d *direct) run(ctx context.Context) error {
	spec := d.spec
	var err error
	if d.store, err = checkpoint.ParseStoreURI(spec.Store); err != nil {
		return fmt.Errorf("%w: store: %w", job.ErrSpec, err)
	}
	if err := d.load(ctx); err != nil {
		return err
	}
	for t := 1; t <= spec.Iterations; t++ {
		if err := d.phase(ctx, t, partition.Users); err != nil {
			return err
		}
		if err := d.phase(ctx, t, partition.Items); err != nil {
			return err
		}
		if c := spec.CheckpointEvery; c > 0 && t%c == 0 && t < spec.Iterations && d.store.Kind != checkpoint.StoreCluster {
			// The embedded store's checkpoints would only serve a worker
			// lost and restarted within this process: none here.
			if err := d.checkpoint(ctx, t, false); err != nil {
				return err
			}
		}
	}
	if err := d.evaluate(ctx); err != nil {
		return err
	}
	// The final snapshot needs the user blocks' ratings (the seen-items
	// files) and every block's rating counts, not the item blocks'
	// ratings: let them go first.
	for _, blk := range d.layout.ItemBlocks {
		blk.Rows.Col, blk.Rows.Val = nil, nil
	}
	for _, blk := range d.layout.UserBlocks {
		blk.Test = partition.CSR{}
	}
	// Their pages go back now: the files about to be encoded are as large
	// as a side's ratings, and a heap grown past the training peak for
	// them would be the process's peak.
	debug.FreeOSMemory()
	return d.finish(ctx)
}

// load reads and partitions the input, as the cluster's partition step
// does, and sets the initial factors, as its load step does.
func (d *direct) load(ctx context.Context) error {
	spec := d.spec
	d.report("partition")
	ds, skipped, err := job.LoadDataset(ctx, spec)
	if err != nil {
		return err
	}
	p, q := spec.UserBlocks, spec.ItemBlocks
	if p == 0 {
		p, q = 1, 1 // one per worker
	}
	if d.layout, err = partition.PlanLayout(ds, p, q); err != nil {
		return err
	}
	for _, side := range []partition.Side{partition.Users, partition.Items} {
		for _, blk := range d.layout.Blocks(side) {
			d.layout.CutRows(ds, blk)
		}
	}
	r := &d.res
	r.Users, r.Items = ds.Users.Len(), ds.Items.Len()
	r.UserBlocks, r.ItemBlocks = len(d.layout.UserBlocks), len(d.layout.ItemBlocks)
	r.TrainRatings, r.TestRatings, r.TestSkipped = ds.ByUser.NNZ(), ds.Test.Total, ds.Test.Skipped
	r.SkippedLines, r.Duplicates = skipped, ds.Duplicates
	mean := meanRating(ds.ByUser.Val)
	if spec.Biases {
		r.GlobalMean = &mean
		d.mean = float32(mean)
	}
	// From here the blocks hold what the job needs of the dataset (its
	// ratings shared, their IDs); the rest, and the parser's garbage, go.
	ds = nil
	debug.FreeOSMemory()

	if d.solver, err = als.NewSolver(spec.ALS(d.o.Threads)); err != nil {
		return err
	}
	d.f = [2][]float32{make([]float32, r.Users*d.k), make([]float32, r.Items*d.k)}
	d.initRows()
	if spec.WarmStart != "" {
		if err := d.warmStart(ctx); err != nil {
			return err
		}
	}
	r.LoadSeconds = time.Since(d.created).Seconds()
	d.log.Info("partitioned", "job", r.JobID, "users", r.Users, "items", r.Items, "ratings", r.TrainRatings,
		"blocks", fmt.Sprintf("%dx%d", r.UserBlocks, r.ItemBlocks), "seconds", r.LoadSeconds)
	return nil
}

// initRows sets every row's initial factors, a function of the seed, the
// side and the row's ID alone, on the job's threads.
func (d *direct) initRows() {
	cfg, seed := d.spec.ALS(0), d.spec.Seed
	var wg sync.WaitGroup
	for _, side := range []partition.Side{partition.Users, partition.Items} {
		for _, blk := range d.layout.Blocks(side) {
			x, n := d.rows(blk), len(blk.IDs)
			step := (n + d.o.Threads - 1) / d.o.Threads
			for lo := 0; lo < n; lo += step {
				wg.Add(1)
				go func(ids []string, x []float32) {
					defer wg.Done()
					for i, id := range ids {
						cfg.InitRow(x[i*d.k:(i+1)*d.k], seed, alsSide(side), id)
					}
				}(blk.IDs[lo:min(lo+step, n)], x[lo*d.k:])
			}
		}
	}
	wg.Wait()
}

// meanRating is the mean of the training ratings (0 for none), summed in
// the order the cluster's partitioner sums them.
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

// rows is a block's factors.
func (d *direct) rows(blk *partition.Block) []float32 {
	return d.f[blk.Side][int(blk.Start)*d.k : int(blk.End())*d.k]
}

// gather returns the other side's rows blk needs, in Needed order: the
// whole other side when it needs every row, else a copy.
func (d *direct) gather(blk *partition.Block) []float32 {
	other := d.f[blk.Side.Other()]
	if len(blk.Needed)*d.k == len(other) {
		return other
	}
	k := d.k
	d.buf = d.buf[:0]
	for _, g := range blk.Needed {
		d.buf = append(d.buf, other[int(g)*k:int(g)*k+k]...)
	}
	return d.buf
}

// gram is the other side's YᵀY for a phase of side, summed over its
// blocks in block order, as a worker sums the blocks' partial sums.
func (d *direct) gram(side partition.Side) []float64 {
	if !d.spec.Implicit {
		return nil
	}
	k := d.k
	if d.yty == nil {
		d.yty = make([]float64, k*k)
	}
	clear(d.yty)
	part := make([]float64, k*k)
	for _, blk := range d.layout.Blocks(side.Other()) {
		als.Gram(d.rows(blk), k, d.o.Threads, part)
		for i, v := range part {
			d.yty[i] += v
		}
	}
	return d.yty
}

// phase solves every block of side for iteration t.
func (d *direct) phase(ctx context.Context, t int, side partition.Side) error {
	d.reportIteration(t, side.String())
	start := time.Now()
	yty := d.gram(side)
	var sse, testSSE float64
	var ratings, testN int64
	for _, blk := range d.layout.Blocks(side) {
		other := d.gather(blk)
		x := d.rows(blk)
		if side == partition.Users && t >= 2 && !d.spec.Implicit {
			// The items gathered are those of iteration t−1, and x holds
			// the users of t−1: the test error of iteration t−1.
			s, _, n := als.BlockErrorsThreads(blockRows(blk.Test), x, other, d.k, d.mean, d.o.Threads)
			testSSE += s
			testN += n
		}
		bs, err := d.solver.UpdateBlock(ctx, als.BlockUpdate{
			Rows: blockRows(blk.Rows), Other: other, YtY: yty, X: x,
			Loss: side == partition.Items, Side: alsSide(side), Mean: d.mean,
		})
		if err != nil {
			return fmt.Errorf("%s block %d: %w", side, blk.Index, err)
		}
		sse += bs.SSE
		ratings += blk.Rows.NNZ()
	}
	secs := time.Since(start).Seconds()
	r := &d.res
	if side == partition.Users {
		if n := len(r.History); n > 0 && testN > 0 {
			rmse := math.Sqrt(testSSE / float64(testN))
			r.History[n-1].TestRMSE = &rmse
		}
		d.usersSeconds = secs
		return nil
	}
	it := job.Iteration{Iteration: t, Seconds: d.usersSeconds + secs}
	if !d.spec.Implicit && ratings > 0 {
		rmse := math.Sqrt(sse / float64(ratings))
		it.TrainRMSE = &rmse
	}
	r.History = append(r.History, it)
	return nil
}

// evaluate computes the final factors' test metrics, as the cluster's
// evaluate step does on the owners of the user blocks.
func (d *direct) evaluate(ctx context.Context) error {
	d.reportIteration(d.spec.Iterations, "evaluate")
	var testSSE, testAE, precSum, ndcgSum float64
	var testN, rankUsers int64
	for _, blk := range d.layout.UserBlocks {
		if err := ctx.Err(); err != nil {
			return err
		}
		x := d.rows(blk)
		if !d.spec.Implicit {
			s, a, n := als.BlockErrorsThreads(blockRows(blk.Test), x, d.gather(blk), d.k, d.mean, d.o.Threads)
			testSSE, testAE, testN = testSSE+s, testAE+a, testN+n
			continue
		}
		rk := als.Ranking(als.RankingInput{
			X: x, Y: d.f[partition.Items], Rank: d.k,
			Train:  globalRows(blk.Rows, blk.Needed),
			Test:   globalRows(blk.Test, blk.Needed),
			Cutoff: d.spec.Cutoff, Threads: max(d.o.Threads, 1),
		})
		rankUsers += int64(rk.Users)
		precSum += rk.Precision * float64(rk.Users)
		ndcgSum += rk.NDCG * float64(rk.Users)
	}
	r := &d.res
	if d.spec.Implicit {
		if rankUsers > 0 {
			p, nd := precSum/float64(rankUsers), ndcgSum/float64(rankUsers)
			r.PrecisionAt10, r.NDCGAt10 = &p, &nd
		}
	} else if testN > 0 {
		rmse, mae := math.Sqrt(testSSE/float64(testN)), testAE/float64(testN)
		d.evalRMSE, r.TestMAE = &rmse, &mae
		if n := len(r.History); n > 0 {
			v := rmse
			r.History[n-1].TestRMSE = &v
		}
	}
	return nil
}

// globalRows maps a block's CSR columns from Needed positions to the other
// side's global indices (the same columns when the block needs every row).
func globalRows(m partition.CSR, needed []int32) als.Rows {
	if len(needed) > 0 && int(needed[len(needed)-1]) == len(needed)-1 {
		return blockRows(m)
	}
	col := make([]int32, len(m.Col))
	for j, c := range m.Col {
		col[j] = needed[c]
	}
	return als.Rows{Ptr: m.Ptr, Col: col, Val: m.Val}
}

func blockRows(m partition.CSR) als.Rows { return als.Rows{Ptr: m.Ptr, Col: m.Col, Val: m.Val} }

func alsSide(s partition.Side) als.Side {
	if s == partition.Items {
		return als.ItemSide
	}
	return als.UserSide
}

// openRepo opens the job's store: the spec's, or for the embedded
// cluster's store a temporary directory the final snapshot passes through
// on its way to Out.
func (d *direct) openRepo(ctx context.Context) (*checkpoint.Repo, error) {
	if d.repo != nil {
		return d.repo, nil
	}
	if d.store.Kind == checkpoint.StoreCluster {
		// Beside Out, so that the snapshot moves into place by a rename.
		parent, base := filepath.Split(filepath.Clean(d.spec.Out))
		if parent == "" {
			parent = "."
		}
		dir, err := os.MkdirTemp(parent, "."+base+".tmp-")
		if err != nil {
			return nil, err
		}
		d.stage = dir
		s := checkpoint.DirStore{Root: dir}
		d.repo = checkpoint.NewRepo(s, s)
		return d.repo, nil
	}
	r, err := checkpoint.OpenStore(ctx, d.store, checkpoint.OpenOptions{Name: "cofactor-train"})
	if err != nil {
		return nil, fmt.Errorf("opening the snapshot store %q: %w", d.spec.Store, err)
	}
	d.repo = r
	return r, nil
}

// warmStart overwrites the initial rows whose external IDs the spec's
// warm-start snapshot knows with that snapshot's factors.
func (d *direct) warmStart(ctx context.Context) error {
	spec := d.spec
	repo, err := d.openRepo(ctx)
	if err != nil {
		return err
	}
	m, err := repo.Open(ctx, spec.WarmStart)
	if err != nil {
		return fmt.Errorf("%w: warm start from snapshot %s: %w", job.ErrSpec, spec.WarmStart, err)
	}
	if m.Rank != d.k {
		return fmt.Errorf("%w: warm start snapshot %s has rank %d, the job %d", job.ErrSpec, spec.WarmStart, m.Rank, d.k)
	}
	for _, side := range []partition.Side{partition.Users, partition.Items} {
		for _, blk := range d.layout.Blocks(side) {
			x := d.rows(blk)
			for r, id := range blk.IDs {
				var row []float32
				if side == partition.Users {
					if u, ok := m.User(id); ok {
						row = m.UserRow(u)
					}
				} else if i, ok := m.Item(id); ok {
					row = m.ItemRow(i)
				}
				if row != nil {
					copy(x[r*d.k:(r+1)*d.k], row)
				}
			}
		}
	}
	return nil
}

// checkpoint writes the factors of iteration t (and, for the final
// snapshot, the user blocks' training items and the job's metrics) and
// commits the manifest, as the cluster's checkpoint step does.
func (d *direct) checkpoint(ctx context.Context, t int, final bool) error {
	d.reportIteration(t, "checkpoint")
	repo, err := d.openRepo(ctx)
	if err != nil {
		return err
	}
	id := checkpoint.SnapshotID(d.res.JobID, t)
	var files []checkpoint.FileInfo
	for _, side := range []partition.Side{partition.Users, partition.Items} {
		for _, blk := range d.layout.Blocks(side) {
			counts := make([]int32, blk.Len())
			for r := range counts {
				counts[r] = int32(blk.Rows.Ptr[r+1] - blk.Rows.Ptr[r])
			}
			fi, err := repo.WriteBlock(ctx, id, &checkpoint.Block{Side: side.String(), Index: blk.Index, Rank: d.k, IDs: blk.IDs, Counts: counts, Factors: d.rows(blk)})
			if err != nil {
				return err
			}
			files = append(files, fi)
			if final && side == partition.Users {
				g := globalRows(blk.Rows, blk.Needed)
				fs, err := repo.WriteSeen(ctx, id, &checkpoint.Seen{Index: blk.Index, Ptr: g.Ptr, Items: g.Col, Values: g.Val})
				if err != nil {
					return err
				}
				files = append(files, fs)
			}
		}
	}
	m := d.manifest(id, t, final, files)
	if err := repo.Commit(ctx, id, m); err != nil {
		return fmt.Errorf("checkpoint %s: %w", id, err)
	}
	d.res.Checkpoint = &job.CheckpointRef{ID: id, Iteration: t, Final: final}
	if final {
		return nil
	}
	// Keep the newest two, as the cluster does: the job cannot resume
	// from older ones.
	d.checkpoints = append(d.checkpoints, id)
	for len(d.checkpoints) > 2 {
		if err := repo.Delete(ctx, d.checkpoints[0]); err != nil {
			d.log.Warn("old checkpoint not deleted", "job", d.res.JobID, "checkpoint", d.checkpoints[0], "err", err)
		}
		d.checkpoints = d.checkpoints[1:]
	}
	return nil
}

// manifest is the manifest of checkpoint id of iteration t, as the
// coordinator writes it.
func (d *direct) manifest(id string, t int, final bool, files []checkpoint.FileInfo) *checkpoint.Manifest {
	spec, res := d.spec, d.result()
	m := &checkpoint.Manifest{
		Format: checkpoint.FormatName, Version: checkpoint.FormatVersion,
		ID: id, Model: spec.Model, Job: res.JobID, Iteration: t, Rank: d.k,
		Biases: spec.Biases, NonNegative: spec.NonNegative,
		Implicit: spec.Implicit, Lambda: spec.Lambda, Users: res.Users, Items: res.Items,
		UserBlocks: res.UserBlocks, ItemBlocks: res.ItemBlocks, Final: final, Created: time.Now().UTC(),
		Metrics: map[string]float64{}, Files: files,
	}
	if spec.Implicit {
		m.Alpha = spec.Alpha
	}
	if spec.Biases {
		m.GlobalMean = *res.GlobalMean
	}
	m.SetFormat()
	if n := len(res.History); n > 0 && res.History[n-1].Iteration == t {
		if v := res.History[n-1].TrainRMSE; v != nil {
			m.Metrics["train_rmse"] = *v
		}
		if v := res.History[n-1].TestRMSE; v != nil {
			m.Metrics["test_rmse"] = *v
		}
	}
	if final {
		for name, v := range map[string]*float64{"test_rmse": res.TestRMSE, "test_mae": res.TestMAE, "precision_at_10": res.PrecisionAt10, "ndcg_at_10": res.NDCGAt10} {
			if v != nil {
				m.Metrics[name] = *v
			}
		}
	}
	return m
}

// finish writes the final snapshot, publishes it as the model's latest
// and copies it to Out, as the cluster's last steps do.
func (d *direct) finish(ctx context.Context) error {
	spec := d.spec
	final := checkpoint.SnapshotID(d.res.JobID, spec.Iterations)
	if err := d.checkpoint(ctx, spec.Iterations, true); err != nil {
		return err
	}
	d.reportIteration(spec.Iterations, "snapshot")
	repo := d.repo
	snapshot := d.store.Ref(final)
	if d.stage == "" {
		if err := repo.Publish(ctx, spec.Model, final); err != nil {
			return fmt.Errorf("publishing %s: %w", final, err)
		}
		if deleted, err := repo.Retain(ctx, spec.Model, spec.Keep); err != nil {
			d.log.Warn("retention failed", "model", spec.Model, "err", err)
		} else if len(deleted) > 0 {
			d.log.Info("old snapshots deleted", "model", spec.Model, "ids", deleted)
		}
		for _, id := range d.checkpoints {
			repo.Delete(ctx, id) // a finished job needs no resume points
		}
		d.checkpoints = nil
	}
	if spec.Out != "" {
		if err := d.install(ctx, final); err != nil {
			return fmt.Errorf("writing snapshot %s: %w", spec.Out, err)
		}
		snapshot = spec.Out
	}
	d.res = d.result()
	d.res.State, d.res.Snapshot, d.res.SnapshotID = job.StateSucceeded, snapshot, final
	return nil
}

// install puts snapshot id of the job's repository at Out. A staged
// snapshot is renamed into an absent or empty Out: no copy is read back
// into memory, and Out is at every moment absent (or empty) or complete.
// Anything else — a store's snapshot, an Out holding an older snapshot to
// replace — is copied by checkpoint.CopyToDir.
func (d *direct) install(ctx context.Context, id string) error {
	out := d.spec.Out
	if d.stage != "" {
		if err := checkpoint.CheckTarget(out); err != nil {
			return err
		}
		os.Remove(out) // only when empty; then the rename takes its place
		if err := os.Rename(filepath.Join(d.stage, id), out); err == nil {
			return nil
		}
	}
	return checkpoint.CopyToDir(ctx, d.repo, id, out)
}

// result is the job's result as the coordinator would report it now.
func (d *direct) result() job.Result {
	r := d.res
	r.History = append([]job.Iteration{}, d.res.History...)
	r.Seconds = time.Since(d.created).Seconds()
	if n := len(r.History); n > 0 {
		var sum float64
		for _, it := range r.History {
			sum += it.Seconds
		}
		r.SecondsPerIteration = sum / float64(n)
		r.TrainRMSE = r.History[n-1].TrainRMSE
		r.TestRMSE = r.History[n-1].TestRMSE
	}
	if d.evalRMSE != nil {
		r.TestRMSE = d.evalRMSE
	}
	return r
}

// reportIteration tells progress where the job is.
func (d *direct) reportIteration(t int, phase string) {
	if d.progress == nil {
		return
	}
	r := d.result()
	r.Progress = &job.Progress{Iteration: t, Phase: phase, ElapsedSeconds: r.Seconds}
	if n := d.spec.Iterations; n > 0 {
		done := float64(len(r.History))
		if phase == partition.Items.String() {
			done += 0.5
		}
		r.Progress.Done = min(done/float64(n), 1)
		if len(r.History) > 0 {
			left := max(float64(n)-done, 0) * r.SecondsPerIteration
			r.Progress.RemainingSeconds = &left
		}
	}
	d.progress(r)
}

func (d *direct) report(phase string) {
	if d.progress != nil {
		r := d.result()
		r.Progress = &job.Progress{Phase: phase, ElapsedSeconds: r.Seconds}
		d.progress(r)
	}
}
