package partition

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
)

const (
	// maxLineLen is the longest line (or CSV record) Scan accepts, not
	// counting its line terminator.
	maxLineLen = 1 << 20
	// bufSize leaves room for a line of maxLineLen bytes plus "\r\n" and a
	// reasonably sized read after it.
	bufSize = maxLineLen + 64<<10
	// ctxEvery is how many lines pass between two looks at ctx.Err().
	ctxEvery = 1 << 16
)

// Reasons of bad lines that do not depend on the line's content. The CLI
// and scripts rely on these texts.
const (
	reasonLongLine     = "line longer than 1048576 bytes"
	reasonEmptyUser    = "empty user ID"
	reasonEmptyItem    = "empty item ID"
	reasonUnterminated = "unterminated quoted field"
	reasonQuoteInField = "quote in unquoted field"
	reasonAfterQuote   = "text after closing quote"
)

// emptyError reports an input without a single rating: "FILE: no ratings".
type emptyError struct{ file string }

func (e *emptyError) Error() string {
	if e.file == "" {
		return "no ratings"
	}
	return e.file + ": no ratings"
}

func (e *emptyError) Unwrap() error { return ErrEmpty }

// formatError is a structural problem of the input as a whole (the format
// cannot be detected, a Matrix Market header is wrong). It cannot be skipped.
type formatError struct {
	file string
	line int64 // 0 when no line applies
	msg  string
}

func (e *formatError) Error() string {
	switch {
	case e.file == "" && e.line == 0:
		return e.msg
	case e.line == 0:
		return e.file + ": " + e.msg
	}
	return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
}

func (e *formatError) Unwrap() error { return ErrFormat }

const detectMsg = "cannot detect the input format from its first line; pass --format csv|tsv|movielens|mm"

// DetectFormat guesses the format from the first bytes of an input. Input
// starting with Parquet's magic "PAR1" is FormatParquet. Otherwise it
// skips a UTF-8 byte order mark and blank lines and looks at the first
// other line (which may be cut short by the end of head): a line starting
// with %%MatrixMarket is FormatMM; otherwise "::" means FormatMovieLens, a
// tab FormatTSV and a comma FormatCSV, in that order. An error wraps
// ErrFormat when the line fits none of them, or ErrEmpty when head holds no
// non-blank line.
func DetectFormat(head []byte) (Format, error) {
	if bytes.HasPrefix(head, parquetMagic) {
		return FormatParquet, nil
	}
	head = bytes.TrimPrefix(head, utf8BOM)
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		if isBlank(line) {
			continue
		}
		switch {
		case hasPrefixFold(line, mmBanner):
			return FormatMM, nil
		case bytes.Contains(line, []byte("::")):
			return FormatMovieLens, nil
		case bytes.IndexByte(line, '\t') >= 0:
			return FormatTSV, nil
		case bytes.IndexByte(line, ',') >= 0:
			return FormatCSV, nil
		}
		return "", &formatError{msg: detectMsg}
	}
	return "", &emptyError{}
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Scan reads ratings from r and calls fn for each record, in input order.
//
// The input is read through a fixed buffer; user and item are sub-slices of
// it, valid only during the call. Blank lines are skipped, a header line is
// recognised on CSV and TSV input, extra fields after the rating are
// ignored. A bad line is returned as a *LineError under FailOnBadLine and
// counted in ScanStats.Skipped under SkipBadLine. An input without any
// rating gives an error wrapping ErrEmpty ("FILE: no ratings"); a format
// that cannot be detected, or a broken Matrix Market header, one wrapping
// ErrFormat. An error from fn is returned unchanged, and so is ctx.Err(),
// which is consulted every 65536 lines.
func Scan(ctx context.Context, r io.Reader, opts ScanOptions, fn RecordFunc) (ScanStats, error) {
	if err := ctx.Err(); err != nil {
		return ScanStats{}, err
	}
	format := opts.Format
	if format == "" {
		format = FormatAuto
	}
	if _, err := ParseFormat(string(format)); err != nil {
		return ScanStats{}, &formatError{file: opts.Name, msg: err.Error()}
	}
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	s := &scanner{
		r:    reader{src: r, buf: *buf},
		opts: opts,
		skip: opts.OnBadLine == SkipBadLine,
		fn:   fn,
		ctx:  ctx,
		tick: ctxEvery,
	}
	s.r.skipBOM()
	if format == FormatAuto {
		f, err := s.detect()
		if err != nil {
			return s.st, err
		}
		format = f
	}
	s.st.Format = format
	err := s.scanFormat(format, true)
	if err == nil && s.st.Records == 0 {
		err = &emptyError{file: opts.Name}
	}
	return s.st, err
}

// scanFormat scans the records of a known format; header says whether the
// first non-blank record may be a header line (CSV and TSV).
func (s *scanner) scanFormat(format Format, header bool) error {
	switch format {
	case FormatCSV:
		s.header = header
		return s.scanText(',')
	case FormatTSV:
		s.header = header
		return s.scanText('\t')
	case FormatMovieLens:
		return s.scanText(':')
	case FormatMM:
		return s.scanMM()
	case FormatParquet:
		return s.scanParquet()
	}
	return fmt.Errorf("partition: format %q cannot be scanned", format)
}

// bufPool recycles read buffers between scans. The callback's slices point
// into the buffer, which is why they are only valid during the call.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, bufSize)
	return &b
}}

// reader is a fixed buffer over an io.Reader. Unread data is buf[pos:end].
type reader struct {
	src      io.Reader
	buf      []byte
	pos, end int
	eof      bool
	err      error // the first read error other than io.EOF
}

// fill moves the unread bytes to the front of the buffer and reads more
// after them. It reports whether any byte was added. The caller makes sure
// the buffer is not full.
func (r *reader) fill() bool {
	if r.eof {
		return false
	}
	if r.pos > 0 {
		r.end = copy(r.buf, r.buf[r.pos:r.end])
		r.pos = 0
	}
	for range 100 {
		n, err := r.src.Read(r.buf[r.end:])
		r.end += n
		if err != nil {
			r.eof = true
			if err != io.EOF {
				r.err = err
			}
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	r.eof, r.err = true, io.ErrNoProgress
	return false
}

func (r *reader) skipBOM() {
	for r.end-r.pos < len(utf8BOM) && r.fill() {
	}
	if bytes.HasPrefix(r.buf[r.pos:r.end], utf8BOM) {
		r.pos += len(utf8BOM)
	}
}

// Line states returned by reader.line.
const (
	lineOK   = iota // a whole line is buffered
	lineLong        // the line is longer than maxLineLen
	lineEOF         // no data left (or a read error: see reader.err)
)

// line finds the physical line that starts at r.pos. It returns the
// length n of the line without its '\n' (a '\r' before it is part of the
// line) and the number of bytes adv to consume, '\n' included. For a line
// too long to buffer, state is lineLong, adv is 0 and n is what is
// buffered: call skipLine to drop it. Nothing is consumed.
func (r *reader) line() (n, adv, state int) {
	from := 0
	for {
		if i := bytes.IndexByte(r.buf[r.pos+from:r.end], '\n'); i >= 0 {
			n = from + i
			c := n
			if c > 0 && r.buf[r.pos+c-1] == '\r' {
				c--
			}
			if c > maxLineLen {
				return n, n + 1, lineLong
			}
			return n, n + 1, lineOK
		}
		from = r.end - r.pos
		if from > maxLineLen+1 {
			// Even if the next byte were '\n' after a '\r', the line
			// would hold more than maxLineLen bytes.
			return from, 0, lineLong
		}
		if !r.fill() {
			if r.err != nil || r.pos == r.end {
				return 0, 0, lineEOF
			}
			n = r.end - r.pos
			c := n
			if r.buf[r.pos+c-1] == '\r' {
				c--
			}
			if c > maxLineLen {
				return n, n, lineLong
			}
			return n, n, lineOK
		}
	}
}

// skipLine drops the rest of the current physical line and its '\n'.
func (r *reader) skipLine() {
	for {
		if i := bytes.IndexByte(r.buf[r.pos:r.end], '\n'); i >= 0 {
			r.pos += i + 1
			return
		}
		r.pos = r.end
		if !r.fill() {
			return
		}
	}
}

// scanner is the state of one Scan.
type scanner struct {
	r      reader
	opts   ScanOptions
	skip   bool
	fn     RecordFunc
	ctx    context.Context
	st     ScanStats
	tick   int
	header bool // the next non-blank record may be a header
	// chunk is set when the scanner reads one byte range of a file cut at
	// line boundaries (ReadFileParallel): a CSV line with a quote, which
	// might open a field that runs across the range's end, or a line too
	// long to see whole, stops the scan with errSequential instead.
	chunk bool
	// unquoted is set when the input is known to hold no quote at all (a
	// shard of a file indexed as such): a long CSV line is then a long
	// line like any other, and a quote means the index was wrong.
	unquoted bool

	f  [3][]byte // user, item, rating of the current record
	fl [3]int64  // line of each field, for records spanning lines
}

// poll looks at ctx once every ctxEvery calls.
func (s *scanner) poll() error {
	s.tick--
	if s.tick > 0 {
		return nil
	}
	s.tick = ctxEvery
	return s.ctx.Err()
}

// readErr is the error to return at the end of the input.
func (s *scanner) readErr() error {
	if s.r.err != nil {
		return fmt.Errorf("%s: %w", s.opts.Name, s.r.err)
	}
	return nil
}

// bad handles a bad line: it is counted under SkipBadLine, an error
// otherwise.
func (s *scanner) bad(line int64, reason string) error {
	s.header = false // a bad line is the first record as far as headers go
	if s.skip {
		s.st.Skipped++
		return nil
	}
	return &LineError{File: s.opts.Name, Line: line, Reason: reason}
}

// badf is bad with a formatted reason; the text is only built for an error.
func (s *scanner) badf(line int64, format string, args ...any) error {
	s.header = false
	if s.skip {
		s.st.Skipped++
		return nil
	}
	return &LineError{File: s.opts.Name, Line: line, Reason: fmt.Sprintf(format, args...)}
}

// detect consumes leading blank lines and detects the format from the first
// other line, which it leaves unread.
func (s *scanner) detect() (Format, error) {
	for {
		n, adv, state := s.r.line()
		if state == lineEOF {
			if err := s.readErr(); err != nil {
				return "", err
			}
			return "", &emptyError{file: s.opts.Name}
		}
		line := s.r.buf[s.r.pos : s.r.pos+n]
		if state == lineOK && isBlank(line) {
			s.r.pos += adv
			s.st.Lines++
			continue
		}
		f, err := DetectFormat(line)
		if err != nil {
			return "", &formatError{file: s.opts.Name, msg: detectMsg}
		}
		return f, nil
	}
}

// scanText reads line-oriented formats: sep ',' is CSV, '\t' TSV and ':'
// MovieLens "::".
func (s *scanner) scanText(sep byte) error {
	r := &s.r
	for {
		if err := s.poll(); err != nil {
			return err
		}
		n, adv, state := r.line()
		if state == lineEOF {
			return s.readErr()
		}
		if sep == ',' && (state == lineLong && !s.unquoted || bytes.IndexByte(r.buf[r.pos:r.pos+n], '"') >= 0) {
			if s.chunk {
				return errSequential
			}
			// Quoted fields may hold separators and newlines. A long line
			// goes this way too, as a quote in its unbuffered part may
			// open a field that runs past the line's end.
			if err := s.csvRecord(); err != nil {
				return err
			}
			continue
		}
		lineNo := s.st.Lines + 1
		s.st.Lines++
		if state == lineLong {
			if adv == 0 {
				r.skipLine()
			} else {
				r.pos += adv
			}
			if err := s.bad(lineNo, reasonLongLine); err != nil {
				return err
			}
			continue
		}
		line := r.buf[r.pos : r.pos+n]
		r.pos += adv // line stays valid: nothing is read before the next call to r.line
		if isBlank(line) {
			continue
		}
		var nf int
		if sep == ':' {
			nf = splitColons(line, &s.f)
		} else {
			nf = splitByte(line, sep, &s.f)
		}
		if err := s.record(nf, lineNo, false); err != nil {
			return err
		}
	}
}

// record checks the fields in s.f (nf of them in the record) and hands them
// to fn. When multi is set, s.fl holds the line of each field.
func (s *scanner) record(nf int, line int64, multi bool) error {
	if s.header {
		s.header = false
		if s.isHeader(nf) {
			return nil
		}
	}
	fieldLine := func(i int) int64 {
		if multi {
			return s.fl[i]
		}
		return line
	}
	if s.opts.Implicit {
		if nf < 2 {
			return s.badf(line, "expected at least 2 fields (user, item), found %d", nf)
		}
	} else if nf < 3 {
		return s.badf(line, "expected at least 3 fields (user, item, rating), found %d", nf)
	}
	user, item := s.f[0], s.f[1]
	if len(user) == 0 {
		return s.bad(fieldLine(0), reasonEmptyUser)
	}
	if len(item) == 0 {
		return s.bad(fieldLine(1), reasonEmptyItem)
	}
	// Blocks and snapshots hold IDs of at most MaxIDLen bytes.
	if len(user) > MaxIDLen {
		return s.badf(fieldLine(0), "user ID longer than %d bytes", MaxIDLen)
	}
	if len(item) > MaxIDLen {
		return s.badf(fieldLine(1), "item ID longer than %d bytes", MaxIDLen)
	}
	rating := float32(1)
	if nf >= 3 {
		v, ok, err := s.rating(s.f[2], fieldLine(2))
		if !ok {
			return err // nil when the line was skipped
		}
		rating = v
	}
	if err := s.fn(user, item, rating); err != nil {
		return err
	}
	s.st.Records++
	return nil
}

// rating parses a rating field. In the implicit model a rating is an
// interaction strength and must not be negative: confidence 1 + α·r would
// drop below 1 and the row's system could lose positive definiteness.
// ok is false for a bad rating, whose line was then skipped (err nil) or
// is reported by err.
func (s *scanner) rating(field []byte, line int64) (v float32, ok bool, err error) {
	v, st := parseRating(field)
	switch {
	case st == ratingNotNumber:
		return 0, false, s.badf(line, "rating %q is not a number", field)
	case st == ratingNotFinite:
		return 0, false, s.badf(line, "rating %q is not finite", field)
	case s.opts.Implicit && v < 0:
		return 0, false, s.badf(line, "rating %q is negative; implicit strengths must be ≥ 0", field)
	}
	return v, true, nil
}

// isHeader applies the header rule to the first non-blank record: it has a
// non-empty rating field that is not a number, or its first field is a
// user column name.
func (s *scanner) isHeader(nf int) bool {
	if nf >= 1 && isUserColumn(s.f[0]) {
		return true
	}
	if nf >= 3 && len(s.f[2]) > 0 {
		if _, st := parseRating(s.f[2]); st == ratingNotNumber {
			return true
		}
	}
	return false
}

// isUserColumn reports whether b, lower-cased, is user, userid or user_id.
func isUserColumn(b []byte) bool {
	switch len(b) {
	case 4, 6, 7:
	default:
		return false
	}
	var lower [7]byte
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	switch string(lower[:len(b)]) {
	case "user", "userid", "user_id":
		return true
	}
	return false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// isBlank reports whether line holds only spaces, tabs and carriage returns.
func isBlank(line []byte) bool {
	for _, c := range line {
		if !isSpace(c) {
			return false
		}
	}
	return true
}

// trimSpace drops spaces, tabs and carriage returns at both ends.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// splitByte stores the first three sep-separated fields of line, trimmed,
// in f and returns the number of fields, counted up to 3.
func splitByte(line []byte, sep byte, f *[3][]byte) int {
	nf, start := 0, 0
	for i := 0; i < len(line); i++ {
		if line[i] == sep {
			f[nf] = trimSpace(line[start:i])
			nf++
			if nf == len(f) {
				return nf
			}
			start = i + 1
		}
	}
	f[nf] = trimSpace(line[start:])
	return nf + 1
}

// splitColons is splitByte for the MovieLens "::" separator.
func splitColons(line []byte, f *[3][]byte) int {
	nf, start := 0, 0
	for i := 0; i+1 < len(line); i++ {
		if line[i] == ':' && line[i+1] == ':' {
			f[nf] = trimSpace(line[start:i])
			nf++
			if nf == len(f) {
				return nf
			}
			i++
			start = i + 1
		}
	}
	f[nf] = trimSpace(line[start:])
	return nf + 1
}

// hasPrefixFold is bytes.HasPrefix ignoring ASCII case.
func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}
