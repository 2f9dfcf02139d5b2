package partition

// States of the CSV record machine.
const (
	csStart  = iota // at the start of a field, skipping blanks
	csBare          // in an unquoted field
	csQuoted        // in a quoted field
	csQuote         // just after a '"' inside a quoted field: an escape or the end
	csAfter         // after a closing quote, only blanks may follow
	csJunk          // the record is bad: skip to its end
)

// csvRecord reads one RFC 4180 record that starts at r.pos and contains a
// quote somewhere. Quoted fields may hold separators, doubled quotes and
// newlines; they are unquoted in place, so the fields stay sub-slices of the
// buffer. A record longer than maxLineLen is dropped as it is read, keeping
// the machine's state so that its end is still found correctly.
func (s *scanner) csvRecord() error {
	r := &s.r
	start := s.st.Lines + 1 // line of the record's first byte
	var (
		state   = csStart
		n       int   // bytes examined, relative to r.pos
		w       int   // where the next byte of a quoted field goes
		fs, fe  int   // current field's bounds, relative to r.pos
		nl      int64 // newlines inside quoted fields so far
		fline   int64 // nl at the start of the current field
		nf      int   // fields ended so far
		reason  string
		badLine int64
		long    bool // too long: bytes are dropped, fields not kept
		lastNL  bool // the last byte dropped was '\n' (for long records)
		ended   bool // a '\n' ended the record
	)
	var off [3][2]int // bounds of the first three fields
	endField := func() {
		if nf < len(off) {
			off[nf] = [2]int{fs, fe}
			s.fl[nf] = start + fline
		}
		nf++
	}
	setBad := func(why string) {
		if reason == "" {
			reason, badLine = why, start+nl
		}
		state = csJunk
	}
scan:
	for {
		buf := r.buf[r.pos:r.end]
		for ; n < len(buf); n++ {
			c := buf[n]
			switch state {
			case csStart:
				switch c {
				case ' ', '\t', '\r':
				case '"':
					state, fline = csQuoted, nl
					fs, w = n+1, n+1
				case ',':
					fs, fe, fline = n, n, nl
					endField()
				case '\n':
					fs, fe, fline = n, n, nl
					endField()
					ended = true
					break scan
				default:
					state, fline = csBare, nl
					fs, fe = n, n+1
				}
			case csBare:
				switch c {
				case ',':
					endField()
					state = csStart
				case '\n':
					endField()
					ended = true
					break scan
				case '"':
					setBad(reasonQuoteInField)
				case ' ', '\t', '\r':
				default:
					fe = n + 1
				}
			case csQuoted:
				switch c {
				case '"':
					state = csQuote
					continue
				case '\n':
					nl++
				}
				if !long {
					buf[w] = c
				}
				w++
			case csQuote:
				switch c {
				case '"':
					if !long {
						buf[w] = c
					}
					w++
					state = csQuoted
				case ',':
					fe = w
					endField()
					state = csStart
				case '\n':
					fe = w
					endField()
					ended = true
					break scan
				case ' ', '\t', '\r':
					fe = w
					endField()
					state = csAfter
				default:
					setBad(reasonAfterQuote)
				}
			case csAfter:
				switch c {
				case ' ', '\t', '\r':
				case ',':
					state = csStart
				case '\n':
					ended = true
					break scan
				default:
					setBad(reasonAfterQuote)
				}
			case csJunk:
				if c == '\n' {
					ended = true
					break scan
				}
			}
		}
		// The buffered data ends inside the record.
		if !long && n > maxLineLen+1 {
			long = true
		}
		if long {
			if n > 0 {
				lastNL = buf[n-1] == '\n'
			}
			r.pos, n = r.end, 0
		}
		if !r.fill() {
			break
		}
	}
	if r.err != nil {
		return s.readErr()
	}

	// Count the record's lines and consume it.
	lines := nl + 1
	size := n // content length, without the final '\n'
	if ended {
		r.pos += n + 1
	} else {
		// End of input. A final '\n' inside a quoted field ends the last
		// line; there is no further, empty line after it.
		if n > 0 {
			lastNL = r.buf[r.pos+n-1] == '\n'
		}
		if lastNL {
			lines--
		}
		r.pos += n
		switch state {
		case csStart:
			fs, fe, fline = n, n, nl
			endField()
		case csBare:
			endField()
		case csQuoted:
			if reason == "" {
				reason, badLine = reasonUnterminated, start+fline
			}
		case csQuote:
			fe = w
			endField()
		}
	}
	s.st.Lines += lines
	if !long && size > 0 && r.buf[r.pos-1-boolInt(ended)] == '\r' {
		size--
	}
	if long || size > maxLineLen {
		return s.bad(start, reasonLongLine)
	}
	if reason != "" {
		return s.bad(badLine, reason)
	}
	base := r.pos - n - boolInt(ended)
	for i := 0; i < nf && i < len(off); i++ {
		s.f[i] = r.buf[base+off[i][0] : base+off[i][1]]
	}
	return s.record(nf, start, true)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
