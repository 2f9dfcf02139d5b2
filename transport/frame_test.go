package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func rowsHeader(rows, cols uint32) Header {
	return Header{Type: FrameRows, Side: 1, Job: "job-42", Epoch: 3, Iteration: 7, Block: 2, Peer: 5, Chunk: 1, Chunks: 4, Rows: rows, Cols: cols}
}

func seqFloat32s(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i)*0.25 - 3
	}
	return v
}

func seqFloat64s(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i)*1e-3 + 1
	}
	return v
}

// validFrames returns one valid frame of each type.
func validFrames() map[string][]byte {
	g := seqFloat64s(9)
	return map[string][]byte{
		"rowsRequest": AppendFrame(nil, Header{Type: FrameRowsRequest, Job: "j", Iteration: 1, Block: 1, Peer: 2, Chunk: 3, Cols: 8}, nil),
		"rows":        AppendFrame(nil, rowsHeader(3, 2), AppendFloat32s(nil, seqFloat32s(6))),
		"emptyRows":   AppendFrame(nil, Header{Type: FrameRows, Job: "j", Chunks: 1, Cols: 16}, nil),
		"gramRequest": AppendFrame(nil, Header{Type: FrameGramRequest, Side: 1, Job: strings.Repeat("J", MaxJobLen), Iteration: 9}, nil),
		"gram":        AppendFrame(nil, Header{Type: FrameGram, Job: "j", Chunks: 1, Rows: 3, Cols: 3}, AppendFloat64s(nil, g)),
		"error":       ErrorFrame(Header{Type: FrameRowsRequest, Job: "j", Block: 4}, "block 4 not owned here"),
		"errorNoJob":  ErrorFrame(Header{}, "undecodable request"),
	}
}

func TestFrameRoundTrip(t *testing.T) {
	rows := seqFloat32s(12)
	gram := seqFloat64s(16)
	tests := []struct {
		name    string
		h       Header
		payload []byte
	}{
		{"rowsRequest", Header{Type: FrameRowsRequest, Side: 0, Job: "j1", Epoch: 1, Iteration: 2, Block: 3, Peer: 4, Chunk: 5, Chunks: 0, Cols: 4}, nil},
		{"rows", rowsHeader(3, 4), AppendFloat32s(nil, rows)},
		{"rows max fields", Header{Type: FrameRows, Side: 1, Job: strings.Repeat("z", MaxJobLen), Epoch: math.MaxUint32, Iteration: math.MaxUint32, Block: math.MaxUint32, Peer: math.MaxUint32, Chunk: math.MaxUint32 - 1, Chunks: math.MaxUint32, Rows: 1, Cols: 12}, AppendFloat32s(nil, rows)},
		{"gramRequest", Header{Type: FrameGramRequest, Side: 1, Job: "j", Iteration: 8, Block: 1}, nil},
		{"gram", Header{Type: FrameGram, Side: 1, Job: "j", Iteration: 8, Block: 1, Chunks: 1, Rows: 4, Cols: 4}, AppendFloat64s(nil, gram)},
		{"error", Header{Type: FrameError, Job: "j", Block: 1}, []byte("no such block: 1 — ü")},
		{"error empty job", Header{Type: FrameError}, []byte("bad request")},
		{"pick", Header{Type: FramePickRequest, Job: "j", Block: 2, Peer: 1, Chunks: 1, Rows: 2, Cols: 4}, []byte{1, 0, 0, 0, 7, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			enc := AppendFrame(bytes.Clone(prefix), tt.h, tt.payload)
			if !bytes.HasPrefix(enc, prefix) {
				t.Fatal("AppendFrame overwrote dst")
			}
			enc = enc[len(prefix):]
			if want := 44 + len(tt.h.Job) + len(tt.payload) + 4; len(enc) != want {
				t.Fatalf("frame is %d bytes, want %d", len(enc), want)
			}
			h, p, err := DecodeFrame(enc)
			if err != nil {
				t.Fatal(err)
			}
			if h != tt.h {
				t.Errorf("header = %+v, want %+v", h, tt.h)
			}
			if !bytes.Equal(p, tt.payload) {
				t.Errorf("payload differs")
			}
			if len(p) > 0 && &p[0] != &enc[44+len(h.Job)] {
				t.Errorf("payload does not alias the frame")
			}
		})
	}
}

// reseal recomputes the CRC of a frame after a test changed its bytes.
func reseal(b []byte) []byte {
	n := len(b) - 4
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], castagnoli))
	return b
}

// rawFrame encodes a frame without Header.Check, so tests can build
// frames AppendFrame refuses.
func rawFrame(h Header, payload []byte) []byte {
	b := []byte(frameMagic)
	b = append(b, frameVersion, byte(h.Type), h.Side, byte(len(h.Job)))
	for _, v := range []uint32{h.Epoch, h.Iteration, h.Block, h.Peer, h.Chunk, h.Chunks, h.Rows, h.Cols, uint32(len(payload))} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	b = append(b, h.Job...)
	b = append(b, payload...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func TestDecodeFrameErrors(t *testing.T) {
	good := AppendFrame(nil, rowsHeader(3, 2), AppendFloat32s(nil, seqFloat32s(6)))
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	put32 := func(off int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return reseal(b) }
	}
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"nil", nil, "0 bytes, shorter than the smallest frame (48)"},
		{"short", good[:47], "47 bytes, shorter"},
		{"magic", mut(func(b []byte) []byte { b[0] = 'X'; return b }), "bad magic"},
		{"version", mut(func(b []byte) []byte { b[4] = 2; return b }), "format version 2"},
		{"job length over limit", mut(func(b []byte) []byte { b[7] = 200; return b }), "job name length 200 exceeds 128"},
		{"payload length over limit", mut(put32(40, MaxFramePayload+1)), "payload length 67108865 exceeds"},
		{"payload length huge", mut(put32(40, math.MaxUint32)), "exceeds"},
		{"truncated", good[:len(good)-1], "header says"},
		{"trailing byte", append(bytes.Clone(good), 0), "header says"},
		{"payload length disagrees", mut(put32(40, 20)), "header says"},
		{"crc", mut(func(b []byte) []byte { b[50] ^= 1; return b }), "CRC mismatch"},
		{"crc field", mut(func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }), "CRC mismatch"},
		{"type 0", mut(func(b []byte) []byte { b[5] = 0; return reseal(b) }), "unknown frame type 0"},
		{"type 7", mut(func(b []byte) []byte { b[5] = 7; return reseal(b) }), "unknown frame type 7"},
		{"pick without rows", rawFrame(Header{Type: FramePickRequest, Job: "j"}, nil), "no rows asked"},
		{"pick short", rawFrame(Header{Type: FramePickRequest, Job: "j", Rows: 2}, []byte{1, 0, 0, 0}), "2 positions need 8"},
		{"side", mut(func(b []byte) []byte { b[6] = 2; return reseal(b) }), "side 2"},
		{"cols over limit", rawFrame(Header{Type: FrameRowsRequest, Job: "j", Cols: MaxCols + 1}, nil), "cols 65537 exceeds 65536"},
		{"rows with wrong payload", mut(put32(32, 4)), "payload is 24 bytes, 4×2 float32 needs 32"},
		{"rows cols overflow guard", rawFrame(Header{Type: FrameRows, Job: "j", Chunks: 1, Rows: math.MaxUint32, Cols: MaxCols}, nil), "needs"},
		{"zero chunks on rows", mut(put32(28, 0)), "chunks is 0"},
		{"chunk out of range", mut(put32(24, 4)), "chunk 4 of 4 out of range"},
		{"empty job", rawFrame(Header{Type: FrameRowsRequest}, nil), "job name is 0 bytes"},
		{"request with payload", rawFrame(Header{Type: FrameGramRequest, Job: "j"}, []byte{1}), "1-byte payload, want none"},
		{"gram not square", rawFrame(Header{Type: FrameGram, Job: "j", Chunks: 1, Rows: 2, Cols: 1}, make([]byte, 16)), "not square"},
		{"gram payload", rawFrame(Header{Type: FrameGram, Job: "j", Chunks: 1, Rows: 2, Cols: 2}, make([]byte, 16)), "2×2 float64 needs 32"},
		{"gram no chunks", rawFrame(Header{Type: FrameGram, Job: "j", Rows: 1, Cols: 1}, make([]byte, 8)), "chunks is 0"},
		{"error with rows", rawFrame(Header{Type: FrameError, Job: "j", Rows: 1}, nil), "rows 1, cols 0"},
		{"error too long", rawFrame(Header{Type: FrameError, Job: "j"}, bytes.Repeat([]byte("e"), MaxErrorText+1)), "text is 4097 bytes"},
		{"error not utf8", rawFrame(Header{Type: FrameError, Job: "j"}, []byte{0xff, 0xfe}), "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, p, err := DecodeFrame(tt.b)
			if err == nil {
				t.Fatalf("decoded %+v (%d payload bytes), want error containing %q", h, len(p), tt.want)
			}
			if !errors.Is(err, ErrFrame) {
				t.Errorf("error %v does not wrap ErrFrame", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeFrameEverySingleBitFlipFails(t *testing.T) {
	for name, frame := range validFrames() {
		for i := range 8 * len(frame) {
			b := bytes.Clone(frame)
			b[i/8] ^= 1 << (i % 8)
			if _, _, err := DecodeFrame(b); err == nil {
				t.Fatalf("%s: flipping bit %d still decodes", name, i)
			}
		}
	}
}

func TestAppendFramePanicsOnInvalidHeader(t *testing.T) {
	tests := []struct {
		name    string
		h       Header
		payload []byte
	}{
		{"job too long", Header{Type: FrameRowsRequest, Job: strings.Repeat("j", MaxJobLen+1)}, nil},
		{"no job", Header{Type: FrameRowsRequest}, nil},
		{"payload mismatch", Header{Type: FrameRows, Job: "j", Chunks: 1, Rows: 2, Cols: 2}, make([]byte, 12)},
		{"unknown type", Header{Type: 9, Job: "j"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				err, ok := r.(error)
				if !ok || !errors.Is(err, ErrFrame) {
					t.Errorf("recovered %v, want an ErrFrame error", r)
				}
			}()
			AppendFrame(nil, tt.h, tt.payload)
		})
	}
}

func TestErrorFrame(t *testing.T) {
	req := Header{Type: FrameRowsRequest, Side: 1, Job: "j", Epoch: 2, Iteration: 3, Block: 4, Peer: 5, Chunk: 6, Chunks: 7, Cols: 8}
	h, p, err := DecodeFrame(ErrorFrame(req, "boom"))
	if err != nil {
		t.Fatal(err)
	}
	want := req
	want.Type, want.Cols = FrameError, 0
	if h != want {
		t.Errorf("header = %+v, want %+v", h, want)
	}
	ferr := FrameErr(h, p)
	var re *RemoteError
	if !errors.As(ferr, &re) || re.Msg != "boom" {
		t.Fatalf("FrameErr = %v, want RemoteError boom", ferr)
	}
	if ferr.Error() != "transport: remote error: boom" {
		t.Errorf("Error() = %q", ferr.Error())
	}
	if FrameErr(rowsHeader(0, 1), nil) != nil {
		t.Error("FrameErr of a Rows frame is not nil")
	}

	// Sanitizing: a header and text that would not encode as they are.
	bad := Header{Type: FrameRows, Side: 7, Job: strings.Repeat("j", 300), Chunk: 9, Chunks: 2, Rows: 5, Cols: 5}
	long := strings.Repeat("é", MaxErrorText) + "\xff"
	h, p, err = DecodeFrame(ErrorFrame(bad, long))
	if err != nil {
		t.Fatal(err)
	}
	if h.Job != "" || h.Side != 0 || h.Chunks != 0 || h.Rows != 0 || h.Cols != 0 {
		t.Errorf("header not sanitized: %+v", h)
	}
	if len(p) > MaxErrorText || len(p) < MaxErrorText-3 || !utf8.Valid(p) {
		t.Errorf("text is %d bytes, valid UTF-8 %v", len(p), utf8.Valid(p))
	}
	_, p, err = DecodeFrame(ErrorFrame(Header{}, "a\xffb"))
	if err != nil || string(p) != "a\uFFFDb" {
		t.Errorf("invalid UTF-8: %q, %v", p, err)
	}
}

func TestFloat32sRoundTrip(t *testing.T) {
	v := []float32{0, float32(math.Copysign(0, -1)), 1, -1.5, math.MaxFloat32, math.SmallestNonzeroFloat32, float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(0x7fc00001)}
	b := AppendFloat32s([]byte{9}, v)
	if len(b) != 1+4*len(v) || b[0] != 9 {
		t.Fatalf("bad append: %d bytes", len(b))
	}
	if got := binary.LittleEndian.Uint32(b[1+4*2:]); got != math.Float32bits(1) {
		t.Errorf("not little-endian: %08x", got)
	}
	got := make([]float32, len(v))
	DecodeFloat32s(got, b[1:])
	for i := range v {
		if math.Float32bits(got[i]) != math.Float32bits(v[i]) {
			t.Errorf("[%d] = %08x, want %08x", i, math.Float32bits(got[i]), math.Float32bits(v[i]))
		}
	}
	if len(AppendFloat32s(nil, nil)) != 0 {
		t.Error("empty append not empty")
	}
	mustPanic(t, func() { DecodeFloat32s(make([]float32, 2), make([]byte, 7)) })
}

func TestFloat64sRoundTrip(t *testing.T) {
	v := []float64{0, math.Copysign(0, -1), 1, -1.5, -2.25, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Float64frombits(0x7ff8000000000001)}
	b := AppendFloat64s([]byte{9}, v)
	if len(b) != 1+8*len(v) {
		t.Fatalf("bad append: %d bytes", len(b))
	}
	if got := binary.LittleEndian.Uint64(b[1+8*2:]); got != math.Float64bits(1) {
		t.Errorf("not little-endian: %016x", got)
	}
	got := make([]float64, len(v))
	DecodeFloat64s(got, b[1:])
	for i := range v {
		if math.Float64bits(got[i]) != math.Float64bits(v[i]) {
			t.Errorf("[%d] = %016x, want %016x", i, math.Float64bits(got[i]), math.Float64bits(v[i]))
		}
	}
	mustPanic(t, func() { DecodeFloat64s(make([]float64, 1), make([]byte, 9)) })
}

func mustPanic(t *testing.T, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Error("did not panic")
		}
	}()
	f()
}

func TestRowsPerChunk(t *testing.T) {
	tests := []struct {
		maxPayload, k, want int
	}{
		{1 << 20, 64, (1<<20 - FrameOverhead) / 256},
		{1 << 20, 10, (1<<20 - FrameOverhead) / 40},
		{FrameOverhead + 4, 1, 1},
		{FrameOverhead + 3, 1, 0},
		{FrameOverhead + 400, 100, 1},
		{FrameOverhead + 399, 100, 0},
		{1 << 30, 1, MaxFramePayload / 4},
		{1 << 20, 0, 0},
		{1 << 20, -1, 0},
		{1 << 30, MaxCols + 1, 0},
		{0, 8, 0},
		{-5, 8, 0},
	}
	for _, tt := range tests {
		if got := RowsPerChunk(tt.maxPayload, tt.k); got != tt.want {
			t.Errorf("RowsPerChunk(%d, %d) = %d, want %d", tt.maxPayload, tt.k, got, tt.want)
		}
	}
	// The promise: a full chunk with the longest job name fits, one more
	// row does not.
	for _, maxPayload := range []int{1 << 16, 1 << 20, 8 << 20, 64 << 20} {
		for _, k := range []int{1, 3, 10, 64, 100, 256, 1000} {
			n := RowsPerChunk(maxPayload, k)
			size := func(rows int) int { return FrameOverhead + 4*rows*k }
			if n < 1 || size(n) > maxPayload || (size(n+1) <= maxPayload && 4*(n+1)*k <= MaxFramePayload) {
				t.Errorf("RowsPerChunk(%d, %d) = %d: frame %d bytes", maxPayload, k, n, size(n))
			}
		}
	}
}

func TestGramFits(t *testing.T) {
	tests := []struct {
		maxPayload, k int
		want          bool
	}{
		{1 << 20, 362, true},
		{1 << 20, 363, false},
		{1 << 20, 1, true},
		{1 << 20, 0, false},
		{MaxFramePayload + FrameOverhead, 2896, true},
		{1 << 40, 2897, false},
		{-1, 1, false},
	}
	for _, tt := range tests {
		if got := GramFits(tt.maxPayload, tt.k); got != tt.want {
			t.Errorf("GramFits(%d, %d) = %v, want %v", tt.maxPayload, tt.k, got, tt.want)
		}
	}
}

func TestChunkCountAndBounds(t *testing.T) {
	tests := []struct {
		rows, per, want int
	}{
		{0, 10, 1}, {1, 10, 1}, {10, 10, 1}, {11, 10, 2}, {20, 10, 2}, {21, 10, 3}, {5, 1, 5},
	}
	for _, tt := range tests {
		n := ChunkCount(tt.rows, tt.per)
		if n != tt.want {
			t.Errorf("ChunkCount(%d, %d) = %d, want %d", tt.rows, tt.per, n, tt.want)
		}
		next := 0
		for c := range n {
			lo, hi, ok := ChunkBounds(tt.rows, tt.per, c)
			if !ok || lo != next || hi < lo || hi-lo > tt.per || (c < n-1 && hi-lo != tt.per) {
				t.Errorf("ChunkBounds(%d, %d, %d) = %d, %d, %v", tt.rows, tt.per, c, lo, hi, ok)
			}
			next = hi
		}
		if next != tt.rows {
			t.Errorf("chunks of (%d, %d) cover %d rows", tt.rows, tt.per, next)
		}
		for _, c := range []int{-1, n, n + 100} {
			if _, _, ok := ChunkBounds(tt.rows, tt.per, c); ok {
				t.Errorf("ChunkBounds(%d, %d, %d) ok", tt.rows, tt.per, c)
			}
		}
	}
	if _, _, ok := ChunkBounds(10, 0, 0); ok {
		t.Error("ChunkBounds with perChunk 0 ok")
	}
	mustPanic(t, func() { ChunkCount(10, 0) })
	mustPanic(t, func() { ChunkCount(-1, 5) })
}

func TestFrameTypeString(t *testing.T) {
	if FrameGram.String() != "Gram" || FrameType(77).String() != "FrameType(77)" {
		t.Error("FrameType.String")
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, b := range validFrames() {
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(b[:frameFixedLen])
		flipped := bytes.Clone(b)
		flipped[len(b)/2] ^= 0x10
		f.Add(flipped)
		f.Add(reseal(bytes.Clone(flipped)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, payload, err := DecodeFrame(b)
		if err != nil {
			if !errors.Is(err, ErrFrame) {
				t.Fatalf("error %v does not wrap ErrFrame", err)
			}
			return
		}
		if re := AppendFrame(nil, h, payload); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", re, b)
		}
	})
}

func BenchmarkAppendFloat32s(b *testing.B) {
	v := seqFloat32s(1 << 18) // 1 MiB
	dst := make([]byte, 0, 4*len(v))
	b.SetBytes(int64(4 * len(v)))
	for b.Loop() {
		dst = AppendFloat32s(dst[:0], v)
	}
}

func BenchmarkDecodeFloat32s(b *testing.B) {
	v := seqFloat32s(1 << 18)
	enc := AppendFloat32s(nil, v)
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		DecodeFloat32s(v, enc)
	}
}

func BenchmarkAppendFloat64s(b *testing.B) {
	v := seqFloat64s(1 << 17)
	dst := make([]byte, 0, 8*len(v))
	b.SetBytes(int64(8 * len(v)))
	for b.Loop() {
		dst = AppendFloat64s(dst[:0], v)
	}
}

func BenchmarkDecodeFloat64s(b *testing.B) {
	v := seqFloat64s(1 << 17)
	enc := AppendFloat64s(nil, v)
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		DecodeFloat64s(v, enc)
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	k := 64
	n := RowsPerChunk(1<<20, k)
	frame := AppendFrame(nil, rowsHeader(uint32(n), uint32(k)), AppendFloat32s(nil, seqFloat32s(n*k)))
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, _, err := DecodeFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzFrameRoundTrip builds frames from fuzzed fields, so that the checks
// behind the CRC are explored too: whatever Header.Check accepts encodes
// and decodes back to itself, and a resealed one-byte change never panics
// the decoder and, if accepted, re-encodes identically.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add(uint8(FrameRows), uint8(1), "job", uint32(3), uint32(1), uint32(4), uint32(2), uint32(3), uint32(2), AppendFloat32s(nil, seqFloat32s(6)), uint16(50))
	f.Add(uint8(FrameGram), uint8(0), "j", uint32(0), uint32(1), uint32(0), uint32(1), uint32(2), uint32(2), AppendFloat64s(nil, seqFloat64s(4)), uint16(7))
	f.Add(uint8(FrameError), uint8(0), "", uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), []byte("oops"), uint16(45))
	f.Add(uint8(FrameRowsRequest), uint8(1), "j", uint32(9), uint32(9), uint32(0), uint32(0), uint32(0), uint32(64), []byte(nil), uint16(36))
	f.Fuzz(func(t *testing.T, typ, side uint8, job string, epoch, block, chunk, chunks, rows, cols uint32, payload []byte, pos uint16) {
		h := Header{Type: FrameType(typ), Side: side, Job: job, Epoch: epoch, Iteration: epoch ^ block, Block: block, Peer: block + 1, Chunk: chunk, Chunks: chunks, Rows: rows, Cols: cols}
		if h.Check(payload) != nil {
			return
		}
		enc := AppendFrame(nil, h, payload)
		got, p, err := DecodeFrame(enc)
		if err != nil || got != h || !bytes.Equal(p, payload) {
			t.Fatalf("round trip of %+v: %+v, %v", h, got, err)
		}
		i := int(pos) % (len(enc) - 4)
		enc[i] ^= byte(pos>>8) | 1
		reseal(enc)
		got, p, err = DecodeFrame(enc)
		if err != nil {
			if !errors.Is(err, ErrFrame) {
				t.Fatalf("error %v does not wrap ErrFrame", err)
			}
			return
		}
		if re := AppendFrame(nil, got, p); !bytes.Equal(re, enc) {
			t.Fatalf("re-encoding differs after changing byte %d", i)
		}
	})
}

// TestAppendFrameWith: a payload built in place gives the frame
// AppendFrame gives, after what dst held, and a fill that appends another
// size than announced, or a payload the header does not fit, panics.
func TestAppendFrameWith(t *testing.T) {
	h := rowsHeader(3, 4)
	payload := AppendFloat32s(nil, seqFloat32s(12))
	prefix := []byte("kept")
	want := AppendFrame(bytes.Clone(prefix), h, payload)
	got := AppendFrameWith(bytes.Clone(prefix), h, len(payload), func(dst []byte) []byte {
		return AppendFloat32s(dst, seqFloat32s(12))
	})
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendFrameWith differs from AppendFrame:\n%x\n%x", got, want)
	}
	if dh, p, err := DecodeFrame(got[len(prefix):]); err != nil || dh.Rows != 3 || !bytes.Equal(p, payload) {
		t.Fatalf("decoded %+v, %d bytes, %v", dh, len(p), err)
	}
	for name, tc := range map[string]struct {
		size int
		rows int
	}{
		"fill appends less than announced": {len(payload), 11},
		"payload does not fit the header":  {11 * 4, 11},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("did not panic")
				}
			}()
			AppendFrameWith(nil, h, tc.size, func(dst []byte) []byte { return AppendFloat32s(dst, seqFloat32s(tc.rows)) })
		})
	}
}
