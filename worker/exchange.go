package worker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cofactor-ml/cofactor/partition"
	"github.com/cofactor-ml/cofactor/transport"
)

// allRows in a request's Peer asks for every row of the block, in order
// (evaluation and snapshot assembly), rather than what one block needs.
const allRows = math.MaxUint32

// remoteRetries bounds how often a request answered with an error is
// repeated. An owner answers "not yet" while it is still adopting a new
// epoch; a few seconds of retries ride that out.
const (
	remoteRetries   = 60
	remoteRetryWait = 100 * time.Millisecond
)

// gathered is the other side's data one block update needs.
type gathered struct {
	rows  []float32 // rows named by the block's Needed list, in order
	gram  []float64 // the other side's full YᵀY (implicit model)
	bytes int64     // bytes received from other workers
}

// gather fetches the rows h's block needs from the other side at version
// v (unless rows is false: a windowed block fetches its own), and in the
// implicit model the other side's YᵀY, summing the blocks'
// partial sums in block order. The rows land in buf when it is large
// enough (every element is overwritten), else in a new array: a phase
// passes the same buffer for each of its blocks, so that one block's
// rows are not garbage beside the next block's.
func (w *Worker) gather(ctx context.Context, js *jobState, h *heldBlock, v int, buf []float32, rows bool) (gathered, error) {
	k := js.spec.Width()
	blk := h.blk
	otherSide := blk.Side.Other()
	owners := js.owners(otherSide)
	n := blk.NeededCount() * k
	if !rows {
		n = 0
	}
	if cap(buf) < n {
		buf = make([]float32, n)
	}
	g := gathered{rows: buf[:n]}
	if js.spec.Implicit {
		g.gram = make([]float64, k*k)
	}
	grams := make([][]float64, len(owners))
	var mu sync.Mutex
	err := w.forEach(ctx, len(owners), func(ctx context.Context, q int) error {
		owner := owners[q]
		var dst []float32
		if rows {
			dst = g.rows[int(blk.NeedPtr[q])*k : int(blk.NeedPtr[q+1])*k]
		}
		var n int64
		if owner == w.cfg.ID {
			src, x, err := js.heldVersion(otherSide, q, v)
			if err != nil {
				return err
			}
			if rows {
				for j, r := range src.blk.SendTo(blk.Index) {
					copy(dst[j*k:(j+1)*k], x[int(r)*k:int(r)*k+k])
				}
			}
			if js.spec.Implicit {
				gr, ok := src.gram(v, w.cfg.Threads)
				if !ok {
					return fmt.Errorf("%s block %d has no version %d", otherSide, q, v)
				}
				grams[q] = gr
			}
		} else {
			var err error
			if len(dst) > 0 {
				n, err = w.fetchRows(ctx, js, owner, otherSide, q, blk.Index, v, dst)
				if err != nil {
					return err
				}
			}
			if js.spec.Implicit {
				var m int64
				grams[q], m, err = w.fetchGram(ctx, js, owner, otherSide, q, v)
				if err != nil {
					return err
				}
				n += m
			}
		}
		mu.Lock()
		g.bytes += n
		mu.Unlock()
		return nil
	})
	if err != nil {
		return gathered{}, err
	}
	for _, gr := range grams { // block order: the same sum on every worker
		for i, v := range gr {
			g.gram[i] += v
		}
	}
	return g, nil
}

// forEach runs fn(0..n-1) with at most FetchParallel running, and returns
// the first error (cancelling the others).
func (w *Worker) forEach(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, w.cfg.FetchParallel)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// peerError says that another worker did not answer a row request.
type peerError struct {
	peer string
	err  error
}

func (e *peerError) Error() string { return e.err.Error() }
func (e *peerError) Unwrap() error { return e.err }

// request sends a frame to owner and returns the decoded answer, repeating
// requests answered with an error frame a bounded number of times.
func (w *Worker) request(ctx context.Context, owner string, h transport.Header, payload []byte) (transport.Header, []byte, int64, error) {
	req := transport.AppendFrame(nil, h, payload)
	var last error
	for attempt := 0; attempt < remoteRetries; attempt++ {
		answer, err := w.tr.Request(ctx, transport.WorkerRowsSubject(owner), req, w.cfg.Retry)
		if err != nil {
			err = fmt.Errorf("asking worker %s for %s block %d: %w", owner, sideName(h.Side), h.Block, err)
			if errors.Is(err, transport.ErrUnreachable) {
				err = &peerError{peer: owner, err: err}
			}
			return transport.Header{}, nil, 0, err
		}
		rh, payload, err := transport.DecodeFrame(answer)
		if err != nil {
			return transport.Header{}, nil, 0, fmt.Errorf("answer of worker %s: %w", owner, err)
		}
		w.metrics.bytesReceived.WithLabelValues(rh.Type.String()).Add(float64(len(answer)))
		if rerr := transport.FrameErr(rh, payload); rerr != nil {
			last = rerr
			select {
			case <-ctx.Done():
				return transport.Header{}, nil, 0, ctx.Err()
			case <-time.After(remoteRetryWait):
			}
			continue
		}
		if rh.Job != h.Job || rh.Epoch != h.Epoch || rh.Iteration != h.Iteration || rh.Side != h.Side ||
			rh.Block != h.Block || rh.Peer != h.Peer || rh.Chunk != h.Chunk || rh.Cols != h.Cols {
			return transport.Header{}, nil, 0, fmt.Errorf("worker %s answered another request (%+v for %+v)", owner, rh, h)
		}
		return rh, payload, int64(len(answer)), nil
	}
	return transport.Header{}, nil, 0, fmt.Errorf("worker %s: %w", owner, last)
}

func sideName(s uint8) string { return partition.Side(s).String() }

func (w *Worker) header(js *jobState, typ transport.FrameType, side partition.Side, block, peer, v int) transport.Header {
	js.mu.Lock()
	epoch := js.epoch
	js.mu.Unlock()
	return transport.Header{
		Type: typ, Side: uint8(side), Job: js.id, Epoch: uint32(epoch), Iteration: uint32(v),
		Block: uint32(block), Peer: uint32(peer), Cols: uint32(js.spec.Width()),
	}
}

// perChunk is how many rows of the job's rank fit in one message.
func (w *Worker) perChunk(k int) (int, error) {
	per := transport.RowsPerChunk(w.tr.MaxPayload(), k)
	if per == 0 {
		return 0, fmt.Errorf("one factor row of rank %d does not fit the NATS server's max_payload of %d bytes", k, w.tr.MaxPayload())
	}
	return per, nil
}

// fetchRows fills dst with the rows that block `peer` needs from the other
// side's block `block`, owned by owner, chunk by chunk in parallel.
func (w *Worker) fetchRows(ctx context.Context, js *jobState, owner string, side partition.Side, block, peer, v int, dst []float32) (int64, error) {
	k := js.spec.Width()
	per, err := w.perChunk(k)
	if err != nil {
		return 0, err
	}
	rows := len(dst) / k
	chunks := transport.ChunkCount(rows, per)
	var total int64
	var mu sync.Mutex
	err = w.forEach(ctx, chunks, func(ctx context.Context, c int) error {
		h := w.header(js, transport.FrameRowsRequest, side, block, peer, v)
		h.Chunk, h.Chunks = uint32(c), uint32(chunks)
		rh, payload, n, err := w.request(ctx, owner, h, nil)
		if err != nil {
			return err
		}
		lo, hi, _ := transport.ChunkBounds(rows, per, c)
		if rh.Type != transport.FrameRows || int(rh.Rows) != hi-lo || int(rh.Chunks) != chunks {
			return fmt.Errorf("worker %s sent %d rows in %d chunks for chunk %d, want %d rows in %d", owner, rh.Rows, rh.Chunks, c, hi-lo, chunks)
		}
		transport.DecodeFloat32s(dst[lo*k:hi*k], payload)
		mu.Lock()
		total += n
		mu.Unlock()
		return nil
	})
	return total, err
}

// fetchGram asks owner for YᵀY of the other side's block at version v.
func (w *Worker) fetchGram(ctx context.Context, js *jobState, owner string, side partition.Side, block, v int) ([]float64, int64, error) {
	k := js.spec.Width()
	if !transport.GramFits(w.tr.MaxPayload(), k) {
		return nil, 0, fmt.Errorf("a rank-%d Gram matrix does not fit the NATS server's max_payload of %d bytes", k, w.tr.MaxPayload())
	}
	h := w.header(js, transport.FrameGramRequest, side, block, 0, v)
	rh, payload, n, err := w.request(ctx, owner, h, nil)
	if err != nil {
		return nil, 0, err
	}
	if rh.Type != transport.FrameGram || int(rh.Rows) != k {
		return nil, 0, fmt.Errorf("worker %s sent a %v frame for a Gram request", owner, rh.Type)
	}
	g := make([]float64, k*k)
	transport.DecodeFloat64s(g, payload)
	return g, n, nil
}

// fetchSide returns every row of side s at version v, blocks concatenated
// in order (the global index order), and the bytes received.
func (w *Worker) fetchSide(ctx context.Context, js *jobState, s partition.Side, v int) ([]float32, int64, error) {
	owners := js.owners(s)
	parts := make([][]float32, len(owners))
	var total int64
	var mu sync.Mutex
	err := w.forEach(ctx, len(owners), func(ctx context.Context, b int) error {
		if owners[b] == w.cfg.ID {
			_, x, err := js.heldVersion(s, b, v)
			parts[b] = x
			return err
		}
		x, n, err := w.fetchAll(ctx, js, owners[b], s, b, v)
		if err != nil {
			return err
		}
		parts[b] = x
		mu.Lock()
		total += n
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	var out []float32
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, total, nil
}

// fetchAll fetches every row of a block: the first chunk says how many
// chunks there are.
func (w *Worker) fetchAll(ctx context.Context, js *jobState, owner string, s partition.Side, block, v int) ([]float32, int64, error) {
	k := js.spec.Width()
	get := func(ctx context.Context, c int) ([]float32, transport.Header, int64, error) {
		h := w.header(js, transport.FrameRowsRequest, s, block, allRows, v)
		h.Chunk = uint32(c)
		rh, payload, n, err := w.request(ctx, owner, h, nil)
		if err != nil {
			return nil, rh, 0, err
		}
		if rh.Type != transport.FrameRows {
			return nil, rh, 0, fmt.Errorf("worker %s sent a %v frame for rows", owner, rh.Type)
		}
		x := make([]float32, int(rh.Rows)*k)
		transport.DecodeFloat32s(x, payload)
		return x, rh, n, nil
	}
	first, rh, total, err := get(ctx, 0)
	if err != nil {
		return nil, 0, err
	}
	parts := make([][]float32, rh.Chunks)
	parts[0] = first
	var mu sync.Mutex
	err = w.forEach(ctx, int(rh.Chunks)-1, func(ctx context.Context, i int) error {
		x, _, n, err := get(ctx, i+1)
		if err != nil {
			return err
		}
		parts[i+1] = x
		mu.Lock()
		total += n
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	var out []float32
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, total, nil
}

// onRowRequest answers a row or Gram request in the background, with a
// bounded number answered at once.
func (w *Worker) onRowRequest(data []byte, reply func([]byte) error) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.serving <- struct{}{}
		defer func() { <-w.serving }()
		bp := framePool.Get().(*[]byte)
		defer framePool.Put(bp)
		answer := w.serveFrame((*bp)[:0], data)
		*bp = answer
		// reply copies the answer, so the pooled buffer can be reused as
		// soon as it returns.
		if err := reply(answer); err != nil {
			if !errors.Is(err, ErrClosed) {
				w.log.Warn("row answer not sent", "err", err)
			}
			return
		}
		if h, _, err := transport.DecodeFrame(answer); err == nil {
			w.metrics.bytesSent.WithLabelValues(h.Type.String()).Add(float64(len(answer)))
		}
	}()
}

// framePool holds buffers for answers and their payloads: a phase moves
// every needed row through them, and reusing them keeps that traffic out
// of the garbage collector's way.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// appendRows appends to dst the FrameRows answer rh: its rh.Rows rows,
// the j-th being row at(j) of x (rank k). The rows go straight into the
// answer: one pooled buffer an answer in flight, not a payload buffer
// beside it.
func appendRows(dst []byte, rh transport.Header, x []float32, k int, at func(j int) int) []byte {
	return transport.AppendFrameWith(dst, rh, int(rh.Rows)*k*4, func(out []byte) []byte {
		for j := range int(rh.Rows) {
			r := at(j)
			out = transport.AppendFloat32s(out, x[r*k:r*k+k])
		}
		return out
	})
}

// serveFrame appends the answer to one request frame to dst.
func (w *Worker) serveFrame(dst, data []byte) []byte {
	h, payload, err := transport.DecodeFrame(data)
	if err != nil {
		return append(dst, transport.ErrorFrame(h, err.Error())...)
	}
	fail := func(format string, a ...any) []byte {
		return append(dst, transport.ErrorFrame(h, fmt.Sprintf(format, a...))...)
	}
	js := w.job(h.Job)
	if js == nil {
		return fail("job %s is not held by worker %s", h.Job, w.cfg.ID)
	}
	js.mu.Lock()
	epoch := js.epoch
	js.mu.Unlock()
	if uint64(h.Epoch) != epoch {
		return fail("worker %s is at epoch %d of job %s, not %d", w.cfg.ID, epoch, h.Job, h.Epoch)
	}
	side := partition.Side(h.Side)
	hb := js.block(side, int(h.Block))
	if hb == nil {
		return fail("worker %s does not hold %s block %d", w.cfg.ID, side, h.Block)
	}
	k := hb.k
	if int(h.Cols) != k {
		return fail("rank %d asked, the job's is %d", h.Cols, k)
	}
	switch h.Type {
	case transport.FramePickRequest:
		x, ok := hb.version(int(h.Iteration))
		if !ok {
			return fail("%s block %d has no version %d yet", side, h.Block, h.Iteration)
		}
		if int(h.Peer) >= len(hb.blk.SendPtr)-1 {
			return fail("no block %d on the other side", h.Peer)
		}
		list := hb.blk.SendTo(int(h.Peer))
		for i := 0; i < len(payload); i += 4 {
			if p := binary.LittleEndian.Uint32(payload[i:]); int64(p) >= int64(len(list)) {
				return fail("position %d of the %d rows block %d needs does not exist", p, len(list), h.Peer)
			}
		}
		rh := h
		rh.Type, rh.Chunk, rh.Chunks = transport.FrameRows, 0, 1
		return appendRows(dst, rh, x, k, func(j int) int {
			return int(list[binary.LittleEndian.Uint32(payload[4*j:])])
		})
	case transport.FrameRowsRequest:
		x, ok := hb.version(int(h.Iteration))
		if !ok {
			return fail("%s block %d has no version %d yet", side, h.Block, h.Iteration)
		}
		var list []int32
		n := hb.blk.Len()
		if h.Peer != allRows {
			if int(h.Peer) >= len(hb.blk.SendPtr)-1 {
				return fail("no block %d on the other side", h.Peer)
			}
			list = hb.blk.SendTo(int(h.Peer))
			n = len(list)
		}
		per, err := w.perChunk(k)
		if err != nil {
			return fail("%v", err)
		}
		lo, hi, ok := transport.ChunkBounds(n, per, int(h.Chunk))
		if !ok {
			return fail("chunk %d of %d rows in chunks of %d does not exist", h.Chunk, n, per)
		}
		rh := h
		rh.Type, rh.Rows, rh.Chunks = transport.FrameRows, uint32(hi-lo), uint32(transport.ChunkCount(n, per))
		return appendRows(dst, rh, x, k, func(j int) int {
			if list != nil {
				return int(list[lo+j])
			}
			return lo + j
		})
	case transport.FrameGramRequest:
		g, ok := hb.gram(int(h.Iteration), w.cfg.Threads)
		if !ok {
			return fail("%s block %d has no version %d yet", side, h.Block, h.Iteration)
		}
		rh := h
		rh.Type, rh.Rows, rh.Chunk, rh.Chunks = transport.FrameGram, uint32(k), 0, 1
		return transport.AppendFrame(dst, rh, transport.AppendFloat64s(nil, g))
	}
	return fail("worker %s does not answer %v frames", w.cfg.ID, h.Type)
}
