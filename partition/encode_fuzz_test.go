package partition

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// fuzzBlockSeeds are small valid encodings: the blocks of a 2×3 layout of
// a few dozen ratings, a block with no rows and tinyBlock.
func fuzzBlockSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	l, err := NewLayout(encodeDataset(tb, 5, 40, 8, 6), 2, 3)
	if err != nil {
		tb.Fatal(err)
	}
	blocks := append(slices.Clone(l.UserBlocks), l.ItemBlocks...)
	blocks = append(blocks, tinyBlock(),
		&Block{Side: Items, Index: 3, Start: 7, Rows: CSR{Ptr: []int64{0}}, Test: CSR{Ptr: []int64{0}}, NeedPtr: []int32{0, 0}, SendPtr: []int32{0, 0}})
	var seeds [][]byte
	for _, b := range blocks {
		data, err := b.MarshalBinary()
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	return seeds
}

// fuzzBlockCorruptions are encodings of tinyBlock broken in one way each,
// with a correct checksum.
func fuzzBlockCorruptions() [][]byte {
	var out [][]byte
	for _, mutate := range []func(b *Block){
		func(b *Block) { b.Rows.Col[1] = 3 },
		func(b *Block) { b.Rows.Ptr[1] = 4 },
		func(b *Block) { b.Test.Ptr = b.Test.Ptr[:2] },
		func(b *Block) { b.NeedPtr[1] = 4 },
		func(b *Block) { b.Send[2] = 2 },
		func(b *Block) { b.SendPtr = b.SendPtr[:2] },
		func(b *Block) { b.IDs[0] = "" },
	} {
		b := tinyBlock()
		mutate(b)
		out = append(out, appendBlock(nil, b))
	}
	valid := appendBlock(nil, tinyBlock())
	out = append(out, valid[:len(valid)/2], reseal(slices.Clone(valid[:len(valid)-9])))
	return out
}

// FuzzUnmarshalBlock decodes arbitrary bytes, and the same bytes with the
// checksum recomputed so that mutations reach the structural checks.
// Decoding must never panic; what decodes must re-encode to the same bytes
// and be usable.
func FuzzUnmarshalBlock(f *testing.F) {
	for _, data := range fuzzBlockSeeds(f) {
		f.Add(data)
	}
	for _, data := range fuzzBlockCorruptions() {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
		if len(data) >= 4 {
			if sealed := reseal(slices.Clone(data)); !bytes.Equal(sealed, data) {
				checkDecode(t, sealed)
			}
		}
	})
}

func checkDecode(t *testing.T, data []byte) {
	b, err := UnmarshalBlock(data)
	if err != nil {
		if !errors.Is(err, ErrBlock) {
			t.Fatalf("error %q does not wrap ErrBlock", err)
		}
		return
	}
	again, err := b.MarshalBinary()
	if err != nil {
		t.Fatalf("decoded block does not re-encode: %v", err)
	}
	if !bytes.Equal(again, data) {
		t.Fatalf("re-encoding differs:\n% x\nfrom\n% x", again, data)
	}
	// Everything the block's accessors index must be in range.
	_ = b.End()
	for r := range b.Len() {
		_ = b.IDs[r]
		for _, c := range b.Rows.Col[b.Rows.Ptr[r]:b.Rows.Ptr[r+1]] {
			_ = b.Needed[c]
		}
		for _, c := range b.Test.Col[b.Test.Ptr[r]:b.Test.Ptr[r+1]] {
			_ = b.Needed[c]
		}
		_ = b.Rows.Val[b.Rows.Ptr[r]:b.Rows.Ptr[r+1]]
		_ = b.Test.Val[b.Test.Ptr[r]:b.Test.Ptr[r+1]]
	}
	for q := 0; q+1 < len(b.NeedPtr); q++ {
		_ = b.NeededFrom(q)
		for _, r := range b.SendTo(q) {
			_ = b.IDs[r]
		}
	}
}
