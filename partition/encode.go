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
// Nothing read from data is trusted: the checksum must match, the magic
// and version be known, every count fit in the bytes left (which is
// checked before anything is allocated), no byte follow the last section,
// and the decoded block must be consistent, so that Len, End, NeededFrom
// and SendTo work on it as on the block that was encoded:
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
	if len(data) < blockHeaderSize+8*blockSections+4 {
		return nil, blockErrorf("%d bytes is shorter than the smallest block encoding (%d bytes)", len(data), blockHeaderSize+8*blockSections+4)
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(data[len(body):]); got != want {
		return nil, blockErrorf("checksum mismatch: CRC-32C of the content is %08x, the block records %08x", got, want)
	}
	if string(body[:4]) != blockMagic {
		return nil, blockErrorf("bad magic %q, want %q", body[:4], blockMagic)
	}
	if v := binary.LittleEndian.Uint32(body[4:]); v != blockVersion {
		return nil, blockErrorf("unknown format version %d (this build reads version %d)", v, blockVersion)
	}
	b := &Block{Side: Side(body[8])}
	index := int64(binary.LittleEndian.Uint64(body[9:]))
	if int64(int(index)) != index {
		return nil, blockErrorf("block index %d does not fit in an int", index)
	}
	b.Index = int(index)
	b.Start = int32(binary.LittleEndian.Uint32(body[17:]))

	// Locate every section before allocating for any.
	d := decoder{buf: body[blockHeaderSize:]}
	idsRaw, nIDs, idBytes := d.idsSection()
	rowsPtr, rowsCol, rowsVal := d.section("Rows.Ptr", 8), d.section("Rows.Col", 4), d.section("Rows.Val", 4)
	testPtr, testCol, testVal := d.section("Test.Ptr", 8), d.section("Test.Col", 4), d.section("Test.Val", 4)
	needed, needPtr := d.section("Needed", 4), d.section("NeedPtr", 4)
	send, sendPtr := d.section("Send", 4), d.section("SendPtr", 4)
	if d.err != nil {
		return nil, d.err
	}
	if len(d.buf) != 0 {
		return nil, blockErrorf("%d unexpected bytes after the last section", len(d.buf))
	}

	b.IDs = decodeIDs(idsRaw, nIDs, idBytes)
	b.Rows = CSR{Ptr: decodeInt64s(rowsPtr), Col: makeInt32s(len(rowsCol) / 4), Val: decodeFloat32s(rowsVal)}
	b.Test = CSR{Ptr: decodeInt64s(testPtr), Col: makeInt32s(len(testCol) / 4), Val: decodeFloat32s(testVal)}
	b.Needed, b.NeedPtr = decodeInt32s(needed), decodeInt32s(needPtr)
	b.Send, b.SendPtr = decodeInt32s(send), decodeInt32s(sendPtr)
	if err := b.checkShape(); err != nil {
		return nil, err
	}
	// The columns are checked as they are decoded, a chunk at a time while
	// it is in cache. This is the same check, in the same order, as
	// check's.
	if err := decodeCols("Rows", &b.Rows, rowsCol, len(b.Needed)); err != nil {
		return nil, err
	}
	if err := decodeCols("Test", &b.Test, testCol, len(b.Needed)); err != nil {
		return nil, err
	}
	return b, nil
}

// decodeCols decodes raw into c.Col, which has its length and whose Ptr
// has been checked, and checks the rows as checkCols does.
func decodeCols(name string, c *CSR, raw []byte, nNeeded int) error {
	const chunk = 8 << 10 // columns decoded ahead of checking them
	decoded := 0          // c.Col[:decoded] is decoded
	for r := 0; r+1 < len(c.Ptr); r++ {
		lo, hi := c.Ptr[r], c.Ptr[r+1]
		if int(hi) > decoded {
			next := min(max(int(hi), decoded+chunk), len(c.Col))
			getInt32s(c.Col[decoded:next], raw[4*decoded:4*next])
			decoded = next
		}
		if !ascendingBelow(c.Col[lo:hi], nNeeded) {
			return colsError(name, c, r, nNeeded)
		}
	}
	return nil
}

// decoder locates sections in buf, which it advances. After the first
// error it reads nothing and returns nil.
type decoder struct {
	buf []byte
	err error
}

// section reads a section's element count, checks that the section, at
// size bytes an element, fits in what is left, and returns its elements'
// bytes.
func (d *decoder) section(name string, size int) []byte {
	n := d.count(name, size)
	raw := d.buf[:n*size]
	d.buf = d.buf[n*size:]
	return raw
}

// count reads a section's element count and checks that at least size
// bytes an element are left.
func (d *decoder) count(name string, size int) int {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < 8 {
		d.err = blockErrorf("%s: truncated before its count", name)
		return 0
	}
	n := binary.LittleEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	if n > uint64(len(d.buf)/size) {
		d.err = blockErrorf("%s: count %d needs at least %d bytes per element, but only %d bytes are left", name, n, size, len(d.buf))
		return 0
	}
	return int(n)
}

// idsSection locates the IDs section, checking that each ID's length fits
// in what is left, and returns its bytes, the ID count and the sum of their
// lengths. The ID rules are checkShape's.
func (d *decoder) idsSection() (raw []byte, n, idBytes int) {
	n = d.count("IDs", 4) // every ID takes at least its 4-byte length
	p := d.buf
	for i := range n {
		if len(p) < 4 {
			d.err = blockErrorf("IDs: truncated at the length of ID %d", i)
			return nil, 0, 0
		}
		l := binary.LittleEndian.Uint32(p)
		p = p[4:]
		if uint64(l) > uint64(len(p)) {
			d.err = blockErrorf("IDs: ID %d is %d bytes long, but only %d bytes are left", i, l, len(p))
			return nil, 0, 0
		}
		p = p[l:]
		idBytes += int(l)
	}
	raw = d.buf[:len(d.buf)-len(p)]
	d.buf = p
	return raw, n, idBytes
}

// decodeIDs decodes the n IDs, of total bytes, of the IDs section raw
// located by idsSection. The IDs share one backing string.
func decodeIDs(raw []byte, n, total int) []string {
	if n == 0 {
		return nil
	}
	buf := make([]byte, 0, total)
	for p := raw; len(p) > 0; {
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

func makeInt32s(n int) []int32 {
	if n == 0 {
		return nil
	}
	return make([]int32, n)
}

func decodeInt32s(raw []byte) []int32 {
	out := makeInt32s(len(raw) / 4)
	getInt32s(out, raw)
	return out
}

// getInt32s decodes len(dst) elements from src.
func getInt32s(dst []int32, src []byte) {
	for i, j := 0, 0; i < len(dst) && j+4 <= len(src); i, j = i+1, j+4 {
		dst[i] = int32(binary.LittleEndian.Uint32(src[j : j+4]))
	}
}

func decodeFloat32s(raw []byte) []float32 {
	if len(raw) == 0 {
		return nil
	}
	out := make([]float32, len(raw)/4)
	for i, j := 0, 0; i < len(out) && j+4 <= len(raw); i, j = i+1, j+4 {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[j : j+4]))
	}
	return out
}

func decodeInt64s(raw []byte) []int64 {
	if len(raw) == 0 {
		return nil
	}
	out := make([]int64, len(raw)/8)
	for i, j := 0, 0; i < len(out) && j+8 <= len(raw); i, j = i+1, j+8 {
		out[i] = int64(binary.LittleEndian.Uint64(raw[j : j+8]))
	}
	return out
}

// check reports, as an error wrapping ErrBlock, the first way in which b is
// not a consistent block by the rules listed on UnmarshalBlock.
func (b *Block) check() error {
	if err := b.checkShape(); err != nil {
		return err
	}
	if err := checkCols("Rows", &b.Rows, len(b.Needed)); err != nil {
		return err
	}
	return checkCols("Test", &b.Test, len(b.Needed))
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

// checkShape is check but for the values of Rows.Col and Test.Col: it
// only needs their lengths. When it passes, the rows of Rows and Test lie
// within their Col and Val.
func (b *Block) checkShape() error {
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
	if err := checkPtr("Rows", &b.Rows); err != nil {
		return err
	}
	if err := checkPtr("Test", &b.Test); err != nil {
		return err
	}
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

// checkPtr checks the row pointer of one of a block's matrices, named
// "Rows" or "Test", whose length has been checked.
func checkPtr(name string, c *CSR) error {
	if len(c.Col) != len(c.Val) {
		return blockErrorf("%s has %d columns but %d values", name, len(c.Col), len(c.Val))
	}
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
