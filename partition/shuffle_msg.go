package partition

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Messages between the workers of a distributed ingest, version 1. All
// integers are little-endian.
//
//	offset  size  field
//	0       4     magic "CFIN"
//	4       1     format version (1)
//	5       1     type (msgIDs ... msgAck)
//	6       1     side (0 users, 1 items)
//	7       1     flags (bit 0: test ratings)
//	8       4     block, int32 (a block index, or -1)
//	12      4     from, uint32 (the sending shard or worker)
//	16      4     batch, uint32 (the sender's message number for this key)
//	20      8     aux, int64 (a start index or an entry total)
//	28      4     n, uint32: entries
//	32      ...   n entries, their form depending on the type
//	end-4   4     CRC-32C of every byte before it
//
// An ID is a uint16 length and that many bytes (1..MaxIDLen).

// ErrMessage is wrapped by every error about a malformed ingest message.
var ErrMessage = errors.New("partition: malformed ingest message")

// Message types.
const (
	msgIDs      = 1 + iota // scan → hash owner: IDs with counts (uint32)
	msgRange               // hash owner → range owner: IDs with counts (uint64)
	msgLookup              // router → range owner: IDs to number (request)
	msgIndices             // range owner → router: int32 indices, -1 absent (reply)
	msgRatings             // router → builder: (row, col int32, value float32, seq uint64)
	msgBlockIDs            // range owner → builder: a block's IDs from index aux
	msgNeeds               // builder → builder: needed rows (int32), aux = their total
	msgPairs               // router → pair owner: test pairs of unknown IDs, with seq
	msgAck                 // the reply to everything but a lookup
)

const (
	msgMagic      = "CFIN"
	msgVersion    = 1
	msgHeaderSize = 32
	msgMinSize    = msgHeaderSize + 4
	ratingSize    = 4 + 4 + 4 + 8
	flagTest      = 1
)

// message is a decoded ingest message. Only the slices of its type are set.
type message struct {
	typ    uint8
	side   Side
	test   bool
	block  int32
	from   uint32
	batch  uint32
	aux    int64
	ids    []string // msgIDs, msgRange, msgLookup, msgBlockIDs; users of msgPairs
	items  []string // items of msgPairs
	counts []uint64 // msgIDs, msgRange
	ints   []int32  // msgIndices, msgNeeds
	rats   []rating // msgRatings
	seqs   []uint64 // msgPairs
}

// rating is one routed rating: row and column in the receiving block's
// orientation (global indices), and its position in the input.
type rating struct {
	row, col int32
	val      float32
	seq      uint64
}

func msgErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMessage}, args...)...)
}

// msgWriter builds one message.
type msgWriter struct {
	buf []byte
	n   uint32
}

func (w *msgWriter) reset(typ uint8, side Side, test bool, block int32, from, batch uint32, aux int64) {
	w.buf = append(w.buf[:0], msgMagic...)
	var flags byte
	if test {
		flags = flagTest
	}
	w.buf = append(w.buf, msgVersion, typ, byte(side), flags)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(block))
	w.buf = binary.LittleEndian.AppendUint32(w.buf, from)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, batch)
	w.buf = binary.LittleEndian.AppendUint64(w.buf, uint64(aux))
	w.buf = binary.LittleEndian.AppendUint32(w.buf, 0)
	w.n = 0
}

func (w *msgWriter) len() int { return len(w.buf) + 4 }

func (w *msgWriter) id(s string) {
	w.buf = binary.LittleEndian.AppendUint16(w.buf, uint16(len(s)))
	w.buf = append(w.buf, s...)
}

func (w *msgWriter) u32(v uint32) { w.buf = binary.LittleEndian.AppendUint32(w.buf, v) }
func (w *msgWriter) u64(v uint64) { w.buf = binary.LittleEndian.AppendUint64(w.buf, v) }

func (w *msgWriter) rating(r rating) {
	w.u32(uint32(r.row))
	w.u32(uint32(r.col))
	w.u32(math.Float32bits(r.val))
	w.u64(r.seq)
}

// finish seals the message and returns a copy of it.
func (w *msgWriter) finish() []byte {
	binary.LittleEndian.PutUint32(w.buf[28:], w.n)
	out := make([]byte, len(w.buf), len(w.buf)+4)
	copy(out, w.buf)
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
}

// decodeMessage checks and decodes an ingest message. Nothing in data is
// trusted: counts are checked against the bytes present before anything
// is allocated for them.
func decodeMessage(data []byte) (*message, error) {
	if len(data) < msgMinSize {
		return nil, msgErrorf("%d bytes is shorter than a message header", len(data))
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(data[len(body):]); got != want {
		return nil, msgErrorf("checksum mismatch (%08x, recorded %08x)", got, want)
	}
	if string(body[:4]) != msgMagic {
		return nil, msgErrorf("bad magic %q", body[:4])
	}
	if body[4] != msgVersion {
		return nil, msgErrorf("unknown version %d", body[4])
	}
	m := &message{
		typ:   body[5],
		side:  Side(body[6]),
		test:  body[7]&flagTest != 0,
		block: int32(binary.LittleEndian.Uint32(body[8:])),
		from:  binary.LittleEndian.Uint32(body[12:]),
		batch: binary.LittleEndian.Uint32(body[16:]),
		aux:   int64(binary.LittleEndian.Uint64(body[20:])),
	}
	if m.side > Items || body[7]&^flagTest != 0 {
		return nil, msgErrorf("side %d, flags %#x", body[6], body[7])
	}
	n := int(binary.LittleEndian.Uint32(body[28:]))
	p := body[msgHeaderSize:]
	// Every entry takes at least minEntry bytes: a count that cannot fit
	// is refused before any allocation.
	minEntry := map[uint8]int{
		msgIDs: 2 + 1 + 4, msgRange: 2 + 1 + 8, msgLookup: 2 + 1, msgIndices: 4,
		msgRatings: ratingSize, msgBlockIDs: 2 + 1, msgNeeds: 4, msgPairs: 2 + 1 + 2 + 1 + 8, msgAck: 1,
	}[m.typ]
	if minEntry == 0 {
		return nil, msgErrorf("unknown type %d", m.typ)
	}
	if n > len(p)/minEntry {
		return nil, msgErrorf("%d entries cannot fit in %d bytes", n, len(p))
	}
	d := msgReader{p: p}
	switch m.typ {
	case msgIDs, msgRange, msgLookup, msgBlockIDs:
		m.ids = make([]string, n)
		if m.typ == msgIDs || m.typ == msgRange {
			m.counts = make([]uint64, n)
		}
		for j := range n {
			m.ids[j] = d.id()
			switch m.typ {
			case msgIDs:
				m.counts[j] = uint64(d.u32())
			case msgRange:
				m.counts[j] = d.u64()
			}
		}
	case msgIndices, msgNeeds:
		m.ints = make([]int32, n)
		for j := range n {
			m.ints[j] = int32(d.u32())
		}
	case msgRatings:
		m.rats = make([]rating, n)
		for j := range n {
			m.rats[j] = rating{row: int32(d.u32()), col: int32(d.u32()), val: math.Float32frombits(d.u32()), seq: d.u64()}
		}
	case msgPairs:
		m.ids, m.items, m.seqs = make([]string, n), make([]string, n), make([]uint64, n)
		for j := range n {
			m.ids[j], m.items[j], m.seqs[j] = d.id(), d.id(), d.u64()
		}
	case msgAck:
		if n != 0 {
			return nil, msgErrorf("an acknowledgement with %d entries", n)
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.p) != 0 {
		return nil, msgErrorf("%d bytes after the last entry", len(d.p))
	}
	return m, nil
}

// msgReader reads entries, remembering the first error.
type msgReader struct {
	p   []byte
	err error
}

func (d *msgReader) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.p) < n {
		d.err = msgErrorf("truncated entry")
		return nil
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}

func (d *msgReader) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *msgReader) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *msgReader) id() string {
	b := d.take(2)
	if b == nil {
		return ""
	}
	n := int(binary.LittleEndian.Uint16(b))
	if (n == 0 || n > MaxIDLen) && d.err == nil {
		d.err = msgErrorf("an ID of %d bytes (want 1..%d)", n, MaxIDLen)
		return ""
	}
	return string(d.take(n))
}

// ack is the reply to every message but a lookup.
var ack = func() []byte {
	var w msgWriter
	w.reset(msgAck, Users, false, -1, 0, 0, 0)
	return w.finish()
}()
