package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// FrameType says what a frame carries.
type FrameType uint8

const (
	// FrameRowsRequest asks for chunk Chunk of the factor rows that block
	// Block (side Side, version Iteration) sends to block Peer. No payload.
	FrameRowsRequest FrameType = 1
	// FrameRows answers a FrameRowsRequest: Rows×Cols float32,
	// little-endian, row-major.
	FrameRows FrameType = 2
	// FrameGramRequest asks for block Block's partial Gram matrix YᵀY at
	// version Iteration. No payload.
	FrameGramRequest FrameType = 3
	// FrameGram answers a FrameGramRequest: Cols×Cols float64,
	// little-endian, row-major, with Rows == Cols.
	FrameGram FrameType = 4
	// FrameError answers any request that could not be served: UTF-8 text
	// of at most MaxErrorText bytes, Rows = Cols = 0.
	FrameError FrameType = 5
	// FramePickRequest asks for some of the factor rows that block Block
	// (side Side, version Iteration) sends to block Peer: the payload
	// holds Rows positions in that list, uint32 little-endian, and the
	// FrameRows answer carries those rows in that order. Chunk 0 of 1.
	FramePickRequest FrameType = 6
)

// String returns the type's name.
func (t FrameType) String() string {
	switch t {
	case FrameRowsRequest:
		return "RowsRequest"
	case FrameRows:
		return "Rows"
	case FrameGramRequest:
		return "GramRequest"
	case FrameGram:
		return "Gram"
	case FrameError:
		return "Error"
	case FramePickRequest:
		return "PickRequest"
	}
	return fmt.Sprintf("FrameType(%d)", uint8(t))
}

// Limits enforced by [DecodeFrame] (and [Header.Check]) before any count
// read from the wire is used.
const (
	// MaxJobLen is the longest job name a frame carries, in bytes.
	MaxJobLen = 128
	// MaxCols is the largest rank (Cols) a frame may declare.
	MaxCols = 65536
	// MaxFramePayload is the largest payload a frame may declare: 64 MiB,
	// the largest max_payload a NATS server accepts.
	MaxFramePayload = 64 << 20
	// MaxErrorText is the longest error text a FrameError carries, in
	// bytes.
	MaxErrorText = 4096
	// FrameOverhead is the most a frame adds to its payload: the fixed
	// header, the longest job name and the CRC. [RowsPerChunk] budgets
	// for it.
	FrameOverhead = frameFixedLen + MaxJobLen + frameCRCLen
)

const (
	frameMagic    = "CFXF" // cofactor exchange frame
	frameVersion  = 1
	frameFixedLen = 44
	frameCRCLen   = 4
)

// ErrFrame is wrapped by every error [DecodeFrame] and [Header.Check]
// return.
var ErrFrame = errors.New("transport: malformed frame")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the fixed part of a frame. Requests carry the header only; the
// answer echoes the request's Job, Epoch, Iteration, Side, Block, Peer and
// Chunk so that a receiver can match it and drop duplicates and stale
// answers.
type Header struct {
	Type      FrameType
	Side      uint8  // 0 users, 1 items
	Job       string // 1..MaxJobLen bytes (0..MaxJobLen in a FrameError)
	Epoch     uint32 // assignment epoch
	Iteration uint32 // factor version
	Block     uint32 // the owning block
	Peer      uint32 // the requesting block (on the other side)
	Chunk     uint32 // < Chunks whenever Chunks > 0
	Chunks    uint32 // total chunks of this transfer (≥ 1 on FrameRows and FrameGram; 0 = unknown on requests)
	Rows      uint32
	Cols      uint32 // rank k, ≤ MaxCols
}

func frameErrf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFrame}, args...)...)
}

// Check reports whether h and payload form a valid frame: a known type,
// side 0 or 1, the job length, the chunk numbers, Cols ≤ MaxCols, and a
// payload whose length matches the type (Rows×Cols×4 bytes for FrameRows;
// Cols×Cols×8 with Rows == Cols for FrameGram; none for requests; at most
// MaxErrorText bytes of UTF-8 with Rows = Cols = 0 for FrameError). The
// error wraps [ErrFrame].
func (h Header) Check(payload []byte) error {
	if h.Type < FrameRowsRequest || h.Type > FramePickRequest {
		return frameErrf("unknown frame type %d", uint8(h.Type))
	}
	if h.Side > 1 {
		return frameErrf("%v frame: side %d, want 0 (users) or 1 (items)", h.Type, h.Side)
	}
	minJob := 1
	if h.Type == FrameError {
		minJob = 0
	}
	if len(h.Job) < minJob || len(h.Job) > MaxJobLen {
		return frameErrf("%v frame: job name is %d bytes, want %d..%d", h.Type, len(h.Job), minJob, MaxJobLen)
	}
	if h.Cols > MaxCols {
		return frameErrf("%v frame: cols %d exceeds %d", h.Type, h.Cols, MaxCols)
	}
	if (h.Type == FrameRows || h.Type == FrameGram) && h.Chunks == 0 {
		return frameErrf("%v frame: chunks is 0, want ≥ 1", h.Type)
	}
	if h.Chunks > 0 && h.Chunk >= h.Chunks {
		return frameErrf("%v frame: chunk %d of %d out of range", h.Type, h.Chunk, h.Chunks)
	}
	n := uint64(len(payload))
	if n > MaxFramePayload {
		return frameErrf("%v frame: payload is %d bytes, more than %d", h.Type, n, MaxFramePayload)
	}
	switch h.Type {
	case FrameRows:
		// Rows < 2^32 and Cols ≤ 2^16: the product cannot overflow.
		if want := uint64(h.Rows) * uint64(h.Cols) * 4; n != want {
			return frameErrf("Rows frame: payload is %d bytes, %d×%d float32 needs %d", n, h.Rows, h.Cols, want)
		}
	case FrameGram:
		if h.Rows != h.Cols {
			return frameErrf("Gram frame: %d×%d is not square", h.Rows, h.Cols)
		}
		if want := uint64(h.Cols) * uint64(h.Cols) * 8; n != want {
			return frameErrf("Gram frame: payload is %d bytes, %d×%d float64 needs %d", n, h.Cols, h.Cols, want)
		}
	case FramePickRequest:
		if h.Rows == 0 {
			return frameErrf("PickRequest frame: no rows asked")
		}
		if want := uint64(h.Rows) * 4; n != want {
			return frameErrf("PickRequest frame: payload is %d bytes, %d positions need %d", n, h.Rows, want)
		}
	case FrameRowsRequest, FrameGramRequest:
		if n != 0 {
			return frameErrf("%v frame: carries a %d-byte payload, want none", h.Type, n)
		}
	case FrameError:
		if h.Rows != 0 || h.Cols != 0 {
			return frameErrf("Error frame: rows %d, cols %d, want 0, 0", h.Rows, h.Cols)
		}
		if n > MaxErrorText {
			return frameErrf("Error frame: text is %d bytes, more than %d", n, MaxErrorText)
		}
		if !utf8.Valid(payload) {
			return frameErrf("Error frame: text is not valid UTF-8")
		}
	}
	return nil
}

// AppendFrame appends the encoded frame (h, payload) to dst and returns
// the extended slice. Layout, all integers little-endian:
//
//	offset  size  field
//	0       4     magic "CFXF"
//	4       1     format version (1)
//	5       1     type
//	6       1     side
//	7       1     job name length J (1..128; 0..128 for FrameError)
//	8       4     epoch
//	12      4     iteration
//	16      4     block
//	20      4     peer
//	24      4     chunk
//	28      4     chunks
//	32      4     rows
//	36      4     cols
//	40      4     payload length P
//	44      J     job name
//	44+J    P     payload
//	44+J+P  4     CRC-32C (Castagnoli) of bytes [0, 44+J+P)
//
// AppendFrame panics if [Header.Check](payload) fails: frames are built by
// this program from its own data, so an invalid one is a bug. Callers
// holding untrusted values call Check first.
func AppendFrame(dst []byte, h Header, payload []byte) []byte {
	return AppendFrameWith(dst, h, len(payload), func(dst []byte) []byte { return append(dst, payload...) })
}

// AppendFrameWith is AppendFrame with the payload appended by fill, which
// must append exactly size bytes: a large payload (a chunk of factor
// rows) is built in place rather than in a buffer of its own and copied.
// It panics as AppendFrame does, and when fill appends another size.
func AppendFrameWith(dst []byte, h Header, size int, fill func(dst []byte) []byte) []byte {
	start := len(dst)
	dst = slices.Grow(dst, frameFixedLen+len(h.Job)+size+frameCRCLen)
	dst = append(dst, frameMagic...)
	dst = append(dst, frameVersion, byte(h.Type), h.Side, byte(len(h.Job)))
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, h.Epoch)
	dst = le.AppendUint32(dst, h.Iteration)
	dst = le.AppendUint32(dst, h.Block)
	dst = le.AppendUint32(dst, h.Peer)
	dst = le.AppendUint32(dst, h.Chunk)
	dst = le.AppendUint32(dst, h.Chunks)
	dst = le.AppendUint32(dst, h.Rows)
	dst = le.AppendUint32(dst, h.Cols)
	dst = le.AppendUint32(dst, uint32(size))
	dst = append(dst, h.Job...)
	at := len(dst)
	dst = fill(dst)
	if n := len(dst) - at; n != size {
		panic(fmt.Sprintf("transport: a frame payload of %d bytes was announced as %d", n, size))
	}
	if err := h.Check(dst[at:]); err != nil {
		panic(err)
	}
	return le.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// DecodeFrame decodes one frame, which must fill b exactly. It checks the
// magic, the version, the declared lengths against the limits and against
// len(b) before using them, the CRC, and then [Header.Check]. Errors wrap
// [ErrFrame] and say what was wrong. The returned payload aliases b.
func DecodeFrame(b []byte) (Header, []byte, error) {
	if len(b) < frameFixedLen+frameCRCLen {
		return Header{}, nil, frameErrf("%d bytes, shorter than the smallest frame (%d)", len(b), frameFixedLen+frameCRCLen)
	}
	if string(b[:4]) != frameMagic {
		return Header{}, nil, frameErrf("bad magic %q, want %q", b[:4], frameMagic)
	}
	if b[4] != frameVersion {
		return Header{}, nil, frameErrf("format version %d, this build reads %d", b[4], frameVersion)
	}
	le := binary.LittleEndian
	jobLen := int(b[7])
	if jobLen > MaxJobLen {
		return Header{}, nil, frameErrf("job name length %d exceeds %d", jobLen, MaxJobLen)
	}
	payloadLen := le.Uint32(b[40:])
	if payloadLen > MaxFramePayload {
		return Header{}, nil, frameErrf("payload length %d exceeds %d", payloadLen, MaxFramePayload)
	}
	want := frameFixedLen + jobLen + int(payloadLen) + frameCRCLen
	if len(b) != want {
		return Header{}, nil, frameErrf("frame is %d bytes, its header says %d", len(b), want)
	}
	body := b[:want-frameCRCLen]
	if got, sum := le.Uint32(b[len(body):]), crc32.Checksum(body, castagnoli); got != sum {
		return Header{}, nil, frameErrf("CRC mismatch: stored %08x, computed %08x", got, sum)
	}
	h := Header{
		Type:      FrameType(b[5]),
		Side:      b[6],
		Epoch:     le.Uint32(b[8:]),
		Iteration: le.Uint32(b[12:]),
		Block:     le.Uint32(b[16:]),
		Peer:      le.Uint32(b[20:]),
		Chunk:     le.Uint32(b[24:]),
		Chunks:    le.Uint32(b[28:]),
		Rows:      le.Uint32(b[32:]),
		Cols:      le.Uint32(b[36:]),
		Job:       string(b[frameFixedLen : frameFixedLen+jobLen]),
	}
	payload := body[frameFixedLen+jobLen:]
	if err := h.Check(payload); err != nil {
		return Header{}, nil, err
	}
	return h, payload, nil
}

// RemoteError is the error a peer sent back in a FrameError.
type RemoteError struct {
	Msg string
}

func (e *RemoteError) Error() string { return "transport: remote error: " + e.Msg }

// ErrorFrame encodes a FrameError answering the request h with the text
// msg. It keeps h's identifying fields so that the requester can match the
// answer, and never panics: Rows and Cols are cleared, a job name longer
// than MaxJobLen is dropped, an invalid side or chunk number is cleared,
// invalid UTF-8 in msg is replaced and msg is cut to MaxErrorText bytes.
func ErrorFrame(h Header, msg string) []byte {
	h.Type = FrameError
	h.Rows, h.Cols = 0, 0
	if len(h.Job) > MaxJobLen {
		h.Job = ""
	}
	if h.Side > 1 {
		h.Side = 0
	}
	if h.Chunks > 0 && h.Chunk >= h.Chunks {
		h.Chunks = 0
	}
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	if len(msg) > MaxErrorText {
		cut := MaxErrorText
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	return AppendFrame(nil, h, []byte(msg))
}

// FrameErr returns a [*RemoteError] carrying the text of a FrameError, and
// nil for any other type.
func FrameErr(h Header, payload []byte) error {
	if h.Type != FrameError {
		return nil
	}
	return &RemoteError{Msg: string(payload)}
}

// AppendFloat32s appends v to dst as little-endian float32 and returns the
// extended slice.
func AppendFloat32s(dst []byte, v []float32) []byte {
	// A plain append loop measured about twice as fast as indexed stores
	// into a pre-sized slice (no bounds checks survive in the loop).
	dst = slices.Grow(dst, 4*len(v))
	for _, f := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
	}
	return dst
}

// DecodeFloat32s fills dst from the little-endian float32 in b. It panics
// unless len(b) == 4*len(dst).
func DecodeFloat32s(dst []float32, b []byte) {
	if len(b) != 4*len(dst) {
		panic(fmt.Sprintf("transport: DecodeFloat32s: %d bytes for %d float32", len(b), len(dst)))
	}
	le := binary.LittleEndian
	// Four values per step with constant offsets: the compiler drops the
	// bounds checks, about 2.5× the speed of the one-value loop.
	for len(dst) >= 4 && len(b) >= 16 {
		dst[0] = math.Float32frombits(le.Uint32(b[0:4]))
		dst[1] = math.Float32frombits(le.Uint32(b[4:8]))
		dst[2] = math.Float32frombits(le.Uint32(b[8:12]))
		dst[3] = math.Float32frombits(le.Uint32(b[12:16]))
		dst, b = dst[4:], b[16:]
	}
	for i := range dst {
		dst[i] = math.Float32frombits(le.Uint32(b[4*i:]))
	}
}

// AppendFloat64s appends v to dst as little-endian float64 and returns the
// extended slice.
func AppendFloat64s(dst []byte, v []float64) []byte {
	dst = slices.Grow(dst, 8*len(v))
	for _, f := range v {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
	}
	return dst
}

// DecodeFloat64s fills dst from the little-endian float64 in b. It panics
// unless len(b) == 8*len(dst).
func DecodeFloat64s(dst []float64, b []byte) {
	if len(b) != 8*len(dst) {
		panic(fmt.Sprintf("transport: DecodeFloat64s: %d bytes for %d float64", len(b), len(dst)))
	}
	le := binary.LittleEndian
	for len(dst) >= 4 && len(b) >= 32 {
		dst[0] = math.Float64frombits(le.Uint64(b[0:8]))
		dst[1] = math.Float64frombits(le.Uint64(b[8:16]))
		dst[2] = math.Float64frombits(le.Uint64(b[16:24]))
		dst[3] = math.Float64frombits(le.Uint64(b[24:32]))
		dst, b = dst[4:], b[32:]
	}
	for i := range dst {
		dst[i] = math.Float64frombits(le.Uint64(b[8*i:]))
	}
}

// RowsPerChunk returns how many factor rows of rank k fit in one FrameRows
// frame whose encoded size, overhead included, is at most maxPayload bytes
// (the NATS server's max_payload) and whose payload is at most
// MaxFramePayload. It returns 0 when not even one row fits, or when k is
// not in 1..MaxCols: the caller must then refuse the job (raise the
// server's max_payload or lower the rank); there is no way to send it.
func RowsPerChunk(maxPayload, k int) int {
	if k < 1 || k > MaxCols {
		return 0
	}
	room := min(maxPayload-FrameOverhead, MaxFramePayload)
	if room < 4*k {
		return 0
	}
	return room / (4 * k)
}

// GramFits reports whether a FrameGram of rank k (k×k float64, one
// message) fits under maxPayload. With the server's default max_payload of
// 1 MiB that holds up to k = 362.
func GramFits(maxPayload, k int) bool {
	if k < 1 || k > MaxCols {
		return false
	}
	n := uint64(k) * uint64(k) * 8
	return n <= MaxFramePayload && n+FrameOverhead <= uint64(max(maxPayload, 0))
}

// ChunkCount returns how many chunks of perChunk rows carry rows rows: at
// least 1, since an empty transfer is one empty chunk. It panics if rows <
// 0 or perChunk < 1 (check [RowsPerChunk]'s result before calling).
func ChunkCount(rows, perChunk int) int {
	if rows < 0 || perChunk < 1 {
		panic(fmt.Sprintf("transport: ChunkCount(%d, %d): invalid arguments", rows, perChunk))
	}
	if rows == 0 {
		return 1
	}
	return (rows-1)/perChunk + 1
}

// ChunkBounds returns the half-open row range [lo, hi) of chunk number
// chunk when rows rows are cut into chunks of perChunk rows. ok is false
// when chunk is not in 0..ChunkCount-1 (as in a request from a confused or
// hostile peer) or the arguments are invalid.
func ChunkBounds(rows, perChunk, chunk int) (lo, hi int, ok bool) {
	if rows < 0 || perChunk < 1 || chunk < 0 || chunk >= ChunkCount(rows, perChunk) {
		return 0, 0, false
	}
	lo = chunk * perChunk
	return lo, min(lo+perChunk, rows), true
}
