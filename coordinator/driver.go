package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/transport"
)

// The driver's ways of ending a step early.
var (
	errReassign  = errors.New("an assigned worker was lost")
	errJobOver   = errors.New("the job finished meanwhile")
	errNoWorkers = errors.New("no live workers")
	// errIngestAgain abandons an ingest attempt that a worker cannot take
	// further (wire.KindIngestAttempt): the next step starts a new one.
	errIngestAgain = errors.New("the ingest must start again")
)

// stepFailure ends a job: the step cannot succeed.
type stepFailure struct {
	kind, msg string
}

func (f *stepFailure) Error() string { return f.msg }

// driver runs jobs on the leader, one step at a time, committing each step
// before acting on the next. It holds no state that matters across leader
// changes: everything is read back from the state machine.
type driver struct {
	n *Node
	// waiting, when set, names what the step under way still waits for:
	// a step that outlasts PhaseTimeout is reported with it.
	waiting  func() string
	failures int // runtime failures of the step under way
	// ingestRestarts counts the ingest attempts of job ingestJob that a
	// worker could not take further: bounded like a step's failures, or a
	// fault that recurs would start attempts forever.
	ingestJob      string
	ingestRestarts int
	dropped        map[string]bool // finished jobs whose workers were told to drop them
	sends          sync.WaitGroup
}

func newDriver(n *Node) *driver { return &driver{n: n, dropped: map[string]bool{}} }

func (d *driver) run(ctx context.Context) {
	defer d.sends.Wait()
	for ctx.Err() == nil {
		d.dropFinished(ctx)
		id := d.activeJob()
		if id == "" {
			d.waitChange(ctx, time.Second)
			continue
		}
		err := d.step(ctx, id)
		var sf *stepFailure
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		case errors.As(err, &sf):
			d.n.log.Warn("job failed", "job", id, "kind", sf.kind, "err", sf.msg)
			if ferr := d.n.state.propose(ctx, &finishedCmd{Job: id, Finish: Finish{State: job.StateFailed, Error: sf.msg, Kind: sf.kind}}); ferr != nil {
				d.n.log.Warn("job failure not committed", "job", id, "err", ferr)
			}
		case errors.Is(err, errNoWorkers):
			d.waitChange(ctx, 500*time.Millisecond)
		case errors.Is(err, errReassign), errors.Is(err, errJobOver):
		default:
			d.n.log.Warn("job step failed; retrying", "job", id, "err", err)
			d.waitChange(ctx, 200*time.Millisecond)
		}
	}
}

// waitChange waits for the state machine to change, at most d.
func (d *driver) waitChange(ctx context.Context, wait time.Duration) {
	select {
	case <-ctx.Done():
	case <-d.n.fsm.Changed():
	case <-time.After(wait):
	}
}

// activeJob is the oldest job that is pending or running: jobs run one at
// a time, in submission order.
func (d *driver) activeJob() string {
	var id string
	d.n.fsm.View(func(st *State) {
		for _, jid := range st.Order {
			if j := st.Jobs[jid]; !job.Finished(j.State) {
				id = jid
				return
			}
		}
	})
	return id
}

// job returns a deep copy of a job and the sorted live workers.
func (d *driver) job(id string) (*Job, []string) {
	var b []byte
	var alive []string
	d.n.fsm.View(func(st *State) {
		b, _ = json.Marshal(st.Jobs[id])
		alive = st.sortedAlive()
	})
	var j Job
	json.Unmarshal(b, &j)
	return &j, alive
}

func (d *driver) step(ctx context.Context, id string) error {
	d.failures = 0
	j, alive := d.job(id)
	boots := d.boots()
	switch {
	case j.State == job.StatePending:
		return d.partition(ctx, j, alive)
	case j.Assign == nil || len(lostOwners(j.Assign, alive)) > 0 || len(rebooted(j.Assign, boots)) > 0 || d.resumeBad(j):
		return d.assign(ctx, j, alive, boots)
	case j.LoadedEpoch != j.Assign.Epoch:
		return d.load(ctx, j)
	}
	if t, ok := j.CheckpointDue(); ok {
		return d.checkpoint(ctx, j, t, false)
	}
	if t, side, ok := j.NextPhase(); ok {
		return d.phase(ctx, j, t, side)
	}
	if j.Eval == nil {
		return d.evaluate(ctx, j)
	}
	final := checkpoint.SnapshotID(j.ID, j.Spec.Iterations)
	if i, ok := j.checkpointRef(final); !ok || j.Checkpoints[i].Bad {
		return d.checkpoint(ctx, j, j.Spec.Iterations, true)
	}
	return d.finish(ctx, j, final)
}

// resumeBad reports whether the current assignment resumes from a
// checkpoint since found damaged, and so must be replaced.
func (d *driver) resumeBad(j *Job) bool {
	if j.Assign.Resume == "" || j.LoadedEpoch == j.Assign.Epoch {
		return false
	}
	i, ok := j.checkpointRef(j.Assign.Resume)
	return ok && j.Checkpoints[i].Bad
}

// boots returns each registered worker's process identity.
func (d *driver) boots() map[string]string {
	b := map[string]string{}
	d.n.fsm.View(func(st *State) {
		for id, w := range st.Workers {
			b[id] = w.Boot
		}
	})
	return b
}

// rebooted lists the owners whose process changed since the assignment:
// they lost the blocks and factors they held.
func rebooted(a *Assignment, boots map[string]string) []string {
	var out []string
	for id, boot := range a.Boots {
		if boots[id] != boot {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// lostOwners lists the owners in a that are not alive.
func lostOwners(a *Assignment, alive []string) []string {
	live := map[string]bool{}
	for _, id := range alive {
		live[id] = true
	}
	seen := map[string]bool{}
	var lost []string
	for _, id := range append(append([]string(nil), a.Users...), a.Items...) {
		if !live[id] && !seen[id] {
			seen[id] = true
			lost = append(lost, id)
		}
	}
	sort.Strings(lost)
	return lost
}

func distinct(ids ...[]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, list := range ids {
		for _, id := range list {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out
}

// send delivers a command to a worker in the background. A lost command is
// repeated by await.
func (d *driver) send(ctx context.Context, worker string, c wire.Command) {
	b, _ := json.Marshal(c)
	d.sends.Add(1)
	go func() {
		defer d.sends.Done()
		msg, err := transport.Request(ctx, d.n.nc, transport.WorkerCmdSubject(worker), b,
			transport.RetryPolicy{Timeout: 2 * time.Second, Attempts: 1})
		if err != nil {
			return
		}
		var ack wire.Ack
		if json.Unmarshal(msg.Data, &ack) == nil && !ack.OK {
			d.n.log.Warn("command refused", "worker", worker, "type", c.Type, "job", c.Job, "reason", ack.Error)
		}
	}()
}

// step is one await: the command, who it goes to and whom it depends on.
type step struct {
	j       *Job
	c       wire.Command
	targets []string
	watch   []string
	start   time.Time
	// reported: the phase timeout has been noted in the job.
	reported bool
	// peerSince is when a worker first blamed an unanswering peer.
	peerSince time.Time
}

// await sends c to targets and feeds the reports of job j to accept until
// it returns true. It repeats the command every ResendInterval, and gives
// up with errReassign when one of watch (the workers the step depends on)
// is lost, errJobOver when the job ends meanwhile, or a *stepFailure.
func (d *driver) await(ctx context.Context, j *Job, targets, watch []string, c wire.Command, accept func(wire.Report) bool) error {
	s := &step{j: j, c: c, targets: targets, watch: watch, start: time.Now()}
	s.send(ctx, d)
	resend := time.NewTicker(d.n.cfg.ResendInterval)
	defer resend.Stop()
	check := time.NewTicker(250 * time.Millisecond)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-d.n.reportCh:
			if r.Job != j.ID {
				continue
			}
			if r.Type == wire.RepFailed {
				if err := d.failed(ctx, s, r); err != nil {
					return err
				}
				continue
			}
			if accept(r) {
				return nil
			}
		case <-resend.C:
			s.send(ctx, d)
		case <-check.C:
			d.noteTimeout(ctx, s)
			if err := d.checkWatched(s); err != nil {
				return err
			}
		}
	}
}

func (s *step) send(ctx context.Context, d *driver) {
	for _, t := range s.targets {
		d.send(ctx, t, s.c)
	}
}

// failed handles a worker's failure report of the step: nil to go on
// waiting, or the error that ends the step.
func (d *driver) failed(ctx context.Context, s *step, r wire.Report) error {
	c := s.c
	if r.For != c.Type || r.Epoch != c.Epoch || r.Iteration != c.Iteration || r.Side != c.Side {
		return nil // an old step's failure
	}
	switch {
	case r.Kind == job.KindInput:
		return &stepFailure{kind: job.KindInput, msg: r.Error}
	case r.Kind == wire.KindCheckpoint && c.Snapshot != "":
		// The checkpoint to resume from is damaged: mark it, and the
		// next step reassigns from an older one.
		d.n.log.Warn("checkpoint damaged", "job", s.j.ID, "checkpoint", c.Snapshot, "worker", r.Worker, "err", r.Error)
		if err := d.n.state.propose(ctx, &checkpointBadCmd{Job: s.j.ID, Checkpoint: c.Snapshot, Reason: r.Error}); err != nil {
			return err
		}
		return fmt.Errorf("%w: checkpoint %s is damaged", errReassign, c.Snapshot)
	case r.Kind == wire.KindIngestAttempt && c.Type == wire.CmdIngest:
		if d.ingestJob != s.j.ID {
			d.ingestJob, d.ingestRestarts = s.j.ID, 0
		}
		d.ingestRestarts++
		if d.ingestRestarts >= d.n.cfg.MaxStepFailures {
			return &stepFailure{kind: job.KindRuntime, msg: fmt.Sprintf("the ingest was started %d times and could not be finished, last on worker %s: %s", d.ingestRestarts, r.Worker, r.Error)}
		}
		d.n.log.Warn("ingest attempt abandoned", "job", s.j.ID, "round", c.Iteration, "worker", r.Worker, "restarts", d.ingestRestarts, "err", r.Error)
		return fmt.Errorf("%w: round %d on worker %s: %s", errIngestAgain, c.Iteration, r.Worker, r.Error)
	case r.Kind == wire.KindPeer && slices.Contains(s.watch, r.Peer):
		// The peer may be dead and not yet declared lost: give the
		// monitor time to notice before counting failures.
		if s.peerSince.IsZero() {
			s.peerSince = time.Now()
		}
		if time.Since(s.peerSince) < 2*d.n.cfg.WorkerTimeout {
			d.n.log.Info("step waits for an unanswering worker", "job", s.j.ID, "step", c.Type, "worker", r.Worker, "peer", r.Peer)
			return nil
		}
	}
	d.failures++
	d.n.log.Warn("step failed on a worker", "job", s.j.ID, "step", c.Type, "worker", r.Worker, "failures", d.failures, "err", r.Error)
	if d.failures >= d.n.cfg.MaxStepFailures {
		return &stepFailure{kind: job.KindRuntime, msg: fmt.Sprintf("%s failed %d times, last on worker %s: %s", c.Type, d.failures, r.Worker, r.Error)}
	}
	return nil
}

// noteTimeout notes in the job, once, that the step outlasted the phase
// timeout. Slow is not lost: the step goes on waiting.
func (d *driver) noteTimeout(ctx context.Context, s *step) {
	if s.reported || d.n.cfg.PhaseTimeout <= 0 || time.Since(s.start) <= d.n.cfg.PhaseTimeout {
		return
	}
	s.reported = true
	c := s.c
	what := c.Type
	if c.Side != wire.NoSide {
		what = fmt.Sprintf("%s %d %s", c.Type, c.Iteration, c.Side)
	}
	reason := fmt.Sprintf("%s has run for more than the %v phase timeout", what, d.n.cfg.PhaseTimeout)
	if d.waiting != nil {
		reason += "; waiting for " + d.waiting()
	}
	d.n.log.Warn("phase timeout", "job", s.j.ID, "reason", reason)
	d.n.metrics.phaseTimeouts.Inc()
	if err := d.n.state.propose(ctx, &noteCmd{Job: s.j.ID, Text: reason}); err != nil {
		d.n.log.Warn("phase timeout not noted", "job", s.j.ID, "err", err)
	}
}

// checkWatched ends the step when the job finished meanwhile or a worker
// it depends on was lost or restarted.
func (d *driver) checkWatched(s *step) error {
	var over bool
	var alive []string
	boots := map[string]string{}
	d.n.fsm.View(func(st *State) {
		j, ok := st.Jobs[s.j.ID]
		over = !ok || job.Finished(j.State)
		alive = st.sortedAlive()
		for _, id := range s.watch {
			if w, ok := st.Workers[id]; ok {
				boots[id] = w.Boot
			}
		}
	})
	if over {
		return errJobOver
	}
	if lost := lostOwners(&Assignment{Users: s.watch}, alive); len(lost) > 0 {
		return fmt.Errorf("%w: %s", errReassign, strings.Join(lost, ", "))
	}
	if s.j.Assign == nil {
		return nil
	}
	for _, id := range s.watch {
		if b, ok := s.j.Assign.Boots[id]; ok && boots[id] != b {
			return fmt.Errorf("%w: %s restarted", errReassign, id)
		}
	}
	return nil
}

// partition asks the first live worker to partition the input.
func (d *driver) partition(ctx context.Context, j *Job, alive []string) error {
	if len(alive) == 0 {
		return errNoWorkers
	}
	p, q := j.Spec.UserBlocks, j.Spec.ItemBlocks
	if p == 0 {
		p, q = len(alive), len(alive)
	}
	if j.Spec.Dataset != "" {
		// Every live worker ingests a dataset (ingest.go).
		sum, err := d.ingest(ctx, j, alive, p, q)
		if err != nil {
			return err
		}
		return d.partitioned(ctx, j, sum, "the ingest")
	}
	target := alive[0]
	c := wire.Command{Type: wire.CmdPartition, Job: j.ID, Spec: j.Spec, UserBlocks: p, ItemBlocks: q}
	var sum *wire.PartitionSummary
	err := d.await(ctx, j, []string{target}, []string{target}, c, func(r wire.Report) bool {
		if r.Type != wire.RepPartitioned || r.Partition == nil {
			return false
		}
		sum = r.Partition
		return true
	})
	if err != nil {
		return err
	}
	return d.partitioned(ctx, j, sum, "worker "+target)
}

// partitioned checks a partition summary, stores it as a blob and
// commits its ref.
func (d *driver) partitioned(ctx context.Context, j *Job, sum *wire.PartitionSummary, source string) error {
	if err := checkSummary(sum); err != nil {
		return &stepFailure{kind: job.KindRuntime, msg: fmt.Sprintf("%s reported an inconsistent partition: %v", source, err)}
	}
	d.n.log.Info("job partitioned", "job", j.ID, "users", sum.Users, "items", sum.Items, "ratings", sum.TrainRatings)
	// The row needs grow with the block layout: they go to the block
	// store, and the log names them.
	ref, err := d.n.blobs.put(ctx, wire.SummaryBlob(j.ID), sum)
	if err != nil {
		return err
	}
	return d.n.state.propose(ctx, &partitionedCmd{Job: j.ID, Partition: partitionInfo(sum, ref)})
}

// assign spreads the blocks over the live workers: block b of either side
// goes to the (b mod W)-th live worker in ID order, a pure function of the
// live set and the block counts.
func (d *driver) assign(ctx context.Context, j *Job, alive []string, boots map[string]string) error {
	if len(alive) == 0 {
		return errNoWorkers
	}
	a := &Assignment{Epoch: 1, Users: make([]string, j.Partition.UserBlocks), Items: make([]string, j.Partition.ItemBlocks), Boots: map[string]string{}}
	for b := range a.Users {
		a.Users[b] = alive[b%len(alive)]
	}
	for b := range a.Items {
		a.Items[b] = alive[b%len(alive)]
	}
	for _, id := range distinct(a.Users, a.Items) {
		a.Boots[id] = boots[id]
	}
	// Refuse an assignment that would not fit the workers' memory before
	// any of it is loaded, with the numbers (docs/runbook.md, "Sizing").
	offered := map[string]int64{}
	sz := sizing{Rank: j.Spec.Width(), InPlace: j.Spec.ALS(1).InPlace(), Gather: map[string]int64{}}
	d.n.fsm.View(func(st *State) {
		for id, w := range st.Workers {
			offered[id] = w.Memory
			sz.Gather[id] = w.GatherBytes
		}
	})
	sum, err := d.n.blobs.summary(ctx, j.Partition)
	if err != nil {
		return err
	}
	if err := checkMemory(sum, a, sz, offered); err != nil {
		return &stepFailure{kind: job.KindInput, msg: err.Error()}
	}
	a.LowerBound = lowerBound(sum, a, j.Spec.Width())
	if j.Assign != nil {
		a.Epoch = j.Assign.Epoch + 1
		a.Restart = true
		var why []string
		if lost := lostOwners(j.Assign, alive); len(lost) > 0 {
			why = append(why, "lost worker "+strings.Join(lost, ", "))
		}
		if rb := rebooted(j.Assign, boots); len(rb) > 0 {
			why = append(why, "restarted worker "+strings.Join(rb, ", "))
		}
		if d.resumeBad(j) {
			why = append(why, "checkpoint "+j.Assign.Resume+" is damaged")
		}
		a.Reason = strings.Join(why, "; ")
		if c, ok := j.GoodCheckpoint(); ok {
			a.Resume = c.ID
		}
		d.n.log.Warn("reassigning blocks", "job", j.ID, "epoch", a.Epoch, "reason", a.Reason, "resume", a.Resume)
	}
	return d.n.state.propose(ctx, &assignedCmd{Job: j.ID, Assignment: *a})
}

// load has every owner load its blocks for the epoch, before the first
// phase, so that phases time solving and exchange only.
func (d *driver) load(ctx context.Context, j *Job) error {
	c := d.command(j, wire.CmdLoad)
	c.Snapshot = j.Assign.Resume
	owners := distinct(j.Assign.Users, j.Assign.Items)
	done := map[string]bool{}
	start := time.Now()
	err := d.await(ctx, j, owners, owners, c, func(r wire.Report) bool {
		if r.Type == wire.RepLoaded && r.Epoch == c.Epoch {
			done[r.Worker] = true
		}
		return len(done) == len(owners)
	})
	if err != nil {
		return err
	}
	return d.n.state.propose(ctx, &loadedCmd{Job: j.ID, Epoch: j.Assign.Epoch, Seconds: time.Since(start).Seconds()})
}

func (d *driver) command(j *Job, typ string) wire.Command {
	c := wire.Command{Type: typ, Job: j.ID, Spec: j.Spec, Epoch: j.Assign.Epoch, Users: j.Assign.Users, Items: j.Assign.Items}
	if j.Spec.Biases {
		c.Mean = j.Partition.Mean
	}
	return c
}

// phase runs one phase: every block of side solved for iteration t.
func (d *driver) phase(ctx context.Context, j *Job, t int, side wire.Side) error {
	c := d.command(j, wire.CmdPhase)
	c.Iteration, c.Side = t, side
	start := time.Now()
	results, err := d.perBlock(ctx, j, c, j.Assign.Owners(side), wire.RepPhase)
	if err != nil {
		return err
	}
	p := &PhaseResult{Epoch: c.Epoch, Iteration: t, Side: side, Seconds: time.Since(start).Seconds()}
	for _, st := range results { // block order: the same sums on every leader
		p.Rows += st.Rows
		p.Ratings += st.Ratings
		p.SSE += st.SSE
		p.TestN += st.TestN
		p.TestSSE += st.TestSSE
		p.Bytes += st.Bytes
		p.Checksums = append(p.Checksums, st.Checksum)
	}
	d.n.log.Debug("phase done", "job", j.ID, "iteration", t, "side", side, "seconds", p.Seconds)
	if err := d.n.state.propose(ctx, &phaseCmd{Job: j.ID, Phase: *p}); err != nil {
		return err
	}
	m := d.n.metrics
	m.phaseSeconds.WithLabelValues(side.String()).Observe(p.Seconds)
	m.rowsSolved.Add(float64(p.Rows))
	m.bytesExchanged.Add(float64(p.Bytes))
	return nil
}

// perBlock sends c to the owners and collects one report of type typ for
// each block, from the block's owner, matching c's epoch, iteration and
// side. It watches every worker of the assignment: losing any ends it.
func (d *driver) perBlock(ctx context.Context, j *Job, c wire.Command, owners []string, typ string) ([]wire.BlockStats, error) {
	results := make([]*wire.BlockStats, len(owners))
	got := 0
	var mu sync.Mutex
	d.waiting = func() string {
		mu.Lock()
		defer mu.Unlock()
		var missing []string
		for b, st := range results {
			if st == nil {
				missing = append(missing, fmt.Sprintf("block %d on %s", b, owners[b]))
			}
		}
		return strings.Join(missing, ", ")
	}
	defer func() { d.waiting = nil }()
	err := d.await(ctx, j, distinct(owners), distinct(j.Assign.Users, j.Assign.Items), c, func(r wire.Report) bool {
		mu.Lock()
		defer mu.Unlock()
		if r.Type != typ || r.Epoch != c.Epoch || r.Iteration != c.Iteration || r.Side != c.Side ||
			r.Block < 0 || r.Block >= len(owners) || owners[r.Block] != r.Worker {
			return false
		}
		if results[r.Block] == nil {
			got++
		}
		st := r.Stats
		results[r.Block] = &st
		return got == len(owners)
	})
	if err != nil {
		return nil, err
	}
	out := make([]wire.BlockStats, len(results))
	for b, st := range results {
		out[b] = *st
	}
	return out, nil
}

// evaluate has the owners of user blocks compute the final test metrics.
func (d *driver) evaluate(ctx context.Context, j *Job) error {
	c := d.command(j, wire.CmdEvaluate)
	c.Iteration, c.Side = j.Spec.Iterations, wire.SideUsers
	results, err := d.perBlock(ctx, j, c, j.Assign.Users, wire.RepEvaluated)
	if err != nil {
		return err
	}
	e := &Evaluation{Epoch: c.Epoch}
	for _, st := range results {
		e.TestN += st.TestN
		e.TestSSE += st.TestSSE
		e.TestAE += st.TestAE
		e.RankUsers += st.RankUsers
		e.PrecisionSum += st.PrecisionSum
		e.NDCGSum += st.NDCGSum
		e.Bytes += st.Bytes
	}
	return d.n.state.propose(ctx, &evaluatedCmd{Job: j.ID, Eval: *e})
}

// checkpoint has every owner write its blocks' factors of iteration t,
// commits the manifest in raft, then writes it to the store: from then on
// the checkpoint exists. The final one also carries each user's training
// items and the job's metrics.
func (d *driver) checkpoint(ctx context.Context, j *Job, t int, final bool) error {
	start := time.Now()
	c := d.command(j, wire.CmdCheckpoint)
	c.Iteration, c.Snapshot, c.Final = t, checkpoint.SnapshotID(j.ID, t), final
	want := j.Partition.UserBlocks + j.Partition.ItemBlocks
	files := map[string][]checkpoint.FileInfo{}
	owners := distinct(j.Assign.Users, j.Assign.Items)
	err := d.await(ctx, j, owners, owners, c, func(r wire.Report) bool {
		if r.Type != wire.RepCheckpoint || r.Epoch != c.Epoch || r.Snapshot != c.Snapshot || r.Block < 0 {
			return false
		}
		o := j.Assign.Owners(r.Side)
		if r.Block >= len(o) || o[r.Block] != r.Worker {
			return false
		}
		files[r.Side.String()+"/"+strconv.Itoa(r.Block)] = r.Files
		return len(files) == want
	})
	if err != nil {
		return err
	}
	res := j.Result(time.Now())
	m := &checkpoint.Manifest{
		Format: checkpoint.FormatName, Version: checkpoint.FormatVersion,
		ID: c.Snapshot, Model: j.Spec.Model, Job: j.ID, Iteration: t, Rank: j.Spec.Width(),
		Biases: j.Spec.Biases, NonNegative: j.Spec.NonNegative,
		Implicit: j.Spec.Implicit, Lambda: j.Spec.Lambda, Users: j.Partition.Users, Items: j.Partition.Items,
		UserBlocks: j.Partition.UserBlocks, ItemBlocks: j.Partition.ItemBlocks, Final: final, Created: time.Now().UTC(),
		Metrics: map[string]float64{},
	}
	if j.Spec.Implicit {
		m.Alpha = j.Spec.Alpha
	}
	if j.Spec.Biases {
		m.GlobalMean = j.Partition.Mean
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
	for _, fs := range files {
		m.Files = append(m.Files, fs...)
	}
	if err := m.Check(); err != nil {
		return &stepFailure{kind: job.KindRuntime, msg: fmt.Sprintf("checkpoint %s: %v", c.Snapshot, err)}
	}
	// The manifest lists a file per block: it goes to the block store,
	// and the log names it.
	ref, err := d.n.blobs.put(ctx, wire.ManifestBlob(j.ID, m.ID), m)
	if err != nil {
		return err
	}
	if err := d.n.state.propose(ctx, &checkpointCmd{Job: j.ID, Checkpoint: checkpointInfo(m, ref)}); err != nil {
		return err
	}
	repo, err := d.n.repo(ctx, j.Spec.Store)
	if err == nil {
		err = repo.Commit(ctx, m.ID, m)
	}
	if err != nil {
		// Committed in raft but not yet in the store: the next step (or
		// the next leader) writes it again.
		return fmt.Errorf("writing the manifest of %s: %w", m.ID, err)
	}
	d.pruneCheckpoints(ctx, j, repo, m.ID)
	var bytes int64
	for _, f := range m.Files {
		bytes += f.Bytes
	}
	d.n.metrics.checkpointSecs.Observe(time.Since(start).Seconds())
	d.n.metrics.checkpointBytes.Set(float64(bytes))
	return nil
}

// checkpointsKept is how many of a running job's checkpoints stay in the
// store: the newest and the one before it, to fall back to.
const checkpointsKept = 2

// pruneTimeout bounds deleting one old checkpoint. Pruning is best effort
// and runs between a job's steps: a delete whose JetStream request went
// to a NATS server that has just died would otherwise hold the job for
// the store's whole operation timeout (a minute). A checkpoint not
// deleted is tried again after the next checkpoint.
const pruneTimeout = 5 * time.Second

// pruneCheckpoints deletes a job's older checkpoints from the store, keeping
// the newest few and any the current assignment resumes from.
func (d *driver) pruneCheckpoints(ctx context.Context, j *Job, repo *checkpoint.Repo, newest string) {
	ids := []string{newest}
	for i := len(j.Checkpoints) - 1; i >= 0; i-- {
		if id := j.Checkpoints[i].ID; id != newest && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for i, id := range ids {
		if i < checkpointsKept || (j.Assign != nil && id == j.Assign.Resume) {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, pruneTimeout)
		err := repo.Delete(dctx, id)
		cancel()
		if err != nil {
			d.n.log.Warn("old checkpoint not deleted", "job", j.ID, "checkpoint", id, "err", err)
		}
	}
}

// finish makes sure the final snapshot's manifest is in the store,
// publishes it as the model's latest, applies retention, copies it to the
// spec's Out directory, and ends the job. Every part may be repeated by a
// later leader.
func (d *driver) finish(ctx context.Context, j *Job, final string) error {
	repo, err := d.n.repo(ctx, j.Spec.Store)
	if err != nil {
		return err
	}
	m, err := d.finalManifest(ctx, j, final)
	if err != nil {
		return err
	}
	if err := repo.Commit(ctx, final, m); err != nil {
		return fmt.Errorf("writing the final manifest: %w", err)
	}
	if err := repo.Publish(ctx, j.Spec.Model, final); err != nil {
		return fmt.Errorf("publishing %s: %w", final, err)
	}
	if deleted, err := repo.Retain(ctx, j.Spec.Model, j.Spec.Keep); err != nil {
		d.n.log.Warn("retention failed", "model", j.Spec.Model, "err", err)
	} else if len(deleted) > 0 {
		d.n.log.Info("old snapshots deleted", "model", j.Spec.Model, "ids", deleted)
	}
	for _, c := range j.Checkpoints {
		if c.ID != final {
			repo.Delete(ctx, c.ID) // a finished job needs no resume points
		}
	}
	u, err := checkpoint.ParseStoreURI(j.Spec.Store)
	if err != nil {
		return &stepFailure{kind: job.KindInput, msg: err.Error()}
	}
	snapshot := u.Ref(final)
	if j.Spec.Out != "" {
		c := d.command(j, wire.CmdExport)
		c.Snapshot = final
		target := j.Assign.Users[0]
		if err := d.await(ctx, j, []string{target}, []string{target}, c, func(r wire.Report) bool {
			return r.Type == wire.RepExported && r.Epoch == c.Epoch
		}); err != nil {
			return err
		}
		snapshot = j.Spec.Out
	}
	return d.n.state.propose(ctx, &finishedCmd{Job: j.ID, Finish: Finish{State: job.StateSucceeded, Snapshot: snapshot}, SnapshotID: final})
}

// finalManifest loads the manifest of the job's final snapshot.
func (d *driver) finalManifest(ctx context.Context, j *Job, final string) (*checkpoint.Manifest, error) {
	if m, ok := j.Manifests[final]; ok {
		return m, nil // committed whole by an earlier build
	}
	ref, ok := j.ManifestRefs[final]
	if !ok {
		return nil, &stepFailure{kind: job.KindRuntime, msg: "the final snapshot's manifest is not in the replicated state"}
	}
	return d.n.blobs.manifest(ctx, ref)
}

// dropFinished tells the workers of finished jobs to forget them (once per
// leader term; a repeat is harmless).
func (d *driver) dropFinished(ctx context.Context) {
	var drops []wire.Command
	var targets [][]string
	d.n.fsm.View(func(st *State) {
		alive := st.sortedAlive()
		for _, id := range st.Order {
			j := st.Jobs[id]
			// Jobs that ended long ago were dropped by an earlier leader.
			if !job.Finished(j.State) || d.dropped[id] || time.Since(j.Finished) > 10*time.Minute {
				continue
			}
			d.dropped[id] = true
			drops = append(drops, wire.Command{Type: wire.CmdDrop, Job: id})
			targets = append(targets, alive)
		}
	})
	for i, c := range drops {
		for _, w := range targets[i] {
			d.send(ctx, w, c)
		}
		d.sends.Add(1)
		go func(id string) {
			defer d.sends.Done()
			d.deleteBlocks(ctx, id)
		}(c.Job)
	}
}

// deleteBlocks removes a finished job's partitioned blocks from the block
// store: nothing resumes it any more.
func (d *driver) deleteBlocks(ctx context.Context, jobID string) {
	blobs, err := transport.OpenBlobs(ctx, d.n.nc, wire.BlockBucket)
	if err != nil {
		d.n.log.Warn("block store not opened", "job", jobID, "err", err)
		return
	}
	list, err := blobs.List(ctx, wire.JobBlobs(jobID))
	if err != nil {
		d.n.log.Warn("job blocks not listed", "job", jobID, "err", err)
		return
	}
	for _, b := range list {
		if err := blobs.Delete(ctx, b.Name); err != nil && !errors.Is(err, transport.ErrNotFound) {
			d.n.log.Warn("job block not deleted", "job", jobID, "blob", b.Name, "err", err)
		}
	}
}
