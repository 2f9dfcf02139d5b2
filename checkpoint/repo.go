package checkpoint

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
)

// Repo is a snapshot repository: a Store of files and the Pointers to each
// model's newest published snapshot. Snapshot ID's files live under
// "ID/"; the empty ID is a store whose root is one snapshot (a snapshot
// directory, as `train --out` writes).
type Repo struct {
	Store    Store
	Pointers Pointers
	close    func()
}

// NewRepo combines a store and its pointers.
func NewRepo(s Store, p Pointers) *Repo { return &Repo{Store: s, Pointers: p} }

// Close releases a connection the repository opened itself.
func (r *Repo) Close() {
	if r.close != nil {
		r.close()
	}
}

func fileName(id, name string) string {
	if id == "" {
		return name
	}
	return id + "/" + name
}

// WriteBlock stores one factor file of snapshot id and returns its entry
// in the manifest.
func (r *Repo) WriteBlock(ctx context.Context, id string, b *Block) (FileInfo, error) {
	size, err := blockSize(b)
	if err != nil {
		return FileInfo{}, err
	}
	fi := FileInfo{Name: FactorFileName(b.Side, b.Index), Kind: "factors", Side: b.Side, Block: b.Index, Rows: len(b.IDs)}
	fi.Bytes, fi.CRC32C, err = r.putEncoded(ctx, fileName(id, fi.Name), size, func(w io.Writer) (uint32, error) { return writeBlock(w, b) })
	return fi, err
}

// bodyCRC is the CRC-32C of a file without its trailing CRC (the CRC of a
// whole file, trailer included, is the same constant for every file).
func bodyCRC(b []byte) uint32 { return crc32.Checksum(b[:max(0, len(b)-crcBytes)], castagnoli) }

// WriteSeen stores a user block's seen-items file of snapshot id.
func (r *Repo) WriteSeen(ctx context.Context, id string, s *Seen) (FileInfo, error) {
	fi := FileInfo{Name: SeenFileName(s.Index), Kind: "seen", Side: SideUsers, Block: s.Index, Rows: max(0, len(s.Ptr)-1)}
	var err error
	fi.Bytes, fi.CRC32C, err = r.putEncoded(ctx, fileName(id, fi.Name), seenSizeHint(s), func(w io.Writer) (uint32, error) { return writeSeen(w, s) })
	return fi, err
}

// putEncoded stores name with the bytes encode writes, and returns their
// size and the CRC-32C of the body. A store that takes a stream gets one:
// a factor file is as large as a worker's share of the factors, and
// encoding it whole would hold a second copy at the end of every job. Any
// other store gets the file in one piece (sizeHint bytes or about).
func (r *Repo) putEncoded(ctx context.Context, name string, sizeHint int64, encode func(io.Writer) (uint32, error)) (int64, uint32, error) {
	var size int64
	var crc uint32
	write := func(w io.Writer) error {
		cw := &countingWriter{w: w}
		c, err := encode(cw)
		size, crc = cw.n, c
		return err
	}
	var err error
	if ss, ok := r.Store.(StreamStore); ok {
		err = ss.PutFrom(ctx, name, write)
	} else {
		var b bytes.Buffer
		b.Grow(int(sizeHint))
		if err = write(&b); err == nil {
			err = r.Store.Put(ctx, name, b.Bytes())
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("writing %s: %w", name, err)
	}
	return size, crc, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Commit writes the manifest of a snapshot whose files are stored: from
// then on the snapshot exists. Writing the same manifest again is harmless.
func (r *Repo) Commit(ctx context.Context, id string, m *Manifest) error {
	m.SetFormat()
	if err := m.Check(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return r.Store.Put(ctx, fileName(id, ManifestName), append(b, '\n'))
}

// Publish points the model's "latest" at snapshot id.
func (r *Repo) Publish(ctx context.Context, model, id string) error {
	return r.Pointers.SetLatest(ctx, model, id)
}

// Latest returns the ID of the model's newest published snapshot.
func (r *Repo) Latest(ctx context.Context, model string) (string, error) {
	return r.Pointers.Latest(ctx, model)
}

// Watch sends the model's newest published snapshot ID now and whenever it
// changes, until ctx ends.
func (r *Repo) Watch(ctx context.Context, model string) (<-chan string, error) {
	return r.Pointers.Watch(ctx, model)
}

// Manifest reads and checks snapshot id's manifest.
func (r *Repo) Manifest(ctx context.Context, id string) (*Manifest, error) {
	b, err := r.Store.Get(ctx, fileName(id, ManifestName), maxManifest)
	if err != nil {
		return nil, err
	}
	m, err := decodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fileName(id, ManifestName), err)
	}
	return m, nil
}

// getFile reads one file and checks it against its manifest entry.
func (r *Repo) getFile(ctx context.Context, id string, f FileInfo) ([]byte, error) {
	name := fileName(id, f.Name)
	b, err := r.Store.Get(ctx, name, f.Bytes)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != f.Bytes {
		return nil, fmt.Errorf("%w: %s: %d bytes, the manifest says %d", ErrCorrupt, name, len(b), f.Bytes)
	}
	if c := bodyCRC(b); c != f.CRC32C {
		return nil, fmt.Errorf("%w: %s: CRC-32C %08x, the manifest says %08x", ErrCorrupt, name, c, f.CRC32C)
	}
	// The file's own trailing CRC must say the same: then the bytes are
	// checked, and decoding need not checksum them again.
	if len(b) < crcBytes {
		return nil, fmt.Errorf("%w: %s: %d bytes is shorter than a checksum", ErrCorrupt, name, len(b))
	}
	if own := binary.LittleEndian.Uint32(b[len(b)-crcBytes:]); own != f.CRC32C {
		return nil, fmt.Errorf("%w: %s: CRC-32C %08x, the file says %08x", ErrCorrupt, name, f.CRC32C, own)
	}
	return b, nil
}

// ReadBlock reads and checks one block's factor file (resuming training).
func (r *Repo) ReadBlock(ctx context.Context, id string, m *Manifest, side string, block int) (*Block, error) {
	for _, f := range m.Files {
		if f.Kind == "factors" && f.Side == side && f.Block == block {
			b, err := r.getFile(ctx, id, f)
			if err != nil {
				return nil, err
			}
			blk, err := decodeBlock(fileName(id, f.Name), b, true)
			if err != nil {
				return nil, err
			}
			if blk.Side != side || blk.Index != block || blk.Rank != m.Rank || len(blk.IDs) != f.Rows {
				return nil, fmt.Errorf("%w: %s: holds %s block %d of rank %d with %d rows, the manifest says %s block %d of rank %d with %d",
					ErrCorrupt, fileName(id, f.Name), blk.Side, blk.Index, blk.Rank, len(blk.IDs), side, block, m.Rank, f.Rows)
			}
			return blk, nil
		}
	}
	return nil, fmt.Errorf("%w: %s block %d in snapshot %s", ErrNotFound, side, block, id)
}

// readParallel bounds the files a reader fetches at once.
const readParallel = 8

// Open reads snapshot id, checking every file, and returns the model.
func (r *Repo) Open(ctx context.Context, id string) (*Model, error) {
	m, err := r.Manifest(ctx, id)
	if err != nil {
		return nil, err
	}
	blocks := map[string][]*Block{SideUsers: make([]*Block, m.UserBlocks), SideItems: make([]*Block, m.ItemBlocks)}
	seen := make([]*Seen, m.UserBlocks)
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, readParallel)
	var wg sync.WaitGroup
	for _, f := range m.Files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := func() error {
				if f.Kind == "seen" {
					b, err := r.getFile(ctx, id, f)
					if err != nil {
						return err
					}
					s, err := DecodeSeen(fileName(id, f.Name), b, m.Items)
					if err != nil {
						return err
					}
					if s.Index != f.Block || len(s.Ptr)-1 != f.Rows {
						return fmt.Errorf("%w: %s: block %d with %d rows, the manifest says %d with %d", ErrCorrupt, fileName(id, f.Name), s.Index, len(s.Ptr)-1, f.Block, f.Rows)
					}
					seen[f.Block] = s
					return nil
				}
				blk, err := r.ReadBlock(ctx, id, m, f.Side, f.Block)
				if err != nil {
					return err
				}
				mu.Lock()
				blocks[f.Side][f.Block] = blk
				mu.Unlock()
				return nil
			}()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return assemble(m, blocks[SideUsers], blocks[SideItems], seen)
}

// Verify reads snapshot id and checks every file; the error names the
// first bad one.
func (r *Repo) Verify(ctx context.Context, id string) error {
	_, err := r.Open(ctx, id)
	return err
}

// List returns the manifests of the snapshots in the store (of one model,
// or all for ""), oldest first. Snapshots whose manifest cannot be read
// are skipped.
func (r *Repo) List(ctx context.Context, model string) ([]Manifest, error) {
	names, err := r.Store.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []Manifest
	for _, n := range names {
		if path.Base(n) != ManifestName || path.Dir(n) == "." {
			continue
		}
		m, err := r.Manifest(ctx, path.Dir(n))
		if err != nil || (model != "" && m.Model != model) {
			continue
		}
		out = append(out, *m)
	}
	slices.SortStableFunc(out, func(a, b Manifest) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// Delete removes snapshot id: its manifest first, so that no reader finds
// a manifest whose files are going, then its files.
func (r *Repo) Delete(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("checkpoint: refusing to delete the root snapshot")
	}
	if err := r.Store.Delete(ctx, fileName(id, ManifestName)); err != nil {
		return err
	}
	names, err := r.Store.List(ctx, id+"/")
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := r.Store.Delete(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// Retain deletes the model's published (final) snapshots beyond the
// newest keep, never one named in protect (the latest pointer's, or one a
// running job resumes from). It returns the IDs deleted.
func (r *Repo) Retain(ctx context.Context, model string, keep int, protect ...string) ([]string, error) {
	if keep < 0 {
		return nil, fmt.Errorf("checkpoint: retain: keep %d must be ≥ 0", keep)
	}
	list, err := r.List(ctx, model)
	if err != nil {
		return nil, err
	}
	if latest, err := r.Latest(ctx, model); err == nil {
		protect = append(protect, latest)
	}
	var finals []Manifest
	for _, m := range list {
		if m.Final {
			finals = append(finals, m)
		}
	}
	var deleted []string
	for i := 0; i < len(finals)-keep; i++ {
		if slices.Contains(protect, finals[i].ID) {
			continue
		}
		if err := r.Delete(ctx, finals[i].ID); err != nil {
			return deleted, err
		}
		deleted = append(deleted, finals[i].ID)
	}
	return deleted, nil
}

// OpenDir returns a repository over a snapshot directory and the ID under
// which the snapshot is read (the empty ID: the directory is the
// snapshot).
func OpenDir(dir string) (*Repo, string) {
	d := DirStore{Root: dir}
	return NewRepo(d, d), ""
}

// ReadDir opens the snapshot directory dir.
func ReadDir(ctx context.Context, dir string) (*Model, error) {
	r, id := OpenDir(dir)
	return r.Open(ctx, id)
}

// CheckTarget reports whether dir may receive a snapshot (CopyToDir): it
// must be absent, an empty directory or a snapshot directory, and its
// parent must exist. Callers use it to fail before doing the work.
func CheckTarget(dir string) error {
	ents, err := targetEntries(dir, os.Stat, "is a file")
	if err != nil || len(ents) == 0 {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); err != nil {
		return fmt.Errorf("%w: %s holds other files", ErrExists, dir)
	}
	return nil
}

// targetEntries checks that the parent of dir, a directory to write into,
// is a directory, and returns dir's entries (none when dir is absent).
// stat is os.Stat, or os.Lstat to refuse a link; a dir that is not a
// directory is refused with the words notDir.
func targetEntries(dir string, stat func(string) (fs.FileInfo, error), notDir string) ([]os.DirEntry, error) {
	parent := filepath.Dir(filepath.Clean(dir))
	if st, err := os.Stat(parent); err != nil {
		return nil, err
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrExists, parent)
	}
	st, err := stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s %s", ErrExists, dir, notDir)
	}
	return os.ReadDir(dir)
}

// CopyToDir copies snapshot id of src, checking every file, into the
// snapshot directory dir. It builds the copy under a temporary name beside
// dir and renames it into place, so dir is at every moment absent, the old
// snapshot or the complete new one.
func CopyToDir(ctx context.Context, src *Repo, id, dir string) (err error) {
	if err := CheckTarget(dir); err != nil {
		return err
	}
	m, err := src.Manifest(ctx, id)
	if err != nil {
		return err
	}
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	// Copies into one parent directory take turns, across processes too:
	// two interleaved swaps could leave dir absent after both returned.
	unlock, err := lockDir(parent)
	if err != nil {
		return err
	}
	defer unlock()
	// A repeat of a copy that completed finds the snapshot in place:
	// swapping it again would take dir away for a moment from readers told
	// it is there. It happens: a worker paused during its export is
	// declared lost, another exports and the job succeeds, and the paused
	// one's export runs when it wakes (test/fault TestPausedExportTarget).
	cur, _ := OpenDir(dir)
	if cm, err := cur.Manifest(ctx, ""); err == nil && cm.ID == m.ID && cur.Verify(ctx, "") == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	dst := DirStore{Root: tmp}
	for _, f := range m.Files {
		b, err := src.getFile(ctx, id, f)
		if err != nil {
			return err
		}
		if err := dst.Put(ctx, f.Name, b); err != nil {
			return err
		}
	}
	if err := NewRepo(dst, dst).Commit(ctx, "", m); err != nil {
		return err
	}
	var old string
	if _, err := os.Stat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			os.Rename(old, dir)
		}
		return err
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return syncDir(parent)
}
