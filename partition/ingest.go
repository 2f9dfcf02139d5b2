package partition

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"runtime/debug"
	"sync"
)

// Parallel ingest: a regular file in a line-oriented format is cut into
// byte ranges that start after a '\n', each range is parsed by its own
// goroutine into its own Builder (its own dictionaries), and the parts are
// merged in file order. The result is the one ReadFile gives — same
// records in the same order, same dictionaries' order of first appearance,
// same statistics, same first error with its true line number — or, for
// the few inputs where a range cannot be parsed on its own, ReadFile's
// sequential scan is used instead:
//
//   - Matrix Market (its header and entry count span the whole file) and
//     Parquet (not line-oriented);
//   - a CSV line holding a quote (a quoted field may hold a newline, so a
//     cut at a '\n' may fall inside a record) or a line too long to buffer;
//   - a first range made only of blank lines (the header rule applies to
//     the first non-blank record of the file, which then lies further on);
//   - an input whose format cannot be detected or that holds no rating (so
//     that the error is exactly the sequential one).

// errSequential stops a range's scan that must be redone sequentially.
var errSequential = errors.New("partition: input needs a sequential scan")

// minParallelBytes is the smallest file cut into ranges: below it the
// goroutines and the merge cost more than they save.
var minParallelBytes int64 = 4 << 20

// ReadFileParallel is ReadFile with up to threads goroutines parsing byte
// ranges of the file concurrently (threads ≤ 1, small files, or inputs
// that cannot be cut run ReadFile). The Builder, statistics and errors are
// ReadFile's.
func ReadFileParallel(ctx context.Context, path string, opts ScanOptions, threads int) (*Builder, ScanStats, error) {
	if threads <= 1 {
		return ReadFile(ctx, path, opts)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, ScanStats{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() < minParallelBytes {
		return ReadFile(ctx, path, opts)
	}
	if opts.Name == "" {
		opts.Name = path
	}
	format, ok := detectFile(ctx, f, opts)
	if !ok {
		return ReadFile(ctx, path, opts)
	}
	bounds, err := cutRanges(f, fi.Size(), 2*threads)
	if err != nil {
		return nil, ScanStats{}, err
	}
	parts := make([]rangePart, len(bounds)-1)
	var wg sync.WaitGroup
	sem := make(chan struct{}, threads)
	for i := range parts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			parts[i] = scanRange(ctx, f, bounds[i], bounds[i+1], i == 0, format, opts)
		}()
	}
	wg.Wait()

	var st ScanStats
	st.Format = format
	for i := range parts {
		p := &parts[i]
		if p.err == errSequential || (i == 0 && p.headerPending) {
			return ReadFile(ctx, path, opts)
		}
	}
	for i := range parts {
		p := &parts[i]
		if p.err != nil {
			// The first failing range's error is the first in the file:
			// the ranges before it were read whole, so their line counts
			// place its line.
			var le *LineError
			if errors.As(p.err, &le) {
				le.Line += st.Lines
			}
			st.Lines += p.st.Lines
			st.Records += p.st.Records
			st.Skipped += p.st.Skipped
			return nil, st, p.err
		}
		st.Lines += p.st.Lines
		st.Records += p.st.Records
		st.Skipped += p.st.Skipped
	}
	if st.Records == 0 {
		return ReadFile(ctx, path, opts) // the exact "no ratings" error
	}
	if st.Records > MaxRatings {
		return nil, st, errTooMany
	}
	return mergeParts(parts, threads), st, nil
}

// detectFile returns the format to parse f with in ranges: opts.Format, or
// the detected one for FormatAuto. It reports false when the file must be
// read sequentially (Matrix Market, or a detection error, which the
// sequential scan then reports).
func detectFile(ctx context.Context, f *os.File, opts ScanOptions) (Format, bool) {
	format := opts.Format
	if format == "" {
		format = FormatAuto
	}
	if _, err := ParseFormat(string(format)); err != nil {
		return "", false
	}
	if format == FormatAuto {
		buf := bufPool.Get().(*[]byte)
		defer bufPool.Put(buf)
		s := &scanner{r: reader{src: io.NewSectionReader(f, 0, 1<<62), buf: *buf}, opts: opts, ctx: ctx}
		s.r.skipBOM()
		d, err := s.detect()
		if err != nil {
			return "", false
		}
		format = d
	}
	return format, format != FormatMM && format != FormatParquet
}

// cutRanges returns the starts of about n byte ranges of a file of size
// bytes, each after a '\n' (the first at 0), followed by size.
func cutRanges(f *os.File, size int64, n int) ([]int64, error) {
	bounds := []int64{0}
	buf := make([]byte, 64<<10)
	for i := 1; i < n; i++ {
		pos := max(size*int64(i)/int64(n), bounds[len(bounds)-1])
		// The range starts after the first '\n' at or after pos-1.
		start := int64(-1)
		for p := pos - 1; p < size && start < 0; p += int64(len(buf)) {
			m, err := f.ReadAt(buf, p)
			if m == 0 && err != nil {
				if err == io.EOF {
					break
				}
				return nil, err
			}
			if j := bytes.IndexByte(buf[:m], '\n'); j >= 0 {
				start = p + int64(j) + 1
			}
		}
		if start < 0 || start >= size {
			break
		}
		if start > bounds[len(bounds)-1] {
			bounds = append(bounds, start)
		}
	}
	return append(bounds, size), nil
}

// rangePart is what one range's scan produced.
type rangePart struct {
	b             *Builder
	st            ScanStats
	err           error
	headerPending bool // the range held no record, not even a bad one
}

// scanRange parses bytes [lo, hi) of f, which start a line, into a new
// Builder. first marks the file's first range, the only one with a byte
// order mark to skip and a header line to recognise.
func scanRange(ctx context.Context, f *os.File, lo, hi int64, first bool, format Format, opts ScanOptions) rangePart {
	b := NewBuilder()
	// Reserving avoids regrowth copies; the estimate is close, so that
	// the parts do not hold much more than their ratings while merged.
	n := estimateLines(f, lo, hi)
	b.U, b.I, b.R = make([]int32, 0, n), make([]int32, 0, n), make([]float32, 0, n)
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	s := &scanner{
		r:     reader{src: io.NewSectionReader(f, lo, hi-lo), buf: *buf},
		opts:  opts,
		skip:  opts.OnBadLine == SkipBadLine,
		fn:    b.Add,
		ctx:   ctx,
		tick:  ctxEvery,
		chunk: true,
	}
	s.st.Format = format
	if first {
		s.r.skipBOM()
	}
	err := errSequential // Matrix Market's header covers the whole file
	if format != FormatMM {
		err = s.scanFormat(format, first)
	}
	return rangePart{b: b, st: s.st, err: err, headerPending: s.header}
}

// mergeParts concatenates the parts' ratings in order into one Builder
// whose dictionaries list the IDs in order of first appearance in the
// file, as a sequential scan makes them.
//
// The parts are copied one after another, each let go and its pages handed
// back to the system before the next: the merged arrays' pages become
// resident only as they are written, so the merge holds the ratings about
// once plus one part (not twice: for 100M ratings, 1.2 GB less at the
// ingest's peak). Each part is copied on up to threads goroutines, in
// ranges of its ratings.
func mergeParts(parts []rangePart, threads int) *Builder {
	out := NewBuilder()
	total := 0
	umaps := make([][]int32, len(parts))
	imaps := make([][]int32, len(parts))
	for i := range parts {
		p := parts[i].b
		total += p.Len()
		umaps[i] = mergeDict(out.Users, p.Users)
		imaps[i] = mergeDict(out.Items, p.Items)
	}
	out.U = make([]int32, total)
	out.I = make([]int32, total)
	out.R = make([]float32, total)
	off := 0
	for i := range parts {
		p, um, im := parts[i].b, umaps[i], imaps[i]
		n := p.Len()
		u, it, r := out.U[off:off+n], out.I[off:off+n], out.R[off:off+n]
		forRanges(n, threads, func(lo, hi int) {
			for j, x := range p.U[lo:hi] {
				u[lo+j] = um[x]
			}
			for j, x := range p.I[lo:hi] {
				it[lo+j] = im[x]
			}
			copy(r[lo:hi], p.R[lo:hi])
		})
		off += n
		p, parts[i].b, umaps[i], imaps[i] = nil, nil, nil, nil
		if total >= releaseBytes/12 {
			debug.FreeOSMemory()
		}
	}
	return out
}

// releaseBytes is the size of an input (12 bytes a rating) from which the
// merge hands each part's pages back to the system right away: below it
// the forced collections cost more than the memory is worth.
const releaseBytes = 64 << 20

// mergeDict adds the IDs of part to d in part's order and returns the
// mapping from part's indices to d's.
func mergeDict(d, part *Dict) []int32 {
	m := make([]int32, part.Len())
	for i, id := range part.IDs() {
		m[i] = d.addString(id)
	}
	return m
}

// estimateLines estimates the line count of bytes [lo, hi) of f from the
// line length in its first 64 KiB, plus 5%: a reservation for the range's
// ratings that rarely needs to grow and wastes little.
func estimateLines(f io.ReaderAt, lo, hi int64) int {
	size := hi - lo
	sample := make([]byte, min(size, 64<<10))
	m, _ := f.ReadAt(sample, lo)
	lines := int64(bytes.Count(sample[:m], []byte{'\n'}))
	if m == 0 || lines == 0 {
		return int(min(size/14, MaxRatings))
	}
	est := size*lines/int64(m) + size*lines/int64(m)/20 + 16
	return int(min(est, MaxRatings))
}
