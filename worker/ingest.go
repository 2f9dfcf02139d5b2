package worker

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/cofactor-ml/cofactor/dataset"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/partition"
	"github.com/cofactor-ml/cofactor/transport"
)

// Distributed ingest of a --dataset job (wire.CmdIngest): every live
// worker runs one partition.Ingest, one round a command. The worker reads
// its shards straight from the dataset store, sends the other workers of
// the attempt their messages on their ingest subjects
// (transport.WorkerIngestSubject) and answers theirs with Ingest.Handle;
// the blocks it builds go to the block store, where the load step finds
// them as it finds a single worker's.
//
// An attempt lives until the leader starts another one for the job (a
// worker was lost: the new attempt's first round cancels this one's work
// and stops listening on its subject) or the job is dropped. Within an
// attempt a round runs once; a repeat of a finished round re-sends its
// report, a repeat of a failed one runs it again.

// Ingest message replies start with one status byte.
const (
	ingestOK       = 0 // the reply follows
	ingestNotReady = 1 // partition.ErrNotReady: retry a little later
	ingestError    = 2 // the error's text follows
)

// ingestPeerWait bounds how long a worker keeps trying to reach a peer of
// the ingest before it reports the peer as not answering. A lost peer is
// found sooner by the leader (its heartbeats stop), which then starts a
// new attempt and so ends this one; the bound is for a peer that still
// heartbeats but does not answer, and is long because several rounds of
// the ingest cannot be repeated once begun (partition.ErrRepeat): a slow
// peer is better waited for than given up on.
const ingestPeerWait = 10 * time.Minute

// ingestHandlers bounds the ingest messages a worker handles at once.
const ingestHandlers = 8

// ingestState is one attempt at a job's ingest on this worker.
type ingestState struct {
	attempt uint64
	rank    int
	workers []string
	owners  []int
	g       *partition.Ingest
	plan    partition.IngestPlan
	sources []ingestSource // one a plan file
	store   *dataset.Store
	peers   *ingestPeers

	ctx    context.Context // ends when the attempt is superseded or the job dropped
	cancel context.CancelFunc
	stop   func() // stops listening on the attempt's subject

	exec sync.Mutex // rounds run one after another

	mu        sync.Mutex
	tasks     map[int]*task // by round
	layoutSet bool
	sums      []wire.BlockSum
	built     map[blockKey]*partition.Block // stored, kept for the load step
}

// ingestSource is where a plan file's bytes are: file i of a dataset
// manifest.
type ingestSource struct {
	m *dataset.Manifest
	i int
}

// acceptIngest starts (or answers a repeat of) an ingest round. It is
// accept's branch for wire.CmdIngest.
func (w *Worker) acceptIngest(ctx context.Context, c *wire.Command) error {
	ic := c.Ingest
	if ic == nil {
		return errors.New("ingest command without its round")
	}
	if err := ic.Check(c.Iteration); err != nil {
		return err
	}
	rank := slices.Index(ic.Workers, w.cfg.ID)
	if rank < 0 {
		return fmt.Errorf("worker %s is not one of the ingest's workers", w.cfg.ID)
	}
	w.mu.Lock()
	if _, ok := w.dropped[c.Job]; ok {
		w.mu.Unlock()
		return fmt.Errorf("job %s was dropped", c.Job)
	}
	js, ok := w.jobs[c.Job]
	if !ok {
		jctx, cancel := context.WithCancel(ctx)
		js = &jobState{id: c.Job, spec: c.Spec, held: map[blockKey]*heldBlock{}, tasks: map[taskKey]*task{}, ctx: jctx, cancel: cancel}
		w.jobs[c.Job] = js
	}
	w.mu.Unlock()

	js.mu.Lock()
	st := js.ingest
	if st == nil || st.attempt != c.Epoch {
		if c.Iteration != wire.IngestScan {
			js.mu.Unlock()
			return fmt.Errorf("ingest attempt %x of job %s is not under way on worker %s (it restarted)", c.Epoch, c.Job, w.cfg.ID)
		}
		if st != nil {
			st.cancel() // a new attempt: the old one's work is moot
		}
		var err error
		if st, err = w.startIngest(js, c, rank); err != nil {
			js.mu.Unlock()
			return err
		}
		js.ingest = st
	}
	js.mu.Unlock()

	st.mu.Lock()
	defer st.mu.Unlock()
	if t, ok := st.tasks[c.Iteration]; ok {
		select {
		case <-t.done:
			if len(t.reports) == 1 && t.reports[0].Type == wire.RepFailed {
				delete(st.tasks, c.Iteration) // try again
				break
			}
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				for _, r := range t.reports {
					w.report(st.ctx, r)
				}
			}()
			return nil
		default:
			return nil
		}
	}
	t := &task{done: make(chan struct{})}
	st.tasks[c.Iteration] = t
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(t.done)
		st.exec.Lock()
		defer st.exec.Unlock()
		if st.ctx.Err() != nil {
			return
		}
		t.reports = w.ingestRound(st.ctx, js, st, c)
		if st.ctx.Err() != nil {
			return
		}
		for _, r := range t.reports {
			w.report(st.ctx, r)
		}
	}()
	return nil
}

// startIngest sets up an attempt from its first round's command and starts
// listening on its subject (js.mu held).
func (w *Worker) startIngest(js *jobState, c *wire.Command, rank int) (*ingestState, error) {
	ic := c.Ingest
	g, err := partition.NewIngest(*ic.Plan, rank)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(js.ctx)
	st := &ingestState{
		attempt: c.Epoch, rank: rank, workers: ic.Workers, owners: ic.Owners, g: g, plan: *ic.Plan,
		ctx: ctx, cancel: cancel, tasks: map[int]*task{}, built: map[blockKey]*partition.Block{},
	}
	st.peers = &ingestPeers{w: w, job: c.Job, st: st}
	sem := make(chan struct{}, ingestHandlers)
	stop, err := w.tr.Subscribe(transport.WorkerIngestSubject(w.cfg.ID, c.Job, c.Epoch), func(data []byte, reply func([]byte) error) {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := reply(st.handle(data)); err != nil && ctx.Err() == nil {
				w.log.Warn("ingest answer not sent", "job", c.Job, "err", err)
			}
		}()
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("listening for the ingest's messages: %w", err)
	}
	st.stop = stop
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		<-ctx.Done()
		stop()
	}()
	return st, nil
}

// handle answers one ingest message.
func (st *ingestState) handle(data []byte) []byte {
	out, err := st.g.Handle(data)
	switch {
	case err == nil:
		return append([]byte{ingestOK}, out...)
	case errors.Is(err, partition.ErrNotReady):
		return []byte{ingestNotReady}
	}
	return append([]byte{ingestError}, err.Error()...)
}

// ingestPeers is partition.Peers over the attempt's subjects.
type ingestPeers struct {
	w   *Worker
	job string
	st  *ingestState
}

func (p *ingestPeers) Call(ctx context.Context, to int, msg []byte) ([]byte, error) {
	if to < 0 || to >= len(p.st.workers) {
		return nil, fmt.Errorf("ingest message to rank %d of %d", to, len(p.st.workers))
	}
	peer := p.st.workers[to]
	subject := transport.WorkerIngestSubject(peer, p.job, p.st.attempt)
	wait := time.Millisecond
	for {
		var ans []byte
		var err error
		if to == p.st.rank {
			ans = p.st.handle(msg) // no need to go round the server
		} else {
			rctx, cancel := context.WithTimeout(ctx, ingestPeerWait)
			ans, err = p.w.tr.Request(rctx, subject, msg, transport.RetryPolicy{Timeout: 10 * time.Second, Backoff: 20 * time.Millisecond})
			cancel()
		}
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			return nil, &peerError{peer: peer, err: fmt.Errorf("ingest message to worker %s: %w", peer, err)}
		case len(ans) == 0:
			return nil, fmt.Errorf("worker %s answered an ingest message with nothing", peer)
		case ans[0] == ingestOK:
			return ans[1:], nil
		case ans[0] == ingestNotReady:
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			wait = min(2*wait, 50*time.Millisecond)
		default:
			return nil, fmt.Errorf("worker %s: %s", peer, ans[1:])
		}
	}
}

// ingestRound runs one round and returns its report, or a failure.
func (w *Worker) ingestRound(ctx context.Context, js *jobState, st *ingestState, c *wire.Command) []wire.Report {
	start := time.Now()
	rep, err := w.runIngestRound(ctx, js, st, c)
	if err == nil && w.faults != nil {
		err = w.faults.afterIngestRound(c.Iteration)
	}
	if err != nil {
		kind, peer := job.KindRuntime, ""
		var pe *peerError
		switch {
		case job.IsInputError(err), errors.Is(err, dataset.ErrMissingChunk), errors.Is(err, dataset.ErrCorrupt),
			errors.Is(err, dataset.ErrNotFound), errors.Is(err, partition.ErrIndex):
			kind = job.KindInput // the dataset, not the worker: no retry mends it
		case errors.Is(err, partition.ErrRepeat):
			kind = wire.KindIngestAttempt // only a new attempt mends it
		case errors.As(err, &pe):
			kind, peer = wire.KindPeer, pe.peer
		}
		if ctx.Err() == nil {
			w.log.Warn("ingest round failed", "job", c.Job, "round", c.Iteration, "err", err)
		}
		return []wire.Report{{Type: wire.RepFailed, Job: c.Job, Epoch: c.Epoch, Iteration: c.Iteration, For: c.Type, Error: err.Error(), Kind: kind, Peer: peer}}
	}
	rep.Round, rep.Rank = c.Iteration, st.rank
	w.log.Debug("ingest round done", "job", c.Job, "round", c.Iteration, "seconds", time.Since(start).Seconds())
	return []wire.Report{{Type: wire.RepIngested, Job: c.Job, Epoch: c.Epoch, Iteration: c.Iteration, Ingest: rep}}
}

func (w *Worker) runIngestRound(ctx context.Context, js *jobState, st *ingestState, c *wire.Command) (*wire.IngestReport, error) {
	g, ic := st.g, c.Ingest
	rep := &wire.IngestReport{}
	switch c.Iteration {
	case wire.IngestScan:
		if err := w.openSources(ctx, st, ic.Datasets); err != nil {
			return nil, err
		}
		for k, o := range st.owners {
			if o != st.rank {
				continue
			}
			sr, err := g.ScanIDs(ctx, k, st.reader(ctx, k), st.peers)
			if err != nil {
				return nil, err
			}
			rep.Shards = append(rep.Shards, sr)
		}
	case wire.IngestDict:
		d := g.DictReport()
		rep.Dict = &d
	case wire.IngestRanges:
		if err := g.SendRanges(ctx, *ic.Ranges, st.peers); err != nil {
			return nil, err
		}
	case wire.IngestNumber:
		r, err := g.RangeReport()
		if err != nil {
			return nil, err
		}
		rep.Range = &r
	case wire.IngestBounds:
		b, err := g.BoundCandidates(*ic.Offsets)
		if err != nil {
			return nil, err
		}
		rep.Bound = &b
	case wire.IngestRoute:
		// SetLayout starts the blocks this worker builds afresh: only
		// once an attempt, even if the round is repeated.
		st.mu.Lock()
		set := st.layoutSet
		st.mu.Unlock()
		if !set {
			if err := g.SetLayout(*ic.Layout); err != nil {
				return nil, err
			}
			st.mu.Lock()
			st.layoutSet = true
			st.mu.Unlock()
		}
		if err := g.SendBlockIDs(ctx, st.peers); err != nil {
			return nil, err
		}
		for k, o := range st.owners {
			if o == st.rank {
				if err := g.Route(ctx, k, st.reader(ctx, k), st.peers); err != nil {
					return nil, err
				}
			}
		}
	case wire.IngestBuildUsers, wire.IngestBuildItems:
		store := func(ctx context.Context, blk *partition.Block) (int64, error) {
			return w.storeIngested(ctx, js.id, st, blk)
		}
		var b partition.BuildReport
		var err error
		if c.Iteration == wire.IngestBuildUsers {
			b, err = g.BuildUsers(ctx, st.peers, store)
		} else {
			b, err = g.BuildItems(ctx, store)
		}
		if err != nil {
			return nil, err
		}
		rep.Build = &b
		st.mu.Lock()
		rep.Sums = slices.Clone(st.sums)
		st.sums = nil
		st.mu.Unlock()
		// The raw ratings of the blocks just built are garbage now: give
		// their pages back before the next round or the load.
		debug.FreeOSMemory()
	case wire.IngestTranspose:
		if err := g.Transpose(ctx, st.peers); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown ingest round %d", c.Iteration)
	}
	return rep, nil
}

// storeIngested writes a block the ingest built to the block store, under
// the name the load step reads, and notes a user block's rating sum.
func (w *Worker) storeIngested(ctx context.Context, jobID string, st *ingestState, blk *partition.Block) (int64, error) {
	if blk.Side == partition.Users {
		var sum float64
		for _, v := range blk.Rows.Val {
			sum += float64(v)
		}
		st.mu.Lock()
		st.sums = append(st.sums, wire.BlockSum{Block: blk.Index, Sum: sum})
		st.mu.Unlock()
	}
	data, err := blk.MarshalBinary()
	if err != nil {
		return 0, err
	}
	// Build cannot be repeated (it has handed the block's ratings over),
	// so it must not fail on a passing refusal of the store.
	name := wire.BlockBlob(jobID, wire.SideOf(blk.Side), blk.Index)
	if err := w.putRetrying(ctx, name, data, "job", jobID, "side", blk.Side, "block", blk.Index); err != nil {
		return 0, fmt.Errorf("storing %s block %d: %w", blk.Side, blk.Index, err)
	}
	st.mu.Lock()
	st.built[blockKey{blk.Side, blk.Index}] = blk
	st.mu.Unlock()
	return int64(len(data)), nil
}

// putRetrying stores a blob in the block store, repeating a failed put
// for up to storeRetryFor: when every worker stores its blocks at once,
// JetStream refuses puts for a while ("too many requests"). logArgs name
// the blob in the log line of each retry.
func (w *Worker) putRetrying(ctx context.Context, name string, data []byte, logArgs ...any) error {
	wait, deadline := 100*time.Millisecond, time.Now().Add(storeRetryFor)
	for {
		err := w.blobs.Put(ctx, name, data)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		w.log.Info("block store refused a put; retrying", append(logArgs, "err", err)...)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// takeIngested hands the load step a block this worker built in the
// job's ingest, or nil. The builder of block b is the (b mod W)-th worker
// of the ingest and the assignment gives block b to the (b mod W)-th live
// worker: unless a worker was lost in between, every block a worker loads
// is one it built, and it need not read it back from the block store.
func (w *Worker) takeIngested(jobID string, k blockKey) *partition.Block {
	js := w.job(jobID)
	if js == nil {
		return nil
	}
	js.mu.Lock()
	st := js.ingest
	js.mu.Unlock()
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	blk := st.built[k]
	delete(st.built, k)
	return blk
}

// dropIngested lets go of the built blocks the load did not take (they
// are assigned to other workers, who read them from the block store).
func (w *Worker) dropIngested(js *jobState) {
	js.mu.Lock()
	st := js.ingest
	js.mu.Unlock()
	if st != nil {
		st.mu.Lock()
		clear(st.built)
		st.mu.Unlock()
	}
}

// storeRetryFor bounds how long a block store put is repeated.
const storeRetryFor = 2 * time.Minute

// openSources reads the manifests of the datasets the plan was cut from
// and checks that they are still that generation and those files.
func (w *Worker) openSources(ctx context.Context, st *ingestState, refs []wire.DatasetRef) error {
	if st.sources != nil {
		return nil
	}
	store, err := w.datasets(ctx)
	if err != nil {
		return err
	}
	var sources []ingestSource
	for _, ref := range refs {
		m, err := store.Info(ctx, ref.Name)
		if err != nil {
			return err
		}
		if m.Generation != ref.Generation || len(m.Files) != ref.Files {
			return fmt.Errorf("%w: dataset %q was replaced while the job read it", dataset.ErrMissingChunk, ref.Name)
		}
		for i := range m.Files {
			sources = append(sources, ingestSource{m: m, i: i})
		}
	}
	if len(sources) != len(st.plan.Files) {
		return fmt.Errorf("the ingest plan has %d files, its datasets %d", len(st.plan.Files), len(sources))
	}
	for i, s := range sources {
		if f := &s.m.Files[s.i]; f.Size != st.plan.Files[i].Size {
			return fmt.Errorf("%w: dataset %q: file %s is %d bytes, the plan says %d", dataset.ErrCorrupt, s.m.Name, f.Name, f.Size, st.plan.Files[i].Size)
		}
	}
	st.sources = sources
	st.store = store
	return nil
}

// reader returns a reader of shard k's file (its own: a reader caches the
// chunk it read last).
func (st *ingestState) reader(ctx context.Context, k int) *dataset.Reader {
	s := st.sources[st.plan.Shards[k].File]
	return st.store.Reader(ctx, s.m, s.i)
}

// DatasetOpener is the optional capability of a Transport that reaches
// the cluster's dataset store (the NATS one does): a worker over another
// transport cannot ingest datasets.
type DatasetOpener interface {
	OpenDatasets(ctx context.Context) (*dataset.Store, error)
}

func (t *natsTransport) OpenDatasets(ctx context.Context) (*dataset.Store, error) {
	return dataset.Open(ctx, t.nc)
}

func (w *Worker) datasets(ctx context.Context) (*dataset.Store, error) {
	o, ok := w.tr.(DatasetOpener)
	if !ok {
		return nil, errors.New("this worker's transport does not reach a dataset store")
	}
	s, err := o.OpenDatasets(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening the dataset store: %w", err)
	}
	return s, nil
}
