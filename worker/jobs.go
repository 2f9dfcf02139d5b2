package worker

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/partition"
	"github.com/cofactor-ml/cofactor/transport"
)

// maxBlockBytes bounds a block read from the block store.
const maxBlockBytes = 32 << 30

// jobState is what the worker holds for one job.
type jobState struct {
	id   string
	spec job.Spec

	// exec serialises the job's tasks: phases run one after another.
	exec sync.Mutex

	mu sync.Mutex
	// seen is the newest epoch a command has carried; epochCtx ends the
	// tasks of older epochs when a newer one arrives, so that a worker
	// never spends time (or waits on a lost peer) for a superseded
	// assignment.
	seen        uint64
	epochCtx    context.Context
	epochCancel context.CancelFunc
	epoch       uint64   // the epoch the held blocks belong to
	users       []string // owners in this epoch
	items       []string
	held        map[blockKey]*heldBlock
	tasks       map[taskKey]*task
	repo        *checkpoint.Repo  // the spec's store, opened on first use
	warm        *checkpoint.Model // the warm-start snapshot, read on first use
	solver      *als.Solver
	ctx         context.Context // cancelled when the job is dropped
	cancel      context.CancelFunc
	ingest      *ingestState // a --dataset job's distributed ingest (ingest.go)
}

type blockKey struct {
	side  partition.Side
	index int
}

type taskKey struct {
	typ       string
	epoch     uint64
	iteration int
	side      wire.Side
	snapshot  string
}

func keyOf(c *wire.Command) taskKey {
	return taskKey{typ: c.Type, epoch: c.Epoch, iteration: c.Iteration, side: c.Side}
}

// task is one accepted command: running until done is closed, then
// holding the reports it sent.
type task struct {
	done    chan struct{}
	reports []wire.Report // set before done is closed
}

// taskState is where a task is in its life.
type taskState uint8

const (
	// taskRunning: a repeat of the command is ignored; the task reports.
	taskRunning taskState = iota
	// taskDone: a repeat is answered with the reports kept.
	taskDone
	// taskFailed: the task reported a failure; a repeat runs it again.
	taskFailed
)

var taskStateNames = [...]string{taskRunning: "running", taskDone: "done", taskFailed: "failed"}

func (s taskState) String() string {
	if int(s) < len(taskStateNames) {
		return taskStateNames[s]
	}
	return fmt.Sprintf("taskState(%d)", uint8(s))
}

// MarshalText writes the state's name (in logs and JSON).
func (s taskState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (t *task) state() taskState {
	select {
	case <-t.done:
	default:
		return taskRunning
	}
	if len(t.reports) == 1 && t.reports[0].Type == wire.RepFailed {
		return taskFailed
	}
	return taskDone
}

// heldBlock is a block this worker owns, with the versions of its factors.
type heldBlock struct {
	blk *partition.Block
	k   int

	mu    sync.Mutex
	vers  map[int][]float32 // iteration → rows (the newest two)
	grams map[int][]float64 // iteration → YᵀY of the rows, computed on demand
	// stats are the phase statistics of the newest version, so that a
	// phase repeated after a later block of it failed reports them again
	// instead of solving from a version an in-place solve replaced.
	stats   wire.BlockStats
	statsAt int
	// torn is the array an in-place solve of iteration tornAt is writing
	// over: version tornAt−1 is gone, and a repeated phase solves the same
	// array again, which is sound because such a solve does not read the
	// rows it replaces (als.Config.InPlace). tornTest are the test errors
	// computed from version tornAt−1 before it was overwritten.
	torn     []float32
	tornAt   int
	tornTest wire.BlockStats
}

func (h *heldBlock) version(v int) ([]float32, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	x, ok := h.vers[v]
	return x, ok
}

// store keeps x as version v and drops versions older than v−1.
func (h *heldBlock) store(v int, x []float32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.vers[v] = x
	for old := range h.vers {
		if old < v-1 {
			delete(h.vers, old)
			delete(h.grams, old)
		}
	}
}

// solved returns the statistics of the phase that made version v, when
// the block holds it.
func (h *heldBlock) solved(v int) (wire.BlockStats, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.vers[v]
	return h.stats, ok && h.statsAt == v
}

// startSolve returns the array the solve of iteration v writes into, and
// the test errors that test computes from version v−1. In place, that is
// version v−1's own array, which is no longer served; else a copy.
func (h *heldBlock) startSolve(v int, inPlace bool, test func(prev []float32) wire.BlockStats) ([]float32, wire.BlockStats, error) {
	h.mu.Lock()
	if h.torn != nil && h.tornAt == v {
		defer h.mu.Unlock()
		return h.torn, h.tornTest, nil
	}
	prev, ok := h.vers[v-1]
	h.mu.Unlock()
	if !ok {
		return nil, wire.BlockStats{}, fmt.Errorf("%s block %d has no version %d to start from", h.blk.Side, h.blk.Index, v-1)
	}
	st := test(prev)
	if !inPlace {
		return append([]float32(nil), prev...), st, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.vers, v-1)
	delete(h.grams, v-1)
	h.torn, h.tornAt, h.tornTest = prev, v, st
	return prev, st, nil
}

// finishSolve keeps x as version v with its phase statistics.
func (h *heldBlock) finishSolve(v int, x []float32, st wire.BlockStats) {
	h.store(v, x)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stats, h.statsAt = st, v
	h.torn = nil
}

// dropBefore drops the versions older than v and reports whether there
// were any.
func (h *heldBlock) dropBefore(v int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	dropped := false
	for old := range h.vers {
		if old < v {
			delete(h.vers, old)
			delete(h.grams, old)
			dropped = true
		}
	}
	return dropped
}

// gram returns YᵀY of version v, computing it once.
func (h *heldBlock) gram(v int, threads int) ([]float64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if g, ok := h.grams[v]; ok {
		return g, true
	}
	x, ok := h.vers[v]
	if !ok {
		return nil, false
	}
	g := make([]float64, h.k*h.k)
	als.Gram(x, h.k, threads, g)
	h.grams[v] = g
	return g, true
}

func (w *Worker) job(id string) *jobState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.jobs[id]
}

// accept validates a command and starts (or answers a repeat of) its task.
func (w *Worker) accept(ctx context.Context, c *wire.Command) error {
	if c.Type == wire.CmdDrop {
		w.drop(c.Job)
		return nil
	}
	if err := checkCommand(c); err != nil {
		return err
	}
	if c.Type == wire.CmdIngest {
		return w.acceptIngest(ctx, c)
	}
	js, err := w.jobFor(ctx, c)
	if err != nil {
		return err
	}
	js.mu.Lock()
	defer js.mu.Unlock()
	taskCtx, err := js.enterEpoch(c)
	if err != nil {
		return err
	}
	key := keyOf(c)
	if t, ok := js.tasks[key]; ok {
		switch st := t.state(); st {
		case taskRunning: // it will report
			return nil
		case taskDone: // the leader missed its reports
			w.log.Debug("command repeated", "job", c.Job, "task", c.Type, "iteration", c.Iteration, "side", c.Side, "state", st)
			w.resend(taskCtx, t)
			return nil
		case taskFailed: // a failure is not an answer to keep: try again
			delete(js.tasks, key)
		}
	}
	js.forgetBefore(c.Epoch, c.Iteration-2)
	js.tasks[key] = w.start(taskCtx, js, c)
	return nil
}

// checkCommand refuses a command the worker cannot run.
func checkCommand(c *wire.Command) error {
	if err := c.Spec.Validate(); err != nil {
		return err
	}
	if err := c.CheckBounds(); err != nil {
		return err
	}
	needsBlocks := c.Type != wire.CmdPartition && c.Type != wire.CmdIngest
	if needsBlocks && (len(c.Users) == 0 || len(c.Items) == 0) {
		return errors.New("command without a block assignment")
	}
	return nil
}

// jobFor returns the state of c's job, made on its first command; a
// dropped job stays dropped for the epochs it had.
func (w *Worker) jobFor(ctx context.Context, c *wire.Command) (*jobState, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.dropped[c.Job]; ok && c.Epoch <= e {
		return nil, fmt.Errorf("job %s was dropped", c.Job)
	}
	js, ok := w.jobs[c.Job]
	if !ok {
		jctx, cancel := context.WithCancel(ctx)
		js = &jobState{id: c.Job, spec: c.Spec, held: map[blockKey]*heldBlock{}, tasks: map[taskKey]*task{}, ctx: jctx, cancel: cancel}
		w.jobs[c.Job] = js
	}
	return js, nil
}

// enterEpoch moves the job to c's epoch when it is newer, ending the
// tasks of older ones, and returns the context of c's task. A partition
// belongs to no epoch: it runs under the job's context. js.mu is held.
func (js *jobState) enterEpoch(c *wire.Command) (context.Context, error) {
	if c.Type == wire.CmdPartition {
		return js.ctx, nil
	}
	if c.Epoch < js.seen {
		return nil, fmt.Errorf("stale epoch %d (worker is at %d)", c.Epoch, js.seen)
	}
	if c.Epoch > js.seen || js.epochCtx == nil {
		if js.epochCancel != nil {
			js.epochCancel()
		}
		js.seen = c.Epoch
		js.epochCtx, js.epochCancel = context.WithCancel(js.ctx)
		for k := range js.tasks {
			if k.epoch < c.Epoch && k.typ != wire.CmdPartition {
				delete(js.tasks, k)
			}
		}
	}
	return js.epochCtx, nil
}

// forgetBefore drops the tasks of epoch older than iteration: they will
// not be asked for again. js.mu is held.
func (js *jobState) forgetBefore(epoch uint64, iteration int) {
	for k := range js.tasks {
		if k.epoch == epoch && k.iteration < iteration {
			delete(js.tasks, k)
		}
	}
}

// resend sends a finished task's reports again, in the background.
func (w *Worker) resend(ctx context.Context, t *task) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for _, r := range t.reports {
			w.report(ctx, r)
		}
	}()
}

// start runs c's task in the background, after the job's running task,
// and reports its outcome unless ctx ends first.
func (w *Worker) start(ctx context.Context, js *jobState, c *wire.Command) *task {
	t := &task{done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(t.done)
		js.exec.Lock()
		defer js.exec.Unlock()
		if ctx.Err() != nil {
			return
		}
		t.reports = w.run(ctx, js, c)
		if ctx.Err() != nil {
			return // superseded or dropped: nobody waits for these reports
		}
		for _, r := range t.reports {
			w.report(ctx, r)
		}
	}()
	return t
}

// maxDropped bounds the dropped jobs a worker remembers.
const maxDropped = 1024

// drop forgets a job: its blocks, versions and tasks.
func (w *Worker) drop(id string) {
	w.mu.Lock()
	js, ok := w.jobs[id]
	delete(w.jobs, id)
	var seen uint64
	if ok {
		js.mu.Lock()
		seen = js.seen
		js.mu.Unlock()
	}
	if _, again := w.dropped[id]; !again {
		w.droppedOrder = append(w.droppedOrder, id)
		if len(w.droppedOrder) > maxDropped {
			delete(w.dropped, w.droppedOrder[0])
			w.droppedOrder = w.droppedOrder[1:]
		}
	}
	w.dropped[id] = max(w.dropped[id], seen)
	w.mu.Unlock()
	if ok {
		js.cancel()
		js.mu.Lock()
		if js.repo != nil {
			js.repo.Close()
		}
		js.mu.Unlock()
	}
}

// run executes one command and returns its reports.
func (w *Worker) run(ctx context.Context, js *jobState, c *wire.Command) []wire.Report {
	if c.Type == wire.CmdPartition {
		sum, err := w.partition(ctx, c)
		if err != nil {
			return w.failure(c, err)
		}
		return []wire.Report{{Type: wire.RepPartitioned, Job: c.Job, Partition: sum}}
	}
	if err := w.adopt(ctx, js, c); err != nil {
		return w.failure(c, err)
	}
	var reps []wire.Report
	var err error
	switch c.Type {
	case wire.CmdLoad:
		reps = []wire.Report{{Type: wire.RepLoaded, Job: c.Job, Epoch: c.Epoch}}
	case wire.CmdPhase:
		reps, err = w.phase(ctx, js, c)
	case wire.CmdEvaluate:
		reps, err = w.evaluate(ctx, js, c)
	case wire.CmdCheckpoint:
		reps, err = w.checkpoint(ctx, js, c)
	case wire.CmdExport:
		err = w.export(ctx, js, c)
		reps = []wire.Report{{Type: wire.RepExported, Job: c.Job, Epoch: c.Epoch, Snapshot: c.Spec.Out}}
	default:
		err = fmt.Errorf("unknown command %q", c.Type)
	}
	// A phase leaves its gathered rows and solver scratch behind, a
	// checkpoint its encoded blocks: hand their pages back now, or the
	// next command's allocations land on fresh pages beside them and the
	// process holds both.
	debug.FreeOSMemory()
	if err != nil {
		return w.failure(c, err)
	}
	return reps
}

// failure is the report of a task that failed with err, saying whose
// fault it is: the input's, a checkpoint's, a peer's or the runtime's.
func (w *Worker) failure(c *wire.Command, err error) []wire.Report {
	kind, peer := job.KindRuntime, ""
	var pe *peerError
	switch {
	case job.IsInputError(err):
		kind = job.KindInput
	case c.Type == wire.CmdLoad && c.Snapshot != "" && (errors.Is(err, checkpoint.ErrCorrupt) || errors.Is(err, checkpoint.ErrNotFound)):
		kind = wire.KindCheckpoint
	case errors.As(err, &pe):
		kind, peer = wire.KindPeer, pe.peer
	}
	w.log.Warn("task failed", "job", c.Job, "task", c.Type, "iteration", c.Iteration, "side", c.Side, "err", err)
	return []wire.Report{{Type: wire.RepFailed, Job: c.Job, Epoch: c.Epoch, Iteration: c.Iteration, Side: c.Side, For: c.Type, Error: err.Error(), Kind: kind, Peer: peer}}
}

// adopt brings the job's holdings to the command's epoch: a new epoch
// drops every held block and version (training restarts from the initial
// factors), then the blocks this worker owns are loaded from the store.
// The first phase of training starts from the initial factors, so it may
// load them itself; any other command needs the epoch loaded already.
func (w *Worker) adopt(ctx context.Context, js *jobState, c *wire.Command) error {
	first := c.Type == wire.CmdPhase && c.Iteration == 1 && c.Side == wire.SideUsers
	if c.Type != wire.CmdLoad && !first {
		return w.checkLoaded(js, c)
	}
	want, err := w.assign(js, c)
	if err != nil || len(want) == 0 {
		return err
	}
	var resume *checkpoint.Manifest
	if c.Snapshot != "" {
		repo, err := w.repo(ctx, js)
		if err != nil {
			return err
		}
		if resume, err = repo.Manifest(ctx, c.Snapshot); err != nil {
			return fmt.Errorf("resuming from checkpoint %s: %w", c.Snapshot, err)
		}
	}
	for _, k := range want {
		h, err := w.loadBlock(ctx, js, k, resume, c.Snapshot)
		if err != nil {
			return err
		}
		js.mu.Lock()
		js.held[k] = h
		js.mu.Unlock()
	}
	w.dropIngested(js)
	// The encoded blocks are garbage now: hand their pages back, or the
	// process keeps them resident through the whole job.
	debug.FreeOSMemory()
	return nil
}

// checkLoaded fails unless the worker holds every block it owns in c's
// epoch: a worker that restarted must not answer a later phase from
// initial factors it made up.
func (w *Worker) checkLoaded(js *jobState, c *wire.Command) error {
	js.mu.Lock()
	defer js.mu.Unlock()
	if c.Epoch != js.epoch || js.solver == nil {
		return fmt.Errorf("epoch %d of job %s is not loaded on worker %s (it restarted, or missed the load)", c.Epoch, js.id, w.cfg.ID)
	}
	if missing := js.missing(w.cfg.ID); len(missing) > 0 {
		return fmt.Errorf("%s block %d of job %s is not loaded on worker %s", missing[0].side, missing[0].index, js.id, w.cfg.ID)
	}
	return nil
}

// assign takes c's assignment when c starts a new epoch (dropping what
// the old one held) and returns the owned blocks not held yet.
func (w *Worker) assign(js *jobState, c *wire.Command) ([]blockKey, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if c.Epoch != js.epoch || js.solver == nil {
		js.epoch, js.users, js.items = c.Epoch, c.Users, c.Items
		js.held = map[blockKey]*heldBlock{}
		solver, err := als.NewSolver(js.spec.ALS(w.cfg.Threads))
		if err != nil {
			return nil, err
		}
		js.solver = solver
	}
	return js.missing(w.cfg.ID), nil
}

// missing lists the blocks owner owns in the held epoch but does not
// hold, user blocks first. js.mu is held.
func (js *jobState) missing(owner string) []blockKey {
	var out []blockKey
	for side, owners := range [][]string{js.users, js.items} {
		for b, id := range owners {
			k := blockKey{partition.Side(side), b}
			if id == owner && js.held[k] == nil {
				out = append(out, k)
			}
		}
	}
	return out
}

// loadBlock reads block k from the block store and gives it its first
// factors: a checkpoint's when resuming from one, else the initial ones
// (and the warm-start snapshot's rows).
func (w *Worker) loadBlock(ctx context.Context, js *jobState, k blockKey, resume *checkpoint.Manifest, snapshot string) (*heldBlock, error) {
	blk, err := w.readBlock(ctx, js.id, k)
	if err != nil {
		return nil, err
	}
	version := 0
	var x []float32
	if resume != nil {
		x, err = w.resumeRows(ctx, js, resume, snapshot, blk)
		version = resume.Iteration
	} else {
		x, err = w.initialRows(ctx, js, blk)
	}
	if err != nil {
		return nil, err
	}
	if k.side == partition.Items {
		// Only a user block maps its ratings back to global indices (its
		// seen items, its test ratings). An item block's list of the users
		// it needs would be held through the whole job for nothing: 4
		// bytes for each of its needed users, several MB a worker when the
		// item side is split finely.
		blk.DropNeeded()
	}
	return &heldBlock{blk: blk, k: js.spec.Width(), vers: map[int][]float32{version: x}, grams: map[int][]float64{}}, nil
}

// readBlock reads and decodes block k of a job from the block store.
func (w *Worker) readBlock(ctx context.Context, jobID string, k blockKey) (*partition.Block, error) {
	if blk := w.takeIngested(jobID, k); blk != nil {
		return blk, nil // built here by the job's ingest (ingest.go)
	}
	data, err := w.blobs.Get(ctx, wire.BlockBlob(jobID, wire.SideOf(k.side), k.index), maxBlockBytes)
	if err != nil {
		return nil, fmt.Errorf("loading %s block %d: %w", k.side, k.index, err)
	}
	blk, err := partition.UnmarshalBlock(data)
	if err != nil {
		return nil, fmt.Errorf("loading %s block %d: %w", k.side, k.index, err)
	}
	if blk.Side != k.side || blk.Index != k.index {
		return nil, fmt.Errorf("block store holds %s block %d under the name of %s block %d", blk.Side, blk.Index, k.side, k.index)
	}
	return blk, nil
}

// initialRows are a block's factors before the first phase: the seeded
// initial values, overwritten by the warm-start snapshot's rows.
func (w *Worker) initialRows(ctx context.Context, js *jobState, blk *partition.Block) ([]float32, error) {
	rank := js.spec.Width()
	x := make([]float32, blk.Len()*rank)
	cfg, side := js.spec.ALS(0), alsSide(blk.Side)
	for r, id := range blk.IDs {
		cfg.InitRow(x[r*rank:(r+1)*rank], js.spec.Seed, side, id)
	}
	if js.spec.WarmStart != "" {
		if err := w.warmStart(ctx, js, blk, x); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// resumeRows reads a block's factors from a checkpoint and checks that the
// checkpoint's block is the one held: same rank, same rows, same IDs.
func (w *Worker) resumeRows(ctx context.Context, js *jobState, m *checkpoint.Manifest, id string, blk *partition.Block) ([]float32, error) {
	repo, err := w.repo(ctx, js)
	if err != nil {
		return nil, err
	}
	cb, err := repo.ReadBlock(ctx, id, m, blk.Side.String(), blk.Index)
	if err != nil {
		return nil, fmt.Errorf("resuming from checkpoint %s: %w", id, err)
	}
	if cb.Rank != js.spec.Width() || len(cb.IDs) != blk.Len() || !slices.Equal(cb.IDs, blk.IDs) {
		return nil, fmt.Errorf("%w: checkpoint %s: %s block %d does not match the job's partition", checkpoint.ErrCorrupt, id, blk.Side, blk.Index)
	}
	return cb.Factors, nil
}

// warmStart overwrites the rows of x whose external IDs the job's
// warm-start snapshot knows with that snapshot's factors.
func (w *Worker) warmStart(ctx context.Context, js *jobState, blk *partition.Block, x []float32) error {
	js.mu.Lock()
	m := js.warm
	js.mu.Unlock()
	if m == nil {
		repo, err := w.repo(ctx, js)
		if err != nil {
			return err
		}
		if m, err = repo.Open(ctx, js.spec.WarmStart); err != nil {
			return fmt.Errorf("%w: warm start from snapshot %s: %w", job.ErrSpec, js.spec.WarmStart, err)
		}
		if m.Rank != js.spec.Width() {
			return fmt.Errorf("%w: warm start snapshot %s has rank %d, the job %d", job.ErrSpec, js.spec.WarmStart, m.Rank, js.spec.Width())
		}
		js.mu.Lock()
		js.warm = m
		js.mu.Unlock()
	}
	k := js.spec.Width()
	for r, id := range blk.IDs {
		var row []float32
		if blk.Side == partition.Users {
			if u, ok := m.User(id); ok {
				row = m.UserRow(u)
			}
		} else if i, ok := m.Item(id); ok {
			row = m.ItemRow(i)
		}
		if row != nil {
			copy(x[r*k:(r+1)*k], row)
		}
	}
	return nil
}

// repo opens the job's snapshot store once.
func (w *Worker) repo(ctx context.Context, js *jobState) (*checkpoint.Repo, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.repo == nil {
		r, err := w.tr.OpenSnapshots(ctx, js.spec.Store)
		if err != nil {
			return nil, fmt.Errorf("opening the snapshot store %q: %w", js.spec.Store, err)
		}
		js.repo = r
	}
	return js.repo, nil
}

// checkpoint writes the factors of iteration c.Iteration of every block
// this worker owns (and, for the final snapshot, the user blocks' training
// items) to snapshot c.Snapshot, and reports each block's files.
func (w *Worker) checkpoint(ctx context.Context, js *jobState, c *wire.Command) ([]wire.Report, error) {
	repo, err := w.repo(ctx, js)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	defer func() { w.metrics.ckptSeconds.Observe(time.Since(start).Seconds()) }()
	var reps []wire.Report
	for _, side := range []partition.Side{partition.Users, partition.Items} {
		for b, owner := range js.owners(side) {
			if owner != w.cfg.ID {
				continue
			}
			h := js.block(side, b)
			x, ok := h.version(c.Iteration)
			if !ok {
				return nil, fmt.Errorf("%s block %d has no version %d to checkpoint", side, b, c.Iteration)
			}
			counts := make([]int32, h.blk.Len())
			for r := range counts {
				counts[r] = int32(h.blk.Rows.Ptr[r+1] - h.blk.Rows.Ptr[r])
			}
			fi, err := repo.WriteBlock(ctx, c.Snapshot, &checkpoint.Block{Side: side.String(), Index: b, Rank: js.spec.Width(), IDs: h.blk.IDs, Counts: counts, Factors: x})
			if err != nil {
				return nil, err
			}
			files := []checkpoint.FileInfo{fi}
			if c.Final && side == partition.Users {
				g := globalRows(h.blk.Rows, h.blk.Needed)
				fs, err := repo.WriteSeen(ctx, c.Snapshot, &checkpoint.Seen{Index: b, Ptr: g.Ptr, Items: g.Col, Values: g.Val})
				if err != nil {
					return nil, err
				}
				files = append(files, fs)
			}
			for _, f := range files {
				w.metrics.ckptBytes.Add(float64(f.Bytes))
			}
			reps = append(reps, wire.Report{Type: wire.RepCheckpoint, Job: c.Job, Epoch: c.Epoch, Iteration: c.Iteration,
				Side: wire.SideOf(side), Block: b, Snapshot: c.Snapshot, Files: files})
		}
	}
	return reps, nil
}

// export copies the final snapshot into the spec's Out directory.
// The log lines say when a copy starts and ends: an export of an epoch
// the leader gave up on may still run (its worker paused and declared
// lost), and CopyToDir must leave the directory the job reported alone.
func (w *Worker) export(ctx context.Context, js *jobState, c *wire.Command) error {
	w.log.Info("export started", "job", c.Job, "epoch", c.Epoch, "snapshot", c.Snapshot, "dir", js.spec.Out)
	if w.faults != nil {
		w.faults.beforeExport()
	}
	repo, err := w.repo(ctx, js)
	if err != nil {
		return err
	}
	if err := checkpoint.CopyToDir(ctx, repo, c.Snapshot, js.spec.Out); err != nil {
		return fmt.Errorf("writing snapshot %s: %w", js.spec.Out, err)
	}
	w.log.Info("export done", "job", c.Job, "epoch", c.Epoch, "snapshot", c.Snapshot, "dir", js.spec.Out)
	return nil
}

func (js *jobState) block(side partition.Side, index int) *heldBlock {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.held[blockKey{side, index}]
}

// heldVersion returns the block this worker owns on side s with index b,
// and its rows at version v.
func (js *jobState) heldVersion(s partition.Side, b, v int) (*heldBlock, []float32, error) {
	h := js.block(s, b)
	if h == nil {
		return nil, nil, fmt.Errorf("%s block %d is assigned here but not held", s, b)
	}
	x, ok := h.version(v)
	if !ok {
		return nil, nil, fmt.Errorf("%s block %d has no version %d", s, b, v)
	}
	return h, x, nil
}

func (js *jobState) owners(side partition.Side) []string {
	js.mu.Lock()
	defer js.mu.Unlock()
	if side == partition.Items {
		return js.items
	}
	return js.users
}

// dropBefore drops the versions older than v of the blocks held on side
// s, and collects them. A phase reads version v of the other side: it
// starts only once every block of the phase before it is committed, so
// no phase of this epoch reads an older version again (a repeated phase
// reads the same v). In the item phase that frees the users of the
// iteration before, a whole copy of the worker's largest factors, before
// the phase gathers its rows; their pages go back to the system at once,
// so that the gather does not land on fresh pages beside them.
func (js *jobState) dropBefore(s partition.Side, v int) {
	js.mu.Lock()
	var blocks []*heldBlock
	for k, h := range js.held {
		if k.side == s {
			blocks = append(blocks, h)
		}
	}
	js.mu.Unlock()
	dropped := false
	for _, h := range blocks {
		dropped = h.dropBefore(v) || dropped
	}
	if dropped {
		debug.FreeOSMemory()
	}
}

// neededRows is the most rows of the other side that one of the blocks
// this worker owns on side s gathers whole.
func (w *Worker) neededRows(js *jobState, s partition.Side) int {
	n := 0
	for b, owner := range js.owners(s) {
		if h := js.block(s, b); owner == w.cfg.ID && h != nil && !w.windowed(js, h) {
			n = max(n, h.blk.NeededCount())
		}
	}
	return n
}

// phase solves every block this worker owns on the command's side.
func (w *Worker) phase(ctx context.Context, js *jobState, c *wire.Command) ([]wire.Report, error) {
	side, ok := c.Side.Block()
	if !ok {
		return nil, fmt.Errorf("unknown side %q", c.Side)
	}
	t := c.Iteration
	// Versions: user phase t reads items t−1, item phase t reads users t.
	otherVersion := t
	if side == partition.Users {
		otherVersion = t - 1
	}
	js.dropBefore(side.Other(), otherVersion)
	// A solver of its own: its scratch grows to the phase's longest row
	// (a popular item's ratings × rank, per goroutine) and is garbage when
	// the phase ends, rather than held through the other side's phase.
	solver, err := als.NewSolver(js.solver.Config())
	if err != nil {
		return nil, err
	}
	// One buffer for the rows every block of the phase gathers, sized for
	// the largest: a block's rows are dead once it is solved, and reusing
	// their array keeps the phase's peak at one block's gather.
	rows := make([]float32, w.neededRows(js, side)*js.spec.Width())
	win := &window{budget: max(int(w.cfg.GatherBytes/int64(4*js.spec.Width())), 1)}
	var reps []wire.Report
	for b, owner := range js.owners(side) {
		if owner != w.cfg.ID {
			continue
		}
		h := js.block(side, b)
		if st, ok := h.solved(t); ok {
			reps = append(reps, wire.Report{Type: wire.RepPhase, Job: c.Job, Epoch: c.Epoch, Iteration: t, Side: c.Side, Block: b, Stats: st})
			continue
		}
		start := time.Now()
		if w.faults != nil {
			if err := w.faults.beforeSolve(ctx); err != nil {
				return nil, err
			}
		}
		windowed := w.windowed(js, h)
		g, err := w.gather(ctx, js, h, otherVersion, rows, !windowed)
		if err != nil {
			return nil, err
		}
		// The gather's messages are garbage now: return their pages
		// before the solve's scratch needs its own.
		debug.FreeOSMemory()
		// The solve writes over the block's old factors when it does not
		// read them: a worker then holds one copy of its factors, not two.
		x, st, err := h.startSolve(t, solver.Config().InPlace(), func(prev []float32) wire.BlockStats {
			var st wire.BlockStats
			if side == partition.Users && t >= 2 {
				// The rows gathered for this phase are the items of
				// iteration t−1, and prev holds the users of iteration
				// t−1: the test error of iteration t−1 comes for free.
				st.TestSSE, st.TestAE, st.TestN = als.BlockErrors(blockRows(h.blk.Test), prev, g.rows, js.spec.Width(), float32(c.Mean))
			}
			return st
		})
		if err != nil {
			return nil, err
		}
		st.Rows, st.Ratings, st.Bytes = int64(h.blk.Len()), h.blk.Rows.NNZ(), g.bytes
		var bs als.BlockStats
		if windowed {
			var n int64
			bs.SSE, n, err = w.solveWindowed(ctx, js, h, otherVersion, solver, win, x, g.gram)
			st.Bytes += n
		} else {
			bs, err = solver.UpdateBlock(ctx, als.BlockUpdate{
				Rows: blockRows(h.blk.Rows), Other: g.rows, YtY: g.gram, X: x,
				Loss: side == partition.Items, Side: alsSide(side), Mean: float32(c.Mean),
			})
		}
		if err != nil {
			return nil, fmt.Errorf("%s block %d: %w", side, b, err)
		}
		st.SSE = bs.SSE
		st.Checksum = checksum(x)
		st.Seconds = time.Since(start).Seconds()
		h.finishSolve(t, x, st)
		w.metrics.rowsSolved.WithLabelValues(c.Side.String()).Add(float64(st.Rows))
		w.metrics.phaseSeconds.WithLabelValues(c.Side.String()).Observe(st.Seconds)
		reps = append(reps, wire.Report{Type: wire.RepPhase, Job: c.Job, Epoch: c.Epoch, Iteration: t, Side: c.Side, Block: b, Stats: st})
	}
	return reps, nil
}

func blockRows(m partition.CSR) als.Rows { return als.Rows{Ptr: m.Ptr, Col: m.Col, Val: m.Val} }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the CRC-32C of x's little-endian bytes, computed through a
// small buffer rather than a copy of the whole block.
func checksum(x []float32) uint32 {
	var crc uint32
	buf := make([]byte, 0, 64<<10)
	for len(x) > 0 {
		n := min(len(x), cap(buf)/4)
		buf = transport.AppendFloat32s(buf[:0], x[:n])
		crc = crc32.Update(crc, castagnoli, buf)
		x = x[n:]
	}
	return crc
}

// evaluate computes the test metrics of the final factors for every user
// block this worker owns.
func (w *Worker) evaluate(ctx context.Context, js *jobState, c *wire.Command) ([]wire.Report, error) {
	t := js.spec.Iterations
	k := js.spec.Width()
	var allItems []float32
	var reps []wire.Report
	for b, owner := range js.owners(partition.Users) {
		if owner != w.cfg.ID {
			continue
		}
		h := js.block(partition.Users, b)
		x, ok := h.version(t)
		if !ok {
			return nil, fmt.Errorf("user block %d has no version %d", b, t)
		}
		st := wire.BlockStats{Rows: int64(h.blk.Len())}
		if !js.spec.Implicit {
			g, err := w.gather(ctx, js, h, t, nil, true)
			if err != nil {
				return nil, err
			}
			st.Bytes = g.bytes
			st.TestSSE, st.TestAE, st.TestN = als.BlockErrors(blockRows(h.blk.Test), x, g.rows, k, float32(c.Mean))
		} else {
			if allItems == nil {
				var n int64
				var err error
				allItems, n, err = w.fetchSide(ctx, js, partition.Items, t)
				if err != nil {
					return nil, err
				}
				st.Bytes = n
			}
			rk := als.Ranking(als.RankingInput{
				X: x, Y: allItems, Rank: k,
				Train:  globalRows(h.blk.Rows, h.blk.Needed),
				Test:   globalRows(h.blk.Test, h.blk.Needed),
				Cutoff: js.spec.Cutoff, Threads: max(w.cfg.Threads, 1),
			})
			st.RankUsers = int64(rk.Users)
			st.PrecisionSum = rk.Precision * float64(rk.Users)
			st.NDCGSum = rk.NDCG * float64(rk.Users)
			st.TestN = h.blk.Test.NNZ()
		}
		reps = append(reps, wire.Report{Type: wire.RepEvaluated, Job: c.Job, Epoch: c.Epoch, Iteration: t, Side: "users", Block: b, Stats: st})
	}
	return reps, nil
}

// globalRows maps a block's CSR columns from Needed positions to the other
// side's global indices.
func globalRows(m partition.CSR, needed []int32) als.Rows {
	col := make([]int32, len(m.Col))
	for j, c := range m.Col {
		col[j] = needed[c]
	}
	return als.Rows{Ptr: m.Ptr, Col: col, Val: m.Val}
}

func alsSide(s partition.Side) als.Side {
	if s == partition.Items {
		return als.ItemSide
	}
	return als.UserSide
}
