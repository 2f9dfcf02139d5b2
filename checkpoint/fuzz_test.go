package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The fuzz targets decode every input twice: as given (which the CRC
// almost always refuses) and with its CRC recomputed, so that mutations
// reach the structure checks. A decoded file must re-encode to exactly its
// own bytes: the format has one spelling of each value.

func FuzzDecodeBlock(f *testing.F) {
	f.Add(smallBlock(f))
	for _, b := range []*Block{
		{Side: SideUsers, Rank: 1, IDs: []string{}, Counts: []int32{}, Factors: []float32{}},
		{Side: SideUsers, Index: 3, Rank: 1, IDs: []string{"u"}, Counts: []int32{-1}, Factors: []float32{0.5}},
		{Side: SideItems, Index: 7, Rank: 3, IDs: []string{"a", "b\n", "ccc"}, Counts: []int32{1, 2, 3}, Factors: []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}},
	} {
		data, err := EncodeBlock(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, reseal(data)} {
			b, err := DecodeBlock("f.cfcf", in)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "f.cfcf: ") {
					t.Fatalf("error %q does not wrap ErrCorrupt naming the file", err)
				}
				continue
			}
			if len(b.Counts) != len(b.IDs) || len(b.Factors) != len(b.IDs)*b.Rank {
				t.Fatalf("inconsistent block: %d IDs, %d counts, %d factors, rank %d", len(b.IDs), len(b.Counts), len(b.Factors), b.Rank)
			}
			again, err := EncodeBlock(b)
			if err != nil {
				t.Fatalf("a decoded block does not encode: %v", err)
			}
			if !bytes.Equal(again, in) {
				t.Fatalf("re-encoding gives other bytes:\n%x\n%x", in, again)
			}
		}
	})
}

func FuzzDecodeSeen(f *testing.F) {
	f.Add(smallSeen(f), 400)
	for _, s := range []*Seen{
		{Ptr: []int64{0}},
		{Index: 2, Ptr: []int64{0, 0, 0}},
		{Index: 1, Ptr: []int64{0, 3}, Items: []int32{0, 127, 128}},
		{Index: 9, Ptr: []int64{0, 1, 4}, Items: []int32{70000, 0, 1, 99999}},
		{Index: 3, Ptr: []int64{0, 2}, Items: []int32{5, 6}, Values: []float32{4.5, 1}},
	} {
		data, err := EncodeSeen(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, 100000)
	}
	f.Fuzz(func(t *testing.T, data []byte, nItems int) {
		for _, in := range [][]byte{data, reseal(data)} {
			s, err := DecodeSeen("f.cfsn", in, nItems)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "f.cfsn: ") {
					t.Fatalf("error %q does not wrap ErrCorrupt naming the file", err)
				}
				continue
			}
			rows := len(s.Ptr) - 1
			if rows < 0 || s.Ptr[0] != 0 || s.Ptr[rows] != int64(len(s.Items)) {
				t.Fatalf("inconsistent pointers %v for %d items", s.Ptr, len(s.Items))
			}
			for _, it := range s.Items {
				if it < 0 || int(it) >= nItems {
					t.Fatalf("item %d outside 0..%d", it, nItems-1)
				}
			}
			again, err := EncodeSeen(s)
			if err != nil {
				t.Fatalf("a decoded file does not encode: %v", err)
			}
			if !bytes.Equal(again, in) {
				t.Fatalf("re-encoding gives other bytes:\n%x\n%x", in, again)
			}
		}
	})
}

func FuzzManifest(f *testing.F) {
	good, err := json.Marshal(testManifest())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format":"cofactor-snapshot","version":2,"id":"a","model":"m","rank":1,"user_blocks":1,"item_blocks":1,` +
		`"files":[{"name":"users.0000.cfcf","kind":"factors","side":"users","block":0},{"name":"items.0000.cfcf","kind":"factors","side":"items","block":0}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeManifest(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), ManifestName+": ") {
				t.Fatalf("error %q does not wrap ErrCorrupt naming the manifest", err)
			}
			return
		}
		// What a reader relies on: every entry is a factor file of a
		// block in range, or the seen file of a user block.
		blocks := map[string]int{SideUsers: m.UserBlocks, SideItems: m.ItemBlocks}
		for _, fi := range m.Files {
			switch {
			case fi.Kind == "factors" && fi.Name == FactorFileName(fi.Side, fi.Block) && fi.Block >= 0 && fi.Block < blocks[fi.Side]:
			case fi.Kind == "seen" && fi.Side == SideUsers && fi.Name == SeenFileName(fi.Block) && fi.Block >= 0 && fi.Block < m.UserBlocks:
			default:
				t.Fatalf("accepted entry %+v of a %d×%d snapshot", fi, m.UserBlocks, m.ItemBlocks)
			}
		}
		// What was accepted survives a write and a read.
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("an accepted manifest does not encode: %v", err)
		}
		m2, err := decodeManifest(b)
		if err != nil {
			t.Fatalf("an accepted manifest, written again, is refused: %v", err)
		}
		b2, _ := json.Marshal(m2)
		if !bytes.Equal(b, b2) {
			t.Fatalf("manifest changes when written and read again:\n%s\n%s", b, b2)
		}
	})
}
