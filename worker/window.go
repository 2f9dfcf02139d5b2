package worker

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/transport"
)

// A block whose gather would pass Config.GatherBytes is solved in
// windows: consecutive rows are grouped while the distinct rows of the
// other side their ratings need stay within the budget, each group
// fetches just those rows (FramePickRequest) and is solved on its own,
// and a row too long for any group (more than als.SegmentRows ratings,
// which the solver sums in segments anyway) is solved one segment of
// fetched rows at a time. Every row's factors are those of the whole
// gather to the last bit: a row's solve reads only its own ratings' rows,
// in the same order. What it costs is traffic: a row of the other side
// needed by two groups is fetched twice, and a long row's segments are
// fetched again for the training loss.

// windowed reports whether h's block is solved in windows: it has no test
// ratings (whose errors read the whole gather) and its gather passes the
// budget.
func (w *Worker) windowed(js *jobState, h *heldBlock) bool {
	return w.cfg.GatherBytes > 0 && len(h.blk.Test.Col) == 0 &&
		int64(h.blk.NeededCount())*int64(js.spec.Width())*4 > w.cfg.GatherBytes
}

// window is the scratch of one phase's windowed solves, reused from block
// to block.
type window struct {
	budget int     // rows of the other side a group may gather
	mark   []int32 // gathered index → position in the group, or -1
	list   []int32 // the group's gathered indices, ascending once sorted
	ptr    []int64
	cols   []int32
	rows   []float32
}

const (
	unmarked = -1
	listed   = -2 // in the group, position not known yet
)

// solveWindowed solves every row of h's block into x from version v of
// the other side (yty: its YᵀY, implicit model), and returns the training
// loss and the bytes received.
func (w *Worker) solveWindowed(ctx context.Context, js *jobState, h *heldBlock, v int, solver *als.Solver, win *window, x []float32, yty []float64) (sse float64, bytes int64, err error) {
	k := js.spec.Width()
	blk := h.blk
	rows := blockRows(blk.Rows)
	if need := blk.NeededCount(); cap(win.mark) < need {
		win.mark = make([]int32, need)
	} else {
		win.mark = win.mark[:need]
	}
	for i := range win.mark {
		win.mark[i] = unmarked
	}
	r0 := 0
	flush := func(r1 int) error {
		if r1 == r0 {
			return nil
		}
		list := win.list
		slices.Sort(list)
		for i, c := range list {
			win.mark[c] = int32(i)
		}
		lo, hi := rows.Ptr[r0], rows.Ptr[r1]
		win.ptr = win.ptr[:0]
		for _, p := range rows.Ptr[r0 : r1+1] {
			win.ptr = append(win.ptr, p-lo)
		}
		win.cols = win.cols[:0]
		for _, c := range rows.Col[lo:hi] {
			win.cols = append(win.cols, win.mark[c])
		}
		if n := len(list) * k; cap(win.rows) < n {
			win.rows = make([]float32, n)
		}
		other := win.rows[:len(list)*k]
		n, err := w.fetchPicked(ctx, js, h, v, list, other)
		bytes += n
		if err != nil {
			return err
		}
		st, err := solver.UpdateBlock(ctx, als.BlockUpdate{
			Rows: als.Rows{Ptr: win.ptr, Col: win.cols, Val: rows.Val[lo:hi]}, Other: other, YtY: yty,
			X: x[r0*k : r1*k], Loss: true, Side: alsSide(blk.Side),
		})
		if err != nil {
			return fmt.Errorf("rows %d..%d: %w", r0, r1-1, err)
		}
		sse += st.SSE
		for _, c := range list {
			win.mark[c] = unmarked
		}
		win.list, r0 = list[:0], r1
		return nil
	}
	for r := 0; r < blk.Len(); r++ {
		cols := rows.Col[rows.Ptr[r]:rows.Ptr[r+1]]
		if solver.Streams(len(cols)) {
			if err := flush(r); err != nil {
				return sse, bytes, err
			}
			e, n, err := w.solveStreamed(ctx, js, h, v, solver, r, x[r*k:r*k+k], yty)
			bytes += n
			if err != nil {
				return sse, bytes, fmt.Errorf("row %d: %w", r, err)
			}
			sse += e
			r0 = r + 1
			continue
		}
		fresh := 0
		for _, c := range cols {
			if win.mark[c] == unmarked {
				fresh++
			}
		}
		if len(win.list) > 0 && len(win.list)+fresh > win.budget {
			if err := flush(r); err != nil {
				return sse, bytes, err
			}
		}
		for _, c := range cols {
			if win.mark[c] == unmarked {
				win.mark[c] = listed
				win.list = append(win.list, c)
			}
		}
	}
	return sse, bytes, flush(blk.Len())
}

// solveStreamed solves row r of h's block, fetching its ratings' rows one
// segment at a time, and returns its training loss and the bytes
// received.
func (w *Worker) solveStreamed(ctx context.Context, js *jobState, h *heldBlock, v int, solver *als.Solver, r int, xr []float32, yty []float64) (float64, int64, error) {
	k := js.spec.Width()
	rows := h.blk.Rows
	cols := rows.Col[rows.Ptr[r]:rows.Ptr[r+1]]
	var bytes int64
	sse, err := solver.SolveStreamed(rows.Val[rows.Ptr[r]:rows.Ptr[r+1]], yty, func(start int, dst []float32) error {
		n, err := w.fetchPicked(ctx, js, h, v, cols[start:start+len(dst)/k], dst)
		bytes += n
		return err
	}, xr, true)
	return sse, bytes, err
}

// fetchPicked fills dst with the other side's rows at the ascending
// gathered indices list of h's block (version v): its own from the
// worker's blocks, the others' with pick requests of at most a message
// each, several in flight.
func (w *Worker) fetchPicked(ctx context.Context, js *jobState, h *heldBlock, v int, list []int32, dst []float32) (int64, error) {
	k := js.spec.Width()
	blk := h.blk
	otherSide := blk.Side.Other()
	owners := js.owners(otherSide)
	per, err := w.perChunk(k)
	if err != nil {
		return 0, err
	}
	// The pieces: runs of list held by one owner, cut at per rows.
	type piece struct{ q, lo, hi int }
	var pieces []piece
	for lo := 0; lo < len(list); {
		q, _ := slices.BinarySearch(blk.NeedPtr, list[lo]+1)
		q-- // NeedPtr[q] ≤ list[lo] < NeedPtr[q+1]
		hi := lo + 1
		for hi < len(list) && hi-lo < per && list[hi] < blk.NeedPtr[q+1] {
			hi++
		}
		pieces = append(pieces, piece{q, lo, hi})
		lo = hi
	}
	var total int64
	var mu sync.Mutex
	err = w.forEach(ctx, len(pieces), func(ctx context.Context, i int) error {
		p := pieces[i]
		out := dst[p.lo*k : p.hi*k]
		base := blk.NeedPtr[p.q]
		if owners[p.q] == w.cfg.ID {
			src, x, err := js.heldVersion(otherSide, p.q, v)
			if err != nil {
				return err
			}
			send := src.blk.SendTo(blk.Index)
			for j, c := range list[p.lo:p.hi] {
				r := int(send[c-base])
				copy(out[j*k:j*k+k], x[r*k:r*k+k])
			}
			return nil
		}
		req := make([]byte, 0, 4*(p.hi-p.lo))
		for _, c := range list[p.lo:p.hi] {
			req = binary.LittleEndian.AppendUint32(req, uint32(c-base))
		}
		hd := w.header(js, transport.FramePickRequest, otherSide, p.q, blk.Index, v)
		hd.Chunks, hd.Rows = 1, uint32(p.hi-p.lo)
		rh, payload, n, err := w.request(ctx, owners[p.q], hd, req)
		if err != nil {
			return err
		}
		if rh.Type != transport.FrameRows || int(rh.Rows) != p.hi-p.lo {
			return fmt.Errorf("worker %s sent %d rows (%v) for %d picked", owners[p.q], rh.Rows, rh.Type, p.hi-p.lo)
		}
		transport.DecodeFloat32s(out, payload)
		mu.Lock()
		total += n
		mu.Unlock()
		return nil
	})
	return total, err
}
