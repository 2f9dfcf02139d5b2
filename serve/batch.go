package serve

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
)

// Batch recommendation scores every user against every item: a matrix
// product S = X·Yᵀ done by blocks, each block's scores scanned for the top
// K right after they are computed.
//
// All of Y is packed once (als.PackItems) and shared read-only by the
// workers. A worker takes a chunk of up to batchUsers users at a time and
// keeps each user's top K so far: a list sorted best first for K up to
// batchSortedK, else a min-heap, of batchKey entries. For each tile of
// items (at most batchItems; the Y tile stays in L2 while the whole chunk
// goes over it) it scores batchGroup users at a time with
// als.ScoreBlockAbove, which compares every score, while it is still in a
// register, with the user's threshold (the worst score kept, or −Inf while
// fewer than K are kept), marks the few above it in a bit mask and stores
// only the panels with marks. The scan then visits only the marked scores.
// Items come in ascending order, so an item scoring exactly the threshold
// loses the tie to the one kept and is rightly left out. A user's training
// items are unmarked before the scan when they are to be left out.
//
// The tiles start small (one panel, then doubling up to batchItems), as
// the thresholds rise fastest over the first items; a user then has a few
// hundred marked scores in all and about K·ln(items/K) insertions.
//
// Chunks are handed out in user order; finished chunks go back to the
// calling goroutine, which emits them in order. At most batchWindow chunks
// per worker are in flight, which bounds the memory held for emission when
// emit is slower than the workers; a chunk has fewer users when K is large
// (about batchKeys entries at most).
const (
	batchSortedK = 32 // the largest K kept in a sorted list, not a heap
	batchUsers   = 1024
	batchKeys    = 1 << 17
	batchGroup   = 16
	batchItems   = 1024 // a multiple of als.ScorePanel
	batchWindow  = 4
)

// batchChunk is one chunk's results: user u0+i's top entries (batchKey),
// best first, in keys[i*k : i*k+n[i]].
type batchChunk struct {
	index  int
	u0, u1 int
	keys   []uint64
	n      []int
}

// batchWorker is one worker's scratch space.
type batchWorker struct {
	scores []float32 // batchGroup × batchItems scores
	thr    []float32 // batchGroup thresholds
	hits   []uint64  // batchGroup × HitWords(batchItems) marks
	cursor []int     // per user of the chunk: next seen item to unmark
	seen   [][]int32 // per user of the chunk: training items, ascending
	sorted [][]int32 // per user: storage for a sorted copy when Seen is not
}

// BatchTopK ranks every item for every user of m and calls emit once per user, in user order, with that user's k best items (best first; ties to the lower item index) and their scores. With excludeSeen, each user's training items (m.Seen) are left out. It runs on threads goroutines (0: all CPUs); emit runs on the calling goroutine. The slices passed to emit are reused after it returns.
//
// Without seen items in the snapshot (m.HasSeen false) excludeSeen leaves
// nothing out. A user with fewer than k items left gets them all. The
// scores are those of als.ScoreBlock: on the vector kernels they are summed
// with fused multiply-adds and may differ from a plain dot product in the
// last bits. An item scoring NaN or −Inf (only possible with non-finite
// factors) is never recommended. When ctx is cancelled BatchTopK stops,
// between blocks, and returns ctx.Err(); an error from emit stops it and is
// returned as is.
func BatchTopK(ctx context.Context, m *checkpoint.Model, k int, excludeSeen bool, threads int, emit func(user int32, items []int32, scores []float32) error) error {
	if m == nil {
		return errors.New("serve: BatchTopK: nil model")
	}
	rank := m.Rank
	if rank <= 0 || len(m.X)%rank != 0 || len(m.Y)%rank != 0 {
		return fmt.Errorf("serve: BatchTopK: factor lengths %d and %d are not multiples of rank %d", len(m.X), len(m.Y), rank)
	}
	if k <= 0 {
		return fmt.Errorf("serve: BatchTopK: k = %d, want at least 1", k)
	}
	nUsers, nItems := len(m.X)/rank, len(m.Y)/rank
	if nUsers > math.MaxInt32 || nItems > math.MaxInt32 {
		return fmt.Errorf("serve: BatchTopK: %d users × %d items exceed int32 rows", nUsers, nItems)
	}
	if nUsers == 0 {
		return ctx.Err()
	}
	k = min(k, nItems)
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	// Chunks of batchUsers users, fewer for a large k: a chunk's results
	// take at most about batchKeys keys (but a chunk has batchGroup users
	// at least).
	chunk := batchUsers
	if k > 0 { // k = 0: no items
		chunk = max(batchGroup, min(batchUsers, batchKeys/k))
	}
	nChunks := (nUsers + chunk - 1) / chunk
	threads = min(threads, nChunks)
	window := batchWindow * threads
	excludeSeen = excludeSeen && m.HasSeen()

	packed := packAll(m.Y, rank, nItems, threads)
	mean := m.Mean() // a model with biases: scores are μ + the dot product

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan *batchChunk, window)
	done := make(chan *batchChunk, window)
	for range window {
		free <- &batchChunk{
			keys: make([]uint64, chunk*k),
			n:    make([]int, chunk),
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &batchWorker{
				scores: make([]float32, batchGroup*batchItems),
				thr:    make([]float32, batchGroup),
				hits:   make([]uint64, batchGroup*als.HitWords(batchItems)),
				cursor: make([]int, chunk),
				seen:   make([][]int32, chunk),
				sorted: make([][]int32, chunk),
			}
			for {
				var c *batchChunk
				select {
				case c = <-free:
				case <-ctx.Done():
					return
				}
				i := int(next.Add(1) - 1)
				if i >= nChunks {
					return
				}
				c.index, c.u0, c.u1 = i, i*chunk, min((i+1)*chunk, nUsers)
				if !w.run(ctx, m, packed, nItems, k, excludeSeen, c) {
					return
				}
				done <- c // never blocks: at most window chunks exist
			}
		}()
	}

	// Emit chunks in order; ring holds those that finished early. The
	// chunks taken and not yet emitted are consecutive and at most window
	// many, so their indices modulo window differ.
	ring := make([]*batchChunk, window)
	items, scores := make([]int32, k), make([]float32, k)
	var err error
	for emitted := 0; emitted < nChunks && err == nil; {
		select {
		case c := <-done:
			ring[c.index%window] = c
		case <-ctx.Done():
			err = ctx.Err()
			continue
		}
		for err == nil {
			c := ring[emitted%window]
			if c == nil || c.index != emitted {
				break
			}
			if err = ctx.Err(); err != nil {
				break
			}
			ring[emitted%window] = nil
			for i := range c.u1 - c.u0 {
				if i%64 == 63 {
					if err = ctx.Err(); err != nil {
						break
					}
				}
				n := c.n[i]
				for j, key := range c.keys[i*k : i*k+n] {
					items[j], scores[j] = keyItem(key), keyScore(key)+mean
				}
				if err = emit(int32(c.u0+i), items[:n:n], scores[:n:n]); err != nil {
					break
				}
			}
			free <- c // never blocks: the chunk came from free
			emitted++
		}
	}
	cancel()
	wg.Wait()
	return err
}

// packAll packs all n items of y for als.ScoreBlock, on up to threads
// goroutines.
func packAll(y []float32, rank, n, threads int) []float32 {
	packed := make([]float32, als.PackedLen(rank, n))
	// Pieces of whole panels, so that each goroutine writes its own part.
	piece := max(als.ScorePanel, (n+threads-1)/threads/als.ScorePanel*als.ScorePanel)
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += piece {
		hi := min(lo+piece, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := als.PackedLen(rank, lo)
			als.PackItems(packed[off:off:off+als.PackedLen(rank, hi-lo)], y, rank, lo, hi)
		}()
	}
	wg.Wait()
	return packed
}

// run computes chunk c's results and reports false if ctx was cancelled
// first.
func (w *batchWorker) run(ctx context.Context, m *checkpoint.Model, packed []float32, nItems, k int, excludeSeen bool, c *batchChunk) bool {
	rank := m.Rank
	nu := c.u1 - c.u0
	for i := range nu {
		c.n[i] = 0
		w.cursor[i] = 0
		if excludeSeen {
			w.seen[i] = w.sortedSeen(i, m.Seen(int32(c.u0+i)))
		}
	}
	first := min(batchItems, (k+als.ScorePanel-1)/als.ScorePanel*als.ScorePanel)
	// The top K of a user is a list sorted best first for small K, else a
	// heap; worst is the position of its worst entry once full.
	scan, worst := scanSorted, k-1
	if k > batchSortedK {
		scan, worst = scanHeap, 0
	}
	for j0, nj := 0, 0; j0 < nItems; j0 += nj {
		select {
		case <-ctx.Done():
			return false
		default:
		}
		// Tiles of first, first, 2·first, 4·first, … items up to
		// batchItems: the thresholds rise fastest over the first items, and
		// each tile then has about K marks per user at most.
		nj = min(batchItems, max(first, j0), nItems-j0)
		tile := packed[als.PackedLen(rank, j0):]
		hw := als.HitWords(nj)
		for g0 := 0; g0 < nu; g0 += batchGroup {
			ng := min(batchGroup, nu-g0)
			for g := range ng {
				i := g0 + g
				w.thr[g] = float32(math.Inf(-1))
				if c.n[i] == k {
					w.thr[g] = keyScore(c.keys[i*k+worst]) // the worst kept
				}
			}
			als.ScoreBlockAbove(w.scores, nj, m.X, rank, c.u0+g0, ng, tile, nj, w.thr, w.hits)
			for g := range ng {
				i := g0 + g
				hits := w.hits[g*hw : (g+1)*hw]
				if excludeSeen {
					w.cursor[i] = unmarkSeen(hits, w.seen[i], w.cursor[i], j0, nj)
				}
				c.n[i] = scan(w.scores[g*nj:(g+1)*nj], hits, j0, c.keys[i*k:(i+1)*k], c.n[i])
			}
		}
	}
	if k > batchSortedK {
		for i := range nu {
			sortHeap(c.keys[i*k : i*k+c.n[i]])
		}
	}
	return true
}

// sortedSeen returns seen if it is ascending, else a sorted copy (kept in
// the worker's storage for user i of the chunk).
func (w *batchWorker) sortedSeen(i int, seen []int32) []int32 {
	if slices.IsSorted(seen) {
		return seen
	}
	w.sorted[i] = append(w.sorted[i][:0], seen...)
	slices.Sort(w.sorted[i])
	return w.sorted[i]
}

// unmarkSeen clears the marks of the items seen[from:] that fall in the
// tile of items j0 … j0+nj-1 and returns the position in seen of the first
// item past the tile.
func unmarkSeen(hits []uint64, seen []int32, from, j0, nj int) int {
	p := from
	for ; p < len(seen) && int(seen[p]) < j0+nj; p++ {
		if j := int(seen[p]) - j0; j >= 0 {
			hits[j/als.ScorePanel] &^= 1 << (j % als.ScorePanel)
		}
	}
	return p
}

// scanSorted offers the marked scores of a tile (row: the scores of items
// j0, j0+1, …; hits: their marks) to a user's top K, a list of keys sorted
// best first (the first n entries of top in use, capacity len(top)), and
// returns the new entry count. Until the list is full every marked item
// goes in, then only those above the worst entry kept. An insertion moves
// K/2 entries on average, cheaper than a heap's sift for small K.
func scanSorted(row []float32, hits []uint64, j0 int, top []uint64, n int) int {
	k := len(top)
	var t float32
	if n == k {
		t = keyScore(top[k-1])
	}
	for p, word := range hits {
		for word != 0 {
			j := p*als.ScorePanel + bits.TrailingZeros64(word)
			word &= word - 1
			s := row[j]
			if n == k {
				// Items come in ascending order: an item scoring exactly t
				// ranks below the one kept, so only s > t enters.
				if s <= t {
					continue
				}
				n--
			}
			key := batchKey(s, int32(j0+j))
			i := n
			for i > 0 && top[i-1] < key {
				top[i] = top[i-1]
				i--
			}
			top[i] = key
			if n++; n == k {
				t = keyScore(top[k-1])
			}
		}
	}
	return n
}

// scanHeap is scanSorted for a top K kept in a heap (the first n entries
// of heap), for large K.
func scanHeap(row []float32, hits []uint64, j0 int, heap []uint64, n int) int {
	k := len(heap)
	var t float32
	if n == k {
		t = keyScore(heap[0])
	}
	for p, word := range hits {
		for word != 0 {
			j := p*als.ScorePanel + bits.TrailingZeros64(word)
			word &= word - 1
			s := row[j]
			if n < k {
				heapUp(heap, n, batchKey(s, int32(j0+j)))
				if n++; n == k {
					t = keyScore(heap[0])
				}
			} else if s > t {
				// Items come in ascending order: an item scoring exactly t
				// ranks below the one kept, so only s > t enters.
				heapDown(heap, k, batchKey(s, int32(j0+j)))
				t = keyScore(heap[0])
			}
		}
	}
	return n
}

// An entry of a top-K heap is a batchKey: the score mapped to an unsigned
// integer of the same order in the high 32 bits and the complement of the
// item in the low ones, so that one integer compare ranks entries as
// Recommend does (higher score first, then lower item). −0 is keyed as +0,
// which compares equal to it. Scores are never NaN here (NaN is never
// marked).
func batchKey(s float32, item int32) uint64 {
	f := math.Float32bits(s + 0) // −0 + 0 = +0
	f ^= uint32(int32(f)>>31) | 1<<31
	return uint64(f)<<32 | uint64(^uint32(item))
}

func keyScore(key uint64) float32 {
	f := uint32(key >> 32)
	f ^= uint32(int32(^f)>>31) | 1<<31
	return math.Float32frombits(f)
}

func keyItem(key uint64) int32 { return int32(^uint32(key)) }

// The heap is a min-heap of keys: its root is the entry that ranks lowest.

// heapUp adds key to the heap h[:n] (len(h) > n).
func heapUp(h []uint64, n int, key uint64) {
	c := n
	for c > 0 {
		p := (c - 1) / 2
		if h[p] <= key {
			break
		}
		h[c] = h[p]
		c = p
	}
	h[c] = key
}

// heapDown replaces the root of the heap h[:n] with key.
func heapDown(h []uint64, n int, key uint64) {
	h = h[:n]
	p := 0
	for {
		c := 2*p + 1
		if c >= n {
			break
		}
		if c+1 < n && h[c+1] < h[c] {
			c++
		}
		if key <= h[c] {
			break
		}
		h[p] = h[c]
		p = c
	}
	h[p] = key
}

// sortHeap turns a heap into a list, best first.
func sortHeap(h []uint64) {
	for end := len(h) - 1; end > 0; end-- {
		root := h[0]
		heapDown(h, end, h[end])
		h[end] = root
	}
}
