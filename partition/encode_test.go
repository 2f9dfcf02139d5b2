package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// encodeDataset builds a dataset of about n ratings over nu users and ni
// items with a 20% test split. User IDs are "u<k>" strings, item IDs
// decimal integers, so that both dictionary orders occur.
func encodeDataset(tb testing.TB, seed uint64, n, nu, ni int) *Dataset {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	b := NewBuilder()
	var ub, ib []byte
	for range n {
		ub = strconv.AppendInt(append(ub[:0], 'u'), int64(rng.IntN(nu)), 10)
		ib = strconv.AppendInt(ib[:0], int64(rng.IntN(ni)), 10)
		if err := b.Add(ub, ib, float32(rng.IntN(10)+1)/2); err != nil {
			tb.Fatal(err)
		}
	}
	ds, err := NewDataset(b, nil, SplitOptions{TestFraction: 0.2, Seed: 1})
	if err != nil {
		tb.Fatal(err)
	}
	return ds
}

// normalized returns a copy of b with empty slices set to nil, so that
// reflect.DeepEqual compares contents only.
func normalized(b *Block) *Block {
	c := *b
	c.IDs = nilIfEmpty(c.IDs)
	for _, m := range []*CSR{&c.Rows, &c.Test} {
		m.Ptr, m.Col, m.Val = nilIfEmpty(m.Ptr), nilIfEmpty(m.Col), nilIfEmpty(m.Val)
	}
	c.Needed, c.NeedPtr = nilIfEmpty(c.Needed), nilIfEmpty(c.NeedPtr)
	c.Send, c.SendPtr = nilIfEmpty(c.Send), nilIfEmpty(c.SendPtr)
	return &c
}

func nilIfEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

// cloneBlock is a deep copy of b.
func cloneBlock(b *Block) *Block {
	c := *b
	c.IDs = slices.Clone(b.IDs)
	c.Rows = CSR{slices.Clone(b.Rows.Ptr), slices.Clone(b.Rows.Col), slices.Clone(b.Rows.Val)}
	c.Test = CSR{slices.Clone(b.Test.Ptr), slices.Clone(b.Test.Col), slices.Clone(b.Test.Val)}
	c.Needed, c.NeedPtr = slices.Clone(b.Needed), slices.Clone(b.NeedPtr)
	c.Send, c.SendPtr = slices.Clone(b.Send), slices.Clone(b.SendPtr)
	return &c
}

func TestBlockRoundTrip(t *testing.T) {
	t.Parallel()
	ds := encodeDataset(t, 1, 20000, 600, 300)
	if len(ds.Test.R) == 0 {
		t.Fatal("the dataset has no test ratings")
	}
	for _, pq := range [][2]int{{1, 1}, {3, 5}, {7, 7}} {
		l, err := NewLayout(ds, pq[0], pq[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, side := range []Side{Users, Items} {
			others := len(l.Blocks(side.Other()))
			for _, blk := range l.Blocks(side) {
				data, err := blk.MarshalBinary()
				if err != nil {
					t.Fatalf("%v %v block %d: %v", pq, side, blk.Index, err)
				}
				if len(data) != blk.encodedSize() || cap(data) != len(data) {
					t.Errorf("%v %v block %d: %d bytes (capacity %d), computed size %d", pq, side, blk.Index, len(data), cap(data), blk.encodedSize())
				}
				got, err := UnmarshalBlock(data)
				if err != nil {
					t.Fatalf("%v %v block %d: %v", pq, side, blk.Index, err)
				}
				if !reflect.DeepEqual(normalized(got), normalized(blk)) {
					t.Fatalf("%v %v block %d: decoded block differs from the original", pq, side, blk.Index)
				}
				if got.Len() != blk.Len() || got.End() != blk.End() {
					t.Errorf("%v %v block %d: Len, End = %d, %d, want %d, %d", pq, side, blk.Index, got.Len(), got.End(), blk.Len(), blk.End())
				}
				for q := range others {
					if !slices.Equal(got.NeededFrom(q), blk.NeededFrom(q)) || !slices.Equal(got.SendTo(q), blk.SendTo(q)) {
						t.Fatalf("%v %v block %d: routing to or from block %d differs", pq, side, blk.Index, q)
					}
				}
				if again, err := got.MarshalBinary(); err != nil || !bytes.Equal(again, data) {
					t.Fatalf("%v %v block %d: re-encoding differs (%v)", pq, side, blk.Index, err)
				}
			}
		}
	}
}

// tinyBlock is a small consistent block: 2 rows, 2 blocks on the other
// side.
func tinyBlock() *Block {
	return &Block{
		Side: Users, Index: 1, Start: 5,
		IDs:     []string{"a", "bc"},
		Rows:    CSR{Ptr: []int64{0, 2, 3}, Col: []int32{0, 2, 1}, Val: []float32{1.5, -2, 4}},
		Test:    CSR{Ptr: []int64{0, 0, 1}, Col: []int32{2}, Val: []float32{3}},
		Needed:  []int32{4, 9, 12},
		NeedPtr: []int32{0, 2, 3},
		Send:    []int32{0, 1, 1},
		SendPtr: []int32{0, 2, 3},
	}
}

// TestBlockEncodingLayout pins the byte layout of format version 1.
func TestBlockEncodingLayout(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	var w []byte
	u32 := func(v uint32) { w = le.AppendUint32(w, v) }
	u64 := func(v uint64) { w = le.AppendUint64(w, v) }
	i32s := func(vs ...int32) {
		u64(uint64(len(vs)))
		for _, v := range vs {
			u32(uint32(v))
		}
	}
	w = append(w, "CFBK"...)
	u32(1)
	w = append(w, 0) // Side
	u64(1)           // Index
	u32(5)           // Start
	u64(2)           // IDs
	u32(1)
	w = append(w, "a"...)
	u32(2)
	w = append(w, "bc"...)
	u64(3) // Rows.Ptr
	u64(0)
	u64(2)
	u64(3)
	i32s(0, 2, 1) // Rows.Col
	u64(3)        // Rows.Val
	u32(math.Float32bits(1.5))
	u32(math.Float32bits(-2))
	u32(math.Float32bits(4))
	u64(3) // Test.Ptr
	u64(0)
	u64(0)
	u64(1)
	i32s(2) // Test.Col
	u64(1)  // Test.Val
	u32(math.Float32bits(3))
	i32s(4, 9, 12) // Needed
	i32s(0, 2, 3)  // NeedPtr
	i32s(0, 1, 1)  // Send
	i32s(0, 2, 3)  // SendPtr
	u32(crc32.Checksum(w, crc32.MakeTable(crc32.Castagnoli)))

	got, err := tinyBlock().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, w) {
		t.Fatalf("encoding\n% x\nwant\n% x", got, w)
	}
	b, err := UnmarshalBlock(w)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b, tinyBlock()) {
		t.Fatalf("decoded %+v, want %+v", b, tinyBlock())
	}
}

func TestBlockRoundTripEdges(t *testing.T) {
	t.Parallel()
	// The longest ID allowed.
	b := tinyBlock()
	b.IDs[1] = strings.Repeat("x", MaxIDLen)
	data, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := UnmarshalBlock(data); err != nil || !reflect.DeepEqual(got, b) {
		t.Fatalf("block with a %d-byte ID: %v", MaxIDLen, err)
	}
	// No rows at all.
	b = &Block{Side: Items, Rows: CSR{Ptr: []int64{0}}, Test: CSR{Ptr: []int64{0}}, NeedPtr: []int32{0, 0}, SendPtr: []int32{0, 0}}
	data, err = b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalBlock(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) || got.Len() != 0 || len(got.NeededFrom(0)) != 0 || len(got.SendTo(0)) != 0 {
		t.Fatalf("decoded %+v, want %+v", got, b)
	}
}

// testBlock is a valid block with test ratings, several rows and several
// blocks on the other side, each of which it needs rows from and sends
// rows to.
func testBlock(t *testing.T) *Block {
	t.Helper()
	ds := encodeDataset(t, 2, 400, 30, 20)
	l, err := NewLayout(ds, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	b := l.UserBlocks[1]
	if b.Test.NNZ() == 0 || b.Len() < 3 || len(b.NeedPtr) != 5 {
		t.Fatalf("test block has %d test ratings, %d rows, %d need pointers", b.Test.NNZ(), b.Len(), len(b.NeedPtr))
	}
	for q := range 4 {
		if len(b.NeededFrom(q)) < 2 || len(b.SendTo(q)) < 2 {
			t.Fatalf("test block needs %d rows from and sends %d rows to block %d", len(b.NeededFrom(q)), len(b.SendTo(q)), q)
		}
	}
	return b
}

// reseal recomputes the checksum at the end of data in place.
func reseal(data []byte) []byte {
	n := len(data) - 4
	binary.LittleEndian.PutUint32(data[n:], crc32.Checksum(data[:n], castagnoli))
	return data
}

// sectionOffset is the offset of the count of section k (0: IDs, ...,
// 10: SendPtr) in b's encoding.
func sectionOffset(b *Block, k int) int {
	lens := []int{
		0, // IDs, below
		8 * len(b.Rows.Ptr), 4 * len(b.Rows.Col), 4 * len(b.Rows.Val),
		8 * len(b.Test.Ptr), 4 * len(b.Test.Col), 4 * len(b.Test.Val),
		4 * len(b.Needed), 4 * len(b.NeedPtr), 4 * len(b.Send), 4 * len(b.SendPtr),
	}
	for _, id := range b.IDs {
		lens[0] += 4 + len(id)
	}
	off := blockHeaderSize
	for _, n := range lens[:k] {
		off += 8 + n
	}
	return off
}

func wantBlockError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if !errors.Is(err, ErrBlock) {
		t.Fatalf("error %q does not wrap ErrBlock", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

// TestUnmarshalBlockRejectsInconsistent breaks one rule at a time. Each
// case changes a valid block in one way and encodes it without the check
// MarshalBinary makes, which gives a valid encoding corrupted in that one
// way with a correct checksum: the structural check is what must fail.
// MarshalBinary must refuse the same block with the same error.
func TestUnmarshalBlockRejectsInconsistent(t *testing.T) {
	t.Parallel()
	base := testBlock(t)
	rows := int32(base.Len())
	// A row with at least two ratings, and the first one with a test
	// rating.
	multi, testRow := -1, -1
	for r := base.Len() - 1; r >= 0; r-- {
		if base.Rows.Ptr[r+1]-base.Rows.Ptr[r] >= 2 {
			multi = r
		}
		if base.Test.Ptr[r+1] > base.Test.Ptr[r] {
			testRow = r
		}
	}
	if multi < 0 || testRow < 0 {
		t.Fatal("test block lacks a row with two ratings or one with a test rating")
	}
	tests := []struct {
		name   string
		mutate func(b *Block)
		want   string
	}{
		{"side", func(b *Block) { b.Side = 2 }, "side 2 is neither"},
		{"index", func(b *Block) { b.Index = -1 }, "negative block index -1"},
		{"start", func(b *Block) { b.Start = -3 }, "negative start row -3"},
		{"start+rows", func(b *Block) { b.Start = math.MaxInt32 - rows + 1 }, "overflow int32"},
		{"no row pointer", func(b *Block) { b.Rows.Ptr = nil }, "Rows.Ptr is empty"},
		{"too few IDs", func(b *Block) { b.IDs = b.IDs[1:] }, "IDs for"},
		{"too many IDs", func(b *Block) { b.IDs = append(b.IDs, "extra") }, "IDs for"},
		{"test rows", func(b *Block) { b.Test.Ptr = b.Test.Ptr[:len(b.Test.Ptr)-1] }, "Test.Ptr has"},
		{"empty ID", func(b *Block) { b.IDs[1] = "" }, "ID of row 1 is empty"},
		{"long ID", func(b *Block) { b.IDs[0] = strings.Repeat("x", MaxIDLen+1) }, "ID of row 0 is 4097 bytes long"},
		{"rows values", func(b *Block) { b.Rows.Val = b.Rows.Val[1:] }, "Rows has"},
		{"rows ptr start", func(b *Block) { b.Rows.Ptr[0] = 1 }, "Rows.Ptr[0] = 1, want 0"},
		{"rows ptr order", func(b *Block) { b.Rows.Ptr[multi+1] = b.Rows.Ptr[multi] - 1 }, "Rows.Ptr decreases"},
		{"rows ptr end", func(b *Block) { b.Rows.Ptr[len(b.Rows.Ptr)-1]-- }, "Rows.Ptr ends at"},
		{"rows ptr past end", func(b *Block) { b.Rows.Ptr[len(b.Rows.Ptr)-1]++ }, "Rows.Ptr ends at"},
		{"rows col high", func(b *Block) { b.Rows.Col[b.Rows.Ptr[multi+1]-1] = int32(len(b.Needed)) }, "outside Needed's"},
		{"rows col negative", func(b *Block) { b.Rows.Col[b.Rows.Ptr[multi]] = -1 }, "Rows.Col["},
		{"rows col order", func(b *Block) {
			p := b.Rows.Ptr[multi]
			b.Rows.Col[p], b.Rows.Col[p+1] = b.Rows.Col[p+1], b.Rows.Col[p]
		}, "Rows row"},
		{"rows col repeat", func(b *Block) { p := b.Rows.Ptr[multi]; b.Rows.Col[p+1] = b.Rows.Col[p] }, "not strictly ascending"},
		{"test values", func(b *Block) { b.Test.Val = append(b.Test.Val, 1) }, "Test has"},
		{"test ptr start", func(b *Block) { b.Test.Ptr[0] = -1 }, "Test.Ptr[0] = -1"},
		{"test ptr order", func(b *Block) { b.Test.Ptr[testRow+1] = b.Test.Ptr[testRow] - 1 }, "Test.Ptr decreases"},
		{"test ptr end", func(b *Block) { b.Test.Ptr[len(b.Test.Ptr)-1]-- }, "Test.Ptr ends at"},
		{"test col high", func(b *Block) { b.Test.Col[b.Test.Ptr[testRow]] = math.MaxInt32 }, "Test.Col["},
		{"needed negative", func(b *Block) { b.Needed[0] = -1 }, "Needed[0] = -1 is negative"},
		{"needed order", func(b *Block) { b.Needed[0], b.Needed[1] = b.Needed[1], b.Needed[0] }, "Needed is not strictly ascending"},
		{"needed repeat", func(b *Block) { b.Needed[1] = b.Needed[0] }, "Needed is not strictly ascending"},
		{"need ptr short", func(b *Block) { b.NeedPtr = b.NeedPtr[:1] }, "NeedPtr has 1 entries"},
		{"need ptr start", func(b *Block) { b.NeedPtr[0] = 1 }, "NeedPtr[0] = 1, want 0"},
		{"need ptr order", func(b *Block) { b.NeedPtr[2] = b.NeedPtr[1] - 1 }, "NeedPtr decreases"},
		{"need ptr end", func(b *Block) { b.NeedPtr[len(b.NeedPtr)-1]-- }, "NeedPtr ends at"},
		{"send ptr count", func(b *Block) { b.SendPtr = append(b.SendPtr, b.SendPtr[len(b.SendPtr)-1]) }, "SendPtr has 6 entries but NeedPtr 5"},
		{"send ptr start", func(b *Block) { b.SendPtr[0] = 1 }, "SendPtr[0] = 1, want 0"},
		{"send ptr order", func(b *Block) { b.SendPtr[1] = b.SendPtr[2] + 1 }, "SendPtr decreases"},
		{"send ptr end", func(b *Block) { b.SendPtr[len(b.SendPtr)-1]++ }, "SendPtr ends at"},
		{"send high", func(b *Block) { b.Send[len(b.Send)-1] = rows }, "outside the block's rows"},
		{"send negative", func(b *Block) { b.Send[0] = -1 }, "Send[0] = -1 outside"},
		{"send order", func(b *Block) { b.Send[0], b.Send[1] = b.Send[1], b.Send[0] }, "Send to block 0 is not strictly ascending"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := cloneBlock(base)
			tc.mutate(b)
			data := appendBlock(nil, b)
			_, err := UnmarshalBlock(data)
			wantBlockError(t, err, tc.want)
			_, merr := b.MarshalBinary()
			if merr == nil || merr.Error() != err.Error() {
				t.Fatalf("MarshalBinary: %v, want %v", merr, err)
			}
		})
	}
}

// TestUnmarshalBlockRejectsBadFraming corrupts the parts of an encoding
// that have no Block field, re-computing the checksum.
func TestUnmarshalBlockRejectsBadFraming(t *testing.T) {
	t.Parallel()
	base := testBlock(t)
	valid := appendBlock(nil, base)
	le := binary.LittleEndian
	tests := []struct {
		name   string
		mutate func(data []byte) []byte
		want   string
	}{
		{"magic", func(d []byte) []byte { d[3] = 'X'; return d }, `bad magic "CFBX"`},
		{"version 0", func(d []byte) []byte { le.PutUint32(d[4:], 0); return d }, "unknown format version 0"},
		{"version 2", func(d []byte) []byte { le.PutUint32(d[4:], 2); return d }, "unknown format version 2"},
		{"ID count", func(d []byte) []byte { le.PutUint64(d[blockHeaderSize:], 1<<62); return d }, "IDs: count 4611686018427387904"},
		{"ID length", func(d []byte) []byte { le.PutUint32(d[blockHeaderSize+8:], math.MaxUint32); return d }, "IDs: ID 0 is 4294967295 bytes long, but only"},
		{"ID lengths", func(d []byte) []byte {
			// ID 0 takes all but 2 of the bytes after it: no room is left
			// for the length of ID 1.
			le.PutUint32(d[blockHeaderSize+8:], uint32(len(d)-4-(blockHeaderSize+8+4)-2))
			return d
		}, "IDs: truncated at the length of ID 1"},
		{"Rows.Ptr count", func(d []byte) []byte { le.PutUint64(d[sectionOffset(base, 1):], math.MaxUint64); return d }, "Rows.Ptr: count 18446744073709551615"},
		{"Rows.Col count", func(d []byte) []byte {
			off := sectionOffset(base, 2)
			le.PutUint64(d[off:], uint64(len(d)-off)/4) // just too many
			return d
		}, "Rows.Col: count"},
		{"Test.Val count", func(d []byte) []byte { le.PutUint64(d[sectionOffset(base, 6):], 1<<61); return d }, "Test.Val: count"},
		{"SendPtr count", func(d []byte) []byte {
			le.PutUint64(d[sectionOffset(base, 10):], uint64(len(base.SendPtr)+1))
			return d
		}, "SendPtr: count 6"},
		{"missing SendPtr", func(d []byte) []byte { return append(d[:sectionOffset(base, 10)], 0, 0, 0, 0) }, "SendPtr: truncated before its count"},
		{"trailing bytes", func(d []byte) []byte { return append(d[:len(d)-4], 1, 2, 3, 0, 0, 0, 0) }, "3 unexpected bytes after the last section"},
		{"short", func(d []byte) []byte { return d[:blockHeaderSize+8*blockSections+3] }, "shorter than the smallest block encoding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := reseal(tc.mutate(slices.Clone(valid)))
			_, err := UnmarshalBlock(data)
			wantBlockError(t, err, tc.want)
		})
	}
}

func TestUnmarshalBlockChecksum(t *testing.T) {
	t.Parallel()
	valid, err := testBlock(t).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for i := range valid {
		for _, bit := range []byte{0x01, 0x80} {
			data := slices.Clone(valid)
			data[i] ^= bit
			_, err := UnmarshalBlock(data)
			wantBlockError(t, err, "checksum mismatch")
		}
	}
}

func TestUnmarshalBlockTruncated(t *testing.T) {
	t.Parallel()
	valid, err := testBlock(t).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(valid) {
		if _, err := UnmarshalBlock(valid[:n]); !errors.Is(err, ErrBlock) {
			t.Fatalf("truncated to %d of %d bytes: %v", n, len(valid), err)
		}
		// With a valid checksum over what is left, decoding itself must
		// notice the truncation.
		if n >= 4 {
			data := reseal(slices.Clone(valid[:n]))
			if _, err := UnmarshalBlock(data); !errors.Is(err, ErrBlock) {
				t.Fatalf("truncated to %d of %d bytes and resealed: %v", n, len(valid), err)
			}
		}
	}
}

// TestFuzzSeedsFormat: the committed valid seeds of FuzzUnmarshalBlock
// were written by format version 1 and must keep decoding.
func TestFuzzSeedsFormat(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzUnmarshalBlock", "valid-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no committed valid seeds")
	}
	for _, path := range paths {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		quoted, ok := strings.CutPrefix(strings.TrimSpace(string(text)), "go test fuzz v1\n[]byte(")
		quoted, ok2 := strings.CutSuffix(quoted, ")")
		data, err := strconv.Unquote(quoted)
		if !ok || !ok2 || err != nil {
			t.Fatalf("%s: not a []byte corpus entry (%v)", path, err)
		}
		b, err := UnmarshalBlock([]byte(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if again, err := b.MarshalBinary(); err != nil || string(again) != data {
			t.Fatalf("%s: re-encoding differs (%v)", path, err)
		}
	}
}

// benchBlocks is the 1×1 layout of ~2M ratings (20% test), built once.
var benchBlocks = sync.OnceValues(func() (*Layout, error) {
	rng := rand.New(rand.NewPCG(3, 4))
	zipf := rand.NewZipf(rng, 1.1, 20, 59_999)
	b := NewBuilder()
	var ub, ib []byte
	for range 2_000_000 {
		ub = strconv.AppendInt(ub[:0], int64(rng.IntN(150_000)), 10)
		ib = strconv.AppendInt(ib[:0], int64(zipf.Uint64()), 10)
		if err := b.Add(ub, ib, float32(rng.IntN(10)+1)/2); err != nil {
			return nil, err
		}
	}
	ds, err := NewDataset(b, nil, SplitOptions{TestFraction: 0.2, Seed: 1})
	if err != nil {
		return nil, err
	}
	return NewLayout(ds, 1, 1)
})

func benchBlock(b *testing.B, side Side) *Block {
	l, err := benchBlocks()
	if err != nil {
		b.Fatal(err)
	}
	return l.Blocks(side)[0]
}

func BenchmarkBlockEncode(b *testing.B) {
	for _, side := range []Side{Users, Items} {
		b.Run(side.String(), func(b *testing.B) {
			blk := benchBlock(b, side)
			b.SetBytes(int64(blk.encodedSize()))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := blk.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBlockDecode(b *testing.B) {
	for _, side := range []Side{Users, Items} {
		b.Run(side.String(), func(b *testing.B) {
			data, err := benchBlock(b, side).MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := UnmarshalBlock(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPlanLayoutCutsOneBlockAtATime checks the partitioner's path: blocks
// planned, then each cut, encoded and dropped in turn, encode to the bytes
// of NewLayout's blocks.
func TestPlanLayoutCutsOneBlockAtATime(t *testing.T) {
	ds := encodeDataset(t, 3, 5000, 300, 120)
	whole, err := NewLayout(ds, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanLayout(ds, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, side := range []Side{Users, Items} {
		for i, blk := range plan.Blocks(side) {
			if blk.Rows.Col != nil || blk.Test.Col != nil {
				t.Fatalf("%s block %d: planned with ratings", side, i)
			}
			want, err := whole.Blocks(side)[i].MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			plan.CutRows(ds, blk)
			got, err := blk.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s block %d: cut block encodes differently from NewLayout's", side, i)
			}
			blk.DropRows()
			if blk.Rows.Col != nil || blk.Rows.Val != nil || blk.Test.Col != nil {
				t.Fatalf("%s block %d: ratings kept after DropRows", side, i)
			}
		}
	}
}
