package partition

import (
	"bytes"
	"fmt"
	"strconv"
)

const (
	mmBanner     = "%%MatrixMarket"
	mmWantBanner = `want "%%MatrixMarket matrix coordinate real|integer|pattern general"`
)

// scanMM reads a Matrix Market coordinate file: the banner line, comment
// lines starting with '%', the size line "ROWS COLUMNS ENTRIES" and then one
// entry "i j [value]" a line with 1-based indices. The IDs handed to fn are
// the indices as written, without a '+' sign or leading zeros.
func (s *scanner) scanMM() error {
	r := &s.r
	const (
		wantBanner = iota
		wantSize
		wantEntry
	)
	phase := wantBanner
	pattern := false
	var rows, cols, nnz, entries int64
	var tok [4][]byte
	for {
		if err := s.poll(); err != nil {
			return err
		}
		n, adv, state := r.line()
		if state == lineEOF {
			if err := s.readErr(); err != nil {
				return err
			}
			break
		}
		lineNo := s.st.Lines + 1
		s.st.Lines++
		if state == lineLong {
			if adv == 0 {
				r.skipLine()
			} else {
				r.pos += adv
			}
			if phase != wantEntry {
				return &formatError{file: s.opts.Name, line: lineNo, msg: reasonLongLine}
			}
			entries++
			if entries > nnz {
				continue
			}
			if err := s.bad(lineNo, reasonLongLine); err != nil {
				return err
			}
			continue
		}
		line := r.buf[r.pos : r.pos+n]
		r.pos += adv
		if isBlank(line) {
			continue
		}
		switch phase {
		case wantBanner:
			p, err := s.mmBanner(line, lineNo)
			if err != nil {
				return err
			}
			pattern = p
			phase = wantSize
			continue
		case wantSize:
			if line[0] == '%' {
				continue
			}
			nt := splitWords(line, tok[:])
			var ok bool
			if nt == 3 {
				rows, ok = parseCount(tok[0])
				if ok {
					cols, ok = parseCount(tok[1])
				}
				if ok {
					nnz, ok = parseCount(tok[2])
				}
			}
			if !ok {
				return &formatError{file: s.opts.Name, line: lineNo,
					msg: fmt.Sprintf(`malformed Matrix Market size line %q; want "ROWS COLUMNS ENTRIES"`, trimSpace(line))}
			}
			phase = wantEntry
			continue
		}
		if line[0] == '%' {
			continue
		}
		entries++
		if entries > nnz {
			continue // counted for the error at the end, not handed on
		}
		nt := splitWords(line, tok[:3])
		if err := s.mmEntry(tok[:], nt, lineNo, rows, cols, pattern); err != nil {
			return err
		}
	}
	switch phase {
	case wantBanner:
		return nil // no line at all: Scan reports the empty input
	case wantSize:
		return &formatError{file: s.opts.Name, line: s.st.Lines, msg: "missing Matrix Market size line"}
	}
	if entries != nnz {
		return &LineError{File: s.opts.Name, Line: s.st.Lines, Reason: fmt.Sprintf("expected %d entries, found %d", nnz, entries)}
	}
	return nil
}

// mmBanner checks the banner line and reports whether the field is pattern.
func (s *scanner) mmBanner(line []byte, lineNo int64) (bool, error) {
	fail := func(format string, args ...any) (bool, error) {
		return false, &formatError{file: s.opts.Name, line: lineNo, msg: fmt.Sprintf(format, args...)}
	}
	var w [6][]byte
	nw := splitWords(line, w[:])
	if !bytes.EqualFold(w[0], []byte(mmBanner)) {
		return fail("not a Matrix Market file; %s", mmWantBanner)
	}
	if nw != 5 {
		return fail("malformed Matrix Market header; %s", mmWantBanner)
	}
	lower := func(b []byte) string { return string(bytes.ToLower(b)) }
	if o := lower(w[1]); o != "matrix" {
		return fail("Matrix Market object %q is not supported; want matrix", o)
	}
	if f := lower(w[2]); f != "coordinate" {
		return fail("Matrix Market format %q is not supported; want coordinate", f)
	}
	pattern := false
	switch f := lower(w[3]); f {
	case "real", "integer":
	case "pattern":
		pattern = true
	default:
		return fail("Matrix Market field %q is not supported; want real, integer or pattern", f)
	}
	if sym := lower(w[4]); sym != "general" {
		return fail("Matrix Market symmetry %q is not supported; want general", sym)
	}
	return pattern, nil
}

// mmEntry checks one entry line, split into nt words in tok, and hands it on.
func (s *scanner) mmEntry(tok [][]byte, nt int, lineNo, rows, cols int64, pattern bool) error {
	need := 3
	if pattern || s.opts.Implicit {
		need = 2
	}
	if nt < need {
		if need == 2 {
			return s.badf(lineNo, "expected at least 2 fields (user, item), found %d", nt)
		}
		return s.badf(lineNo, "expected at least 3 fields (user, item, rating), found %d", nt)
	}
	user, ok := checkIndex(tok[0], rows)
	if !ok {
		if user == nil {
			return s.badf(lineNo, "index %q is not an integer", tok[0])
		}
		return s.badf(lineNo, "row index %s outside 1..%d", user, rows)
	}
	item, ok := checkIndex(tok[1], cols)
	if !ok {
		if item == nil {
			return s.badf(lineNo, "index %q is not an integer", tok[1])
		}
		return s.badf(lineNo, "column index %s outside 1..%d", item, cols)
	}
	rating := float32(1)
	if !pattern && nt >= 3 {
		v, ok, err := s.rating(tok[2], lineNo)
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

// checkIndex parses a 1-based index no greater than max. It returns the
// index's canonical digits (no sign, no leading zeros) and true when it is
// in range; the index as written and false when it is an integer out of
// range; nil and false when it is not an integer.
func checkIndex(b []byte, max int64) ([]byte, bool) {
	digits := b
	neg := false
	if len(digits) > 0 && (digits[0] == '+' || digits[0] == '-') {
		neg = digits[0] == '-'
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return nil, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return nil, false
		}
	}
	for len(digits) > 1 && digits[0] == '0' {
		digits = digits[1:]
	}
	if neg || len(digits) > 18 {
		return b, false
	}
	var v int64
	for _, c := range digits {
		v = v*10 + int64(c-'0')
	}
	if v < 1 || v > max {
		return b, false
	}
	return digits, true
}

// parseCount parses a non-negative decimal count of a Matrix Market size
// line.
func parseCount(b []byte) (int64, bool) {
	if len(b) == 0 || b[0] < '0' || b[0] > '9' {
		return 0, false
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	return v, err == nil
}

// splitWords splits line at runs of blanks into at most len(w) words stored
// in w and returns the number of words in the line, counted up to len(w)+1.
func splitWords(line []byte, w [][]byte) int {
	nw := 0
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return nw
		}
		j := i
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		if nw == len(w) {
			return nw + 1
		}
		w[nw] = line[i:j]
		nw++
		i = j
	}
}
