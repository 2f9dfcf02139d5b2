package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"regexp"
	"slices"
	"time"

	"github.com/cofactor-ml/cofactor/transport"
)

// Format constants.
const (
	factorMagic = "CFCF"
	seenMagic   = "CFSN"
	fileVersion = 2
	// biasVersion is the manifest version of a model with biases (older
	// readers must refuse it: their scores would miss the global mean),
	// and the seen-items file version that carries the ratings.
	biasVersion   = 3
	seenVersion   = 3
	formatName    = FormatName
	ManifestName  = "manifest.json"
	maxIDBytes    = 4096
	maxRank       = 1 << 16
	factorHeader  = 4 + 4 + 1 + 4 + 4 + 8
	seenHeader    = 4 + 4 + 4 + 8 + 8
	crcBytes      = 4
	MaxFileBytes  = 64 << 30 // a block file read from a store is refused above this
	maxManifest   = 64 << 20
	manifestLimit = maxManifest
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sentinel errors.
var (
	// ErrCorrupt: a file's size, structure or checksum is wrong. The error
	// names the file.
	ErrCorrupt = errors.New("checkpoint: corrupt snapshot")
	// ErrNotFound: no such snapshot, file or pointer.
	ErrNotFound = errors.New("checkpoint: not found")
	// ErrExists: an output path exists and is not a snapshot directory.
	ErrExists = errors.New("checkpoint: target exists and is not a snapshot")
)

// FormatName and FormatVersion identify a manifest's format. A model with
// biases is written as version 3 (Repo.Commit chooses); readers take 2 and 3.
const (
	FormatName    = "cofactor-snapshot"
	FormatVersion = fileVersion
)

// Side names of block files.
const (
	SideUsers = "users"
	SideItems = "items"
)

// FileInfo records one file of a snapshot.
type FileInfo struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"` // "factors" or "seen"
	Side   string `json:"side"` // users or items
	Block  int    `json:"block"`
	Rows   int    `json:"rows"`
	Bytes  int64  `json:"bytes"`
	CRC32C uint32 `json:"crc32c"`
}

// Manifest describes a snapshot.
type Manifest struct {
	Format     string             `json:"format"`
	Version    int                `json:"version"`
	ID         string             `json:"id"`
	Model      string             `json:"model"`
	Job        string             `json:"job"`
	Iteration  int                `json:"iteration"`
	Rank       int                `json:"rank"`
	Implicit   bool               `json:"implicit"`
	Lambda     float64            `json:"lambda"`
	Alpha      float64            `json:"alpha,omitempty"`
	Users      int                `json:"users"`
	Items      int                `json:"items"`
	UserBlocks int                `json:"user_blocks"`
	ItemBlocks int                `json:"item_blocks"`
	Final      bool               `json:"final"`
	Created    time.Time          `json:"created"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	Files      []FileInfo         `json:"files"`
	// Biases marks a model with biases (version 3): each stored row holds
	// Rank−2 factors and two bias columns — a user [x_u, b_u, 1], an item
	// [y_i, 1, c_i] — so that the dot product of a user's and an item's
	// rows plus GlobalMean is the prediction μ + b_u + c_i + x_u·y_i.
	Biases     bool    `json:"biases,omitempty"`
	GlobalMean float64 `json:"global_mean,omitempty"`
	// NonNegative marks factors trained under x ≥ 0.
	NonNegative bool `json:"nonnegative,omitempty"`
}

// FactorRank is the number of latent factors: Rank, less the two bias
// columns of a model with biases.
func (m *Manifest) FactorRank() int {
	if m.Biases {
		return m.Rank - 2
	}
	return m.Rank
}

// SetFormat sets the format name and the version m is written with: 3
// for a model with biases, else 2.
func (m *Manifest) SetFormat() {
	m.Format, m.Version = formatName, fileVersion
	if m.Biases {
		m.Version = biasVersion
	}
}

// FactorFileName is the name of side's block b in a snapshot.
func FactorFileName(side string, block int) string { return fmt.Sprintf("%s.%04d.cfcf", side, block) }

// SeenFileName is the name of user block b's training items.
func SeenFileName(block int) string { return fmt.Sprintf("seen.%04d.cfsn", block) }

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$`)

// ValidID checks a snapshot ID or model name: letters, digits, '_', '-',
// '.', starting with a letter or digit, at most 200 characters (IDs name
// files and URL paths).
func ValidID(id string) error {
	if !idPattern.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("checkpoint: %q is not a valid snapshot ID or model name (letters, digits, _ - ., at most 200)", id)
	}
	return nil
}

// SnapshotID names the checkpoint of job at iteration.
func SnapshotID(job string, iteration int) string { return fmt.Sprintf("%s-it%04d", job, iteration) }

// Check validates a manifest's own consistency: names, counts and the file
// list covering every block exactly once.
func (m *Manifest) Check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, ManifestName, fmt.Sprintf(format, a...))
	}
	switch {
	case m.Format != formatName || m.Version < fileVersion || m.Version > biasVersion:
		return bad("format %q version %d, want %s version %d or %d", m.Format, m.Version, formatName, fileVersion, biasVersion)
	case m.Biases && (m.Version < biasVersion || m.Rank < 3):
		return bad("biases in a version %d manifest of rank %d", m.Version, m.Rank)
	case m.Biases && (math.IsNaN(m.GlobalMean) || math.IsInf(m.GlobalMean, 0)):
		return bad("global mean %g", m.GlobalMean)
	case ValidID(m.ID) != nil || ValidID(m.Model) != nil:
		return bad("bad id %q or model %q", m.ID, m.Model)
	case m.Rank < 1 || m.Rank > maxRank || m.Users < 0 || m.Items < 0 || m.Iteration < 0:
		return bad("rank %d, users %d, items %d, iteration %d", m.Rank, m.Users, m.Items, m.Iteration)
	case m.UserBlocks < 1 || m.ItemBlocks < 1 || m.UserBlocks > 1<<16 || m.ItemBlocks > 1<<16:
		return bad("%d×%d blocks", m.UserBlocks, m.ItemBlocks)
	}
	seen := map[string]bool{}
	rows := map[string]int{}
	counts := map[string]int{}
	for _, f := range m.Files {
		if seen[f.Name] {
			return bad("file %q listed twice", f.Name)
		}
		seen[f.Name] = true
		want := ""
		switch f.Kind {
		case "factors":
			want = FactorFileName(f.Side, f.Block)
			rows[f.Side] += f.Rows
			counts[f.Side]++
		case "seen":
			if f.Side != SideUsers {
				return bad("bad file entry %+v", f)
			}
			want = SeenFileName(f.Block)
		default:
			return bad("bad file entry %+v", f)
		}
		blocks := m.UserBlocks
		if f.Side == SideItems {
			blocks = m.ItemBlocks
		}
		if f.Name != want || (f.Side != SideUsers && f.Side != SideItems) || f.Block < 0 || f.Block >= blocks || f.Rows < 0 || f.Bytes < 0 || f.Bytes > MaxFileBytes {
			return bad("bad file entry %+v", f)
		}
	}
	if counts[SideUsers] != m.UserBlocks || counts[SideItems] != m.ItemBlocks || rows[SideUsers] != m.Users || rows[SideItems] != m.Items {
		return bad("files cover %d/%d user blocks (%d rows) and %d/%d item blocks (%d rows), manifest says %d users, %d items",
			counts[SideUsers], m.UserBlocks, rows[SideUsers], counts[SideItems], m.ItemBlocks, rows[SideItems], m.Users, m.Items)
	}
	return nil
}

// decodeManifest parses and checks a manifest.
func decodeManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, ManifestName, err)
	}
	if err := m.Check(); err != nil {
		return nil, err
	}
	slices.SortFunc(m.Files, func(a, b FileInfo) int { return compareFiles(a, b) })
	return &m, nil
}

func compareFiles(a, b FileInfo) int {
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}

// Block is one block's rows as a factor file holds them.
type Block struct {
	Side    string
	Index   int
	Rank    int
	IDs     []string  // external IDs of the rows
	Counts  []int32   // training ratings of each row
	Factors []float32 // len(IDs)×Rank, row-major
}

// EncodeBlock returns the factor file of b.
func EncodeBlock(b *Block) ([]byte, error) {
	size, err := blockSize(b)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(int(size))
	if _, err := writeBlock(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// blockSize checks b and returns the size of its encoding.
func blockSize(b *Block) (int64, error) {
	rows := len(b.IDs)
	if b.Rank < 1 || b.Rank > maxRank || len(b.Counts) != rows || len(b.Factors) != rows*b.Rank || (b.Side != SideUsers && b.Side != SideItems) || b.Index < 0 {
		return 0, fmt.Errorf("checkpoint: block %s %d: %d IDs, %d counts, %d factors at rank %d do not fit", b.Side, b.Index, rows, len(b.Counts), len(b.Factors), b.Rank)
	}
	size := int64(factorHeader + 4*rows + 4*len(b.Factors) + crcBytes)
	for _, id := range b.IDs {
		if len(id) == 0 || len(id) > maxIDBytes {
			return 0, fmt.Errorf("checkpoint: block %s %d: ID of %d bytes", b.Side, b.Index, len(id))
		}
		size += int64(4 + len(id))
	}
	return size, nil
}

// writeBlock writes b's encoding to w and returns the CRC-32C of its body.
// b must have passed blockSize, which its callers need anyway.
func writeBlock(w io.Writer, b *Block) (uint32, error) {
	f := newFileWriter(w)
	f.buf = append(f.buf, factorMagic...)
	f.buf = binary.LittleEndian.AppendUint32(f.buf, fileVersion)
	f.buf = append(f.buf, sideByte(b.Side))
	f.buf = binary.LittleEndian.AppendUint32(f.buf, uint32(b.Index))
	f.buf = binary.LittleEndian.AppendUint32(f.buf, uint32(b.Rank))
	f.buf = binary.LittleEndian.AppendUint64(f.buf, uint64(len(b.IDs)))
	for _, id := range b.IDs {
		f.room(4 + len(id))
		f.buf = binary.LittleEndian.AppendUint32(f.buf, uint32(len(id)))
		f.buf = append(f.buf, id...)
	}
	for _, c := range b.Counts {
		f.room(4)
		f.buf = binary.LittleEndian.AppendUint32(f.buf, uint32(c))
	}
	f.float32s(b.Factors)
	return f.finish()
}

// fileWriter streams a file's body through a small buffer and a CRC-32C,
// and ends it with the CRC trailer, so that a large file is never whole
// in memory.
type fileWriter struct {
	w   io.Writer
	crc uint32
	buf []byte
	err error
}

const fileWriterBuffer = 64 << 10

func newFileWriter(w io.Writer) *fileWriter {
	return &fileWriter{w: w, buf: make([]byte, 0, fileWriterBuffer)}
}

func (f *fileWriter) flush() {
	if f.err == nil && len(f.buf) > 0 {
		f.crc = crc32.Update(f.crc, castagnoli, f.buf)
		_, f.err = f.w.Write(f.buf)
	}
	f.buf = f.buf[:0]
}

// room makes room for n more bytes in the buffer.
func (f *fileWriter) room(n int) {
	if len(f.buf)+n > cap(f.buf) {
		f.flush()
	}
}

func (f *fileWriter) float32s(v []float32) {
	const per = fileWriterBuffer / 4
	for len(v) > 0 {
		n := min(len(v), per)
		f.room(4 * n)
		f.buf = transport.AppendFloat32s(f.buf, v[:n])
		v = v[n:]
	}
}

// finish writes what is buffered and the CRC trailer, and returns the
// body's CRC.
func (f *fileWriter) finish() (uint32, error) {
	f.flush()
	if f.err != nil {
		return 0, f.err
	}
	crc := f.crc
	_, f.err = f.w.Write(binary.LittleEndian.AppendUint32(nil, crc))
	return crc, f.err
}

func sideByte(s string) byte {
	if s == SideItems {
		return 1
	}
	return 0
}

// DecodeBlock checks and decodes a factor file. name is used in errors.
func DecodeBlock(name string, data []byte) (*Block, error) { return decodeBlock(name, data, false) }

// decodeBlock is DecodeBlock; verified says the caller has already checked
// the file's checksum (against a manifest), so it is not computed again.
func decodeBlock(name string, data []byte, verified bool) (*Block, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, name, fmt.Sprintf(format, a...))
	}
	if len(data) < factorHeader+crcBytes {
		return nil, bad("%d bytes is shorter than a header", len(data))
	}
	body := data[:len(data)-crcBytes]
	if !verified {
		if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(data[len(body):]); got != want {
			return nil, bad("CRC-32C %08x, the file says %08x", got, want)
		}
	}
	if string(body[:4]) != factorMagic {
		return nil, bad("magic %q, want %q", body[:4], factorMagic)
	}
	if v := binary.LittleEndian.Uint32(body[4:]); v != fileVersion {
		return nil, bad("version %d, want %d", v, fileVersion)
	}
	b := &Block{Side: SideUsers, Index: int(binary.LittleEndian.Uint32(body[9:])), Rank: int(binary.LittleEndian.Uint32(body[13:]))}
	switch body[8] {
	case 0:
	case 1:
		b.Side = SideItems
	default:
		return nil, bad("side %d", body[8])
	}
	rows := binary.LittleEndian.Uint64(body[17:])
	p := body[factorHeader:]
	// Each row needs at least 4 (ID length) + 1 (ID) + 4 (count) + 4·rank bytes.
	if b.Rank < 1 || b.Rank > maxRank || rows > uint64(len(p))/uint64(9+4*b.Rank) {
		return nil, bad("%d rows of rank %d cannot fit in %d bytes", rows, b.Rank, len(p))
	}
	n := int(rows)
	b.IDs = make([]string, n)
	for r := range n {
		if len(p) < 4 {
			return nil, bad("truncated in the IDs")
		}
		l := binary.LittleEndian.Uint32(p)
		if l == 0 || l > maxIDBytes || uint64(l) > uint64(len(p)-4) {
			return nil, bad("ID %d has length %d", r, l)
		}
		b.IDs[r] = string(p[4 : 4+l])
		p = p[4+l:]
	}
	if len(p) != 4*n+4*n*b.Rank {
		return nil, bad("%d bytes after the IDs, want %d", len(p), 4*n+4*n*b.Rank)
	}
	b.Counts = make([]int32, n)
	for r := range b.Counts {
		b.Counts[r] = int32(binary.LittleEndian.Uint32(p[4*r:]))
	}
	p = p[4*n:]
	b.Factors = make([]float32, n*b.Rank)
	transport.DecodeFloat32s(b.Factors, p)
	return b, nil
}

// Seen is the training items of one user block: row r's items are
// Items[Ptr[r]:Ptr[r+1]], global item indices ascending, and Values (when
// not nil) their ratings, which explanations need.
type Seen struct {
	Index  int
	Ptr    []int64
	Items  []int32
	Values []float32
}

// EncodeSeen returns the seen-items file of s. Items are stored as
// varint-coded gaps, which makes popular catalogues compact.
func EncodeSeen(s *Seen) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(int(seenSizeHint(s)))
	if _, err := writeSeen(&out, s); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// seenSizeHint is about the size of s's encoding: items take two bytes
// on average as varint gaps.
func seenSizeHint(s *Seen) int64 {
	return int64(seenHeader + 2*len(s.Items) + 4*len(s.Values) + len(s.Ptr) + crcBytes)
}

// writeSeen writes s's encoding to w and returns the CRC-32C of its body.
// Items out of order are found while writing: the error comes after part
// of the file, which the caller must then drop.
func writeSeen(w io.Writer, s *Seen) (uint32, error) {
	rows := len(s.Ptr) - 1
	if rows < 0 || s.Ptr[0] != 0 || s.Ptr[rows] != int64(len(s.Items)) {
		return 0, fmt.Errorf("checkpoint: seen block %d: inconsistent pointers", s.Index)
	}
	for r := range rows {
		if s.Ptr[r] > s.Ptr[r+1] {
			return 0, fmt.Errorf("checkpoint: seen block %d: inconsistent pointers", s.Index)
		}
	}
	if s.Values != nil && len(s.Values) != len(s.Items) {
		return 0, fmt.Errorf("checkpoint: seen block %d: %d values for %d items", s.Index, len(s.Values), len(s.Items))
	}
	version := uint32(fileVersion)
	if s.Values != nil {
		version = seenVersion
	}
	f := newFileWriter(w)
	f.buf = append(f.buf, seenMagic...)
	f.buf = binary.LittleEndian.AppendUint32(f.buf, version)
	f.buf = binary.LittleEndian.AppendUint32(f.buf, uint32(s.Index))
	f.buf = binary.LittleEndian.AppendUint64(f.buf, uint64(rows))
	f.buf = binary.LittleEndian.AppendUint64(f.buf, uint64(len(s.Items)))
	for r := range rows {
		items := s.Items[s.Ptr[r]:s.Ptr[r+1]]
		f.room(binary.MaxVarintLen64)
		f.buf = binary.AppendUvarint(f.buf, uint64(len(items)))
		prev := int64(-1)
		for _, it := range items {
			if int64(it) <= prev {
				return 0, fmt.Errorf("checkpoint: seen block %d row %d: items not ascending", s.Index, r)
			}
			f.room(binary.MaxVarintLen64)
			f.buf = binary.AppendUvarint(f.buf, uint64(int64(it)-prev-1))
			prev = int64(it)
		}
	}
	// Version 3: the ratings follow the items, float32 in item order.
	f.float32s(s.Values)
	return f.finish()
}

// DecodeSeen checks and decodes a seen-items file; items must be below
// nItems.
func DecodeSeen(name string, data []byte, nItems int) (*Seen, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, name, fmt.Sprintf(format, a...))
	}
	if len(data) < seenHeader+crcBytes {
		return nil, bad("%d bytes is shorter than a header", len(data))
	}
	body := data[:len(data)-crcBytes]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(data[len(body):]); got != want {
		return nil, bad("CRC-32C %08x, the file says %08x", got, want)
	}
	version := binary.LittleEndian.Uint32(body[4:])
	if string(body[:4]) != seenMagic || (version != fileVersion && version != seenVersion) {
		return nil, bad("not a version-%d or %d seen-items file", fileVersion, seenVersion)
	}
	s := &Seen{Index: int(binary.LittleEndian.Uint32(body[8:]))}
	rows, total := binary.LittleEndian.Uint64(body[12:]), binary.LittleEndian.Uint64(body[20:])
	p := body[seenHeader:]
	// Every row takes at least one byte, every item at least one byte.
	if rows > uint64(len(p)) || total > uint64(len(p)) {
		return nil, bad("%d rows and %d items cannot fit in %d bytes", rows, total, len(p))
	}
	s.Ptr = make([]int64, 0, rows+1)
	s.Ptr = append(s.Ptr, 0)
	s.Items = make([]int32, 0, total)
	for r := uint64(0); r < rows; r++ {
		n, k := binary.Uvarint(p)
		if k <= 0 || (k > 1 && p[k-1] == 0) || n > uint64(len(p)) || uint64(len(s.Items))+n > total {
			return nil, bad("row %d: bad item count", r)
		}
		p = p[k:]
		prev := int64(-1)
		for range n {
			gap, k := binary.Uvarint(p)
			if k <= 0 || (k > 1 && p[k-1] == 0) || gap >= uint64(nItems) {
				return nil, bad("row %d: bad item gap", r)
			}
			p = p[k:]
			it := prev + 1 + int64(gap)
			if it >= int64(nItems) {
				return nil, bad("row %d: item %d outside 0..%d", r, it, nItems-1)
			}
			s.Items = append(s.Items, int32(it))
			prev = it
		}
		s.Ptr = append(s.Ptr, int64(len(s.Items)))
	}
	if version == seenVersion {
		if uint64(len(p)) != 4*total {
			return nil, bad("%d bytes of ratings for %d items", len(p), total)
		}
		s.Values = make([]float32, total)
		transport.DecodeFloat32s(s.Values, p)
		p = nil
	}
	if len(p) != 0 || uint64(len(s.Items)) != total {
		return nil, bad("%d trailing bytes, %d of %d items", len(p), len(s.Items), total)
	}
	return s, nil
}
