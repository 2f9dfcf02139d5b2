package dataset

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cofactor-ml/cofactor/partition"
	"github.com/cofactor-ml/cofactor/transport"
)

// Bucket is the Object Store bucket of datasets.
const Bucket = "cofactor-datasets"

// DefaultChunkSize is the size of a stored chunk, and so the granularity
// of shards: small enough that a file of a few gigabytes makes hundreds
// of shards, large enough that the per-chunk overheads do not matter.
const DefaultChunkSize = 4 << 20

// Limits on what a manifest may say (it is read from the store).
const (
	maxChunkSize     = 64 << 20
	minChunkSize     = 1
	maxFiles         = 1 << 16
	maxManifestBytes = 256 << 20
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound: no dataset of that name.
	ErrNotFound = errors.New("dataset: not found")
	// ErrExists: Put of a name that exists, without Replace.
	ErrExists = errors.New("dataset: already exists")
	// ErrName: a dataset name that is not allowed.
	ErrName = errors.New("dataset: invalid name")
	// ErrMissingChunk: a chunk the manifest lists is not in the store.
	ErrMissingChunk = errors.New("dataset: chunk missing")
	// ErrCorrupt: a chunk or a manifest does not match what was stored.
	ErrCorrupt = errors.New("dataset: damaged")
	// ErrConflict: another put of the same name won a race with this one.
	ErrConflict = errors.New("dataset: concurrent put")
)

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
)

// ValidName checks a dataset name: letters, digits, '_', '-' and '.',
// starting with a letter or digit, at most 128 bytes.
func ValidName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w: %q (letters, digits, _ - ., starting with a letter or digit, at most 128)", ErrName, name)
	}
	return nil
}

// Manifest describes a stored dataset.
type Manifest struct {
	Format     string    `json:"format"` // ManifestFormat
	Version    int       `json:"version"`
	Name       string    `json:"name"`
	Generation string    `json:"generation"`
	Created    time.Time `json:"created"`
	Files      []File    `json:"files"`
}

// File is one file of a dataset: its index (name, size, format, chunk
// size, newlines per chunk) and checksums.
type File struct {
	partition.FileIndex
	SHA256 string   `json:"sha256"`
	CRC32C []uint32 `json:"crc32c"` // one per chunk
}

// Manifest format name and version.
const (
	ManifestFormat  = "cofactor-dataset"
	ManifestVersion = 1
)

// Bytes is the total size of the dataset's files.
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Indexes returns the files' indexes for partition.CutShards, each named
// "NAME/FILE" so that a bad line names the dataset and the file.
func (m *Manifest) Indexes() []partition.FileIndex {
	out := make([]partition.FileIndex, len(m.Files))
	for i, f := range m.Files {
		out[i] = f.FileIndex
		out[i].Newlines = slices.Clone(f.Newlines)
		out[i].Name = m.Name + "/" + f.Name
	}
	return out
}

// Check validates a manifest read from the store.
func (m *Manifest) Check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: manifest of %q: %s", ErrCorrupt, m.Name, fmt.Sprintf(format, a...))
	}
	if m.Format != ManifestFormat || m.Version != ManifestVersion {
		return bad("format %q version %d (this build reads %s %d)", m.Format, m.Version, ManifestFormat, ManifestVersion)
	}
	if err := ValidName(m.Name); err != nil {
		return bad("%v", err)
	}
	if !genPattern.MatchString(m.Generation) {
		return bad("generation %q", m.Generation)
	}
	if len(m.Files) == 0 || len(m.Files) > maxFiles {
		return bad("%d files", len(m.Files))
	}
	names := map[string]bool{}
	for i := range m.Files {
		f := &m.Files[i]
		if err := f.FileIndex.Check(); err != nil {
			return bad("file %d: %v", i, err)
		}
		if f.ChunkSize < minChunkSize || f.ChunkSize > maxChunkSize {
			return bad("%s: chunk size %d", f.Name, f.ChunkSize)
		}
		if names[f.Name] || strings.ContainsAny(f.Name, "/\x00") {
			return bad("file name %q repeated or not allowed", f.Name)
		}
		names[f.Name] = true
		if len(f.CRC32C) != f.Chunks() {
			return bad("%s: %d checksums for %d chunks", f.Name, len(f.CRC32C), f.Chunks())
		}
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != sha256.Size {
			return bad("%s: SHA-256 %q", f.Name, f.SHA256)
		}
	}
	return nil
}

var genPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

func manifestName(name string) string { return name + "/manifest" }

func chunkName(name, gen string, file, chunk int) string {
	return name + "/" + gen + "/" + strconv.Itoa(file) + "/" + strconv.Itoa(chunk)
}

// Store is the dataset bucket.
type Store struct {
	blobs *transport.Blobs
	chunk int64
}

type config struct {
	chunk int64
	blobs []transport.BlobsOption
}

// Option adjusts Open.
type Option func(*config) error

// WithChunkSize sets the chunk size of new puts (default
// DefaultChunkSize).
func WithChunkSize(n int64) Option {
	return func(c *config) error {
		if n < minChunkSize || n > maxChunkSize {
			return fmt.Errorf("dataset: chunk size %d outside %d..%d", n, minChunkSize, maxChunkSize)
		}
		c.chunk = n
		return nil
	}
}

// WithBlobs passes options to transport.OpenBlobs (replicas of a new
// bucket, the time limit of an operation).
func WithBlobs(opts ...transport.BlobsOption) Option {
	return func(c *config) error {
		c.blobs = append(c.blobs, opts...)
		return nil
	}
}

// Open opens the dataset bucket, creating it when it does not exist.
func Open(ctx context.Context, nc *nats.Conn, opts ...Option) (*Store, error) {
	c := config{chunk: DefaultChunkSize}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	b, err := transport.OpenBlobs(ctx, nc, Bucket, c.blobs...)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	return &Store{blobs: b, chunk: c.chunk}, nil
}

// Info returns the manifest of the named dataset (ErrNotFound when there
// is none).
func (s *Store) Info(ctx context.Context, name string) (*Manifest, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	data, err := s.blobs.Get(ctx, manifestName(name), maxManifestBytes)
	if errors.Is(err, transport.ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("dataset %q: %w", name, err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest of %q: %v", ErrCorrupt, name, err)
	}
	if m.Name != name {
		return nil, fmt.Errorf("%w: the manifest stored as %q names %q", ErrCorrupt, name, m.Name)
	}
	if err := m.Check(); err != nil {
		return nil, err
	}
	return &m, nil
}

// List returns the manifests of every complete dataset, by name. A
// damaged manifest is skipped (Info on its name reports it).
func (s *Store) List(ctx context.Context) ([]*Manifest, error) {
	objs, err := s.blobs.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	var out []*Manifest
	for _, o := range objs {
		name, ok := strings.CutSuffix(o.Name, "/manifest")
		if !ok || strings.Contains(name, "/") {
			continue
		}
		m, err := s.Info(ctx, name)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrName) {
			continue // removed meanwhile, or damaged
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *Manifest) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Source is one file to put: its name in the dataset (no '/') and its
// bytes.
type Source struct {
	Name string
	R    io.Reader
}

// PutOptions adjust Put.
type PutOptions struct {
	// Format of every file: "" or FormatAuto detects each file's from its
	// first non-blank line.
	Format partition.Format
	// Replace allows putting a name that exists.
	Replace bool
	// Progress, if set, is called with the bytes stored so far.
	Progress func(bytes int64)
}

// Put stores files as the dataset name and returns its manifest. The
// dataset appears only when every chunk is stored; on any error nothing
// of this put is left (see the package doc). A file whose format cannot
// be detected or that holds no non-blank line is refused (the error wraps
// partition.ErrFormat or partition.ErrEmpty and names the file).
func (s *Store) Put(ctx context.Context, name string, files []Source, o PutOptions) (*Manifest, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if len(files) == 0 || len(files) > maxFiles {
		return nil, fmt.Errorf("dataset %q: %d files (want 1..%d)", name, len(files), maxFiles)
	}
	seen := map[string]bool{}
	for _, f := range files {
		if f.Name == "" || strings.ContainsAny(f.Name, "/\x00") || seen[f.Name] {
			return nil, fmt.Errorf("dataset %q: file name %q is empty, repeated or holds '/'", name, f.Name)
		}
		seen[f.Name] = true
	}
	old, err := s.Info(ctx, name)
	switch {
	case err == nil && !o.Replace:
		return nil, fmt.Errorf("%w: %q (put it with --replace to overwrite it)", ErrExists, name)
	case err != nil && !errors.Is(err, ErrNotFound) && !(o.Replace && errors.Is(err, ErrCorrupt)):
		return nil, err
	}
	m := &Manifest{Format: ManifestFormat, Version: ManifestVersion, Name: name, Generation: newGeneration(), Created: time.Now().UTC()}
	fail := func(err error) (*Manifest, error) {
		// Nothing of this put may stay behind: its chunks go, with a
		// context of their own, as ctx may be what ended the put.
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.deletePrefix(cctx, name+"/"+m.Generation+"/")
		return nil, err
	}
	var stored int64
	buf := make([]byte, s.chunk)
	for i, src := range files {
		f, err := s.putFile(ctx, m, i, src, o.Format, buf, func(n int64) {
			stored += n
			if o.Progress != nil {
				o.Progress(stored)
			}
		})
		if err != nil {
			return fail(err)
		}
		m.Files = append(m.Files, f)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return fail(err)
	}
	if err := s.blobs.Put(ctx, manifestName(name), data); err != nil {
		return fail(fmt.Errorf("dataset %q: writing the manifest: %w", name, err))
	}
	// Two puts of one name may have raced: the manifest read back says
	// which one won.
	if now, err := s.Info(ctx, name); err != nil || now.Generation != m.Generation {
		if err == nil {
			err = fmt.Errorf("%w: another put of %q finished at the same time and was kept", ErrConflict, name)
		}
		return fail(err)
	}
	if old != nil {
		s.deletePrefix(ctx, name+"/"+old.Generation+"/")
	}
	return m, nil
}

// putFile stores one file's chunks and returns its entry.
func (s *Store) putFile(ctx context.Context, m *Manifest, i int, src Source, format partition.Format, buf []byte, progress func(int64)) (File, error) {
	ix := partition.NewIndexer(src.Name, s.chunk)
	sum := sha256.New()
	var crcs []uint32
	for c := 0; ; c++ {
		n, err := io.ReadFull(src.R, buf)
		if n > 0 {
			chunk := buf[:n]
			ix.Write(chunk)
			sum.Write(chunk)
			crcs = append(crcs, crc32.Checksum(chunk, castagnoli))
			if perr := s.blobs.Put(ctx, chunkName(m.Name, m.Generation, i, c), chunk); perr != nil {
				return File{}, fmt.Errorf("dataset %q: storing %s chunk %d: %w", m.Name, src.Name, c, perr)
			}
			progress(int64(n))
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return File{}, fmt.Errorf("dataset %q: reading %s: %w", m.Name, src.Name, err)
		}
	}
	idx, err := ix.Index(format)
	if err != nil {
		return File{}, err
	}
	return File{FileIndex: idx, SHA256: hex.EncodeToString(sum.Sum(nil)), CRC32C: crcs}, nil
}

func newGeneration() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// deletePrefix deletes every object whose name starts with prefix, as far
// as it can; it reports the first failure.
func (s *Store) deletePrefix(ctx context.Context, prefix string) error {
	objs, err := s.blobs.List(ctx, prefix)
	if err != nil {
		return err
	}
	var first error
	for _, o := range objs {
		if err := s.blobs.Delete(ctx, o.Name); err != nil && !errors.Is(err, transport.ErrNotFound) && first == nil {
			first = err
		}
	}
	return first
}

// Remove deletes the named dataset: its manifest first (from then on it
// does not exist), then every object under its name, those of interrupted
// puts included. It returns ErrNotFound when there is nothing of that
// name.
func (s *Store) Remove(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	err := s.blobs.Delete(ctx, manifestName(name))
	found := err == nil
	if err != nil && !errors.Is(err, transport.ErrNotFound) {
		return fmt.Errorf("dataset %q: %w", name, err)
	}
	objs, err := s.blobs.List(ctx, name+"/")
	if err != nil {
		return fmt.Errorf("dataset %q: %w", name, err)
	}
	if !found && len(objs) == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err := s.deletePrefix(ctx, name+"/"); err != nil {
		return fmt.Errorf("dataset %q: %w", name, err)
	}
	return nil
}

// Reader reads file i of the dataset m describes at any offset, chunk by
// chunk, checking each chunk against the manifest. ctx bounds every read.
func (s *Store) Reader(ctx context.Context, m *Manifest, i int) *Reader {
	return &Reader{ctx: ctx, s: s, m: m, i: i, f: &m.Files[i], cached: -1}
}

// Reader is an io.ReaderAt over one file of a dataset.
type Reader struct {
	ctx context.Context
	s   *Store
	m   *Manifest
	i   int
	f   *File

	mu     sync.Mutex
	cached int
	data   []byte
}

// Size is the file's size.
func (r *Reader) Size() int64 { return r.f.Size }

// ReadAt reads len(p) bytes at off (fewer, with io.EOF, at the end of the
// file). A missing or damaged chunk is an error wrapping ErrMissingChunk
// or ErrCorrupt.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("dataset: read at offset %d", off)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= r.f.Size {
			return n, io.EOF
		}
		c := int(pos / r.f.ChunkSize)
		if err := r.load(c); err != nil {
			return n, err
		}
		n += copy(p[n:], r.data[pos-int64(c)*r.f.ChunkSize:])
	}
	return n, nil
}

// load makes chunk c the cached one.
func (r *Reader) load(c int) error {
	if r.cached == c {
		return nil
	}
	want := min(r.f.ChunkSize, r.f.Size-int64(c)*r.f.ChunkSize)
	where := fmt.Sprintf("dataset %q: file %s: chunk %d of %d", r.m.Name, r.f.Name, c, r.f.Chunks())
	data, err := r.s.blobs.Get(r.ctx, chunkName(r.m.Name, r.m.Generation, r.i, c), want)
	switch {
	case errors.Is(err, transport.ErrNotFound):
		return fmt.Errorf("%w: %s is not in the store (the dataset is damaged: put it again with --replace)", ErrMissingChunk, where)
	case errors.Is(err, transport.ErrTooLarge) || errors.Is(err, jetstream.ErrDigestMismatch):
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, where, err)
	case err != nil:
		return fmt.Errorf("%s: %w", where, err)
	case int64(len(data)) != want:
		return fmt.Errorf("%w: %s is %d bytes, the manifest says %d", ErrCorrupt, where, len(data), want)
	}
	if got := crc32.Checksum(data, castagnoli); got != r.f.CRC32C[c] {
		return fmt.Errorf("%w: %s: CRC-32C %08x, the manifest records %08x", ErrCorrupt, where, got, r.f.CRC32C[c])
	}
	r.cached, r.data = c, data
	return nil
}

// Verify reads every chunk of the named dataset and checks it, and each
// file's SHA-256.
func (s *Store) Verify(ctx context.Context, name string) (*Manifest, error) {
	m, err := s.Info(ctx, name)
	if err != nil {
		return nil, err
	}
	for i := range m.Files {
		r := s.Reader(ctx, m, i)
		sum := sha256.New()
		if _, err := io.Copy(sum, io.NewSectionReader(r, 0, r.Size())); err != nil {
			return nil, err
		}
		if got := hex.EncodeToString(sum.Sum(nil)); got != m.Files[i].SHA256 {
			return nil, fmt.Errorf("%w: dataset %q: file %s: SHA-256 %s, the manifest records %s", ErrCorrupt, name, m.Files[i].Name, got, m.Files[i].SHA256)
		}
	}
	return m, nil
}

// ReadAll returns a whole file of the dataset (for small files and tests).
func (s *Store) ReadAll(ctx context.Context, m *Manifest, i int) ([]byte, error) {
	r := s.Reader(ctx, m, i)
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.NewSectionReader(r, 0, r.Size())); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
