package checkpoint

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// File names inside a snapshot directory.
const (
	ManifestName    = "manifest.json"
	UserFactorsName = "user_factors.cfcf"
	ItemFactorsName = "item_factors.cfcf"
	UserIDsName     = "user_ids.txt"
	ItemIDsName     = "item_ids.txt"
)

const (
	magic       = "CFCF"
	version     = 1
	headerBytes = 4 + 4 + 4 + 8
	// MaxFactorBytes bounds a factor file's payload as read from disk
	// (rows × rank × 4), so a corrupt header cannot make a reader allocate
	// without limit.
	MaxFactorBytes = 64 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sentinel errors.
var (
	// ErrCorrupt: a file's size, header or CRC does not match; the error
	// names the file.
	ErrCorrupt = errors.New("checkpoint: corrupt snapshot file")
	// ErrExists: the target exists and is not a snapshot directory.
	ErrExists = errors.New("checkpoint: target exists and is not a snapshot")
)

// Snapshot is a trained model in memory.
type Snapshot struct {
	Manifest Manifest
	UserIDs  []string
	ItemIDs  []string
	X, Y     []float32 // user and item factors, row-major, Manifest.Rank columns
}

// Manifest describes a snapshot. Files is filled in by WriteDir.
type Manifest struct {
	Format    string             `json:"format"`
	Version   int                `json:"version"`
	Model     string             `json:"model"`
	Job       string             `json:"job"`
	Iteration int                `json:"iteration"`
	Rank      int                `json:"rank"`
	Implicit  bool               `json:"implicit"`
	Lambda    float64            `json:"lambda"`
	Alpha     float64            `json:"alpha,omitempty"`
	Users     int                `json:"users"`
	Items     int                `json:"items"`
	Metrics   map[string]float64 `json:"metrics,omitempty"`
	Files     []FileInfo         `json:"files"`
}

// FileInfo records one file of a snapshot.
type FileInfo struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	CRC32C uint32 `json:"crc32c"`
}

// WriteDir writes s as a snapshot directory at dir. If dir already holds a
// snapshot it is replaced; any other existing non-empty dir is refused
// with ErrExists.
func WriteDir(dir string, s *Snapshot) (err error) {
	k := s.Manifest.Rank
	if k < 1 || len(s.X) != len(s.UserIDs)*k || len(s.Y) != len(s.ItemIDs)*k {
		return fmt.Errorf("checkpoint: factors do not match rank %d and %d users, %d items", k, len(s.UserIDs), len(s.ItemIDs))
	}
	if err := CheckTarget(dir); err != nil {
		return err
	}
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
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
	m := s.Manifest
	m.Format, m.Version = "cofactor-snapshot", version
	m.Users, m.Items = len(s.UserIDs), len(s.ItemIDs)
	m.Files = nil
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{UserFactorsName, func(w io.Writer) error { return writeFactors(w, s.X, k) }},
		{ItemFactorsName, func(w io.Writer) error { return writeFactors(w, s.Y, k) }},
		{UserIDsName, func(w io.Writer) error { return writeIDs(w, s.UserIDs) }},
		{ItemIDsName, func(w io.Writer) error { return writeIDs(w, s.ItemIDs) }},
	} {
		fi, err := writeFile(filepath.Join(tmp, f.name), f.write)
		if err != nil {
			return err
		}
		fi.Name = f.name
		m.Files = append(m.Files, fi)
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if _, err := writeFile(filepath.Join(tmp, ManifestName), func(w io.Writer) error {
		_, err := w.Write(append(body, '\n'))
		return err
	}); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	// Move an old snapshot aside, put the new one in place, then drop the
	// old one: at every moment dir is absent or a complete snapshot.
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

// CheckTarget reports whether WriteDir may write dir: it must be absent,
// an empty directory or a snapshot, and its parent must exist. Callers use
// it to fail before spending time on what they will write.
func CheckTarget(dir string) error {
	if st, err := os.Stat(filepath.Dir(filepath.Clean(dir))); err != nil {
		return err
	} else if !st.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrExists, filepath.Dir(filepath.Clean(dir)))
	}
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s is a file", ErrExists, dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); err != nil {
		return fmt.Errorf("%w: %s holds other files", ErrExists, dir)
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) (FileInfo, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return FileInfo{}, err
	}
	h := crc32.New(castagnoli)
	cw := &countWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return FileInfo{}, fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	return FileInfo{Bytes: cw.n, CRC32C: h.Sum32()}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func writeFactors(w io.Writer, f []float32, k int) error {
	h := crc32.New(castagnoli)
	mw := io.MultiWriter(w, h)
	var hdr [headerBytes]byte
	copy(hdr[:4], magic)
	binary.LittleEndian.PutUint32(hdr[4:], version)
	binary.LittleEndian.PutUint32(hdr[8:], uint32(k))
	binary.LittleEndian.PutUint64(hdr[12:], uint64(len(f)/k))
	if _, err := mw.Write(hdr[:]); err != nil {
		return err
	}
	buf := make([]byte, 0, 64<<10)
	for _, v := range f {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if len(buf) == cap(buf) {
			if _, err := mw.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if _, err := mw.Write(buf); err != nil {
		return err
	}
	return binary.Write(w, binary.LittleEndian, h.Sum32())
}

func writeIDs(w io.Writer, ids []string) error {
	for _, id := range ids {
		if strings.ContainsAny(id, "\n\r") {
			return fmt.Errorf("ID %q contains a line break", id)
		}
		if _, err := io.WriteString(w, id); err != nil {
			return err
		}
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
	}
	return nil
}
