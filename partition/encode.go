package partition

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
)

// Binary block encoding, version 1. All integers are little-endian.
//
//	offset  size      field
//	0       4         magic "CFBK"
//	4       4         format version, uint32 (1)
//	8       1         Side, uint8 (0 users, 1 items)
//	9       8         Index, int64
//	17      4         Start, int32
//	21      ...       eleven sections, each a uint64 element count n
//	                  followed by n elements:
//	                    IDs        n × (uint32 byte length, bytes)
//	                    Rows.Ptr   n × int64
//	                    Rows.Col   n × int32
//	                    Rows.Val   n × float32 (IEEE 754 bits)
//	                    Test.Ptr   n × int64
//	                    Test.Col   n × int32
//	                    Test.Val   n × float32
//	                    Needed     n × int32
//	                    NeedPtr    n × int32
//	                    Send       n × int32
//	                    SendPtr    n × int32
//	end-4   4         CRC-32C (Castagnoli) of every byte before it, uint32
//
// Nothing follows the checksum, and nothing lies between the last section
// and the checksum.

// ErrBlock is wrapped by every error of UnmarshalBlock and MarshalBinary
// about a malformed block; the message says what is wrong.
var ErrBlock = errors.New("partition: malformed block")

const (
	blockMagic   = "CFBK"
	blockVersion = 1
	// blockHeaderSize is the magic, version, Side, Index and Start.
	blockHeaderSize = 4 + 4 + 1 + 8 + 4
	// blockSections is the number of counted sections.
	blockSections = 11
	// MaxIDLen is the longest external ID, in bytes, a block may hold.
	MaxIDLen = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var _ encoding.BinaryMarshaler = (*Block)(nil)

func blockErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBlock}, args...)...)
}

// MarshalBinary encodes b in the binary block format (see the table at
// the top of this file). It checks b first, with the rules UnmarshalBlock
// applies, so that whatever it encodes decodes: an inconsistent block is
// an error wrapping ErrBlock. The returned slice is new and b is not
// retained.
func (b *Block) MarshalBinary() ([]byte, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	buf := appendBlock(make([]byte, 0, b.encodedSize()), b)
	return buf, nil
}

// encodedSize is the exact length of b's encoding.
func (b *Block) encodedSize() int {
	n := blockHeaderSize + 8*blockSections + 4
	n += 4 * len(b.IDs)
	for _, id := range b.IDs {
		n += len(id)
	}
	n += 8 * (len(b.Rows.Ptr) + len(b.Test.Ptr))
	n += 4 * (len(b.Rows.Col) + len(b.Rows.Val) + len(b.Test.Col) + len(b.Test.Val))
	n += 4 * (len(b.Needed) + len(b.NeedPtr) + len(b.Send) + len(b.SendPtr))
	return n
}

// appendBlock appends the encoding of b to buf without checking b. It
// does not allocate when buf has room for b.encodedSize() more bytes.
func appendBlock(buf []byte, b *Block) []byte {
	start := len(buf)
	buf = append(buf, blockMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, blockVersion)
	buf = append(buf, byte(b.Side))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(int64(b.Index)))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(b.Start))

	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(b.IDs)))
	for _, id := range b.IDs {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(id)))
		buf = append(buf, id...)
	}
	for _, c := range [2]*CSR{&b.Rows, &b.Test} {
		buf = appendInt64s(buf, c.Ptr)
		buf = appendInt32s(buf, c.Col)
		buf = appendFloat32s(buf, c.Val)
	}
	buf = appendInt32s(buf, b.Needed)
	buf = appendInt32s(buf, b.NeedPtr)
	buf = appendInt32s(buf, b.Send)
	buf = appendInt32s(buf, b.SendPtr)
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf[start:], castagnoli))
}

// grow extends buf by n bytes, left to be written, and returns the
// extended slice and the new bytes.
func grow(buf []byte, n int) ([]byte, []byte) {
	buf = slices.Grow(buf, n)
	off := len(buf)
	buf = buf[:off+n]
	return buf, buf[off:]
}

// The loops below and in the decoding functions have the form that lets
// the compiler drop most bounds checks.

func appendInt32s(buf []byte, s []int32) []byte {
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(s)))
	buf, dst := grow(buf, 4*len(s))
	for i, j := 0, 0; i < len(s) && j+4 <= len(dst); i, j = i+1, j+4 {
		binary.LittleEndian.PutUint32(dst[j:j+4], uint32(s[i]))
	}
	return buf
}

func appendFloat32s(buf []byte, s []float32) []byte {
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(s)))
	buf, dst := grow(buf, 4*len(s))
	for i, j := 0, 0; i < len(s) && j+4 <= len(dst); i, j = i+1, j+4 {
		binary.LittleEndian.PutUint32(dst[j:j+4], math.Float32bits(s[i]))
	}
	return buf
}

func appendInt64s(buf []byte, s []int64) []byte {
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(s)))
	buf, dst := grow(buf, 8*len(s))
	for i, j := 0, 0; i < len(s) && j+8 <= len(dst); i, j = i+1, j+8 {
		binary.LittleEndian.PutUint64(dst[j:j+8], uint64(s[i]))
	}
	return buf
}

// UnmarshalBlock decodes a block encoded by MarshalBinary and checks it.
// Nothing read from data is trusted: the checksum must match, every count
// is checked against the bytes left before anything is allocated, and the
// decoded block must be consistent, so that Len, End, NeededFrom and
// SendTo work on it as on the block that was encoded:
//
//   - Side is Users or Items; Index ≥ 0; Start ≥ 0; Start + Len() fits in
//     an int32;
//   - Rows.Ptr and Test.Ptr have one entry per ID plus one; every ID is 1
//     to MaxIDLen bytes long;
//   - in Rows and Test: Ptr starts at 0, never decreases and ends at
//     len(Col) == len(Val); every Col is in [0, len(Needed)), strictly
//     ascending within a row;
//   - Needed is ≥ 0 and strictly ascending;
//   - NeedPtr has at least 2 entries (one per block of the other side,
//     plus one), starts at 0, never decreases and ends at len(Needed);
//   - SendPtr has as many entries as NeedPtr, starts at 0, never decreases
//     and ends at len(Send); every Send is in [0, Len()), strictly
//     ascending within each destination's part.
//
// Every error wraps ErrBlock and says what is wrong. Empty sections decode
// as nil slices. The block does not retain data; its IDs share one
// backing string.
func UnmarshalBlock(data []byte) (*Block, error) {
	const minSize = blockHeaderSize + 8*blockSections + 4
	if len(data) < minSize {
		return nil, blockErrorf("%d bytes is shorter than the smallest block encoding (%d bytes)", len(data), minSize)
	}
	u := unmarshaler{body: data[:len(data)-4], want: binary.LittleEndian.Uint32(data[len(data)-4:])}
	b, err := u.decode()
	if err == nil {
		u.sum(len(u.body))
		if u.crc != u.want {
			err = u.checksumError()
		}
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// unmarshaler decodes body, the encoding less its checksum want. The
// checksum is computed as the sections are decoded, a chunk at a time, so
// that each chunk is read from memory once.
type unmarshaler struct {
	body []byte
	want uint32
	crc  uint32 // CRC-32C of body[:done]
	done int
	rest []byte // what is left to locate, during locate
}

// crcChunk is how many bytes are checksummed ahead of decoding them.
const crcChunk = 32 << 10

// sum extends the checksum to body[:upto].
func (u *unmarshaler) sum(upto int) {
	if upto > u.done {
		u.crc = crc32.Update(u.crc, castagnoli, u.body[u.done:upto])
		u.done = upto
	}
}

func (u *unmarshaler) checksumError() error {
	return blockErrorf("checksum mismatch: CRC-32C of the content is %08x, the block records %08x", u.crc, u.want)
}

// fail returns err, unless the checksum does not match: then the bytes are
// damaged, which is the error to report.
func (u *unmarshaler) fail(err error) error {
	u.sum(len(u.body))
	if u.crc != u.want {
		return u.checksumError()
	}
	return err
}

// section is where a section's elements lie in body.
type section struct {
	off, n int
}

// decode decodes and checks the block, checksumming all of body but for
// what follows an error. The checks are those of check, in the same order.
func (u *unmarshaler) decode() (*Block, error) {
	body := u.body
	if string(body[:4]) != blockMagic {
		return nil, u.fail(blockErrorf("bad magic %q, want %q", body[:4], blockMagic))
	}
	if v := binary.LittleEndian.Uint32(body[4:]); v != blockVersion {
		return nil, u.fail(blockErrorf("unknown format version %d (this build reads version %d)", v, blockVersion))
	}
	b := &Block{Side: Side(body[8])}
	index := int64(binary.LittleEndian.Uint64(body[9:]))
	if int64(int(index)) != index {
		return nil, u.fail(blockErrorf("block index %d does not fit in an int", index))
	}
	b.Index = int(index)
	b.Start = int32(binary.LittleEndian.Uint32(body[17:]))

	// Locate every section before allocating for any.
	u.rest = body[blockHeaderSize:]
	ids, idBytes, err := u.locateIDs()
	var sec [blockSections - 1]section
	for k, name := range [...]string{"Rows.Ptr", "Rows.Col", "Rows.Val", "Test.Ptr", "Test.Col", "Test.Val", "Needed", "NeedPtr", "Send", "SendPtr"} {
		if err != nil {
			break
		}
		size := 4
		if k == 0 || k == 3 {
			size = 8
		}
		sec[k], err = u.locate(name, size)
	}
	if err == nil && len(u.rest) != 0 {
		err = blockErrorf("%d unexpected bytes after the last section", len(u.rest))
	}
	if err != nil {
		return nil, u.fail(err)
	}

	u.sum(ids.off + ids.n)
	b.IDs = decodeIDs(body[ids.off:ids.off+ids.n], idBytes)
	b.Rows = CSR{Ptr: makeSlice[int64](sec[0].n), Col: makeSlice[int32](sec[1].n), Val: makeSlice[float32](sec[2].n)}
	b.Test = CSR{Ptr: makeSlice[int64](sec[3].n), Col: makeSlice[int32](sec[4].n), Val: makeSlice[float32](sec[5].n)}
	b.Needed, b.NeedPtr = makeSlice[int32](sec[6].n), makeSlice[int32](sec[7].n)
	b.Send, b.SendPtr = makeSlice[int32](sec[8].n), makeSlice[int32](sec[9].n)
	if err := b.checkHead(); err != nil {
		return nil, u.fail(err)
	}
	nNeeded := len(b.Needed)
	for k, m := range [...]struct {
		name string
		c    *CSR
	}{{"Rows", &b.Rows}, {"Test", &b.Test}} {
		ptr, col, val := sec[3*k], sec[3*k+1], sec[3*k+2]
		u.int64s(ptr, m.c.Ptr)
		if err := checkPtr(m.name, m.c); err != nil {
			return nil, u.fail(err)
		}
		if err := u.cols(m.name, col, m.c, nNeeded); err != nil {
			return nil, u.fail(err)
		}
		u.float32s(val, m.c.Val)
	}
	u.int32s(sec[6], b.Needed)
	u.int32s(sec[7], b.NeedPtr)
	u.int32s(sec[8], b.Send)
	u.int32s(sec[9], b.SendPtr)
	if err := b.checkRouting(); err != nil {
		return nil, u.fail(err)
	}
	return b, nil
}

// count reads a section's element count and checks that at least size
// bytes an element are left.
func (u *unmarshaler) count(name string, size int) (int, error) {
	if len(u.rest) < 8 {
		return 0, blockErrorf("%s: truncated before its count", name)
	}
	n := binary.LittleEndian.Uint64(u.rest)
	u.rest = u.rest[8:]
	if n > uint64(len(u.rest)/size) {
		return 0, blockErrorf("%s: count %d needs at least %d bytes per element, but only %d bytes are left", name, n, size, len(u.rest))
	}
	return int(n), nil
}

// locate reads a section's count, checks that its elements, of size bytes
// each, fit in what is left and skips them.
func (u *unmarshaler) locate(name string, size int) (section, error) {
	n, err := u.count(name, size)
	if err != nil {
		return section{}, err
	}
	s := section{off: len(u.body) - len(u.rest), n: n}
	u.rest = u.rest[n*size:]
	return s, nil
}

// locateIDs locates the IDs section, checking that each ID's length fits in
// what is left, and returns where the section's bytes are (n is their
// count) and the total length of the IDs. The ID rules are checkHead's.
func (u *unmarshaler) locateIDs() (raw section, idBytes int, err error) {
	n, err := u.count("IDs", 4) // every ID takes at least its 4-byte length
	if err != nil {
		return section{}, 0, err
	}
	off, p := len(u.body)-len(u.rest), u.rest
	for i := range n {
		if len(p) < 4 {
			return section{}, 0, blockErrorf("IDs: truncated at the length of ID %d", i)
		}
		l := binary.LittleEndian.Uint32(p)
		p = p[4:]
		if uint64(l) > uint64(len(p)) {
			return section{}, 0, blockErrorf("IDs: ID %d is %d bytes long, but only %d bytes are left", i, l, len(p))
		}
		p = p[l:]
		idBytes += int(l)
	}
	u.rest = p
	return section{off: off, n: len(u.body) - len(p) - off}, idBytes, nil
}

// decodeIDs decodes the IDs section located by locateIDs: raw is its
// bytes, total the sum of the IDs' lengths. The IDs share one backing
// string.
func decodeIDs(raw []byte, total int) []string {
	if len(raw) == 0 {
		return nil
	}
	buf, n := make([]byte, 0, total), 0
	for p := raw; len(p) > 0; n++ {
		l := binary.LittleEndian.Uint32(p)
		buf = append(buf, p[4:4+l]...)
		p = p[4+l:]
	}
	all := string(buf)
	ids := make([]string, n)
	for i, off, p := 0, 0, raw; i < n; i++ {
		l := int(binary.LittleEndian.Uint32(p))
		ids[i] = all[off : off+l]
		off += l
		p = p[4+l:]
	}
	return ids
}

// makeSlice is make([]T, n), or nil for 0.
func makeSlice[T any](n int) []T {
	if n == 0 {
		return nil
	}
	return make([]T, n)
}

// The decoding loops below have the form that lets the compiler drop most
// bounds checks. Each decodes section s into out, which has its length,
// checksumming a chunk before decoding it.

func (u *unmarshaler) int32s(s section, out []int32) {
	raw := u.body[s.off : s.off+4*len(out)]
	for lo := 0; lo < len(raw); lo += crcChunk {
		hi := min(lo+crcChunk, len(raw))
		u.sum(s.off + hi)
		getInt32s(out[lo/4:hi/4], raw[lo:hi])
	}
}

func getInt32s(dst []int32, src []byte) {
	for i, j := 0, 0; i < len(dst) && j+4 <= len(src); i, j = i+1, j+4 {
		dst[i] = int32(binary.LittleEndian.Uint32(src[j : j+4]))
	}
}

func (u *unmarshaler) float32s(s section, out []float32) {
	raw := u.body[s.off : s.off+4*len(out)]
	for lo := 0; lo < len(raw); lo += crcChunk {
		hi := min(lo+crcChunk, len(raw))
		u.sum(s.off + hi)
		dst, src := out[lo/4:hi/4], raw[lo:hi]
		for i, j := 0, 0; i < len(dst) && j+4 <= len(src); i, j = i+1, j+4 {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[j : j+4]))
		}
	}
}

func (u *unmarshaler) int64s(s section, out []int64) {
	raw := u.body[s.off : s.off+8*len(out)]
	for lo := 0; lo < len(raw); lo += crcChunk {
		hi := min(lo+crcChunk, len(raw))
		u.sum(s.off + hi)
		dst, src := out[lo/8:hi/8], raw[lo:hi]
		for i, j := 0, 0; i < len(dst) && j+8 <= len(src); i, j = i+1, j+8 {
			dst[i] = int64(binary.LittleEndian.Uint64(src[j : j+8]))
		}
	}
}

// cols decodes section s into c.Col, whose Ptr has been checked, and
// checks each row as checkCols does while it is in cache.
func (u *unmarshaler) cols(name string, s section, c *CSR, nNeeded int) error {
	raw := u.body[s.off : s.off+4*len(c.Col)]
	decoded := 0 // c.Col[:decoded] is decoded
	for r := 0; r+1 < len(c.Ptr); r++ {
		lo, hi := c.Ptr[r], c.Ptr[r+1]
		if int(hi) > decoded {
			next := min(max(int(hi), decoded+crcChunk/4), len(c.Col))
			u.sum(s.off + 4*next)
			getInt32s(c.Col[decoded:next], raw[4*decoded:4*next])
			decoded = next
		}
		cols := c.Col[lo:hi]
		if !ascendingBelow(cols, nNeeded) {
			return colsError(name, c, r, nNeeded)
		}
	}
	return nil
}

// check reports, as an error wrapping ErrBlock, the first way in which b is
// not a consistent block by the rules listed on UnmarshalBlock.
func (b *Block) check() error {
	if err := b.checkHead(); err != nil {
		return err
	}
	for _, m := range [...]struct {
		name string
		c    *CSR
	}{{"Rows", &b.Rows}, {"Test", &b.Test}} {
		if err := checkPtr(m.name, m.c); err != nil {
			return err
		}
		if err := checkCols(m.name, m.c, len(b.Needed)); err != nil {
			return err
		}
	}
	return b.checkRouting()
}

// checkHead checks what only needs the IDs and the lengths of the other
// slices.
func (b *Block) checkHead() error {
	if b.Side != Users && b.Side != Items {
		return blockErrorf("side %d is neither 0 (users) nor 1 (items)", b.Side)
	}
	if b.Index < 0 {
		return blockErrorf("negative block index %d", b.Index)
	}
	if b.Start < 0 {
		return blockErrorf("negative start row %d", b.Start)
	}
	if len(b.Rows.Ptr) == 0 {
		return blockErrorf("Rows.Ptr is empty: it needs one entry per row plus one")
	}
	rows := len(b.Rows.Ptr) - 1
	if int64(b.Start)+int64(rows) > math.MaxInt32 {
		return blockErrorf("rows [%d, %d) overflow int32", b.Start, int64(b.Start)+int64(rows))
	}
	if len(b.IDs) != rows {
		return blockErrorf("%d IDs for %d rows (len(Rows.Ptr)-1)", len(b.IDs), rows)
	}
	if len(b.Test.Ptr) != rows+1 {
		return blockErrorf("Test.Ptr has %d entries for %d rows, want %d", len(b.Test.Ptr), rows, rows+1)
	}
	for i, id := range b.IDs {
		if len(id) == 0 {
			return blockErrorf("ID of row %d is empty", i)
		}
		if len(id) > MaxIDLen {
			return blockErrorf("ID of row %d is %d bytes long, more than %d", i, len(id), MaxIDLen)
		}
	}
	if len(b.Rows.Col) != len(b.Rows.Val) {
		return blockErrorf("Rows has %d columns but %d values", len(b.Rows.Col), len(b.Rows.Val))
	}
	if len(b.Test.Col) != len(b.Test.Val) {
		return blockErrorf("Test has %d columns but %d values", len(b.Test.Col), len(b.Test.Val))
	}
	return nil
}

// checkRouting checks Needed, NeedPtr, Send and SendPtr.
func (b *Block) checkRouting() error {
	prev := int32(-1)
	for j, g := range b.Needed {
		if g <= prev {
			if g < 0 {
				return blockErrorf("Needed[%d] = %d is negative", j, g)
			}
			return blockErrorf("Needed is not strictly ascending: Needed[%d] = %d after %d", j, g, prev)
		}
		prev = g
	}
	if len(b.NeedPtr) < 2 {
		return blockErrorf("NeedPtr has %d entries, want at least 2 (one per block of the other side, plus one)", len(b.NeedPtr))
	}
	if err := checkPtr32("NeedPtr", b.NeedPtr, "Needed", len(b.Needed)); err != nil {
		return err
	}
	if len(b.SendPtr) != len(b.NeedPtr) {
		return blockErrorf("SendPtr has %d entries but NeedPtr %d: both have one per block of the other side, plus one", len(b.SendPtr), len(b.NeedPtr))
	}
	if err := checkPtr32("SendPtr", b.SendPtr, "Send", len(b.Send)); err != nil {
		return err
	}
	rows := b.Len()
	for p := 0; p+1 < len(b.SendPtr); p++ {
		prev := int32(-1)
		for j := b.SendPtr[p]; j < b.SendPtr[p+1]; j++ {
			r := b.Send[j]
			if r < 0 || int(r) >= rows {
				return blockErrorf("Send[%d] = %d outside the block's rows [0, %d)", j, r, rows)
			}
			if r <= prev {
				return blockErrorf("Send to block %d is not strictly ascending: Send[%d] = %d after %d", p, j, r, prev)
			}
			prev = r
		}
	}
	return nil
}

// checkCols checks that every row of c, whose Ptr has been checked, has
// strictly ascending columns in [0, nNeeded).
func checkCols(name string, c *CSR, nNeeded int) error {
	for r := 0; r+1 < len(c.Ptr); r++ {
		if !ascendingBelow(c.Col[c.Ptr[r]:c.Ptr[r+1]], nNeeded) {
			return colsError(name, c, r, nNeeded)
		}
	}
	return nil
}

// checkPtr checks the row pointer of one of a block's matrices, named
// "Rows" or "Test", whose length has been checked: it starts at 0, never
// decreases and ends at len(Col).
func checkPtr(name string, c *CSR) error {
	ptr := c.Ptr
	if ptr[0] != 0 {
		return blockErrorf("%s.Ptr[0] = %d, want 0", name, ptr[0])
	}
	for r := 1; r < len(ptr); r++ {
		if ptr[r] < ptr[r-1] {
			return blockErrorf("%s.Ptr decreases: Ptr[%d] = %d after %d", name, r, ptr[r], ptr[r-1])
		}
	}
	if last := ptr[len(ptr)-1]; last != int64(len(c.Col)) {
		return blockErrorf("%s.Ptr ends at %d, but there are %d columns", name, last, len(c.Col))
	}
	return nil
}

// ascendingBelow reports whether s is strictly ascending within [0, n).
func ascendingBelow(s []int32, n int) bool {
	if len(s) == 0 {
		return true
	}
	if s[0] < 0 || int(s[len(s)-1]) >= n {
		return false
	}
	for j := 1; j < len(s); j++ {
		if s[j] <= s[j-1] {
			return false
		}
	}
	return true
}

// colsError says why row r of c, a matrix named name whose columns index a
// Needed list of n entries, fails ascendingBelow.
func colsError(name string, c *CSR, r, n int) error {
	prev := int32(-1)
	for at := c.Ptr[r]; at < c.Ptr[r+1]; at++ {
		col := c.Col[at]
		if col < 0 || int(col) >= n {
			return blockErrorf("%s.Col[%d] = %d outside Needed's [0, %d)", name, at, col, n)
		}
		if col <= prev {
			return blockErrorf("%s row %d: columns not strictly ascending: Col[%d] = %d after %d", name, r, at, col, prev)
		}
		prev = col
	}
	return blockErrorf("%s row %d: bad columns", name, r) // not reached
}

// checkPtr32 checks that ptr, which is not empty, starts at 0, never
// decreases and ends at n, the length of the slice named of.
func checkPtr32(name string, ptr []int32, of string, n int) error {
	if ptr[0] != 0 {
		return blockErrorf("%s[0] = %d, want 0", name, ptr[0])
	}
	for i := 1; i < len(ptr); i++ {
		if ptr[i] < ptr[i-1] {
			return blockErrorf("%s decreases: %s[%d] = %d after %d", name, name, i, ptr[i], ptr[i-1])
		}
	}
	if last := ptr[len(ptr)-1]; int64(last) != int64(n) {
		return blockErrorf("%s ends at %d, want %d (the length of %s)", name, last, n, of)
	}
	return nil
}
