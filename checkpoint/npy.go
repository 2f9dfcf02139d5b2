package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// The NumPy .npy format (version 1.0): the magic "\x93NUMPY", the version
// bytes 1 and 0, a little-endian uint16 header length, then the header: a
// Python dict literal with the keys 'descr', 'fortran_order' and 'shape',
// padded with spaces and ended by '\n' so that the data starts at a
// multiple of 64 bytes. The data follows, here float32 little-endian
// ('<f4') in C (row-major) order.

const (
	npyMagic = "\x93NUMPY"
	// npyAlign is the alignment of the data that NumPy itself writes.
	npyAlign = 64
	// MaxNPYHeader is the longest header ReadNPY accepts (NumPy's own
	// reader refuses headers above 10000 bytes by default).
	MaxNPYHeader = 1 << 16
	// maxNPYValues bounds the element count ReadNPY accepts.
	maxNPYValues = math.MaxInt / 8
)

// ErrNPY: the input is not an .npy array ReadNPY can read.
var ErrNPY = errors.New("checkpoint: bad .npy data")

// npyHeader returns the .npy version 1.0 preamble and header of a
// float32 C-order array of shape.
func npyHeader(shape []int) ([]byte, error) {
	var dims strings.Builder
	dims.WriteByte('(')
	for i, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("checkpoint: npy shape %v has a negative dimension", shape)
		}
		if i > 0 {
			dims.WriteString(", ")
		}
		dims.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		dims.WriteByte(',')
	}
	dims.WriteByte(')')
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': " + dims.String() + ", }"
	pre := len(npyMagic) + 2 + 2
	total := pre + len(dict) + 1 // + '\n'
	if r := total % npyAlign; r != 0 {
		total += npyAlign - r
	}
	hlen := total - pre
	if hlen > math.MaxUint16 {
		return nil, fmt.Errorf("checkpoint: npy header of %d bytes does not fit version 1.0", hlen)
	}
	out := make([]byte, 0, total)
	out = append(out, npyMagic...)
	out = append(out, 1, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(hlen))
	out = append(out, dict...)
	for len(out) < total-1 {
		out = append(out, ' ')
	}
	return append(out, '\n'), nil
}

// WriteNPY writes data as a float32 C-order .npy array (version 1.0) of
// shape; len(data) must be the product of shape.
func WriteNPY(w io.Writer, shape []int, data []float32) error {
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > maxNPYValues/d) {
			return fmt.Errorf("checkpoint: npy shape %v is too large", shape)
		}
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("checkpoint: npy shape %v holds %d values, not %d", shape, n, len(data))
	}
	h, err := npyHeader(shape)
	if err != nil {
		return err
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	const chunk = 1 << 14
	buf := make([]byte, 0, 4*min(len(data), chunk))
	for len(data) > 0 {
		k := min(len(data), chunk)
		buf = buf[:0]
		for _, v := range data[:k] {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		data = data[k:]
	}
	return nil
}

// ReadNPY reads a little-endian float32 ('<f4') C-order .npy array
// (format versions 1.0, 2.0 and 3.0) and returns its shape and values. The
// header is limited to MaxNPYHeader bytes; the values are read as they
// arrive (a header promising more data than the input holds costs no
// memory up front), and the input must end right after them.
func ReadNPY(r io.Reader) (shape []int, data []float32, err error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrNPY, fmt.Sprintf(format, a...))
	}
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, nil, bad("reading the magic: %v", err)
	}
	if string(pre[:6]) != npyMagic {
		return nil, nil, bad("magic %q, want %q", pre[:6], npyMagic)
	}
	var hlen int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, nil, bad("reading the header length: %v", err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, nil, bad("reading the header length: %v", err)
		}
		l := binary.LittleEndian.Uint32(b[:])
		if l > MaxNPYHeader {
			return nil, nil, bad("header of %d bytes, more than %d", l, MaxNPYHeader)
		}
		hlen = int(l)
	default:
		return nil, nil, bad("format version %d.%d", pre[6], pre[7])
	}
	if pre[7] != 0 {
		return nil, nil, bad("format version %d.%d", pre[6], pre[7])
	}
	if hlen > MaxNPYHeader {
		return nil, nil, bad("header of %d bytes, more than %d", hlen, MaxNPYHeader)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, nil, bad("reading the %d-byte header: %v", hlen, err)
	}
	shape, err = parseNPYHeader(string(hdr))
	if err != nil {
		return nil, nil, bad("header %q: %v", strings.TrimRight(string(hdr), " \n"), err)
	}
	n := 1
	for _, d := range shape {
		if d > 0 && n > maxNPYValues/d {
			return nil, nil, bad("shape %v holds too many values", shape)
		}
		n *= d
	}
	// Read in chunks so that a lying shape cannot make us allocate more
	// than the input holds.
	const chunk = 1 << 16
	data = make([]float32, 0, min(n, chunk))
	buf := make([]byte, 4*min(n, chunk))
	for len(data) < n {
		k := min(n-len(data), chunk)
		got, err := io.ReadFull(r, buf[:4*k])
		for i := 0; i+4 <= got; i += 4 {
			data = append(data, math.Float32frombits(binary.LittleEndian.Uint32(buf[i:])))
		}
		if err != nil {
			return nil, nil, bad("shape %v holds %d values; the data ends after %d bytes", shape, n, 4*len(data)+got%4)
		}
	}
	var extra [1]byte
	if k, err := io.ReadFull(r, extra[:]); k != 0 || !errors.Is(err, io.EOF) {
		if err == nil || k != 0 {
			return nil, nil, bad("data continues after the %d values of shape %v", n, shape)
		}
		return nil, nil, bad("after the data: %v", err)
	}
	return shape, data, nil
}

// parseNPYHeader reads the header dict and returns the shape; it accepts
// only '<f4' in C order.
func parseNPYHeader(h string) ([]int, error) {
	p := &pyLexer{s: h}
	if !p.eat('{') {
		return nil, errors.New("not a dict")
	}
	var shape []int
	var haveDescr, haveOrder, haveShape bool
	for {
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		if !p.eat(':') {
			return nil, fmt.Errorf("no ':' after key %q", key)
		}
		switch key {
		case "descr":
			if haveDescr {
				return nil, errors.New("'descr' given twice")
			}
			haveDescr = true
			d, err := p.str()
			if err != nil {
				return nil, fmt.Errorf("descr: %v", err)
			}
			if d != "<f4" {
				return nil, fmt.Errorf("dtype %q, want '<f4' (little-endian float32)", d)
			}
		case "fortran_order":
			if haveOrder {
				return nil, errors.New("'fortran_order' given twice")
			}
			haveOrder = true
			w := p.word()
			switch w {
			case "False":
			case "True":
				return nil, errors.New("Fortran order is not supported")
			default:
				return nil, fmt.Errorf("fortran_order %q", w)
			}
		case "shape":
			if haveShape {
				return nil, errors.New("'shape' given twice")
			}
			haveShape = true
			if shape, err = p.tuple(); err != nil {
				return nil, fmt.Errorf("shape: %v", err)
			}
		default:
			return nil, fmt.Errorf("unknown key %q", key)
		}
		if p.eat(',') {
			continue
		}
		if !p.eat('}') {
			return nil, errors.New("expected ',' or '}'")
		}
		break
	}
	if !haveDescr || !haveOrder || !haveShape {
		return nil, errors.New("'descr', 'fortran_order' or 'shape' missing")
	}
	p.space()
	if p.i != len(p.s) {
		return nil, errors.New("text after the dict")
	}
	return shape, nil
}

// pyLexer reads the small part of Python literal syntax .npy headers use.
type pyLexer struct {
	s string
	i int
}

func (p *pyLexer) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *pyLexer) eat(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a quoted string without escapes.
func (p *pyLexer) str() (string, error) {
	p.space()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", errors.New("expected a quoted string")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsRune(v, '\\') {
		return "", errors.New("escapes in strings are not supported")
	}
	p.i += end + 2
	return v, nil
}

// word reads a run of letters.
func (p *pyLexer) word() string {
	p.space()
	j := p.i
	for j < len(p.s) && (p.s[j] >= 'A' && p.s[j] <= 'Z' || p.s[j] >= 'a' && p.s[j] <= 'z') {
		j++
	}
	w := p.s[p.i:j]
	p.i = j
	return w
}

// maxNPYDims bounds the dimensions of a shape (NumPy's own limit is 64).
const maxNPYDims = 64

// tuple reads a tuple of non-negative integers: (), (3,), (3, 4).
func (p *pyLexer) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, errors.New("expected '('")
	}
	out := []int{}
	for {
		if p.eat(')') { // () or after a trailing comma
			return out, nil
		}
		p.space()
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j == p.i {
			return nil, errors.New("expected a non-negative integer")
		}
		d, err := strconv.Atoi(p.s[p.i:j])
		if err != nil || d > maxNPYValues {
			return nil, fmt.Errorf("dimension %s is too large", p.s[p.i:j])
		}
		p.i = j
		if len(out) == maxNPYDims {
			return nil, fmt.Errorf("more than %d dimensions", maxNPYDims)
		}
		out = append(out, d)
		if p.eat(',') {
			continue
		}
		if !p.eat(')') {
			return nil, errors.New("expected ',' or ')'")
		}
		if len(out) == 1 {
			return nil, errors.New("a one-element tuple needs a trailing comma")
		}
		return out, nil
	}
}
