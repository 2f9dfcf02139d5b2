package partition

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// localPeers delivers ingest messages by calling the receivers' Handle
// directly, retrying ErrNotReady as a transport would. Every other
// message is delivered twice, as a retry after a lost reply would: the
// result must not change.
type localPeers struct {
	nodes  []*Ingest
	repeat bool // deliver every other message twice
	mu     sync.Mutex
	calls  int
	bytes  int64
	most   int // the largest message
}

func (p *localPeers) Call(ctx context.Context, to int, msg []byte) ([]byte, error) {
	p.mu.Lock()
	p.calls++
	p.bytes += int64(len(msg))
	p.most = max(p.most, len(msg))
	twice := p.repeat && p.calls%2 == 0
	p.mu.Unlock()
	for {
		reply, err := p.nodes[to].Handle(msg)
		if errors.Is(err, ErrNotReady) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Millisecond):
			}
			continue
		}
		if err == nil && twice {
			reply, err = p.nodes[to].Handle(msg)
		}
		return reply, err
	}
}

// ingestInput is one input of an ingest test: training files, test
// files, options.
type ingestInput struct {
	train, test [][]byte
	scan        ScanOptions
	split       SplitOptions
}

func (in ingestInput) names(test bool) []string {
	files := in.train
	prefix := "train"
	if test {
		files, prefix = in.test, "test"
	}
	var out []string
	for k := range files {
		out = append(out, fmt.Sprintf("%s%d.csv", prefix, k))
	}
	return out
}

// ingestRun is the outcome of a distributed ingest.
type ingestRun struct {
	blocks  map[blockKey][]byte // encoded
	layout  IngestLayout
	summary IngestSummary
	peers   *localPeers
}

// runIngest runs a distributed ingest of in on w in-process workers, with
// the files indexed in chunks of chunk bytes and cut into about shards
// shards, and p×q blocks requested. Shards are handed to the workers in an
// order that depends on rot, as a coordinator might.
func runIngest(t testing.TB, in ingestInput, w, shards int, chunk int64, p, q, rot int) (*ingestRun, error) {
	t.Helper()
	ctx := context.Background()
	plan := IngestPlan{Workers: w, Scan: in.scan, Split: in.split, UserBlocks: p, ItemBlocks: q, BufferBytes: MinBufferBytes}
	if _, bench := t.(*testing.B); bench {
		plan.BufferBytes = 0 // the default
	}
	var data [][]byte
	for k, test := range []bool{false, true} {
		files := [][][]byte{in.train, in.test}[k]
		var ixs []FileIndex
		for j, f := range files {
			ix, err := indexBytes(t, in.names(test)[j], f, chunk, 0, in.scan.Format)
			if err != nil {
				return nil, err
			}
			ixs = append(ixs, ix)
			data = append(data, f)
		}
		for _, sh := range CutShards(ixs, in.scan.Format, shards, test) {
			sh.File += len(plan.Files)
			plan.Shards = append(plan.Shards, sh)
		}
		plan.Files = append(plan.Files, ixs...)
	}
	_, bench := t.(*testing.B)
	peers := &localPeers{repeat: !bench}
	for self := range w {
		g, err := NewIngest(plan, self)
		if err != nil {
			t.Fatal(err)
		}
		peers.nodes = append(peers.nodes, g)
	}
	// each runs f on every worker at once and returns the first error.
	each := func(f func(self int) error) error {
		errs := make([]error, w)
		var wg sync.WaitGroup
		for self := range w {
			wg.Go(func() { errs[self] = f(self) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	owner := func(shard int) int { return (shard + rot) % w }
	reader := func(shard int) *bytes.Reader { return bytes.NewReader(data[plan.Shards[shard].File]) }

	// Round 1. The job's error is the first failing shard's.
	reps := make([]ShardReport, len(plan.Shards))
	errs := make([]error, len(plan.Shards))
	each(func(self int) error {
		for k := range plan.Shards {
			if owner(k) == self {
				reps[k], errs[k] = peers.nodes[self].ScanIDs(ctx, k, reader(k), peers)
			}
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if err := CheckScan(&plan, reps); err != nil {
		return nil, err
	}
	// Rounds 2 and 3.
	var dicts []DictReport
	for _, g := range peers.nodes {
		dicts = append(dicts, g.DictReport())
	}
	ranges := PlanRanges(dicts, w)
	if err := each(func(self int) error { return peers.nodes[self].SendRanges(ctx, ranges, peers) }); err != nil {
		t.Fatal(err)
	}
	var rr []RangeReport
	for _, g := range peers.nodes {
		r, err := g.RangeReport()
		if err != nil {
			t.Fatal(err)
		}
		rr = append(rr, r)
	}
	off, err := PlanOffsets(rr, p, q)
	if err != nil {
		return nil, err
	}
	var br []BoundReport
	for _, g := range peers.nodes {
		b, err := g.BoundCandidates(off)
		if err != nil {
			t.Fatal(err)
		}
		br = append(br, b)
	}
	layout, err := PlanBounds(br, ranges, off)
	if err != nil {
		t.Fatal(err)
	}
	// Round 4: half the workers get the layout late, so that the others'
	// messages meet ErrNotReady.
	each(func(self int) error {
		if self%2 == 1 {
			time.Sleep(5 * time.Millisecond)
		}
		return peers.nodes[self].SetLayout(layout)
	})
	err = each(func(self int) error {
		g := peers.nodes[self]
		if err := g.SendBlockIDs(ctx, peers); err != nil {
			return err
		}
		for k := range plan.Shards {
			if owner(k) == self {
				if err := g.Route(ctx, k, reader(k), peers); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Round 5: user blocks, the transposition, item blocks, each a
	// barrier.
	run := &ingestRun{blocks: map[blockKey][]byte{}, layout: layout, peers: peers}
	var mu sync.Mutex
	store := func(_ context.Context, blk *Block) (int64, error) {
		data, err := blk.MarshalBinary()
		if err != nil {
			return 0, err
		}
		mu.Lock()
		defer mu.Unlock()
		k := blockKey{blk.Side, blk.Index}
		if run.blocks[k] != nil {
			return 0, fmt.Errorf("%s block %d stored twice", blk.Side, blk.Index)
		}
		run.blocks[k] = data
		return int64(len(data)), nil
	}
	builds := make([]BuildReport, 2*w)
	for _, step := range []func(self int) error{
		func(self int) (err error) {
			builds[self], err = peers.nodes[self].BuildUsers(ctx, peers, store)
			return err
		},
		func(self int) error { return peers.nodes[self].Transpose(ctx, peers) },
		func(self int) (err error) { builds[w+self], err = peers.nodes[self].BuildItems(ctx, store); return err },
	} {
		if err := each(step); err != nil {
			t.Fatal(err)
		}
	}
	if run.summary, err = Summarize(&plan, &layout, reps, builds); err != nil {
		t.Fatal(err)
	}
	if peers.most > plan.bufferBytes() {
		t.Fatalf("a message of %d bytes, over the %d-byte bound", peers.most, plan.bufferBytes())
	}
	return run, nil
}

// singleIngest is the single-process ingest of in, the reference: every
// file scanned in order into one Builder, then NewDataset.
func singleIngest(t testing.TB, in ingestInput) (*Dataset, int64, error) {
	t.Helper()
	var skipped int64
	read := func(files [][]byte, names []string) (*Builder, error) {
		b := NewBuilder()
		for k, f := range files {
			opts := in.scan
			opts.Name = names[k]
			st, err := Scan(context.Background(), bytes.NewReader(f), opts, b.Add)
			skipped += st.Skipped
			if err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	train, err := read(in.train, in.names(false))
	if err != nil {
		return nil, 0, err
	}
	var test *Builder
	if len(in.test) > 0 {
		if test, err = read(in.test, in.names(true)); err != nil {
			return nil, 0, err
		}
	}
	ds, err := NewDataset(train, test, in.split)
	return ds, skipped, err
}

// checkIngest compares a distributed ingest with the single-process one:
// the same blocks (byte for byte, given the same bounds) and the same
// counts.
func checkIngest(t *testing.T, tag string, in ingestInput, run *ingestRun, ds *Dataset, skipped int64) {
	t.Helper()
	ref := planWithBounds(ds, run.layout.UserBounds, run.layout.ItemBounds)
	for _, side := range []Side{Users, Items} {
		for _, blk := range ref.Blocks(side) {
			ref.CutRows(ds, blk)
			want, err := blk.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if got := run.blocks[blockKey{side, blk.Index}]; !bytes.Equal(got, want) {
				g, _ := UnmarshalBlock(got)
				t.Fatalf("%s: %s block %d differs:\n got %+v\nwant %+v", tag, side, blk.Index, g, normalized(blk))
			}
		}
	}
	if len(run.blocks) != len(ref.UserBlocks)+len(ref.ItemBlocks) {
		t.Fatalf("%s: %d blocks stored, want %d", tag, len(run.blocks), len(ref.UserBlocks)+len(ref.ItemBlocks))
	}
	s := run.summary
	want := IngestSummary{
		Users: ds.Users.Len(), Items: ds.Items.Len(), TrainRatings: ds.ByUser.NNZ(),
		TestRatings: ds.Test.Total, TestSkipped: ds.Test.Skipped, SkippedLines: skipped, Duplicates: ds.Duplicates,
		UserBlocks: len(ref.UserBlocks), ItemBlocks: len(ref.ItemBlocks),
	}
	got := s
	got.UserNeeds, got.ItemNeeds, got.BlockBytes, got.BlockRows = nil, nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: summary %+v\nwant %+v", tag, got, want)
	}
	for p, blk := range ref.UserBlocks {
		for q := range ref.ItemBlocks {
			if s.UserNeeds[p][q] != int64(len(blk.NeededFrom(q))) {
				t.Fatalf("%s: user block %d needs %d rows of item block %d, want %d", tag, p, s.UserNeeds[p][q], q, len(blk.NeededFrom(q)))
			}
		}
	}
}

// ratingsCSV writes n random ratings of nu users and ni items as CSV
// lines (with repeated pairs when n is large against nu·ni).
func ratingsCSV(rng *rand.Rand, n, nu, ni int, user func(int) string, item func(int) string) []byte {
	var b strings.Builder
	for range n {
		fmt.Fprintf(&b, "%s,%s,%d.5\n", user(rng.IntN(nu)), item(rng.IntN(ni)), rng.IntN(5))
	}
	return []byte(b.String())
}

func num(k int) string { return fmt.Sprint(k) }

// TestIngestMatchesSingleProcess is the invariance test of the
// distributed ingest: for any worker count, shard count, chunk size,
// block counts and order of shards over workers, the blocks are the
// single-process ones and so are the counts.
func TestIngestMatchesSingleProcess(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(11, 12))
	word := func(k int) string { return fmt.Sprintf("u%03d", k) }
	inputs := map[string]ingestInput{
		"numeric, fraction, repeats": {
			train: [][]byte{append([]byte("user,item,rating\n"), ratingsCSV(rng, 3000, 60, 40, num, num)...)},
			split: SplitOptions{TestFraction: 0.2, Seed: 7},
		},
		"strings, two files, no split": {
			train: [][]byte{ratingsCSV(rng, 900, 50, 30, word, num), ratingsCSV(rng, 700, 70, 35, word, num)},
		},
		"test files with unknown IDs": {
			train: [][]byte{ratingsCSV(rng, 1500, 80, 50, num, num)},
			test:  [][]byte{ratingsCSV(rng, 300, 100, 60, num, num), []byte("x1,1,2\nx1,1,3\n1,zz,1\n")},
		},
		"a non-numeric ID only in the test part": {
			train: [][]byte{append(ratingsCSV(rng, 2000, 90, 50, num, num), "a7,3,1\na7,4,1\n"...)},
			split: SplitOptions{TestFraction: 0.3, Seed: 1},
		},
		"parquet beside csv": {
			train: [][]byte{writeParquet(t, parquetRows(rng, 1500), 400), ratingsCSV(rng, 600, 40, 30, num, num)},
			split: SplitOptions{TestFraction: 0.2, Seed: 5},
		},
		"tsv, skipped bad lines": {
			train: [][]byte{[]byte(strings.ReplaceAll(string(ratingsCSV(rng, 1200, 40, 40, num, num)), ",", "\t") + "bad line\n1\t2\tx\n" + "3\t4\t5\n")},
			scan:  ScanOptions{OnBadLine: SkipBadLine},
			split: SplitOptions{TestFraction: 0.1, Seed: 3},
		},
	}
	for name, in := range inputs {
		ds, skipped, err := singleIngest(t, in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for k, c := range []struct {
			w, shards int
			chunk     int64
			p, q      int
		}{
			{1, 1, 1 << 20, 1, 1},
			{1, 5, 64, 3, 2},
			{2, 7, 100, 4, 4},
			{3, 3, 1000, 5, 3},
			{4, 40, 32, 2, 7},
			{5, 11, 256, 9, 9},
			{7, 2, 50, 1, 3},
		} {
			tag := fmt.Sprintf("%s, %d workers, %d shards of chunks of %d, %d×%d blocks", name, c.w, c.shards, c.chunk, c.p, c.q)
			run, err := runIngest(t, in, c.w, c.shards, c.chunk, c.p, c.q, k)
			if err != nil {
				t.Fatalf("%s: %v", tag, err)
			}
			checkIngest(t, tag, in, run, ds, skipped)
		}
	}
}

// TestIngestBoundsMatchLayout: without repeated pairs the distributed
// bounds are NewLayout's, so the blocks are the single-process blocks.
func TestIngestBoundsMatchLayout(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(13, 14))
	var b strings.Builder
	for u := range 200 {
		for _, i := range rng.Perm(60)[:1+rng.IntN(20)] {
			fmt.Fprintf(&b, "%d,%d,%d\n", u, i, 1+rng.IntN(5))
		}
	}
	in := ingestInput{train: [][]byte{[]byte(b.String())}, split: SplitOptions{TestFraction: 0.25, Seed: 2}}
	ds, _, err := singleIngest(t, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []int{1, 2, 3, 6} {
		run, err := runIngest(t, in, w, 9, 128, 7, 5, w)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := NewLayout(ds, 7, 5)
		if !slices.Equal(run.layout.UserBounds, l.UserBounds) || !slices.Equal(run.layout.ItemBounds, l.ItemBounds) {
			t.Errorf("%d workers: bounds %v %v, NewLayout's %v %v", w, run.layout.UserBounds, run.layout.ItemBounds, l.UserBounds, l.ItemBounds)
		}
	}
}

// TestIngestErrors: the distributed ingest fails as the single process
// does, naming the file and line of the first bad line.
func TestIngestErrors(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(15, 16))
	good := ratingsCSV(rng, 500, 30, 30, num, num)
	tests := map[string]ingestInput{
		"bad line late":      {train: [][]byte{good, append(slices.Clone(good), "1,2,x\n"...)}},
		"bad line early":     {train: [][]byte{append([]byte("1,2\n"), good...)}},
		"two bad lines":      {train: [][]byte{append(append(slices.Clone(good), "1,,3\n"...), append(slices.Clone(good), "1,2,NaN\n"...)...)}},
		"bad test line":      {train: [][]byte{good}, test: [][]byte{[]byte("1,2,3\n4,5\n")}},
		"empty file":         {train: [][]byte{good, []byte("user,item,rating\n\n")}},
		"all held out":       {train: [][]byte{[]byte("1,2,3\n")}, split: SplitOptions{TestFraction: 0.999999, Seed: 1}},
		"undetectable":       {train: [][]byte{[]byte("abc\n1,2,3\n")}},
		"negative, implicit": {train: [][]byte{append(slices.Clone(good), "1,2,-1\n"...)}, scan: ScanOptions{Implicit: true}},
	}
	for name, in := range tests {
		_, _, werr := singleIngest(t, in)
		if werr == nil {
			t.Fatalf("%s: the single process accepted it", name)
		}
		for _, c := range []struct{ w, shards int }{{1, 1}, {3, 8}, {2, 30}} {
			_, err := runIngest(t, in, c.w, c.shards, 64, 3, 3, 1)
			if err == nil || err.Error() != werr.Error() && !strings.HasSuffix(werr.Error(), ": "+err.Error()) {
				t.Errorf("%s, %d workers, %d shards: error %v, want %v", name, c.w, c.shards, err, werr)
			}
		}
	}
}

// FuzzIngestMessage: no input makes the decoder panic or allocate beyond
// what its bytes can hold, and what decodes encodes back to the same bytes
// (for types without maps).
func FuzzIngestMessage(f *testing.F) {
	var w msgWriter
	w.reset(msgLookup, Items, false, -1, 3, 4, 0)
	w.id("abc")
	w.id("7")
	w.n = 2
	f.Add(w.finish())
	w.reset(msgRatings, Users, true, -1, 9, 1, 0)
	w.rating(rating{1, 2, 3.5, 1<<40 | 7})
	w.n = 1
	f.Add(w.finish())
	w.reset(msgPairs, Users, false, -1, 0, 0, 0)
	w.id("u")
	w.id("i")
	w.u64(5)
	w.n = 1
	f.Add(w.finish())
	w.reset(msgNeeds, Items, false, 2, 1, 0, 3)
	for _, r := range []uint32{4, 5, 6} {
		w.u32(r)
	}
	w.n = 3
	f.Add(w.finish())
	w.reset(msgRange, Items, false, -1, 0, 0, 0)
	w.id("x")
	w.u64(1 << 40)
	w.n = 1
	f.Add(w.finish())
	f.Add(ack)
	f.Add([]byte("CFIN"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMessage(data)
		if err != nil {
			if !errors.Is(err, ErrMessage) {
				t.Fatalf("error %v does not wrap ErrMessage", err)
			}
			return
		}
		var w msgWriter
		w.reset(m.typ, m.side, m.test, m.block, m.from, m.batch, m.aux)
		switch m.typ {
		case msgIDs, msgRange, msgLookup, msgBlockIDs:
			for j, id := range m.ids {
				w.id(id)
				switch m.typ {
				case msgIDs:
					w.u32(uint32(m.counts[j]))
				case msgRange:
					w.u64(m.counts[j])
				}
			}
			w.n = uint32(len(m.ids))
		case msgIndices, msgNeeds:
			for _, x := range m.ints {
				w.u32(uint32(x))
			}
			w.n = uint32(len(m.ints))
		case msgRatings:
			for _, r := range m.rats {
				w.rating(r)
			}
			w.n = uint32(len(m.rats))
		case msgPairs:
			for j := range m.ids {
				w.id(m.ids[j])
				w.id(m.items[j])
				w.u64(m.seqs[j])
			}
			w.n = uint32(len(m.ids))
		}
		if got := w.finish(); !bytes.Equal(got, data) {
			t.Fatalf("re-encoded %x, decoded from %x", got, data)
		}
	})
}

func TestDecodeMessageRefuses(t *testing.T) {
	t.Parallel()
	var w msgWriter
	w.reset(msgLookup, Users, false, -1, 0, 0, 0)
	w.id("abc")
	w.n = 1
	good := w.finish()
	reseal := func(b []byte) []byte {
		b = slices.Clone(b[:len(b)-4])
		return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	}
	tests := map[string][]byte{
		"short":    good[:10],
		"checksum": append(slices.Clone(good[:len(good)-1]), good[len(good)-1]^1),
		"magic":    reseal(append([]byte("XFIN"), good[4:]...)),
		"version":  reseal(append(append([]byte("CFIN"), 9), good[5:]...)),
		"type":     reseal(append(append([]byte("CFIN\x01"), 99), good[6:]...)),
		"side":     reseal(append(append([]byte("CFIN\x01\x03"), 2), good[7:]...)),
		"count":    reseal(append(slices.Clone(good[:28]), append([]byte{200, 0, 0, 0}, good[32:]...)...)),
		"trailing": reseal(append(slices.Clone(good[:len(good)-4]), 0, 0, 0, 0, 0, 0, 0, 0)),
		"empty ID": reseal(append(slices.Clone(good[:32]), 0, 0, 0)),
	}
	for name, data := range tests {
		if _, err := decodeMessage(data); !errors.Is(err, ErrMessage) {
			t.Errorf("%s: %v, want ErrMessage", name, err)
		}
	}
	if m, err := decodeMessage(good); err != nil || m.ids[0] != "abc" {
		t.Errorf("good message: %v %v", m, err)
	}
}

// BenchmarkIngest: a distributed ingest of 1M ratings (Netflix-shaped:
// many users, few items, skewed) on in-process workers, against the
// single-process ingest of the same bytes. Reports ratings/s and the
// bytes of messages per rating (what the workers would move over NATS).
func BenchmarkIngest(b *testing.B) {
	rng := rand.New(rand.NewPCG(21, 22))
	zipf := rand.NewZipf(rand.New(rand.NewPCG(23, 24)), 1.1, 10, 4999)
	var sb strings.Builder
	sb.WriteString("user,item,rating\n")
	const n = 1_000_000
	for range n {
		fmt.Fprintf(&sb, "%d,%d,%d\n", 1+rng.IntN(50_000), 1+zipf.Uint64(), 1+rng.IntN(5))
	}
	in := ingestInput{train: [][]byte{[]byte(sb.String())}, split: SplitOptions{TestFraction: 0.1, Seed: 1}}
	b.Run("single", func(b *testing.B) {
		for b.Loop() {
			ds, _, err := singleIngest(b, in)
			if err != nil {
				b.Fatal(err)
			}
			l, _ := PlanLayout(ds, 3, 3)
			for _, side := range []Side{Users, Items} {
				for _, blk := range l.Blocks(side) {
					l.CutRows(ds, blk)
					if _, err := blk.MarshalBinary(); err != nil {
						b.Fatal(err)
					}
					blk.DropRows()
				}
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "ratings/s")
	})
	for _, w := range []int{1, 3} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			var moved int64
			for b.Loop() {
				run, err := runIngest(b, in, w, 4*w, 1<<20, 3, 3, 0)
				if err != nil {
					b.Fatal(err)
				}
				moved += run.peers.bytes
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "ratings/s")
			b.ReportMetric(float64(moved)/float64(b.N)/n, "msgbytes/rating")
		})
	}
}

// parquetRows returns n random ratings as Parquet rows.
func parquetRows(rng *rand.Rand, n int) []intRatings {
	rows := make([]intRatings, n)
	for j := range rows {
		rows[j] = intRatings{User: int64(rng.IntN(70)), Item: int32(rng.IntN(45)), Rating: float64(rng.IntN(10)+1) / 2, Time: int64(j)}
	}
	return rows
}

// TestSortRowsInPlace: the in-place sorts give, over many chunks, what
// sorting a copy of every rating by (row, column, position) gives.
func TestSortRowsInPlace(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	const lo, n, cols = 100, 700, 300
	var list ratingList
	var cells cellList
	var all []rating
	seen := map[[2]int32]bool{}
	for k := range 3*ratingChunk + 123 {
		r := rating{row: lo + int32(rng.IntN(n)), col: int32(rng.IntN(cols)), val: float32(rng.IntN(50)), seq: uint64(rng.IntN(1 << 20))}
		if k%97 == 0 && len(all) > 0 {
			r = all[rng.IntN(len(all))] // a message delivered twice
		}
		list.add(r)
		all = append(all, r)
		if key := [2]int32{r.row, r.col}; !seen[key] {
			seen[key] = true
			cells.add(cell{r.row, r.col, r.val})
		}
	}
	slices.SortFunc(all, func(a, b rating) int {
		return cmp.Or(cmp.Compare(a.row, b.row), cmp.Compare(a.col, b.col), cmp.Compare(a.seq, b.seq))
	})
	want := CSR{Ptr: make([]int64, n+1)}
	var wantCells CSR
	wantCells.Ptr = make([]int64, n+1)
	var dups int64
	for k, r := range all {
		if k+1 < len(all) && all[k+1].row == r.row && all[k+1].col == r.col {
			if all[k+1].seq != r.seq {
				dups++
			}
			continue
		}
		want.Col = append(want.Col, r.col)
		want.Val = append(want.Val, r.val)
		want.Ptr[r.row-lo+1] = int64(len(want.Col))
	}
	for j := range n {
		want.Ptr[j+1] = max(want.Ptr[j+1], want.Ptr[j])
	}
	got, gotDups := sortRows(list, lo, n)
	if !reflect.DeepEqual(got, want) || gotDups != dups {
		t.Fatalf("sortRows: %d repeats (want %d), CSR equal: %v", gotDups, dups, reflect.DeepEqual(got, want))
	}
	gc := sortCells(cells, lo, n)
	if !reflect.DeepEqual(gc.Ptr, want.Ptr) || !slices.Equal(gc.Col, want.Col) || len(gc.Val) != len(want.Val) {
		t.Fatalf("sortCells: rows or columns differ")
	}
}

// A routed rating is held in 20 bytes, a transposed one in 12.
func TestHeldRecordSizes(t *testing.T) {
	if s := unsafe.Sizeof(packedRating{}); s != 20 {
		t.Errorf("packedRating is %d bytes, want 20", s)
	}
	if s := unsafe.Sizeof(cell{}); s != 12 {
		t.Errorf("cell is %d bytes, want 12", s)
	}
}

// The rounds that hand over what they work on refuse to run twice, rather
// than build from what is left.
func TestIngestRoundsNotRepeated(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	in := ingestInput{train: [][]byte{ratingsCSV(rng, 500, 30, 20, num, num)}, split: SplitOptions{TestFraction: 0.2, Seed: 1}}
	run, err := runIngest(t, in, 2, 3, 64, 2, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	g, ctx := run.peers.nodes[0], context.Background()
	store := func(context.Context, *Block) (int64, error) { return 0, nil }
	for name, f := range map[string]func() error{
		"SendRanges":      func() error { return g.SendRanges(ctx, run.layout.Ranges, run.peers) },
		"RangeReport":     func() error { _, err := g.RangeReport(); return err },
		"BoundCandidates": func() error { _, err := g.BoundCandidates(run.layout.Offsets); return err },
		"BuildUsers":      func() error { _, err := g.BuildUsers(ctx, run.peers, store); return err },
		"BuildItems":      func() error { _, err := g.BuildItems(ctx, store); return err },
	} {
		if err := f(); !errors.Is(err, ErrRepeat) {
			t.Errorf("%s run again: %v, want ErrRepeat", name, err)
		}
	}
	// Transpose may be repeated: its messages are the same, and ignored.
	if err := g.Transpose(ctx, run.peers); err != nil {
		t.Errorf("Transpose run again: %v", err)
	}
}
