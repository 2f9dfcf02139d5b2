package partition

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Distributed ingest: W workers turn a sharded input into the blocks of a
// Layout without any of them holding more than its share. Every worker
// runs one Ingest; the rounds below are separated by barriers (every
// worker finishes a round before any starts the next), and between
// barriers the workers send each other messages through Peers.
//
//  1. Scan (ScanIDs, per shard): parse the shard, decide each rating's
//     side of the hash test split, and send the IDs of training ratings to
//     their hash owner (a fixed hash of the ID picks one of W workers),
//     which counts them. No worker sees all IDs; each sees its hash range.
//     Bad lines fail here with the file's true line numbers.
//  2. Ranges (DictReport, PlanRanges, SendRanges, RangeReport): every hash
//     owner reports whether its IDs are all canonical integers and a
//     sample; the coordinator picks W−1 splitters in the canonical order
//     (numeric when every training ID is numeric, bytewise otherwise: the
//     order NewDataset gives); each hash owner sends its IDs to the range
//     owner of the range they fall in, which sorts them. Range r's IDs are
//     then dense indices offset(r) … offset(r)+n(r)−1: the canonical
//     numbering, whatever W.
//  3. Bounds (PlanOffsets, BoundCandidates, PlanBounds): from the ranges'
//     ID and rating counts the coordinator computes offsets; each range
//     owner says where in its range each block's rating target falls; the
//     coordinator applies BalancedBounds's rules to those.
//  4. Route (SetLayout, SendBlockIDs, Route per shard): each range owner
//     sends every block's builder (block b of a side is built by worker
//     b mod W) its IDs; each shard is parsed again, its IDs numbered by
//     asking their range owners, and every rating sent to the builder of
//     its user block (a test rating naming an unknown ID to the owner of
//     the pair's hash, which counts such pairs once).
//  5. Build, in three barriers. BuildUsers: each builder sorts its user
//     blocks' ratings (input order decides which copy of a repeated pair
//     is kept, as NewDataset does), tells every item block which rows it
//     needs from it, derives its own send lists, and stores the blocks.
//     Transpose: the user blocks send their kept training ratings to the
//     builders of their item blocks. BuildItems: each builder sorts its
//     item blocks, fills their send lists from the user blocks' needs,
//     and stores them. A worker thus holds its user blocks' raw ratings,
//     then its item blocks', never both at once.
//
// Messages go through bounded buffers (IngestPlan.BufferBytes a
// destination), so a worker holds its hash range, its ID range, its
// blocks' ratings and a few buffers: never the whole input or dictionary.
//
// # Determinism
//
// The dense indices, the blocks' rows and the send lists are those of
// NewDataset and NewLayout on the same input with the same block bounds,
// for any W and any shard count. The bounds come from rating counts that
// include repeated pairs (only the builders see which copies are
// repeats), so with repeated pairs they may differ from NewLayout's; they
// still depend on the input only.
//
// # Delivery
//
// Peers.Call may deliver a message more than once (a retry after a lost
// reply): every message carries a key and a repeat is acknowledged and
// ignored. A message that arrives before its receiver reached the round
// that handles it is refused with ErrNotReady: the sender retries.

// IngestPlan is what every worker of one distributed ingest is given.
type IngestPlan struct {
	// Workers is the number of workers W; each has a rank 0..W−1.
	Workers int `json:"workers"`
	// Files are the training input's files, then the test input's.
	Files []FileIndex `json:"files"`
	// Shards are the files' shards in input order: CutShards of the
	// training files, then of the test files (Test set).
	Shards []Shard `json:"shards"`
	// Scan: the job's format (FormatAuto: each file's own), bad-line
	// policy and implicit flag.
	Scan ScanOptions `json:"scan"`
	// Split holds a fraction of the training input out as the test set;
	// its fraction must be 0 when there are test shards.
	Split SplitOptions `json:"split"`
	// UserBlocks and ItemBlocks are the requested block counts (fewer
	// when a side has fewer rows).
	UserBlocks int `json:"user_blocks"`
	ItemBlocks int `json:"item_blocks"`
	// BufferBytes bounds every message and every destination's buffer
	// (0: DefaultBufferBytes(Workers)). It must leave room under the
	// transport's message size limit.
	BufferBytes int `json:"buffer_bytes,omitempty"`
}

// Limits of an ingest.
const (
	// MaxIngestWorkers bounds IngestPlan.Workers.
	MaxIngestWorkers = 1 << 12
	// MinBufferBytes is the smallest buffer: it holds the largest entry
	// (a test pair of two IDs of MaxIDLen bytes) and a header.
	MinBufferBytes = 16 << 10
	// maxBlocks bounds the block counts of a plan.
	maxBlocks = 1 << 16
)

// DefaultBufferBytes is a destination's buffer for W workers: a worker
// holds three buffers a destination while routing, about 24 MiB in all,
// and never less than MinBufferBytes or more than 256 KiB each.
func DefaultBufferBytes(workers int) int {
	return min(max(8<<20/max(workers, 1), MinBufferBytes), 256<<10)
}

// Validate checks the plan: it travels between processes.
func (p *IngestPlan) Validate() error {
	switch {
	case p.Workers < 1 || p.Workers > MaxIngestWorkers:
		return fmt.Errorf("partition: ingest of %d workers (want 1..%d)", p.Workers, MaxIngestWorkers)
	case p.UserBlocks < 1 || p.ItemBlocks < 1 || p.UserBlocks > maxBlocks || p.ItemBlocks > maxBlocks:
		return fmt.Errorf("partition: block counts %d×%d outside 1..%d", p.UserBlocks, p.ItemBlocks, maxBlocks)
	case p.BufferBytes != 0 && p.BufferBytes < MinBufferBytes:
		return fmt.Errorf("partition: buffer of %d bytes is below %d", p.BufferBytes, MinBufferBytes)
	case !(p.Split.TestFraction >= 0 && p.Split.TestFraction < 1):
		return fmt.Errorf("partition: test fraction %g outside [0, 1)", p.Split.TestFraction)
	case len(p.Shards) == 0:
		return fmt.Errorf("partition: an ingest without shards")
	case len(p.Shards) > math.MaxUint32>>8:
		return fmt.Errorf("partition: %d shards is too many", len(p.Shards))
	}
	if _, err := ParseFormat(string(cmp.Or(p.Scan.Format, FormatAuto))); err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	for i := range p.Files {
		if err := p.Files[i].Check(); err != nil {
			return err
		}
	}
	for k, sh := range p.Shards {
		if sh.File < 0 || sh.File >= len(p.Files) {
			return fmt.Errorf("partition: shard %d names file %d of %d", k, sh.File, len(p.Files))
		}
		if f := &p.Files[sh.File]; sh.Lo < 0 || sh.Hi > f.Size || sh.Lo > sh.Hi {
			return fmt.Errorf("partition: shard %d [%d, %d) of %s (%d bytes)", k, sh.Lo, sh.Hi, f.Name, f.Size)
		}
		if sh.Test && p.Split.TestFraction > 0 {
			return errors.New("partition: a test input and a test fraction cannot both be given")
		}
		if k > 0 && sh.Test != p.Shards[k-1].Test && !sh.Test {
			return errors.New("partition: training shards must come before test shards")
		}
	}
	return nil
}

func (p *IngestPlan) bufferBytes() int {
	if p.BufferBytes > 0 {
		return p.BufferBytes
	}
	return DefaultBufferBytes(p.Workers)
}

// Peers carries ingest messages to the workers of the same ingest.
type Peers interface {
	// Call hands msg to worker to's Ingest.Handle (to may be the caller
	// itself) and returns its reply. It retries what may be retried
	// (ErrNotReady, a lost message or reply) until ctx ends; a message
	// may thus arrive more than once, which Handle tolerates.
	Call(ctx context.Context, to int, msg []byte) ([]byte, error)
}

// ErrNotReady is returned by Ingest.Handle for a message of a round the
// receiver has not reached yet: retry it a little later.
var ErrNotReady = errors.New("partition: ingest round not reached yet")

// ErrRepeat is returned by a round that hands over or drops what it works
// on (SendRanges, RangeReport, BoundCandidates, BuildUsers, BuildItems)
// when it is called again, say after it failed half-way: what it needs
// is gone, so the ingest must start again. The other rounds may be
// repeated.
var ErrRepeat = errors.New("partition: an ingest round that cannot be repeated was run again; start the ingest again")

// The rounds ErrRepeat guards.
const (
	onceRanges = 1 << iota
	onceNumber
	onceBounds
	onceUsers
	onceItems
)

// once marks round r as started (g.mu held); ErrRepeat if it was.
func (g *Ingest) once(r uint8) error {
	if g.started&r != 0 {
		return ErrRepeat
	}
	g.started |= r
	return nil
}

// seqShift places the shard index above a rating's ordinal in its shard:
// seq = shard<<seqShift | ordinal orders ratings as the input does.
const seqShift = 40

// Ingest is one worker's part of a distributed ingest. Its round methods
// are called by the worker in order; Handle is called for every message
// other workers (or the worker itself) send, concurrently with them.
type Ingest struct {
	plan     IngestPlan
	self     int
	bufBytes int

	mu   sync.Mutex
	seen map[msgKey]bool
	// Round 1: the IDs of this worker's hash range, with rating counts.
	dict [2]map[string]uint64
	// Round 2: the plan, and the IDs of this worker's range as received;
	// RangeReport sorts them and numbers them.
	ranges *RangePlan
	recv   [2]rangeIDs
	lookup [2]*Dict
	prefix [2][]int64 // ratings before each ID of the range
	// Round 3 and on.
	offsets *Offsets
	layout  *IngestLayout
	blocks  map[blockKey]*building
	pairs   []pairRec
	changed chan struct{} // closed (and replaced) when a block's needs complete
	// userBuilt are the user blocks BuildUsers built, for Transpose.
	userBuilt []*Block
	started   uint8 // the once… rounds begun
}

type msgKey struct {
	typ   uint8
	side  Side
	test  bool
	block int32
	from  uint32
	batch uint32
}

type blockKey struct {
	side  Side
	index int
}

type rangeIDs struct {
	ids    []string
	counts []uint64
}

type pairRec struct {
	pair string // user, '\x00', item
	seq  uint64
}

// building is a block this worker builds: what it received, then the
// block.
type building struct {
	side   Side
	index  int
	lo, hi int32
	ids    []string
	nIDs   int // IDs received
	train  ratingList
	test   ratingList
	// cells are an item block's ratings from Transpose: repeats already
	// resolved, so without their input position.
	cells cellList
	// needs[p] lists the rows block p of the other side needs from this
	// one, filled as its messages arrive; needsGot[p] counts them.
	needs    [][]int32
	needsGot []int
	complete int // senders whose needs are all here
}

// NewIngest returns worker self's part of the ingest plan describes.
func NewIngest(plan IngestPlan, self int) (*Ingest, error) {
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	if self < 0 || self >= plan.Workers {
		return nil, fmt.Errorf("partition: worker rank %d of %d", self, plan.Workers)
	}
	return &Ingest{
		plan: plan, self: self, bufBytes: plan.bufferBytes(),
		seen:    map[msgKey]bool{},
		dict:    [2]map[string]uint64{{}, {}},
		blocks:  map[blockKey]*building{},
		changed: make(chan struct{}),
	}, nil
}

// ownerOf maps a hash to one of w workers, in proportion.
func ownerOf(h uint64, w int) int {
	hi, _ := bits.Mul64(h, uint64(w))
	return int(hi)
}

// ownerSeed makes hash ownership independent of the test split's hashes.
const ownerSeed = 0x6a09e667f3bcc908

func hashOwner[T string | []byte](side Side, id T, w int) int {
	return ownerOf(idHash(id, ownerSeed, 'o'+byte(side)), w)
}

func pairOwner(user, item string, w int) int {
	return ownerOf(pairHash(idHash(user, ownerSeed, 'p'), idHash(item, ownerSeed, 'q')), w)
}

// compareIDs is the canonical order: numeric (for canonical decimal
// integers, shorter is smaller, then bytewise) or bytewise.
func compareIDs(a, b string, numeric bool) int {
	if numeric && len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	return strings.Compare(a, b)
}

// ShardReport is what a worker reports about one shard it scanned.
type ShardReport struct {
	Shard   int   `json:"shard"`
	Lines   int64 `json:"lines"`
	Records int64 `json:"records"`
	Skipped int64 `json:"skipped"`
}

// ScanIDs is round 1 for one shard, whose file r reads: it parses the
// shard and sends the IDs of its training ratings to their hash owners.
// A bad line is a *LineError naming the file and line.
func (g *Ingest) ScanIDs(ctx context.Context, shard int, r io.ReaderAt, peers Peers) (ShardReport, error) {
	if shard < 0 || shard >= len(g.plan.Shards) {
		return ShardReport{}, fmt.Errorf("partition: shard %d of %d", shard, len(g.plan.Shards))
	}
	sh := g.plan.Shards[shard]
	var bufs [2][]idBuffer
	for s := range bufs {
		bufs[s] = make([]idBuffer, g.plan.Workers)
	}
	flush := func(side Side, to int) error {
		b := &bufs[side][to]
		if len(b.counts) == 0 {
			return nil
		}
		var w msgWriter
		w.reset(msgIDs, side, false, -1, uint32(shard), b.batch, 0)
		for id, c := range b.counts {
			w.id(id)
			w.u32(c)
			w.n++
		}
		b.batch++
		clear(b.counts)
		b.bytes = 0
		return g.call(ctx, peers, to, w.finish())
	}
	add := func(side Side, id []byte) error {
		to := hashOwner(side, id, g.plan.Workers)
		b := &bufs[side][to]
		if b.counts == nil {
			b.counts = map[string]uint32{}
		}
		if c, ok := b.counts[string(id)]; ok {
			b.counts[string(id)] = c + 1
			return nil
		}
		if b.bytes+2+len(id)+4 > g.bufBytes-msgMinSize {
			if err := flush(side, to); err != nil {
				return err
			}
		}
		b.counts[string(id)] = 1
		b.bytes += 2 + len(id) + 4
		return nil
	}
	st, err := ScanShard(ctx, r, &g.plan.Files[sh.File], sh, g.plan.Scan, func(u, i []byte, _ float32, _ int64) error {
		if sh.Test || g.plan.Split.InTest(u, i) {
			return nil
		}
		if err := add(Users, u); err != nil {
			return err
		}
		return add(Items, i)
	})
	rep := ShardReport{Shard: shard, Lines: st.Lines, Records: st.Records, Skipped: st.Skipped}
	if err != nil {
		return rep, err
	}
	for side := range bufs {
		for to := range bufs[side] {
			if err := flush(Side(side), to); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// idBuffer collects the IDs bound for one hash owner.
type idBuffer struct {
	counts map[string]uint32
	bytes  int
	batch  uint32
}

func (g *Ingest) call(ctx context.Context, peers Peers, to int, msg []byte) error {
	_, err := peers.Call(ctx, to, msg)
	if err != nil {
		return fmt.Errorf("partition: ingest message to worker %d: %w", to, err)
	}
	return nil
}

// Handle applies a message from a worker of the ingest and returns the
// reply to send back. A repeat of a message already applied is
// acknowledged again; a message of a later round than this worker has
// reached is refused with ErrNotReady.
func (g *Ingest) Handle(data []byte) ([]byte, error) {
	m, err := decodeMessage(data)
	if err != nil {
		return nil, err
	}
	if m.typ == msgLookup {
		return g.answerLookup(m)
	}
	key := msgKey{typ: m.typ, side: m.side, test: m.test, block: m.block, from: m.from, batch: m.batch}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen[key] {
		return ack, nil
	}
	switch m.typ {
	case msgIDs:
		d := g.dict[m.side]
		if d == nil {
			return nil, fmt.Errorf("partition: IDs after the ranges were sent")
		}
		for j, id := range m.ids {
			d[id] += m.counts[j]
		}
	case msgRange:
		r := &g.recv[m.side]
		if g.lookup[m.side] != nil {
			return nil, fmt.Errorf("partition: range IDs after the range was numbered")
		}
		r.ids = append(r.ids, m.ids...)
		r.counts = append(r.counts, m.counts...)
	case msgBlockIDs, msgRatings, msgNeeds, msgPairs:
		if g.layout == nil {
			return nil, ErrNotReady
		}
		if err := g.applyRoute(m); err != nil {
			return nil, err
		}
	default:
		return nil, msgErrorf("unexpected message type %d", m.typ)
	}
	g.seen[key] = true
	return ack, nil
}

// SideDictReport describes one side of a hash owner's IDs.
type SideDictReport struct {
	IDs     int64 `json:"ids"`
	Numeric bool  `json:"numeric"` // every ID is a canonical decimal integer
	// Sample is a deterministic sample of the IDs (those of smallest
	// sample hash), for the splitters.
	Sample []string `json:"sample"`
}

// DictReport is a hash owner's report after round 1.
type DictReport struct {
	Users SideDictReport `json:"users"`
	Items SideDictReport `json:"items"`
}

// sampleSize is how many IDs each hash owner contributes to the choice
// of splitters: with about sampleSize samples a range, ranges come out
// within some ten percent of each other.
const sampleSize = 128

// DictReport reports this worker's hash ranges after round 1.
func (g *Ingest) DictReport() DictReport {
	g.mu.Lock()
	defer g.mu.Unlock()
	var rep [2]SideDictReport
	for side, d := range g.dict {
		r := SideDictReport{IDs: int64(len(d)), Numeric: true}
		h := &sampleHeap{}
		for id := range d {
			if r.Numeric && !isCanonicalInt(id) {
				r.Numeric = false
			}
			e := sampleEntry{idHash(id, ownerSeed, 's'), id}
			if h.Len() < sampleSize {
				heap.Push(h, e)
			} else if e.less((*h)[0]) {
				(*h)[0] = e
				heap.Fix(h, 0)
			}
		}
		for _, e := range *h {
			r.Sample = append(r.Sample, e.id)
		}
		slices.Sort(r.Sample)
		rep[side] = r
	}
	return DictReport{Users: rep[Users], Items: rep[Items]}
}

type sampleEntry struct {
	h  uint64
	id string
}

func (a sampleEntry) less(b sampleEntry) bool {
	return a.h < b.h || (a.h == b.h && a.id < b.id)
}

// sampleHeap is a max-heap: its root is the largest of the smallest.
type sampleHeap []sampleEntry

func (h sampleHeap) Len() int           { return len(h) }
func (h sampleHeap) Less(i, j int) bool { return h[j].less(h[i]) }
func (h sampleHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *sampleHeap) Push(x any)        { *h = append(*h, x.(sampleEntry)) }
func (h *sampleHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// SideRanges splits one side's canonical order into W ranges: range r
// holds the IDs x with Splitters[r−1] ≤ x < Splitters[r].
type SideRanges struct {
	Numeric   bool     `json:"numeric"`
	Splitters []string `json:"splitters"`
}

// owner is the range of id: the number of splitters ≤ id.
func (s *SideRanges) owner(id string) int {
	return sort.Search(len(s.Splitters), func(r int) bool { return compareIDs(s.Splitters[r], id, s.Numeric) > 0 })
}

// RangePlan is the coordinator's choice of ranges for round 2.
type RangePlan struct {
	Users SideRanges `json:"users"`
	Items SideRanges `json:"items"`
}

func (p *RangePlan) side(s Side) *SideRanges {
	if s == Items {
		return &p.Items
	}
	return &p.Users
}

// PlanRanges chooses the ranges of round 2 from every hash owner's
// report: the order is numeric when every training ID is a canonical
// integer, and the splitters are quantiles of the merged samples.
func PlanRanges(reps []DictReport, workers int) RangePlan {
	var plan RangePlan
	for _, side := range []Side{Users, Items} {
		sr := plan.side(side)
		sr.Numeric = true
		var sample []string
		for _, r := range reps {
			s := r.Users
			if side == Items {
				s = r.Items
			}
			if s.IDs > 0 && !s.Numeric {
				sr.Numeric = false
			}
			sample = append(sample, s.Sample...)
		}
		slices.SortFunc(sample, func(a, b string) int { return compareIDs(a, b, sr.Numeric) })
		sample = slices.Compact(sample)
		if len(sample) == 0 {
			continue
		}
		for r := 1; r < workers; r++ {
			sr.Splitters = append(sr.Splitters, sample[len(sample)*r/workers])
		}
	}
	return plan
}

// SendRanges is round 2 on a hash owner: it sends its IDs, with their
// counts, to their range owners, and lets go of them.
func (g *Ingest) SendRanges(ctx context.Context, plan RangePlan, peers Peers) error {
	for _, side := range []Side{Users, Items} {
		if len(plan.side(side).Splitters) >= g.plan.Workers {
			return fmt.Errorf("partition: %d splitters for %d workers", len(plan.side(side).Splitters), g.plan.Workers)
		}
	}
	g.mu.Lock()
	if err := g.once(onceRanges); err != nil {
		g.mu.Unlock()
		return err
	}
	g.ranges = &plan
	dict := g.dict
	g.dict = [2]map[string]uint64{}
	g.mu.Unlock()
	for _, side := range []Side{Users, Items} {
		sr := plan.side(side)
		bufs := make([]msgWriter, g.plan.Workers)
		batch := make([]uint32, g.plan.Workers)
		flush := func(to int) error {
			w := &bufs[to]
			if w.n == 0 {
				return nil
			}
			msg := w.finish()
			batch[to]++
			w.reset(msgRange, side, false, -1, uint32(g.self), batch[to], 0)
			return g.call(ctx, peers, to, msg)
		}
		for to := range bufs {
			bufs[to].reset(msgRange, side, false, -1, uint32(g.self), 0, 0)
		}
		for id, c := range dict[side] {
			to := sr.owner(id)
			if bufs[to].len()+2+len(id)+8 > g.bufBytes {
				if err := flush(to); err != nil {
					return err
				}
			}
			bufs[to].id(id)
			bufs[to].u64(c)
			bufs[to].n++
		}
		for to := range bufs {
			if err := flush(to); err != nil {
				return err
			}
		}
		dict[side] = nil
	}
	return nil
}

// SideRangeReport describes one side of a range owner's IDs.
type SideRangeReport struct {
	IDs   int64 `json:"ids"`
	Count int64 `json:"count"` // training ratings of those IDs (repeated pairs included)
}

// RangeReport is a range owner's report after round 2.
type RangeReport struct {
	Users SideRangeReport `json:"users"`
	Items SideRangeReport `json:"items"`
}

// RangeReport sorts and numbers the IDs of this worker's ranges (after
// every SendRanges of round 2) and reports their counts.
func (g *Ingest) RangeReport() (RangeReport, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ranges == nil {
		return RangeReport{}, errors.New("partition: RangeReport before SendRanges")
	}
	if err := g.once(onceNumber); err != nil {
		return RangeReport{}, err
	}
	var rep [2]SideRangeReport
	for _, side := range []Side{Users, Items} {
		r := &g.recv[side]
		numeric := g.ranges.side(side).Numeric
		order := make([]int32, len(r.ids))
		for j := range order {
			order[j] = int32(j)
		}
		slices.SortFunc(order, func(a, b int32) int { return compareIDs(r.ids[a], r.ids[b], numeric) })
		ids := make([]string, len(order))
		prefix := make([]int64, len(order))
		var total int64
		for j, o := range order {
			ids[j], prefix[j] = r.ids[o], total
			total += int64(r.counts[o])
		}
		if len(ids) > MaxRatings {
			return RangeReport{}, errTooMany
		}
		d, ok := DictFromIDs(ids)
		if !ok {
			return RangeReport{}, fmt.Errorf("partition: an ID reached range owner %d twice", g.self)
		}
		g.recv[side] = rangeIDs{}
		g.lookup[side], g.prefix[side] = d, prefix
		rep[side] = SideRangeReport{IDs: int64(len(ids)), Count: total}
	}
	return RangeReport{Users: rep[Users], Items: rep[Items]}, nil
}

// SideOffsets places the W ranges of one side in the canonical order.
type SideOffsets struct {
	// Start[r] is the dense index of range r's first ID; Before[r] the
	// training ratings of the IDs before it.
	Start  []int64 `json:"start"`
	Before []int64 `json:"before"`
	IDs    int64   `json:"ids"`   // the side's IDs
	Count  int64   `json:"count"` // their ratings
	Blocks int     `json:"blocks"`
}

// Offsets are the coordinator's placement of the ranges for round 3.
type Offsets struct {
	Users SideOffsets `json:"users"`
	Items SideOffsets `json:"items"`
}

func (o *Offsets) side(s Side) *SideOffsets {
	if s == Items {
		return &o.Items
	}
	return &o.Users
}

// PlanOffsets places the ranges from every range owner's report (in rank
// order) and fixes the block counts: the requested ones, fewer for a side
// with fewer IDs. A training part without any rating is an error wrapping
// ErrEmpty.
func PlanOffsets(reps []RangeReport, userBlocks, itemBlocks int) (Offsets, error) {
	var off Offsets
	for _, side := range []Side{Users, Items} {
		so := off.side(side)
		for _, r := range reps {
			s := r.Users
			if side == Items {
				s = r.Items
			}
			so.Start = append(so.Start, so.IDs)
			so.Before = append(so.Before, so.Count)
			so.IDs += s.IDs
			so.Count += s.Count
		}
		if so.IDs == 0 {
			return Offsets{}, fmt.Errorf("%w: the training part is empty", ErrEmpty)
		}
		if so.IDs > MaxRatings {
			return Offsets{}, errTooMany
		}
		p := userBlocks
		if side == Items {
			p = itemBlocks
		}
		so.Blocks = max(min(p, int(so.IDs)), 1)
	}
	return off, nil
}

// BoundReport is a range owner's answer in round 3: for each block b =
// 1 … Blocks−1 of a side, the first row of its range whose ratings before
// it reach the block's target, or −1.
type BoundReport struct {
	Users []int64 `json:"users"`
	Items []int64 `json:"items"`
}

// BoundCandidates is round 3 on a range owner.
func (g *Ingest) BoundCandidates(off Offsets) (BoundReport, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started&onceBounds != 0 {
		return BoundReport{}, ErrRepeat
	}
	if g.lookup[Users] == nil {
		return BoundReport{}, errors.New("partition: BoundCandidates before RangeReport")
	}
	g.started |= onceBounds
	for _, side := range []Side{Users, Items} {
		if so := off.side(side); len(so.Start) != g.plan.Workers || len(so.Before) != g.plan.Workers {
			return BoundReport{}, fmt.Errorf("partition: offsets of %d ranges for %d workers", len(so.Start), g.plan.Workers)
		}
	}
	g.offsets = &off
	var rep [2][]int64
	for _, side := range []Side{Users, Items} {
		so := off.side(side)
		prefix := g.prefix[side]
		for b := 1; b < so.Blocks; b++ {
			target := balanceTarget(so.Count, b, so.Blocks)
			j := sort.Search(len(prefix), func(j int) bool { return so.Before[g.self]+prefix[j] >= target })
			c := int64(-1)
			if j < len(prefix) {
				c = so.Start[g.self] + int64(j)
			}
			rep[side] = append(rep[side], c)
		}
		g.prefix[side] = nil
	}
	return BoundReport{Users: rep[Users], Items: rep[Items]}, nil
}

// IngestLayout is everything rounds 4 and 5 need: the ranges, their
// offsets and the block bounds.
type IngestLayout struct {
	Ranges     RangePlan `json:"ranges"`
	Offsets    Offsets   `json:"offsets"`
	UserBounds []int32   `json:"user_bounds"`
	ItemBounds []int32   `json:"item_bounds"`
}

func (l *IngestLayout) bounds(s Side) []int32 {
	if s == Items {
		return l.ItemBounds
	}
	return l.UserBounds
}

// PlanBounds computes the block bounds from every range owner's answer,
// with BalancedBounds's rules.
func PlanBounds(reps []BoundReport, ranges RangePlan, off Offsets) (IngestLayout, error) {
	l := IngestLayout{Ranges: ranges, Offsets: off}
	for _, side := range []Side{Users, Items} {
		so := off.side(side)
		n := int(so.IDs)
		first := make([]int, so.Blocks)
		for b := range first {
			first[b] = n
		}
		for _, r := range reps {
			c := r.Users
			if side == Items {
				c = r.Items
			}
			if len(c) != so.Blocks-1 {
				return IngestLayout{}, fmt.Errorf("partition: %d bound candidates for %d %s blocks", len(c), so.Blocks, side)
			}
			for b, row := range c {
				if row >= 0 && row < int64(first[b+1]) {
					first[b+1] = int(row)
				}
			}
		}
		bounds := balancedFrom(n, so.Blocks, func(b int) int { return first[b] })
		if side == Items {
			l.ItemBounds = bounds
		} else {
			l.UserBounds = bounds
		}
	}
	return l, nil
}

// builder is the rank of the worker that builds block b.
func (g *Ingest) builder(b int) int { return b % g.plan.Workers }

// SetLayout starts round 4 on this worker: from now on it accepts the
// round's messages. Every worker must be given the same layout.
func (g *Ingest) SetLayout(l IngestLayout) error {
	for _, side := range []Side{Users, Items} {
		b, so := l.bounds(side), l.Offsets.side(side)
		if len(b) != so.Blocks+1 || b[0] != 0 || int64(b[len(b)-1]) != so.IDs || !slices.IsSorted(b) {
			return fmt.Errorf("partition: %s bounds %v do not match %d blocks of %d rows", side, b, so.Blocks, so.IDs)
		}
		if len(l.Ranges.side(side).Splitters) >= g.plan.Workers || len(so.Start) != g.plan.Workers {
			return fmt.Errorf("partition: a layout of %d ranges for %d workers", len(so.Start), g.plan.Workers)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.layout = &l
	for _, side := range []Side{Users, Items} {
		b := l.bounds(side)
		other := len(l.bounds(side.Other())) - 1
		for blk := g.self; blk < len(b)-1; blk += g.plan.Workers {
			lo, hi := b[blk], b[blk+1]
			g.blocks[blockKey{side, blk}] = &building{
				side: side, index: blk, lo: lo, hi: hi, ids: make([]string, hi-lo),
				needs: make([][]int32, other), needsGot: make([]int, other),
			}
		}
	}
	return nil
}

// SendBlockIDs is round 4 on a range owner: it sends each block's builder
// the IDs of the block that fall in this worker's ranges.
func (g *Ingest) SendBlockIDs(ctx context.Context, peers Peers) error {
	g.mu.Lock()
	l := g.layout
	g.mu.Unlock()
	if l == nil {
		return errors.New("partition: SendBlockIDs before SetLayout")
	}
	for _, side := range []Side{Users, Items} {
		ids := g.lookup[side].IDs()
		start := l.Offsets.side(side).Start[g.self]
		bounds := l.bounds(side)
		var w msgWriter
		for j := 0; j < len(ids); {
			row := int32(start) + int32(j)
			b := sort.Search(len(bounds)-1, func(b int) bool { return bounds[b+1] > row })
			w.reset(msgBlockIDs, side, false, int32(b), uint32(g.self), uint32(j), int64(row))
			for ; j < len(ids) && int32(start)+int32(j) < bounds[b+1] && w.len()+2+len(ids[j]) <= g.bufBytes; j++ {
				w.id(ids[j])
				w.n++
			}
			if w.n == 0 {
				return fmt.Errorf("partition: an ID does not fit a message of %d bytes", g.bufBytes)
			}
			if err := g.call(ctx, peers, g.builder(b), w.finish()); err != nil {
				return err
			}
		}
	}
	return nil
}

// answerLookup numbers the IDs of a lookup: their dense indices, −1 for
// an ID this range does not hold.
func (g *Ingest) answerLookup(m *message) ([]byte, error) {
	g.mu.Lock()
	d, off := g.lookup[m.side], g.offsets
	g.mu.Unlock()
	if d == nil || off == nil {
		return nil, ErrNotReady
	}
	start := int32(off.side(m.side).Start[g.self])
	var w msgWriter
	w.reset(msgIndices, m.side, false, -1, uint32(g.self), m.batch, 0)
	for _, id := range m.ids {
		x := int32(-1)
		if i, ok := d.LookupString(id); ok {
			x = start + i
		}
		w.u32(uint32(x))
		w.n++
	}
	return w.finish(), nil
}

// applyRoute files a message of rounds 4 and 5 (g.mu held).
func (g *Ingest) applyRoute(m *message) error {
	l := g.layout
	switch m.typ {
	case msgBlockIDs, msgNeeds:
		bk := g.blocks[blockKey{m.side, int(m.block)}]
		if bk == nil {
			return msgErrorf("%s block %d is not built by worker %d", m.side, m.block, g.self)
		}
		if m.typ == msgNeeds {
			return g.applyNeeds(bk, m)
		}
		off := m.aux - int64(bk.lo)
		if off < 0 || off+int64(len(m.ids)) > int64(len(bk.ids)) {
			return msgErrorf("IDs %d..%d outside %s block %d [%d, %d)", m.aux, m.aux+int64(len(m.ids)), m.side, m.block, bk.lo, bk.hi)
		}
		copy(bk.ids[off:], m.ids)
		bk.nIDs += len(m.ids)
	case msgRatings:
		bounds := l.bounds(m.side)
		nOther := int32(l.Offsets.side(m.side.Other()).IDs)
		if m.test && m.side != Users {
			return msgErrorf("test ratings for an item block")
		}
		for _, r := range m.rats {
			if r.row < 0 || r.row >= bounds[len(bounds)-1] || r.col < 0 || r.col >= nOther {
				return msgErrorf("rating (%d, %d) outside %d×%d", r.row, r.col, bounds[len(bounds)-1], nOther)
			}
			b := sort.Search(len(bounds)-1, func(b int) bool { return bounds[b+1] > r.row })
			bk := g.blocks[blockKey{m.side, b}]
			if bk == nil {
				return msgErrorf("%s block %d is not built by worker %d", m.side, b, g.self)
			}
			switch {
			case m.test:
				bk.test.add(r)
			case m.side == Items:
				bk.cells.add(cell{r.row, r.col, r.val})
			default:
				bk.train.add(r)
			}
		}
	case msgPairs:
		for j := range m.ids {
			g.pairs = append(g.pairs, pairRec{m.ids[j] + "\x00" + m.items[j], m.seqs[j]})
		}
	}
	return nil
}

// applyNeeds files part of what block m.from of the other side needs from
// bk: entries m.batch … of m.aux in all.
func (g *Ingest) applyNeeds(bk *building, m *message) error {
	p := int(m.from)
	if p < 0 || p >= len(bk.needs) || m.aux < 0 || m.aux > int64(bk.hi-bk.lo) {
		return msgErrorf("needs from block %d (%d rows) for a block of %d rows", p, m.aux, bk.hi-bk.lo)
	}
	if bk.needs[p] == nil {
		bk.needs[p] = make([]int32, m.aux)
	}
	off := int(m.batch)
	if int64(len(bk.needs[p])) != m.aux || off+len(m.ints) > len(bk.needs[p]) {
		return msgErrorf("needs %d..%d of %d from block %d", off, off+len(m.ints), m.aux, p)
	}
	for _, r := range m.ints {
		if r < bk.lo || r >= bk.hi {
			return msgErrorf("a need for row %d outside [%d, %d)", r, bk.lo, bk.hi)
		}
	}
	copy(bk.needs[p][off:], m.ints)
	bk.needsGot[p] += len(m.ints)
	if bk.needsGot[p] == len(bk.needs[p]) && (len(m.ints) > 0 || m.aux == 0) {
		bk.complete++
		close(g.changed)
		g.changed = make(chan struct{})
	}
	return nil
}

// routeBatch is the number of ratings a router numbers at once.
const routeBatch = 1 << 15

// Route is round 4 for one shard, whose file r reads: it parses the shard
// again, numbers its IDs by asking their range owners, and sends each
// rating to its blocks' builders.
func (g *Ingest) Route(ctx context.Context, shard int, r io.ReaderAt, peers Peers) error {
	g.mu.Lock()
	l := g.layout
	g.mu.Unlock()
	if l == nil {
		return errors.New("partition: Route before SetLayout")
	}
	if shard < 0 || shard >= len(g.plan.Shards) {
		return fmt.Errorf("partition: shard %d of %d", shard, len(g.plan.Shards))
	}
	sh := g.plan.Shards[shard]
	rt := newRouter(g, l, shard, peers)
	_, err := ScanShard(ctx, r, &g.plan.Files[sh.File], sh, g.plan.Scan, func(u, i []byte, v float32, ord int64) error {
		rt.add(u, i, v, uint64(shard)<<seqShift|uint64(ord), sh.Test || g.plan.Split.InTest(u, i))
		if len(rt.recs) >= routeBatch || len(rt.arena) >= 4*g.bufBytes {
			return rt.resolve(ctx)
		}
		return nil
	})
	if err == nil {
		err = rt.resolve(ctx)
	}
	if err == nil {
		err = rt.flushAll(ctx)
	}
	return err
}

// router batches one shard's ratings for numbering and routing.
type router struct {
	g     *Ingest
	l     *IngestLayout
	shard uint32
	peers Peers
	arena []byte
	recs  []routeRec
	// out[k][to]: ratings for worker to's user blocks (k 0), user blocks'
	// test sets (k 2); then test pairs of unknown IDs for their pair
	// owner (k 3). k 1 (item blocks) stays empty: item blocks get their
	// ratings from Transpose.
	out   [4][]msgWriter
	batch [4][]uint32
}

type routeRec struct {
	u, i [2]int32 // offset and length in arena
	val  float32
	seq  uint64
	test bool
}

func newRouter(g *Ingest, l *IngestLayout, shard int, peers Peers) *router {
	rt := &router{g: g, l: l, shard: uint32(shard), peers: peers}
	for k := range rt.out {
		rt.out[k] = make([]msgWriter, g.plan.Workers)
		rt.batch[k] = make([]uint32, g.plan.Workers)
		for to := range rt.out[k] {
			rt.reset(k, to)
		}
	}
	return rt
}

func (rt *router) reset(k, to int) {
	typ, side, test := uint8(msgRatings), Users, false
	switch k {
	case 1:
		side = Items
	case 2:
		test = true
	case 3:
		typ = msgPairs
	}
	rt.out[k][to].reset(typ, side, test, -1, rt.shard, rt.batch[k][to], 0)
}

func (rt *router) add(u, i []byte, v float32, seq uint64, test bool) {
	o := int32(len(rt.arena))
	rt.arena = append(rt.arena, u...)
	rt.arena = append(rt.arena, i...)
	rt.recs = append(rt.recs, routeRec{u: [2]int32{o, int32(len(u))}, i: [2]int32{o + int32(len(u)), int32(len(i))}, val: v, seq: seq, test: test})
}

func (rt *router) str(x [2]int32) []byte { return rt.arena[x[0] : x[0]+x[1]] }

// resolve numbers the batch's IDs and routes its ratings.
func (rt *router) resolve(ctx context.Context) error {
	if len(rt.recs) == 0 {
		return nil
	}
	var idx [2][]int32
	for _, side := range []Side{Users, Items} {
		// The distinct IDs of the batch, by range owner.
		sr := rt.l.Ranges.side(side)
		pos := map[string]int32{}
		var ids []string
		which := make([]int32, len(rt.recs))
		for j := range rt.recs {
			x := rt.recs[j].u
			if side == Items {
				x = rt.recs[j].i
			}
			b := rt.str(x)
			p, ok := pos[string(b)]
			if !ok {
				p = int32(len(ids))
				s := string(b)
				pos[s] = p
				ids = append(ids, s)
			}
			which[j] = p
		}
		got, err := rt.lookup(ctx, side, sr, ids)
		if err != nil {
			return err
		}
		for j := range which {
			which[j] = got[which[j]]
		}
		idx[side] = which
	}
	for j := range rt.recs {
		r := &rt.recs[j]
		u, i := idx[Users][j], idx[Items][j]
		switch {
		case !r.test && (u < 0 || i < 0):
			return fmt.Errorf("partition: training pair (%q, %q) has no dense index: the ranges lost an ID", rt.str(r.u), rt.str(r.i))
		case !r.test:
			if err := rt.send(ctx, 0, rt.g.builder(blockOf(rt.l.UserBounds, u)), rating{u, i, r.val, r.seq}); err != nil {
				return err
			}
		case u >= 0 && i >= 0:
			if err := rt.send(ctx, 2, rt.g.builder(blockOf(rt.l.UserBounds, u)), rating{u, i, r.val, r.seq}); err != nil {
				return err
			}
		default:
			if err := rt.sendPair(ctx, string(rt.str(r.u)), string(rt.str(r.i)), r.seq); err != nil {
				return err
			}
		}
	}
	rt.arena, rt.recs = rt.arena[:0], rt.recs[:0]
	return nil
}

func blockOf(bounds []int32, row int32) int {
	return sort.Search(len(bounds)-1, func(b int) bool { return bounds[b+1] > row })
}

// lookup numbers ids (of one side) by asking their range owners, in
// messages of at most the buffer size.
func (rt *router) lookup(ctx context.Context, side Side, sr *SideRanges, ids []string) ([]int32, error) {
	out := make([]int32, len(ids))
	byOwner := make([][]int32, rt.g.plan.Workers)
	for j, id := range ids {
		o := sr.owner(id)
		byOwner[o] = append(byOwner[o], int32(j))
	}
	var w msgWriter
	for to, list := range byOwner {
		for len(list) > 0 {
			w.reset(msgLookup, side, false, -1, rt.shard, 0, 0)
			k := 0
			for ; k < len(list) && w.len()+2+len(ids[list[k]]) <= rt.g.bufBytes; k++ {
				w.id(ids[list[k]])
				w.n++
			}
			reply, err := rt.peers.Call(ctx, to, w.finish())
			if err != nil {
				return nil, fmt.Errorf("partition: numbering IDs at worker %d: %w", to, err)
			}
			m, err := decodeMessage(reply)
			if err != nil {
				return nil, err
			}
			if m.typ != msgIndices || len(m.ints) != k {
				return nil, msgErrorf("a lookup of %d IDs answered with %d indices (type %d)", k, len(m.ints), m.typ)
			}
			for x, j := range list[:k] {
				out[j] = m.ints[x]
			}
			list = list[k:]
		}
	}
	return out, nil
}

func (rt *router) send(ctx context.Context, k, to int, r rating) error {
	w := &rt.out[k][to]
	if w.len()+ratingSize > rt.g.bufBytes {
		if err := rt.flush(ctx, k, to); err != nil {
			return err
		}
	}
	w.rating(r)
	w.n++
	return nil
}

func (rt *router) sendPair(ctx context.Context, u, i string, seq uint64) error {
	to := pairOwner(u, i, rt.g.plan.Workers)
	w := &rt.out[3][to]
	if w.len()+2+len(u)+2+len(i)+8 > rt.g.bufBytes {
		if err := rt.flush(ctx, 3, to); err != nil {
			return err
		}
	}
	w.id(u)
	w.id(i)
	w.u64(seq)
	w.n++
	return nil
}

func (rt *router) flush(ctx context.Context, k, to int) error {
	w := &rt.out[k][to]
	if w.n == 0 {
		return nil
	}
	msg := w.finish()
	rt.batch[k][to]++
	rt.reset(k, to)
	return rt.g.call(ctx, rt.peers, to, msg)
}

func (rt *router) flushAll(ctx context.Context) error {
	for k := range rt.out {
		for to := range rt.out[k] {
			if err := rt.flush(ctx, k, to); err != nil {
				return err
			}
		}
	}
	return nil
}

// BlockReport describes one block a worker built and stored.
type BlockReport struct {
	Side    Side    `json:"side"`
	Index   int     `json:"index"`
	Rows    int64   `json:"rows"`
	Ratings int64   `json:"ratings"`
	Bytes   int64   `json:"bytes"` // what the store callback reported
	Needs   []int64 `json:"needs"` // rows needed from each block of the other side
}

// BuildReport is a worker's report after round 5.
type BuildReport struct {
	Blocks []BlockReport `json:"blocks"`
	// Duplicates are repeated training pairs (counted on user blocks).
	Duplicates int64 `json:"duplicates"`
	// TestKept are distinct test pairs of known IDs, TestDuplicates the
	// repeats among them; TestUnknown and TestUnknownDuplicates the same
	// for test pairs naming an ID absent from training.
	TestKept              int64 `json:"test_kept"`
	TestDuplicates        int64 `json:"test_duplicates"`
	TestUnknown           int64 `json:"test_unknown"`
	TestUnknownDuplicates int64 `json:"test_unknown_duplicates"`
}

// StoreFunc stores a finished block and returns its stored size. The
// block must not be changed afterwards: Transpose reads the user blocks'
// ratings.
type StoreFunc func(ctx context.Context, blk *Block) (int64, error)

// BuildUsers is round 5a: it sorts the ratings of every user block this
// worker builds, tells each item block's builder which item rows the
// block needs from it, and stores the block. A user block's send lists
// (the rows each item block needs from it) are its users with a training
// rating in that item block — item blocks hold training ratings only — so
// they are derived here rather than waited for. The blocks are kept for
// Transpose.
func (g *Ingest) BuildUsers(ctx context.Context, peers Peers, store StoreFunc) (BuildReport, error) {
	g.mu.Lock()
	l := g.layout
	if l == nil {
		g.mu.Unlock()
		return BuildReport{}, errors.New("partition: BuildUsers before SetLayout")
	}
	if err := g.once(onceUsers); err != nil {
		g.mu.Unlock()
		return BuildReport{}, err
	}
	mine := g.mine(Users)
	pairs := g.pairs
	g.pairs = nil
	g.lookup = [2]*Dict{}
	g.mu.Unlock()
	var rep BuildReport
	rep.TestUnknown, rep.TestUnknownDuplicates = countPairs(pairs)
	for _, bk := range mine {
		g.mu.Lock()
		train, test := bk.train, bk.test
		bk.train, bk.test = ratingList{}, ratingList{}
		g.mu.Unlock()
		blk, dups, testDups, err := assemble(bk, train, test, l.ItemBounds, int(l.Offsets.Items.IDs))
		if err != nil {
			return rep, err
		}
		rep.Duplicates += dups
		rep.TestDuplicates += testDups
		rep.TestKept += blk.Test.NNZ()
		for q := range len(l.ItemBounds) - 1 {
			if err := g.sendNeeds(ctx, peers, blk, q); err != nil {
				return rep, err
			}
		}
		blk.SendPtr, blk.Send = sendLists(blk)
		br, err := g.finish(ctx, bk, blk, store)
		if err != nil {
			return rep, err
		}
		rep.Blocks = append(rep.Blocks, br)
		g.mu.Lock()
		g.userBuilt = append(g.userBuilt, blk)
		g.mu.Unlock()
	}
	return rep, nil
}

// sendLists derives a user block's send lists from its training ratings:
// for item block q, the block's rows with a rating of an item in q, in
// row order.
func sendLists(blk *Block) ([]int32, []int32) {
	nq := len(blk.NeedPtr) - 1
	lists := make([][]int32, nq)
	for r := range blk.Len() {
		q := 0
		for _, c := range blk.Rows.Col[blk.Rows.Ptr[r]:blk.Rows.Ptr[r+1]] {
			for c >= blk.NeedPtr[q+1] {
				q++
			}
			if l := lists[q]; len(l) == 0 || l[len(l)-1] != int32(r) {
				lists[q] = append(lists[q], int32(r))
			}
		}
	}
	ptr := make([]int32, nq+1)
	n := 0
	for q, l := range lists {
		n += len(l)
		ptr[q+1] = int32(n)
	}
	send := make([]int32, 0, n)
	for _, l := range lists {
		send = append(send, l...)
	}
	return ptr, send
}

// Transpose is round 5b: every user block this worker built sends its
// training ratings, repeats already resolved, to the builders of their
// item blocks. It may be repeated (the messages are the same, and
// duplicates are ignored). Item blocks are thus built from what the user blocks kept
// and never hold the raw copies: a worker holds its user blocks' ratings
// while it sorts them, and its item blocks' only after.
func (g *Ingest) Transpose(ctx context.Context, peers Peers) error {
	g.mu.Lock()
	l, blocks := g.layout, g.userBuilt
	g.mu.Unlock()
	if l == nil {
		return errors.New("partition: Transpose before SetLayout")
	}
	out := make([]msgWriter, g.plan.Workers)
	batch := make([]uint32, g.plan.Workers)
	for _, blk := range blocks {
		from := uint32(blk.Index)
		for to := range out {
			batch[to] = 0
			out[to].reset(msgRatings, Items, false, -1, from, 0, 0)
		}
		flush := func(to int) error {
			w := &out[to]
			if w.n == 0 {
				return nil
			}
			msg := w.finish()
			batch[to]++
			w.reset(msgRatings, Items, false, -1, from, batch[to], 0)
			return g.call(ctx, peers, to, msg)
		}
		for r := range blk.Len() {
			u := blk.Start + int32(r)
			for j := blk.Rows.Ptr[r]; j < blk.Rows.Ptr[r+1]; j++ {
				i := blk.Needed[blk.Rows.Col[j]]
				to := g.builder(blockOf(l.ItemBounds, i))
				if out[to].len()+ratingSize > g.bufBytes {
					if err := flush(to); err != nil {
						return err
					}
				}
				out[to].rating(rating{row: i, col: u, val: blk.Rows.Val[j]})
				out[to].n++
			}
		}
		for to := range out {
			if err := flush(to); err != nil {
				return err
			}
		}
	}
	return nil
}

// BuildItems is round 5c: it sorts the ratings of every item block this
// worker builds, fills its send lists from what the user blocks said they
// need, and stores it.
func (g *Ingest) BuildItems(ctx context.Context, store StoreFunc) (BuildReport, error) {
	g.mu.Lock()
	l := g.layout
	if l == nil {
		g.mu.Unlock()
		return BuildReport{}, errors.New("partition: BuildItems before SetLayout")
	}
	if err := g.once(onceItems); err != nil {
		g.mu.Unlock()
		return BuildReport{}, err
	}
	mine := g.mine(Items)
	g.userBuilt = nil // every Transpose is done
	g.mu.Unlock()
	var rep BuildReport
	for _, bk := range mine {
		g.mu.Lock()
		cells := bk.cells
		bk.cells = cellList{}
		g.mu.Unlock()
		blk := assembleCells(bk, cells, l.UserBounds, int(l.Offsets.Users.IDs))
		if err := g.waitNeeds(ctx, bk); err != nil {
			return rep, err
		}
		g.mu.Lock()
		blk.SendPtr = make([]int32, len(bk.needs)+1)
		n := 0
		for _, nd := range bk.needs {
			n += len(nd)
		}
		blk.Send = make([]int32, 0, n)
		for p, nd := range bk.needs {
			for _, r := range nd {
				blk.Send = append(blk.Send, r-bk.lo)
			}
			blk.SendPtr[p+1] = int32(len(blk.Send))
		}
		bk.needs = nil
		g.mu.Unlock()
		br, err := g.finish(ctx, bk, blk, store)
		if err != nil {
			return rep, err
		}
		rep.Blocks = append(rep.Blocks, br)
	}
	return rep, nil
}

// mine lists the blocks of side this worker builds (g.mu held).
func (g *Ingest) mine(side Side) []*building {
	var out []*building
	for b := g.self; b < len(g.layout.bounds(side))-1; b += g.plan.Workers {
		out = append(out, g.blocks[blockKey{side, b}])
	}
	return out
}

// finish gives a built block its IDs, stores it and reports it.
func (g *Ingest) finish(ctx context.Context, bk *building, blk *Block, store StoreFunc) (BlockReport, error) {
	g.mu.Lock()
	if bk.nIDs != len(bk.ids) {
		g.mu.Unlock()
		return BlockReport{}, fmt.Errorf("partition: %s block %d received %d of its %d IDs", bk.side, bk.index, bk.nIDs, len(bk.ids))
	}
	blk.IDs, bk.ids = bk.ids, nil
	g.mu.Unlock()
	size, err := store(ctx, blk)
	if err != nil {
		return BlockReport{}, err
	}
	br := BlockReport{Side: blk.Side, Index: blk.Index, Rows: int64(blk.Len()), Ratings: blk.Rows.NNZ(), Bytes: size}
	for q := range len(blk.NeedPtr) - 1 {
		br.Needs = append(br.Needs, int64(len(blk.NeededFrom(q))))
	}
	return br, nil
}

// countPairs counts the distinct pairs among test pairs of unknown IDs,
// and the repeats (the same pair at another position of the input).
func countPairs(pairs []pairRec) (distinct, dups int64) {
	slices.SortFunc(pairs, func(a, b pairRec) int {
		return cmp.Or(strings.Compare(a.pair, b.pair), cmp.Compare(a.seq, b.seq))
	})
	for j := range pairs {
		switch {
		case j == 0 || pairs[j].pair != pairs[j-1].pair:
			distinct++
		case pairs[j].seq != pairs[j-1].seq:
			dups++
		}
	}
	return distinct, dups
}

// waitNeeds waits until every block of the other side has said what it
// needs from bk.
func (g *Ingest) waitNeeds(ctx context.Context, bk *building) error {
	for {
		g.mu.Lock()
		done, ch := bk.complete == len(bk.needs), g.changed
		g.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// sendNeeds sends block q of the other side the rows blk needs from it.
func (g *Ingest) sendNeeds(ctx context.Context, peers Peers, blk *Block, q int) error {
	rows := blk.NeededFrom(q)
	var w msgWriter
	for off := 0; off == 0 || off < len(rows); {
		w.reset(msgNeeds, blk.Side.Other(), false, int32(q), uint32(blk.Index), uint32(off), int64(len(rows)))
		k := min(len(rows)-off, (g.bufBytes-msgMinSize)/4)
		for _, r := range rows[off : off+k] {
			w.u32(uint32(r))
		}
		w.n = uint32(k)
		if err := g.call(ctx, peers, g.builder(q), w.finish()); err != nil {
			return err
		}
		off += k
		if len(rows) == 0 {
			break
		}
	}
	return nil
}

// assemble sorts a block's ratings into its CSR rows (columns ascending;
// of a repeated pair the copy latest in the input is kept), and finds the
// rows it needs from each block of the other side. It counts the repeats
// of training and of test pairs.
func assemble(bk *building, train, test ratingList, otherBounds []int32, nOther int) (*Block, int64, int64, error) {
	n := int(bk.hi - bk.lo)
	blk := &Block{Side: bk.side, Index: bk.index, Start: bk.lo}
	rows, dups := sortRows(train, bk.lo, n)
	tst, testDups := sortRows(test, bk.lo, n)
	// Needed: the other side's rows the training and test ratings name.
	need := newRankSet(nOther)
	for _, c := range rows.Col {
		need.add(c)
	}
	for _, c := range tst.Col {
		need.add(c)
	}
	blk.Needed = need.finish()
	for j, c := range rows.Col {
		rows.Col[j] = need.rank(c)
	}
	for j, c := range tst.Col {
		tst.Col[j] = need.rank(c)
	}
	blk.Rows, blk.Test = rows, tst
	blk.NeedPtr = make([]int32, len(otherBounds))
	for q, b := range otherBounds {
		blk.NeedPtr[q] = int32(sort.Search(len(blk.Needed), func(j int) bool { return blk.Needed[j] >= b }))
	}
	return blk, dups, testDups, nil
}

// assembleCells is assemble for an item block built from Transpose's
// cells: no test ratings, no repeats.
func assembleCells(bk *building, cells cellList, otherBounds []int32, nOther int) *Block {
	n := int(bk.hi - bk.lo)
	blk := &Block{Side: bk.side, Index: bk.index, Start: bk.lo}
	rows := sortCells(cells, bk.lo, n)
	tst, _ := sortRows(ratingList{}, bk.lo, n)
	need := newRankSet(nOther)
	for _, c := range rows.Col {
		need.add(c)
	}
	blk.Needed = need.finish()
	for j, c := range rows.Col {
		rows.Col[j] = need.rank(c)
	}
	blk.Rows, blk.Test = rows, tst
	blk.NeedPtr = make([]int32, len(otherBounds))
	for q, b := range otherBounds {
		blk.NeedPtr[q] = int32(sort.Search(len(blk.Needed), func(j int) bool { return blk.Needed[j] >= b }))
	}
	return blk
}

// sortCells sorts the cells of rows lo … lo+n−1 into a CSR matrix with
// global columns, ascending within a row. A cell is packed into one
// uint64, column above value bits, so that a row sorts as plain integers
// and the sort needs 8 bytes a rating beside the cells (which it lets go
// of chunk by chunk) rather than a 16-byte copy.
func sortCells(cs cellList, lo int32, n int) CSR {
	ptr := make([]int64, n+1)
	for _, c := range cs.chunks {
		for _, x := range c {
			ptr[x.row-lo+1]++
		}
	}
	for j := range n {
		ptr[j+1] += ptr[j]
	}
	packed := make([]uint64, cs.n)
	fill := slices.Clone(ptr[:n])
	for k, c := range cs.chunks {
		for _, x := range c {
			p := &fill[x.row-lo]
			packed[*p] = uint64(uint32(x.col))<<32 | uint64(math.Float32bits(x.val))
			*p++
		}
		cs.chunks[k] = nil
	}
	for j := range n {
		slices.Sort(packed[ptr[j]:ptr[j+1]])
	}
	col := make([]int32, len(packed))
	val := make([]float32, len(packed))
	for j, x := range packed {
		col[j], val[j] = int32(x>>32), math.Float32frombits(uint32(x))
	}
	return CSR{Ptr: ptr, Col: col, Val: val}
}

// sortRows sorts ratings of rows lo … lo+n−1 into a CSR matrix with
// global columns, ascending within a row; of the copies of one (row,
// column) the one of largest seq is kept and the others counted (copies
// of one seq are one rating delivered twice, dropped without counting).
//
// It sorts the list in place — by row with a counting sort that swaps
// records between their rows' slots, then each row in a small scratch
// slice — and lets go of its chunks as the CSR arrays fill: it needs the
// ratings and 8 bytes a rating beside them, not a second copy.
func sortRows(rs ratingList, lo int32, n int) (CSR, int64) {
	ptr := make([]int64, n+1)
	for _, c := range rs.chunks {
		for _, r := range c {
			ptr[r.row-lo+1]++
		}
	}
	for j := range n {
		ptr[j+1] += ptr[j]
	}
	at := func(i int64) *packedRating { return &rs.chunks[i/ratingChunk][i%ratingChunk] }
	fill := slices.Clone(ptr[:n])
	for b := range n {
		for fill[b] < ptr[b+1] {
			x := at(fill[b])
			r := int(x.row - lo)
			if r == b {
				fill[b]++
				continue
			}
			y := at(fill[r])
			*x, *y = *y, *x
			fill[r]++
		}
	}
	type entry struct {
		col int32
		val float32
		seq uint64
	}
	var row []entry
	col := make([]int32, 0, rs.n)
	val := make([]float32, 0, rs.n)
	var dups int64
	out := make([]int64, n+1)
	freed := int64(0)
	for j := range n {
		row = row[:0]
		for i := ptr[j]; i < ptr[j+1]; i++ {
			r := at(i)
			row = append(row, entry{r.col, r.val, r.seq()})
		}
		slices.SortFunc(row, func(a, b entry) int { return cmp.Or(cmp.Compare(a.col, b.col), cmp.Compare(a.seq, b.seq)) })
		for k := range row {
			if k+1 < len(row) && row[k+1].col == row[k].col {
				if row[k+1].seq != row[k].seq {
					dups++ // a later copy follows: it wins
				}
				continue
			}
			col = append(col, row[k].col)
			val = append(val, row[k].val)
		}
		out[j+1] = int64(len(col))
		for ; freed < ptr[j+1]/ratingChunk; freed++ {
			rs.chunks[freed] = nil // every rating of it is in the CSR arrays now
		}
	}
	return CSR{Ptr: out, Col: slices.Clip(col), Val: slices.Clip(val)}, dups
}

// ratingList collects ratings in chunks of fixed size: it never copies
// what it holds to grow, so it takes its ratings' size and little more.
// It keeps them as packed 20-byte records (a rating with its 64-bit
// position is 24 bytes in memory, 4 of them padding).
type ratingList struct {
	chunks [][]packedRating
	n      int
}

// packedRating is a rating with its position in two 32-bit halves.
type packedRating struct {
	row, col     int32
	val          float32
	seqLo, seqHi uint32
}

func (p *packedRating) seq() uint64 { return uint64(p.seqHi)<<32 | uint64(p.seqLo) }

const ratingChunk = 1 << 14

func (l *ratingList) add(r rating) {
	if k := len(l.chunks); k == 0 || len(l.chunks[k-1]) == ratingChunk {
		l.chunks = append(l.chunks, make([]packedRating, 0, ratingChunk))
	}
	c := &l.chunks[len(l.chunks)-1]
	*c = append(*c, packedRating{r.row, r.col, r.val, uint32(r.seq), uint32(r.seq >> 32)})
	l.n++
}

// cell is a rating without its input position: 12 bytes.
type cell struct {
	row, col int32
	val      float32
}

// cellList is ratingList for cells.
type cellList struct {
	chunks [][]cell
	n      int
}

func (l *cellList) add(c cell) {
	if k := len(l.chunks); k == 0 || len(l.chunks[k-1]) == ratingChunk {
		l.chunks = append(l.chunks, make([]cell, 0, ratingChunk))
	}
	ch := &l.chunks[len(l.chunks)-1]
	*ch = append(*ch, c)
	l.n++
}

// rankSet is a set of indices below n with rank queries: rank(x) is the
// number of members below x, in constant time.
type rankSet struct {
	words []uint64
	ranks []int32 // members before each word
}

func newRankSet(n int) *rankSet { return &rankSet{words: make([]uint64, (n+63)/64)} }

func (s *rankSet) add(x int32) { s.words[x>>6] |= 1 << (x & 63) }

// finish fixes the set and returns its members, ascending.
func (s *rankSet) finish() []int32 {
	s.ranks = make([]int32, len(s.words))
	var n int32
	for w, word := range s.words {
		s.ranks[w] = n
		n += int32(bits.OnesCount64(word))
	}
	out := make([]int32, 0, n)
	for w, word := range s.words {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			out = append(out, int32(w*64+b))
			word &= word - 1
		}
	}
	return out
}

func (s *rankSet) rank(x int32) int32 {
	w := x >> 6
	return s.ranks[w] + int32(bits.OnesCount64(s.words[w]&(1<<(x&63)-1)))
}

// IngestSummary is the outcome of a distributed ingest, what a single
// process's Dataset and Layout would report.
type IngestSummary struct {
	Users, Items int
	TrainRatings int64
	// TestRatings counts the distinct test pairs, TestSkipped those of
	// them naming an ID absent from training.
	TestRatings, TestSkipped int64
	SkippedLines             int64
	Duplicates               int64
	UserBlocks, ItemBlocks   int
	// UserNeeds[p][q] is how many rows user block p needs from item
	// block q; ItemNeeds[q][p] likewise.
	UserNeeds, ItemNeeds [][]int64
	// BlockBytes and BlockRows are per block, user blocks then item
	// blocks.
	BlockBytes, BlockRows []int64
}

// CheckScan is the check after round 1: every file must hold a rating
// (the error is Scan's "FILE: no ratings", for the first file without
// one) and every shard must have been scanned once.
func CheckScan(plan *IngestPlan, reps []ShardReport) error {
	records := make([]int64, len(plan.Files))
	seen := make([]bool, len(plan.Shards))
	for _, r := range reps {
		if r.Shard < 0 || r.Shard >= len(plan.Shards) || seen[r.Shard] {
			return fmt.Errorf("partition: shard %d reported twice or out of range", r.Shard)
		}
		seen[r.Shard] = true
		records[plan.Shards[r.Shard].File] += r.Records
	}
	if k := slices.Index(seen, false); k >= 0 {
		return fmt.Errorf("partition: shard %d was not scanned", k)
	}
	for f, n := range records {
		if n == 0 {
			return &emptyError{file: plan.Files[f].Name}
		}
	}
	return nil
}

// Summarize adds up the reports of an ingest: the shard reports of round
// 1 and every worker's build report.
func Summarize(plan *IngestPlan, l *IngestLayout, shards []ShardReport, builds []BuildReport) (IngestSummary, error) {
	s := IngestSummary{
		Users: int(l.Offsets.Users.IDs), Items: int(l.Offsets.Items.IDs),
		UserBlocks: len(l.UserBounds) - 1, ItemBlocks: len(l.ItemBounds) - 1,
	}
	for _, r := range shards {
		s.SkippedLines += r.Skipped
	}
	s.UserNeeds = make([][]int64, s.UserBlocks)
	s.ItemNeeds = make([][]int64, s.ItemBlocks)
	s.BlockBytes = make([]int64, s.UserBlocks+s.ItemBlocks)
	s.BlockRows = make([]int64, s.UserBlocks+s.ItemBlocks)
	var testDups int64
	for _, b := range builds {
		s.Duplicates += b.Duplicates
		s.TestRatings += b.TestKept + b.TestUnknown
		s.TestSkipped += b.TestUnknown
		testDups += b.TestDuplicates + b.TestUnknownDuplicates
		for _, br := range b.Blocks {
			needs, at := s.UserNeeds, br.Index
			if br.Side == Items {
				needs, at = s.ItemNeeds, s.UserBlocks+br.Index
			} else {
				s.TrainRatings += br.Ratings
			}
			if br.Index < 0 || br.Index >= len(needs) || needs[br.Index] != nil {
				return IngestSummary{}, fmt.Errorf("partition: %s block %d reported twice or out of range", br.Side, br.Index)
			}
			needs[br.Index] = br.Needs
			s.BlockBytes[at], s.BlockRows[at] = br.Bytes, br.Rows
		}
	}
	for _, needs := range [][][]int64{s.UserNeeds, s.ItemNeeds} {
		if k := slices.IndexFunc(needs, func(n []int64) bool { return n == nil }); k >= 0 {
			return IngestSummary{}, fmt.Errorf("partition: block %d was not built", k)
		}
	}
	// A fraction split comes from one input: its repeats are one count
	// (NewDataset's rule).
	if plan.Split.TestFraction > 0 {
		s.Duplicates += testDups
	}
	return s, nil
}
