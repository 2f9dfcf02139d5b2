package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/testutil"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/partition"
	"github.com/cofactor-ml/cofactor/transport"
)

// smallPayload is a max_payload under which a block's rows take several
// chunks at rank 16 (61 rows a chunk).
const smallPayload = 4096

// decodeAnswer decodes a serveFrame answer, which must always be a valid
// frame of at most the connection's max_payload.
func decodeAnswer(t *testing.T, w *Worker, b []byte) (transport.Header, []byte) {
	t.Helper()
	if len(b) > w.tr.MaxPayload() {
		t.Fatalf("answer of %d bytes exceeds max_payload %d", len(b), w.tr.MaxPayload())
	}
	h, payload, err := transport.DecodeFrame(b)
	if err != nil {
		t.Fatalf("answer is not a valid frame: %v", err)
	}
	return h, payload
}

// request encodes h as a request frame.
func request(h transport.Header) []byte { return transport.AppendFrame(nil, h, nil) }

// TestServeFrameErrors checks that every request that cannot be served is
// answered with an error frame that names the problem and echoes the
// request's identifying fields.
func TestServeFrameErrors(t *testing.T) {
	e := startMem(t, smallPayload)
	w := newWorker(t, e, testConfig("w1"))
	spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
	_, l := loadLayout(t, spec, 2, 2)
	// w1 holds user block 0 and item block 1, versions 0 and 1, at epoch 3.
	install(t, w, "j1", spec, 3, l, []string{"w1", "w2"}, []string{"w2", "w1"}, 0, 1)
	k := spec.Rank
	valid := transport.Header{Type: transport.FrameRowsRequest, Side: uint8(partition.Users), Job: "j1", Epoch: 3, Iteration: 1, Block: 0, Peer: 1, Cols: uint32(k)}
	if h, _ := decodeAnswer(t, w, w.serveFrame(nil, request(valid))); h.Type != transport.FrameRows {
		t.Fatalf("the valid request is answered with a %v frame", h.Type)
	}
	corrupt := request(valid)
	corrupt[len(corrupt)-1] ^= 0xff
	with := func(f func(h *transport.Header)) []byte {
		h := valid
		f(&h)
		return request(h)
	}
	for _, tc := range []struct {
		name string
		req  []byte
		want string
		echo bool // the answer carries the request's header fields
	}{
		{"garbage", []byte("not a frame at all, just some bytes of text"), "malformed frame", false},
		{"empty", nil, "malformed frame", false},
		{"bad CRC", corrupt, "CRC mismatch", false},
		{"unknown job", with(func(h *transport.Header) { h.Job = "j2" }), "job j2 is not held by worker w1", true},
		{"wrong epoch", with(func(h *transport.Header) { h.Epoch = 2 }), "worker w1 is at epoch 3 of job j1, not 2", true},
		{"newer epoch", with(func(h *transport.Header) { h.Epoch = 4 }), "worker w1 is at epoch 3 of job j1, not 4", true},
		{"block not held", with(func(h *transport.Header) { h.Block = 1 }), "worker w1 does not hold users block 1", true},
		{"block out of range", with(func(h *transport.Header) { h.Block = 7 }), "worker w1 does not hold users block 7", true},
		{"side not held", with(func(h *transport.Header) { h.Side = uint8(partition.Items) }), "worker w1 does not hold items block 0", true},
		{"version not held", with(func(h *transport.Header) { h.Iteration = 5 }), "users block 0 has no version 5", true},
		{"peer out of range", with(func(h *transport.Header) { h.Peer = 2 }), "no block 2 on the other side", true},
		{"chunk out of range", with(func(h *transport.Header) { h.Chunk = 9 }), "chunk 9 of", true},
		{"rank mismatch", with(func(h *transport.Header) { h.Cols = uint32(k + 1) }), "rank 5 asked, the job's is 4", true},
		{"rank zero", with(func(h *transport.Header) { h.Cols = 0 }), "rank 0 asked", true},
		{"unknown frame type", transport.AppendFrame(nil, transport.Header{Type: transport.FrameRows, Job: "j1", Epoch: 3, Iteration: 1, Peer: 1, Chunks: 1, Cols: uint32(k)}, nil), "does not answer Rows frames", true},
		{"gram of a version not held", with(func(h *transport.Header) { h.Type, h.Iteration, h.Peer = transport.FrameGramRequest, 4, 0 }), "users block 0 has no version 4", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, payload := decodeAnswer(t, w, w.serveFrame(nil, tc.req))
			if h.Type != transport.FrameError {
				t.Fatalf("answered with a %v frame, want Error", h.Type)
			}
			msg := transport.FrameErr(h, payload).Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if !tc.echo {
				return
			}
			req, _, err := transport.DecodeFrame(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if h.Job != req.Job || h.Epoch != req.Epoch || h.Iteration != req.Iteration || h.Side != req.Side ||
				h.Block != req.Block || h.Peer != req.Peer || h.Chunk != req.Chunk {
				t.Errorf("answer %s does not echo request %s", describe(h), describe(req))
			}
		})
	}
}

// TestServeFrameRows checks the rows and Gram answers of every held
// block: exactly the rows the routing table sends to each peer, in order,
// chunked so that every answer fits a small max_payload; every row for an
// allRows request; YᵀY of the version for a Gram request.
func TestServeFrameRows(t *testing.T) {
	e := startMem(t, smallPayload)
	w := newWorker(t, e, testConfig("w1"))
	spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
	spec.Rank = 16
	k := spec.Rank
	_, l := loadLayout(t, spec, 2, 3)
	js := install(t, w, "j1", spec, 1, l, []string{"w1", "w1"}, []string{"w1", "w1", "w1"}, 1, 2)
	per := transport.RowsPerChunk(smallPayload, k)
	// fetch asks for every chunk of one transfer and returns the rows.
	fetch := func(t *testing.T, side partition.Side, block, peer, v int, rows int) []float32 {
		t.Helper()
		chunks := transport.ChunkCount(rows, per)
		var got []float32
		for c := 0; c < chunks; c++ {
			req := transport.Header{Type: transport.FrameRowsRequest, Side: uint8(side), Job: "j1", Epoch: 1,
				Iteration: uint32(v), Block: uint32(block), Peer: uint32(peer), Chunk: uint32(c), Cols: uint32(k)}
			h, payload := decodeAnswer(t, w, w.serveFrame(nil, request(req)))
			if err := transport.FrameErr(h, payload); err != nil {
				t.Fatalf("%s: %v", describe(req), err)
			}
			lo, hi, _ := transport.ChunkBounds(rows, per, c)
			if h.Type != transport.FrameRows || int(h.Rows) != hi-lo || int(h.Chunks) != chunks || h.Cols != uint32(k) ||
				h.Chunk != req.Chunk || h.Block != req.Block || h.Peer != req.Peer || h.Iteration != req.Iteration || h.Job != "j1" || h.Epoch != 1 {
				t.Fatalf("%s: answered %s with %d rows of %d chunks, want %d rows of %d", describe(req), describe(h), h.Rows, h.Chunks, hi-lo, chunks)
			}
			x := make([]float32, int(h.Rows)*k)
			transport.DecodeFloat32s(x, payload)
			got = append(got, x...)
		}
		return got
	}
	multi := 0
	for _, side := range []partition.Side{partition.Users, partition.Items} {
		for _, blk := range l.Blocks(side) {
			for _, v := range []int{1, 2} {
				x, _ := js.block(side, blk.Index).version(v)
				for p := range l.Blocks(side.Other()) {
					list := blk.SendTo(p)
					if transport.ChunkCount(len(list), per) > 1 {
						multi++
					}
					var want []float32
					for _, r := range list {
						want = append(want, x[int(r)*k:int(r)*k+k]...)
					}
					if got := fetch(t, side, blk.Index, p, v, len(list)); !equalBits(got, want) {
						t.Errorf("%s block %d version %d: the rows sent to block %d differ from the routing table's", side, blk.Index, v, p)
					}
				}
				if got := fetch(t, side, blk.Index, allRows, v, blk.Len()); !equalBits(got, x) {
					t.Errorf("%s block %d version %d: allRows answer differs from the block's rows", side, blk.Index, v)
				}
				req := transport.Header{Type: transport.FrameGramRequest, Side: uint8(side), Job: "j1", Epoch: 1, Iteration: uint32(v), Block: uint32(blk.Index), Cols: uint32(k)}
				h, payload := decodeAnswer(t, w, w.serveFrame(nil, request(req)))
				if h.Type != transport.FrameGram || h.Rows != uint32(k) || h.Chunks != 1 {
					t.Fatalf("%s: answered %s (%v)", describe(req), describe(h), transport.FrameErr(h, payload))
				}
				got := make([]float64, k*k)
				transport.DecodeFloat64s(got, payload)
				want := make([]float64, k*k)
				als.Gram(x, k, 1, want)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s block %d version %d: Gram[%d] = %g, want %g", side, blk.Index, v, i, got[i], want[i])
					}
				}
			}
		}
	}
	if multi == 0 {
		t.Fatalf("no transfer needed more than one chunk of %d rows: the test does not exercise chunking", per)
	}
}

func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// twoWorkers starts workers w1 and w2 holding job "j1" on a 2×2 layout of
// the small explicit set (user blocks on w1, w2; item blocks on w2, w1),
// versions 0 and 1 of every block, at the given rank (0: testSpec's). It
// returns w1, its job and the layout.
func twoWorkers(t *testing.T, e network, rank int) (*Worker, *jobState, *partition.Layout) {
	t.Helper()
	w1 := startWorker(t, e, testConfig("w1"))
	w2 := startWorker(t, e, testConfig("w2"))
	spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
	if rank > 0 {
		spec.Rank = rank
	}
	_, l := loadLayout(t, spec, 2, 2)
	users, items := []string{"w1", "w2"}, []string{"w2", "w1"}
	js1 := install(t, w1, "j1", spec, 1, l, users, items, 0, 1)
	install(t, w2, "j1", spec, 1, l, users, items, 0, 1)
	return w1, js1, l
}

// TestFetchChunked has one running worker fetch rows, whole blocks and a
// Gram matrix from another over NATS under a small max_payload.
func TestFetchChunked(t *testing.T) {
	onNetworks(t, smallPayload, func(t *testing.T, e network) {
		w1, js1, l := twoWorkers(t, e, 16)
		k := js1.spec.Rank
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()

		ub, ib := l.UserBlocks[0], l.ItemBlocks[0] // held by w1 and w2
		per := transport.RowsPerChunk(smallPayload, k)
		if n := len(ub.NeededFrom(0)); transport.ChunkCount(n, per) < 2 {
			t.Fatalf("user block 0 needs %d rows of item block 0: one chunk of %d, the test does not exercise chunking", n, per)
		}
		dst := make([]float32, len(ub.NeededFrom(0))*k)
		n, err := w1.fetchRows(ctx, js1, "w2", partition.Items, 0, 0, 1, dst)
		if err != nil {
			t.Fatal(err)
		}
		y := factorValues(ib, k, 1)
		var want []float32
		for _, r := range ib.SendTo(0) {
			want = append(want, y[int(r)*k:int(r)*k+k]...)
		}
		if !equalBits(dst, want) {
			t.Error("fetched rows differ from the owner's")
		}
		if n < int64(len(dst)*4) {
			t.Errorf("%d bytes counted for %d float32", n, len(dst))
		}

		all, _, err := w1.fetchAll(ctx, js1, "w2", partition.Users, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !equalBits(all, factorValues(l.UserBlocks[1], k, 1)) {
			t.Error("fetchAll differs from the owner's rows")
		}

		g, _, err := w1.fetchGram(ctx, js1, "w2", partition.Items, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		wantG := make([]float64, k*k)
		als.Gram(y, k, 1, wantG)
		for i := range wantG {
			if g[i] != wantG[i] {
				t.Fatalf("Gram[%d] = %g, want %g", i, g[i], wantG[i])
			}
		}

		side, _, err := w1.fetchSide(ctx, js1, partition.Items, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !equalBits(side, append(append([]float32(nil), y...), factorValues(l.ItemBlocks[1], k, 1)...)) {
			t.Error("fetchSide differs from the blocks' rows in order")
		}
	})
}

// TestGatherIntoBuffer: a gather writes its rows into the buffer it is
// given when that is large enough (a phase reuses one buffer for its
// blocks), overwriting whatever was there, and allocates otherwise; the
// rows are the same either way.
func TestGatherIntoBuffer(t *testing.T) {
	onNetworks(t, 0, func(t *testing.T, e network) {
		w1, js1, _ := twoWorkers(t, e, 0)
		k := js1.spec.Rank
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		h := js1.block(partition.Items, 1) // needs users of both workers
		n := len(h.blk.Needed) * k
		want, err := w1.gather(ctx, js1, h, 1, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			buf   []float32
			reuse bool
		}{
			{"larger buffer", pseudoRandom(n+3*k, 7), true},
			{"exact buffer", pseudoRandom(n, 8), true},
			{"short buffer", make([]float32, n-1), false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				g, err := w1.gather(ctx, js1, h, 1, tc.buf, true)
				if err != nil {
					t.Fatal(err)
				}
				if len(g.rows) != n || !equalBits(g.rows, want.rows) {
					t.Fatalf("gathered %d values, want the %d of a gather without a buffer", len(g.rows), n)
				}
				if same := &g.rows[0] == &tc.buf[0]; same != tc.reuse {
					t.Errorf("rows in the given buffer: %v, want %v", same, tc.reuse)
				}
			})
		}
	})
}

// requestLog records the row requests sent to one worker.
type requestLog struct {
	mu      sync.Mutex
	seen    map[transport.Header]int
	repeats int
	changed chan struct{}
}

func watchRequests(t *testing.T, e network, owner string) *requestLog {
	t.Helper()
	rl := &requestLog{seen: map[transport.Header]int{}, changed: make(chan struct{})}
	stop, err := e.endpoint(t).Subscribe(transport.WorkerRowsSubject(owner), func(data []byte, _ func([]byte) error) {
		h, _, err := transport.DecodeFrame(data)
		if err != nil {
			return
		}
		rl.mu.Lock()
		defer rl.mu.Unlock()
		rl.seen[h]++
		if rl.seen[h] > 1 {
			rl.repeats++
		}
		close(rl.changed)
		rl.changed = make(chan struct{})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return rl
}

// waitRepeats waits until some request was sent at least twice n times.
func (rl *requestLog) waitRepeats(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		rl.mu.Lock()
		got, changed := rl.repeats, rl.changed
		rl.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%d repeated requests after %v, want %d", got, testTimeout, n)
		}
	}
}

// TestFetchWaitsForVersion: an owner that does not have the version yet
// answers with an error frame; the requester asks again until it has.
func TestFetchWaitsForVersion(t *testing.T) {
	e := startMem(t, 0)
	w1 := startWorker(t, e, testConfig("w1"))
	w2 := startWorker(t, e, testConfig("w2"))
	spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
	k := spec.Rank
	_, l := loadLayout(t, spec, 2, 2)
	users, items := []string{"w1", "w2"}, []string{"w2", "w1"}
	js1 := install(t, w1, "j1", spec, 1, l, users, items, 0)
	js2 := install(t, w2, "j1", spec, 1, l, users, items, 0)
	rl := watchRequests(t, e, "w2")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	ub, ib := l.UserBlocks[0], l.ItemBlocks[0]
	dst := make([]float32, len(ub.NeededFrom(0))*k)
	done := make(chan error, 1)
	go func() {
		_, err := w1.fetchRows(ctx, js1, "w2", partition.Items, 0, 0, 1, dst)
		done <- err
	}()
	rl.waitRepeats(t, 2) // asked three times, answered "no version 1 yet"
	select {
	case err := <-done:
		t.Fatalf("fetch returned before the version existed: %v", err)
	default:
	}
	y := factorValues(ib, k, 1)
	js2.block(partition.Items, 0).store(1, y)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var want []float32
	for _, r := range ib.SendTo(0) {
		want = append(want, y[int(r)*k:int(r)*k+k]...)
	}
	if !equalBits(dst, want) {
		t.Error("fetched rows differ from the owner's")
	}
}

// phaseCommand is the command of one phase with the given assignment.
func phaseCommand(jobID string, spec job.Spec, epoch uint64, users, items []string, t int, side wire.Side) wire.Command {
	return wire.Command{Type: wire.CmdPhase, Job: jobID, Spec: spec, Epoch: epoch, Users: users, Items: items, Iteration: t, Side: side}
}

// runPhase sends a phase to every worker named in the assignment and
// waits for one report per block of the side, each from its owner.
func runPhase(t *testing.T, nc Transport, l *leader, c wire.Command) []wire.Report {
	t.Helper()
	owners := c.Users
	if c.Side == "items" {
		owners = c.Items
	}
	sent := map[string]bool{}
	for _, id := range append(append([]string(nil), c.Users...), c.Items...) {
		if !sent[id] {
			sent[id] = true
			mustCommand(t, nc, id, c)
		}
	}
	reps := l.wait(t, len(owners), isPhase(c.Job, c.Epoch, c.Iteration, c.Side))
	byBlock := map[int]wire.Report{}
	for _, r := range reps {
		if r.Block < 0 || r.Block >= len(owners) || owners[r.Block] != r.Worker {
			t.Fatalf("phase %d %s: report for block %d from %s, owners %v", c.Iteration, c.Side, r.Block, r.Worker, owners)
		}
		byBlock[r.Block] = r
	}
	if len(byBlock) != len(owners) {
		t.Fatalf("phase %d %s: reports for %d of %d blocks", c.Iteration, c.Side, len(byBlock), len(owners))
	}
	out := make([]wire.Report, len(owners))
	for b, r := range byBlock {
		out[b] = r
	}
	return out
}

// checkFactors compares every block a worker holds at version v of side
// with the reference rows ref (global order).
func checkFactors(t *testing.T, workers map[string]*Worker, jobID string, side partition.Side, owners []string, v int, ref []float32, k int, reps []wire.Report) {
	t.Helper()
	for b, id := range owners {
		js := workers[id].job(jobID)
		if js == nil {
			t.Fatalf("worker %s does not hold job %s", id, jobID)
		}
		h := js.block(side, b)
		if h == nil {
			t.Fatalf("worker %s does not hold %s block %d", id, side, b)
		}
		x, ok := h.version(v)
		if !ok {
			t.Fatalf("worker %s: %s block %d has no version %d", id, side, b, v)
		}
		lo, hi := int(h.blk.Start)*k, int(h.blk.End())*k
		if d := maxAbsDiff(t, x, ref[lo:hi]); d > 1e-5 {
			t.Errorf("%s block %d version %d on %s differs from the 1×1 reference by %g", side, b, v, id, d)
		}
		if reps != nil && reps[b].Stats.Checksum != checksum(x) {
			t.Errorf("%s block %d: reported checksum %08x, rows have %08x", side, b, reps[b].Stats.Checksum, checksum(x))
		}
	}
}

// TestTwoWorkersMatchReference runs users(1), items(1), users(2) on two
// workers that own interleaved blocks of a 3×3 layout, through the command
// protocol, and compares every block with a single-process solve of the
// 1×1 layout.
func TestTwoWorkersMatchReference(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		name := "explicit"
		if implicit {
			name = "implicit"
		}
		t.Run(name, func(t *testing.T) {
			onNetworks(t, 0, func(t *testing.T, e network) {
				l := startLeader(t, e)
				workers := map[string]*Worker{
					"w1": startWorker(t, e, testConfig("w1")),
					"w2": startWorker(t, e, testConfig("w2")),
				}
				nc := e.endpoint(t)
				spec := testSpec(testutil.WriteRatings(t, smallSet(implicit)), implicit)
				k := spec.Rank
				mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdPartition, Job: "x", Spec: spec, UserBlocks: 3, ItemBlocks: 3})
				l.wait(t, 1, func(r wire.Report) bool { return r.Type == wire.RepPartitioned && r.Job == "x" })
				users, items := []string{"w1", "w2", "w1"}, []string{"w2", "w1", "w2"}
				var reps [3][]wire.Report
				for i, ph := range []struct {
					t    int
					side wire.Side
				}{{1, "users"}, {1, "items"}, {2, "users"}} {
					reps[i] = runPhase(t, nc, l, phaseCommand("x", spec, 1, users, items, ph.t, ph.side))
				}
				x, y := reference(t, spec, 3)
				checkFactors(t, workers, "x", partition.Users, users, 2, x[2], k, reps[2])
				checkFactors(t, workers, "x", partition.Items, items, 1, y[1], k, reps[1])
				if spec.ALS(1).InPlace() {
					// Users of iteration 2 were solved over those of
					// iteration 1, which no worker holds any more.
					for b, id := range users {
						if _, ok := workers[id].job("x").block(partition.Users, b).version(1); ok {
							t.Errorf("user block %d on %s still holds version 1 after an in-place solve", b, id)
						}
					}
				} else {
					// Users of iteration 1 are still held (the previous version).
					checkFactors(t, workers, "x", partition.Users, users, 1, x[1], k, reps[0])
				}
				for _, r := range reps[0] {
					if r.Stats.Bytes == 0 && r.Worker == "w1" {
						t.Errorf("block %d on %s: no bytes received from the other worker", r.Block, r.Worker)
					}
				}
			})
		})
	}
}

// failSolve fails the solve of one block once: the n-th beforeSolve
// after it is armed.
type failSolve struct {
	mu    sync.Mutex
	armed bool
	n     int
}

func (f *failSolve) wrap(tr Transport) Transport { return tr }
func (f *failSolve) beforeExport()               {}
func (f *failSolve) afterIngestRound(int) error  { return nil }
func (f *failSolve) beforeSolve(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed {
		return nil
	}
	if f.n--; f.n == 0 {
		f.armed = false
		return errors.New("injected solve failure")
	}
	return nil
}

// TestPhaseRepeatedAfterInPlaceSolve fails a user phase on its second
// block, after the first was solved over its old factors, and repeats
// it: the block solved before the failure is reported again (with the
// test errors of the factors it no longer holds), and every block equals
// the reference and the same phase run without a failure.
func TestPhaseRepeatedAfterInPlaceSolve(t *testing.T) {
	e := startMem(t, 0)
	l := startLeader(t, e)
	fail := &failSolve{}
	w1 := newWorker(t, e, testConfig("w1"))
	w1.faults = fail
	runWorker(t, w1)
	workers := map[string]*Worker{"w1": w1, "w2": startWorker(t, e, testConfig("w2"))}
	nc := e.endpoint(t)
	spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
	if !spec.ALS(1).InPlace() {
		t.Fatal("the test needs a spec that solves in place")
	}
	users, items := []string{"w1", "w2", "w1"}, []string{"w2", "w1", "w2"}
	phases := []struct {
		t    int
		side wire.Side
	}{{1, "users"}, {1, "items"}, {2, "users"}}
	run := func(jobID string, failLast bool) []wire.Report {
		mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdPartition, Job: jobID, Spec: spec, UserBlocks: 3, ItemBlocks: 3})
		l.wait(t, 1, func(r wire.Report) bool { return r.Type == wire.RepPartitioned && r.Job == jobID })
		var last []wire.Report
		for i, ph := range phases {
			c := phaseCommand(jobID, spec, 1, users, items, ph.t, ph.side)
			if failLast && i == len(phases)-1 {
				fail.mu.Lock()
				fail.armed, fail.n = true, 2
				fail.mu.Unlock()
				mustCommand(t, nc, "w2", c)
				mustCommand(t, nc, "w1", c)
				l.wait(t, 1, func(r wire.Report) bool { return r.Type == wire.RepFailed && r.Job == jobID && r.Worker == "w1" })
				// The failure is reported before its task ends; a command
				// that arrives while it runs is not started again.
				js := w1.job(jobID)
				js.mu.Lock()
				tk := js.tasks[keyOf(&c)]
				js.mu.Unlock()
				<-tk.done
				if _, ok := w1.job(jobID).block(partition.Users, 0).solved(2); !ok {
					t.Fatal("user block 0 was not solved before the failure")
				}
				mustCommand(t, nc, "w1", c) // as the leader repeats it
				last = make([]wire.Report, len(users))
				for _, r := range l.wait(t, len(users), isPhase(jobID, c.Epoch, ph.t, ph.side)) {
					last[r.Block] = r
				}
				continue
			}
			last = runPhase(t, nc, l, c)
		}
		return last
	}
	clean := run("clean", false)
	repeated := run("again", true) // IDs of one length: the same bytes exchanged
	x, _ := reference(t, spec, 3)
	checkFactors(t, workers, "again", partition.Users, users, 2, x[2], spec.Rank, repeated)
	for b := range repeated {
		got, want := repeated[b].Stats, clean[b].Stats
		got.Seconds, want.Seconds = 0, 0
		if got != want {
			t.Errorf("user block %d: repeated phase reports %+v, a clean one %+v", b, got, want)
		}
		if got.TestN == 0 {
			t.Errorf("user block %d: no test errors reported", b)
		}
	}
}

// TestWindowedMatchesReference solves item blocks in windows (a gather
// budget of a few rows) with one item rated by more users than a
// streamed segment holds, on two workers, and compares every factor, bit
// for bit, with the single-process solve of the 1×1 layout.
func TestWindowedMatchesReference(t *testing.T) {
	var b strings.Builder
	b.WriteString("user,item,rating\n")
	for u := 0; u < 10000; u++ {
		fmt.Fprintf(&b, "u%d,hot,%d\n", u, 1+u%5)
		for j := 0; j < 2; j++ {
			fmt.Fprintf(&b, "u%d,i%d,%d\n", u, (u*7+j*13)%50, 1+(u+j)%5)
		}
	}
	input := filepath.Join(t.TempDir(), "hot.csv")
	if err := os.WriteFile(input, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := testSpec(input, false)
	e := startMem(t, 0)
	l := startLeader(t, e)
	workers := map[string]*Worker{}
	for _, id := range []string{"w1", "w2"} {
		cfg := testConfig(id)
		cfg.GatherBytes = 64 // 4 rows of rank 4 a group
		workers[id] = startWorker(t, e, cfg)
	}
	nc := e.endpoint(t)
	mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdPartition, Job: "x", Spec: spec, UserBlocks: 3, ItemBlocks: 3})
	l.wait(t, 1, func(r wire.Report) bool { return r.Type == wire.RepPartitioned && r.Job == "x" })
	users, items := []string{"w1", "w2", "w1"}, []string{"w2", "w1", "w2"}
	var itemReps [][]wire.Report
	for _, ph := range []struct {
		t    int
		side wire.Side
	}{{1, "users"}, {1, "items"}, {2, "users"}, {2, "items"}} {
		reps := runPhase(t, nc, l, phaseCommand("x", spec, 1, users, items, ph.t, ph.side))
		if ph.side == "items" {
			itemReps = append(itemReps, reps)
		}
	}
	x, y := reference(t, spec, 4)
	k := spec.Rank
	streamed := false
	for _, v := range []int{2} { // the versions before were solved over
		for side, owners := range map[partition.Side][]string{partition.Users: users, partition.Items: items} {
			ref := x[v]
			if side == partition.Items {
				ref = y[v]
			}
			for bi, id := range owners {
				w := workers[id]
				js := w.job("x")
				h := js.block(side, bi)
				if side == partition.Items {
					if !w.windowed(js, h) {
						t.Fatalf("item block %d is not solved in windows", bi)
					}
					for r := 0; r < h.blk.Len(); r++ {
						streamed = streamed || js.solver.Streams(int(h.blk.Rows.Ptr[r+1]-h.blk.Rows.Ptr[r]))
					}
				}
				got, ok := h.version(v)
				if !ok {
					t.Fatalf("%s block %d has no version %d", side, bi, v)
				}
				lo := int(h.blk.Start) * k
				for i, g := range got {
					if math.Float32bits(g) != math.Float32bits(ref[lo+i]) {
						t.Fatalf("%s block %d version %d element %d: %v, the reference %v", side, bi, v, i, g, ref[lo+i])
					}
				}
			}
		}
	}
	if !streamed {
		t.Fatal("no item row long enough to be streamed")
	}
	for _, reps := range itemReps {
		for _, r := range reps {
			if r.Stats.SSE <= 0 || r.Stats.Bytes == 0 {
				t.Errorf("item block %d: loss %v, %d bytes received", r.Block, r.Stats.SSE, r.Stats.Bytes)
			}
		}
	}
}

// TestLostReplyIsHarmless holds the owner's row handlers until its
// replies come too late for the requester's first attempts, which time
// out and ask again: the phase completes with the same rows.
func TestLostReplyIsHarmless(t *testing.T) {
	e := startNATS(t, 0) // real timeouts of real requests
	l := startLeader(t, e)
	cfg1 := testConfig("w1")
	cfg1.Retry = transport.RetryPolicy{Timeout: 300 * time.Millisecond, Attempts: 20, Backoff: 10 * time.Millisecond}
	w1 := startWorker(t, e, cfg1)
	w2 := startWorker(t, e, testConfig("w2"))
	nc := e.endpoint(t)
	spec := testSpec(testutil.WriteRatings(t, smallSet(false)), false)
	k := spec.Rank
	mustCommand(t, nc, "w1", wire.Command{Type: wire.CmdPartition, Job: "x", Spec: spec, UserBlocks: 2, ItemBlocks: 2})
	l.wait(t, 1, func(r wire.Report) bool { return r.Type == wire.RepPartitioned })
	rl := watchRequests(t, e, "w2")

	// Take every answering slot of w2: its row handlers queue up.
	slots := cap(w2.serving)
	for range slots {
		w2.serving <- struct{}{}
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			for range slots {
				<-w2.serving
			}
		})
	}
	t.Cleanup(release)

	users, items := []string{"w1", "w2"}, []string{"w2", "w1"}
	c := phaseCommand("x", spec, 1, users, items, 1, "users")
	mustCommand(t, nc, "w1", c)
	mustCommand(t, nc, "w2", c)
	// w1 asks w2 for item block 0's rows; the first answer is held until
	// w1 has timed out and asked again.
	rl.waitRepeats(t, 1)
	release()
	reps := l.wait(t, 2, isPhase("x", 1, 1, "users"))
	x, _ := reference(t, spec, 1)
	byBlock := make([]wire.Report, 2)
	for _, r := range reps {
		byBlock[r.Block] = r
	}
	checkFactors(t, map[string]*Worker{"w1": w1, "w2": w2}, "x", partition.Users, users, 1, x[1], k, byBlock)
	if n := l.count(func(r wire.Report) bool { return r.Type == wire.RepFailed }); n != 0 {
		t.Errorf("%d failure reports: %+v", n, l.all())
	}
}
