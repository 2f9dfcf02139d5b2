package partition

import (
	"slices"
	"sync"
)

// The loader's steps after the parse (merging the parsers' parts,
// remapping to canonical indices, the transpose) touch every rating once
// with little arithmetic; on T threads they are cut into T contiguous
// ranges, each on its own goroutine, with results equal to the one-range
// code's: each range writes its own part of the output, so nothing
// depends on the goroutines' timing.

// minParallelRatings is the smallest range worth a goroutine: below it
// the goroutine costs more than the range's work.
const minParallelRatings = 1 << 16

// forRanges calls f(lo, hi) for up to threads contiguous ranges covering
// [0, n), each of at least minParallelRatings (one range when n is
// smaller), concurrently, and returns when every call has. f must only
// write what its range owns.
func forRanges(n, threads int, f func(lo, hi int)) {
	parts := max(min(threads, n/minParallelRatings), 1)
	if parts == 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for t := range parts {
		lo, hi := int(int64(n)*int64(t)/int64(parts)), int(int64(n)*int64(t+1)/int64(parts))
		wg.Go(func() { f(lo, hi) })
	}
	wg.Wait()
}

// remapThreads is remap on up to threads goroutines.
func remapThreads(xs []int32, m []int32, threads int) {
	forRanges(len(xs), threads, func(lo, hi int) { remap(xs[lo:hi], m) })
}

// permuteShift sets permute's bucket: 2^16 ratings, 768 KB of columns,
// values and positions, which stay in a core's cache while their cycles
// are followed.
const permuteShift = 16

// permute moves cols[j] and vals[j] to position dest[j], for dest a
// permutation of 0…len(dest)-1, in place; dest is overwritten.
//
// Following the permutation's cycles through the whole arrays moves each
// rating once but waits on a cache miss for every one when the input is
// in random order (16M ratings: 2.9 s). So the ratings are first dealt
// into buckets of 2^shift consecutive positions — an American flag sort
// pass, each rating swapped into the next free slot of its bucket, slots
// the size of their bucket and filled front to back, so that its memory
// is touched in few sequential streams — and the cycles are then
// followed within each bucket, in cache, on up to threads goroutines
// (each bucket is its own). Every rating carries its exact position, so
// the result is the one-pass cycles' whatever order the bucket pass
// leaves a bucket in.
func permute(dest, cols []int32, vals []float32, shift uint, threads int) {
	n := len(dest)
	size := 1 << shift
	nb := (n + size - 1) >> shift
	if nb > 1 {
		next := make([]int, nb) // the first slot of each bucket not yet dealt
		for b := range next {
			next[b] = b << shift
		}
		for b := range nb {
			end := min((b+1)<<shift, n)
			for i := next[b]; i < end; i = next[b] {
				db := int(dest[i]) >> shift
				if db == b {
					next[b] = i + 1
					continue
				}
				j := next[db]
				next[db] = j + 1
				dest[i], dest[j] = dest[j], dest[i]
				cols[i], cols[j] = cols[j], cols[i]
				vals[i], vals[j] = vals[j], vals[i]
			}
		}
	}
	parts := max(min(threads, nb, n/minParallelRatings), 1)
	var wg sync.WaitGroup
	for t := range parts {
		wg.Go(func() {
			for b := nb * t / parts; b < nb*(t+1)/parts; b++ {
				lo, hi := b<<shift, min((b+1)<<shift, n)
				followCycles(dest[lo:hi], cols[lo:hi], vals[lo:hi], int32(lo))
			}
		})
	}
	wg.Wait()
}

// followCycles moves each rating j of one bucket to dest[j]-base, which
// lies in the bucket, following the permutation's cycles: each rating is
// moved once. A placed rating's dest is set to -1.
func followCycles(dest, cols []int32, vals []float32, base int32) {
	for i := range dest {
		if dest[i] < 0 {
			continue
		}
		d := dest[i] - base
		c, v := cols[i], vals[i]
		dest[i] = -1
		for int(d) != i {
			c, cols[d] = cols[d], c
			v, vals[d] = vals[d], v
			d, dest[d] = dest[d]-base, -1
		}
		cols[i], vals[i] = c, v
	}
}

// packRows finishes buildCSR: ptr is the row pointer of col and val
// after the stable counting sort by row. It sorts each row by column
// (stably: the copies of a pair keep their input order), keeps only the
// last copy of each pair, and sets ptr to the row pointer of what is
// kept, packed at the front of col and val. It returns the number of
// copies dropped. The rows are cut into up to threads ranges of about
// equal ratings, each sorted and packed at its own start by its own
// goroutine (packRange); the ranges are then moved down over the gaps
// the dropped copies left, in order.
func packRows(ptr []int64, col []int32, val []float32, threads int) int64 {
	nRows := len(ptr) - 1
	parts := max(min(threads, nRows, int(ptr[nRows]/minParallelRatings)), 1)
	if parts == 1 {
		end, dups := packRange(ptr, col, val, 0, int32(nRows))
		ptr[nRows] = end
		return dups
	}
	bounds := BalancedBounds(ptr, parts)
	parts = len(bounds) - 1
	ends, dups := make([]int64, parts), make([]int64, parts)
	var wg sync.WaitGroup
	for t := range parts {
		wg.Go(func() { ends[t], dups[t] = packRange(ptr, col, val, bounds[t], bounds[t+1]) })
	}
	wg.Wait()
	out, total := ends[0], dups[0]
	for t := 1; t < parts; t++ {
		start := ptr[bounds[t]]
		if shift := start - out; shift > 0 {
			copy(col[out:], col[start:ends[t]])
			copy(val[out:], val[start:ends[t]])
			for r := bounds[t]; r < bounds[t+1]; r++ {
				ptr[r] -= shift
			}
		}
		out += ends[t] - start
		total += dups[t]
	}
	ptr[nRows] = out
	return total
}

// packRange sorts and deduplicates rows [lo, hi) for packRows, packing
// what it keeps from ptr[lo] on and setting ptr[lo+1:hi] to the kept rows'
// starts; it returns the end of what it kept and the copies it dropped.
// It reads ptr[hi] and writes no other range's entries: ptr[lo] keeps
// its value (the first row starts where it did), so that the range
// before may read it as its end.
func packRange(ptr []int64, col []int32, val []float32, lo, hi int32) (int64, int64) {
	var dups int64
	var keys []uint64
	var vbuf []float32
	out := ptr[lo]
	for r := lo; r < hi; r++ {
		c, v := col[ptr[r]:ptr[r+1]], val[ptr[r]:ptr[r+1]]
		if !slices.IsSorted(c) {
			// A stable sort by column, as an unstable sort of the keys
			// (column, position in the row), which are distinct: the
			// copies of a pair keep their input order.
			keys, vbuf = keys[:0], append(vbuf[:0], v...)
			for j, cj := range c {
				keys = append(keys, uint64(uint32(cj))<<32|uint64(j))
			}
			slices.Sort(keys)
			for j, key := range keys {
				c[j], v[j] = int32(key>>32), vbuf[uint32(key)]
			}
		}
		if r > lo {
			ptr[r] = out
		}
		for j := range c {
			if j+1 < len(c) && c[j+1] == c[j] {
				dups++ // a later copy of this pair follows: it wins
				continue
			}
			col[out], val[out] = c[j], v[j]
			out++
		}
	}
	return out, dups
}

// transposeThreads is transpose(m, nCols) computed on up to threads
// goroutines, the same CSR to the last entry. m's rows are cut into
// ranges of about equal ratings; each range counts its ratings in every
// column, and then writes them into each column after those of the
// ranges before it — the order in which transpose's single pass over the
// rows writes them. The extra memory is a column count per range beyond
// the first (transposeParts bounds it).
func transposeThreads(m CSR, nCols, threads int) CSR {
	parts := transposeParts(m, nCols, threads)
	if parts <= 1 {
		return transpose(m, nCols)
	}
	bounds := BalancedBounds(m.Ptr, parts)
	parts = len(bounds) - 1
	// counts[t][c]: range t's ratings in column c; then the position of
	// its first one.
	counts := make([][]int64, parts)
	var wg sync.WaitGroup
	for t := range parts {
		wg.Go(func() {
			n := make([]int64, nCols)
			for _, c := range m.Col[m.Ptr[bounds[t]]:m.Ptr[bounds[t+1]]] {
				n[c]++
			}
			counts[t] = n
		})
	}
	wg.Wait()
	ptr := make([]int64, nCols+1)
	pos := int64(0)
	for c := range nCols {
		ptr[c] = pos
		for t := range parts {
			n := counts[t][c]
			counts[t][c] = pos
			pos += n
		}
	}
	ptr[nCols] = pos
	col := make([]int32, len(m.Col))
	val := make([]float32, len(m.Val))
	for t := range parts {
		wg.Go(func() {
			fill := counts[t]
			for r := bounds[t]; r < bounds[t+1]; r++ {
				for p := m.Ptr[r]; p < m.Ptr[r+1]; p++ {
					c := m.Col[p]
					q := fill[c]
					col[q], val[q] = r, m.Val[p]
					fill[c] = q + 1
				}
			}
		})
	}
	wg.Wait()
	return CSR{Ptr: ptr, Col: col, Val: val}
}

// transposeParts is the number of row ranges transposeThreads cuts m
// into: at most threads, each of at least one row and minParallelRatings
// ratings, and few enough that the ranges' column counts beyond the
// first take at most half a byte a rating.
func transposeParts(m CSR, nCols, threads int) int {
	nnz := m.NNZ()
	parts := min(threads, m.Rows(), int(nnz/minParallelRatings))
	if nCols > 0 {
		parts = min(parts, int(nnz/(16*int64(nCols)))+1)
	}
	return max(parts, 1)
}

// extendMap returns m (a map onto n canonical indices, -1 for an ID
// without one) with each -1 replaced by the next index from n on, and
// the extended count: the map becomes one to one, so pairs of mapped IDs
// are distinct exactly when the pairs of IDs are.
func extendMap(m []int32, n int) ([]int32, int) {
	out := slices.Clone(m)
	for j, x := range out {
		if x < 0 {
			out[j] = int32(n)
			n++
		}
	}
	return out, n
}
