package partition

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// Sharded reading: a file stored in the cluster is cut into shards that
// different workers parse at the same time, each shard a byte range that
// starts and ends at a line start. A file is indexed once, as it is stored
// (Indexer): its size, format, and the number of '\n' bytes in every chunk
// of ChunkSize bytes. Shards are cut at chunk boundaries, so that the line
// count before a shard comes from the index alone and every bad line is
// reported with its true file:line, without a pass over the bytes before
// the shard.
//
// A cut at byte offset pos > 0 means "after the first '\n' at or after
// pos": the shard before the cut reads up to that point, the shard after
// it starts there. Both sides apply the same rule to bytes at or after
// pos only, so no shard reads the bytes of the chunk before its own.
//
// Files that cannot be cut are one shard: Matrix Market (its header and
// entry count cover the whole file), Parquet (not made of lines) and CSV
// that holds a quote anywhere (a quoted field may hold a newline, so a
// '\n' need not end a record).

// ErrIndex marks data that does not match its file index (a quote in a
// file indexed as holding none): the index or the data is damaged.
var ErrIndex = errors.New("partition: file does not match its index")

// FileIndex describes one input file for sharded reading. It is computed
// by an Indexer as the file is stored and kept beside it (a dataset's
// manifest holds one per file).
type FileIndex struct {
	// Name is the file's name in error messages ("ratings.csv:17: ...").
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Format is the file's format: the one given when it was stored, or
	// the detected one. Never FormatAuto.
	Format Format `json:"format"`
	// ChunkSize is the stride of Newlines; shards are cut at multiples of
	// it.
	ChunkSize int64 `json:"chunk_size"`
	// Newlines[c] is the number of '\n' bytes in chunk c, bytes
	// [c·ChunkSize, (c+1)·ChunkSize).
	Newlines []int64 `json:"newlines"`
	// Quoted is set when the file holds a '"' byte anywhere.
	Quoted bool `json:"quoted"`
	// HeadEnd is the offset just after the first non-blank line (its
	// '\n' included), or Size. The first shard always holds that line,
	// so the header rule applies to the first shard only.
	HeadEnd int64 `json:"head_end"`
}

// Chunks is the number of chunks of the file.
func (f *FileIndex) Chunks() int {
	if f.ChunkSize <= 0 {
		return 0
	}
	return int((f.Size + f.ChunkSize - 1) / f.ChunkSize)
}

// Check verifies that the index is consistent (it is read from the store,
// and sizes and counts from outside are not trusted).
func (f *FileIndex) Check() error {
	switch {
	case f.Name == "":
		return fmt.Errorf("%w: a file without a name", ErrIndex)
	case f.Size < 0:
		return fmt.Errorf("%w: %s: size %d", ErrIndex, f.Name, f.Size)
	case f.ChunkSize <= 0:
		return fmt.Errorf("%w: %s: chunk size %d", ErrIndex, f.Name, f.ChunkSize)
	case len(f.Newlines) != f.Chunks():
		return fmt.Errorf("%w: %s: %d newline counts for %d chunks", ErrIndex, f.Name, len(f.Newlines), f.Chunks())
	case f.HeadEnd < 0 || f.HeadEnd > f.Size:
		return fmt.Errorf("%w: %s: head end %d outside 0..%d", ErrIndex, f.Name, f.HeadEnd, f.Size)
	}
	if _, err := ParseFormat(string(f.Format)); err != nil || f.Format == FormatAuto {
		return fmt.Errorf("%w: %s: format %q", ErrIndex, f.Name, f.Format)
	}
	for c, n := range f.Newlines {
		if n < 0 || n > f.ChunkSize {
			return fmt.Errorf("%w: %s: chunk %d holds %d newlines", ErrIndex, f.Name, c, n)
		}
	}
	return nil
}

// linesBefore is the number of '\n' bytes before chunk c.
func (f *FileIndex) linesBefore(c int) int64 {
	var n int64
	for _, k := range f.Newlines[:c] {
		n += k
	}
	return n
}

// Indexer computes a FileIndex from a file's bytes, written to it in
// order (it is an io.Writer, so a store can feed it while it uploads).
type Indexer struct {
	ix   FileIndex
	fill int64 // bytes in the current chunk

	// The head, up to the end of the first non-blank line. pre holds the
	// first bytes until it is known whether they are a byte order mark;
	// line holds the current line (at most maxLineLen+2 bytes, enough for
	// detection) and lineLen its full length.
	pre      []byte
	line     []byte
	lineLen  int64
	headDone bool
}

// NewIndexer returns an Indexer for a file of the given name, counting
// newlines in chunks of chunkSize bytes (> 0).
func NewIndexer(name string, chunkSize int64) *Indexer {
	return &Indexer{ix: FileIndex{Name: name, ChunkSize: chunkSize}}
}

// Write indexes p. It never fails.
func (x *Indexer) Write(p []byte) (int, error) {
	if !x.headDone {
		x.head(p, x.ix.Size)
	}
	if !x.ix.Quoted && bytes.IndexByte(p, '"') >= 0 {
		x.ix.Quoted = true
	}
	x.count(p)
	x.ix.Size += int64(len(p))
	return len(p), nil
}

// head follows the lines of the head as Scan's format detection sees
// them: a UTF-8 byte order mark skipped, blank lines (spaces, tabs and
// carriage returns only, not longer than maxLineLen) passed over. off is
// the file offset of p[0].
func (x *Indexer) head(p []byte, off int64) {
	if len(x.pre) < len(utf8BOM) && off < int64(len(utf8BOM)) {
		k := min(len(p), len(utf8BOM)-len(x.pre))
		x.pre = append(x.pre, p[:k]...)
		if len(x.pre) < len(utf8BOM) {
			return // decided by later bytes, or by Index
		}
		p, off = p[k:], off+int64(k)
		if !bytes.Equal(x.pre, utf8BOM) {
			x.lineBytes(x.pre, 0)
		}
	}
	x.lineBytes(p, off)
}

// lineBytes feeds head bytes at file offset off to the line logic.
func (x *Indexer) lineBytes(p []byte, off int64) {
	for i, c := range p {
		if x.headDone {
			return
		}
		if c != '\n' {
			if len(x.line) < maxLineLen+2 {
				x.line = append(x.line, c)
			}
			x.lineLen++
			continue
		}
		if !x.blankLine() {
			x.headDone = true
			x.ix.HeadEnd = off + int64(i) + 1
			return
		}
		x.line, x.lineLen = x.line[:0], 0
	}
}

// blankLine reports whether the current head line is one Scan skips.
func (x *Indexer) blankLine() bool {
	n := x.lineLen
	if n > 0 && x.line[len(x.line)-1] == '\r' && int64(len(x.line)) == n {
		n--
	}
	return n <= maxLineLen && isBlank(x.line)
}

// count adds p's newlines to the chunks they fall in.
func (x *Indexer) count(p []byte) {
	for len(p) > 0 {
		if x.fill == 0 {
			x.ix.Newlines = append(x.ix.Newlines, 0)
		}
		m := min(int64(len(p)), x.ix.ChunkSize-x.fill)
		x.ix.Newlines[len(x.ix.Newlines)-1] += int64(bytes.Count(p[:m], []byte{'\n'}))
		x.fill = (x.fill + m) % x.ix.ChunkSize
		p = p[m:]
	}
}

// Index returns the index of the bytes written. format is the file's
// format; FormatAuto (or "") detects it from the first non-blank line, and
// a file whose format cannot be detected, or that holds no non-blank line,
// is an error wrapping ErrFormat or ErrEmpty.
func (x *Indexer) Index(format Format) (FileIndex, error) {
	ix := x.ix
	ix.Newlines = append([]int64(nil), x.ix.Newlines...)
	line := x.line
	if !x.headDone {
		ix.HeadEnd = ix.Size
		if len(x.pre) < len(utf8BOM) {
			line = x.pre // a file shorter than a byte order mark
		}
	}
	if format == "" {
		format = FormatAuto
	}
	if _, err := ParseFormat(string(format)); err != nil {
		return FileIndex{}, &formatError{file: ix.Name, msg: err.Error()}
	}
	if format == FormatAuto {
		f, err := DetectFormat(line)
		if err != nil {
			var ee *emptyError
			if errors.As(err, &ee) {
				return FileIndex{}, &emptyError{file: ix.Name}
			}
			return FileIndex{}, &formatError{file: ix.Name, msg: detectMsg}
		}
		format = f
	}
	ix.Format = format
	return ix, nil
}

// Shard is a part of one file parsed on its own: bytes from the cut at Lo
// to the cut at Hi (see the rules above; Lo = 0 starts at the file's
// start, Hi = the file's size ends at its end).
type Shard struct {
	File int   `json:"file"` // index into the file list the shards were cut from
	Lo   int64 `json:"lo"`
	Hi   int64 `json:"hi"`
	// Test marks a shard of the test input: all its ratings are test
	// ratings.
	Test bool `json:"test,omitempty"`
}

// scanFormat is the format a file is parsed with: the job's, unless that
// is auto, then the file's own.
func scanFormat(f *FileIndex, job Format) Format {
	if job == "" || job == FormatAuto {
		return f.Format
	}
	return job
}

// whole reports whether a file must be parsed as one shard.
func whole(f *FileIndex, format Format) bool {
	return format == FormatMM || format == FormatParquet || (format == FormatCSV && f.Quoted)
}

// CutShards cuts files into about n shards of similar size, in file order
// and, within a file, in byte order: the order of the shards is the order
// of the input. Cuts fall on chunk boundaries after each file's first
// non-blank line; a file that cannot be cut (see above) is one shard.
// format is the job's format (FormatAuto: each file's own). test marks
// every shard as a test shard. The result is a pure function of its
// arguments.
func CutShards(files []FileIndex, format Format, n int, test bool) []Shard {
	var total int64
	for i := range files {
		total += files[i].Size
	}
	n = max(n, 1)
	target := max(total/int64(n), 1)
	var out []Shard
	for i := range files {
		f := &files[i]
		if whole(f, scanFormat(f, format)) || f.ChunkSize <= 0 || f.Size <= f.ChunkSize {
			out = append(out, Shard{File: i, Lo: 0, Hi: f.Size, Test: test})
			continue
		}
		pieces := max((f.Size+target/2)/target, 1)
		lo := int64(0)
		for k := int64(1); k < pieces; k++ {
			cut := f.Size * k / pieces / f.ChunkSize * f.ChunkSize
			if cut <= lo || cut < f.HeadEnd || cut >= f.Size {
				continue
			}
			out = append(out, Shard{File: i, Lo: lo, Hi: cut, Test: test})
			lo = cut
		}
		out = append(out, Shard{File: i, Lo: lo, Hi: f.Size, Test: test})
	}
	return out
}

// cutPoint returns where a cut at pos lands: just after the first '\n' at
// or after pos, or size when there is none (pos 0 and pos size are
// themselves).
func cutPoint(r io.ReaderAt, pos, size int64) (int64, error) {
	if pos <= 0 || pos >= size {
		return min(max(pos, 0), size), nil
	}
	// Lines are short: look a little way first, then further.
	buf := make([]byte, 512)
	for p := pos; p < size; p += int64(len(buf)) {
		if p > pos && len(buf) < 64<<10 {
			buf = make([]byte, 2*len(buf))
		}
		m, err := r.ReadAt(buf[:min(int64(len(buf)), size-p)], p)
		if j := bytes.IndexByte(buf[:m], '\n'); j >= 0 {
			return p + int64(j) + 1, nil
		}
		if err != nil && err != io.EOF {
			return 0, err
		}
		if m == 0 {
			return 0, io.ErrUnexpectedEOF
		}
	}
	return size, nil
}

// ShardRecordFunc receives one rating of a shard with its ordinal in the
// shard (0, 1, ...): together with the shard's position in the input it
// orders the ratings as the input does. user and item are only valid
// during the call.
type ShardRecordFunc func(user, item []byte, rating float32, ordinal int64) error

// ScanShard parses shard sh of the file f indexes, whose bytes r reads
// (r must hold at least f.Size bytes). opts.Name is replaced by f.Name and
// opts.Format resolved against f.Format (FormatAuto: the file's own).
//
// Errors and statistics are those of Scan over the same lines, with line
// numbers counted from the start of the file, except that a shard without
// a rating is not an error: whether a file holds none is known only from
// all its shards. Stats.Lines counts the shard's own lines.
func ScanShard(ctx context.Context, r io.ReaderAt, f *FileIndex, sh Shard, opts ScanOptions, fn ShardRecordFunc) (ScanStats, error) {
	if err := f.Check(); err != nil {
		return ScanStats{}, err
	}
	if sh.Lo < 0 || sh.Hi > f.Size || sh.Lo > sh.Hi || (sh.Lo > 0 && sh.Lo%f.ChunkSize != 0) {
		return ScanStats{}, fmt.Errorf("%w: %s: shard [%d, %d) of a file of %d bytes in chunks of %d", ErrIndex, f.Name, sh.Lo, sh.Hi, f.Size, f.ChunkSize)
	}
	opts.Name = f.Name
	opts.Format = scanFormat(f, opts.Format)
	var ordinal int64
	rec := func(user, item []byte, rating float32) error {
		err := fn(user, item, rating, ordinal)
		ordinal++
		return err
	}
	if whole(f, opts.Format) || (sh.Lo == 0 && sh.Hi == f.Size) {
		st, err := Scan(ctx, io.NewSectionReader(r, 0, f.Size), opts, rec)
		if errors.Is(err, ErrEmpty) {
			err = nil
		}
		return st, err
	}
	start, err := cutPoint(r, sh.Lo, f.Size)
	if err != nil {
		return ScanStats{}, fmt.Errorf("%s: %w", f.Name, err)
	}
	end, err := cutPoint(r, sh.Hi, f.Size)
	if err != nil {
		return ScanStats{}, fmt.Errorf("%s: %w", f.Name, err)
	}
	st := ScanStats{Format: opts.Format}
	if start >= end {
		return st, ctx.Err()
	}
	// Lines before the shard: those of the chunks before Lo, and the one
	// the cut at Lo ends.
	base := int64(0)
	if sh.Lo > 0 {
		base = f.linesBefore(int(sh.Lo/f.ChunkSize)) + 1
	}
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	s := &scanner{
		r:        reader{src: io.NewSectionReader(r, start, end-start), buf: *buf},
		opts:     opts,
		skip:     opts.OnBadLine == SkipBadLine,
		fn:       rec,
		ctx:      ctx,
		tick:     ctxEvery,
		chunk:    true,
		unquoted: true,
		st:       st,
	}
	first := sh.Lo == 0
	if first {
		s.r.skipBOM()
	}
	err = s.scanFormat(opts.Format, first)
	if err == errSequential {
		err = fmt.Errorf("%w: %s: a quote after line %d, in a file indexed as holding none", ErrIndex, f.Name, base+s.st.Lines)
	}
	var le *LineError
	if errors.As(err, &le) {
		le.Line += base
	}
	return s.st, err
}
