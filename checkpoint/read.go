package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
)

// ReadDir reads and checks the snapshot directory dir: every file listed in
// the manifest must have its recorded size and CRC-32C, and the factor
// files must agree with the manifest's rank and row counts. A mismatch is
// an error wrapping ErrCorrupt that names the file.
func ReadDir(dir string) (*Snapshot, error) {
	mb, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, filepath.Join(dir, ManifestName), err)
	}
	if m.Format != "cofactor-snapshot" || m.Version != version {
		return nil, fmt.Errorf("%w: %s: format %q version %d (want cofactor-snapshot %d)", ErrCorrupt, filepath.Join(dir, ManifestName), m.Format, m.Version, version)
	}
	if m.Rank < 1 || m.Rank > 1<<16 || m.Users < 0 || m.Items < 0 {
		return nil, fmt.Errorf("%w: %s: rank %d, users %d, items %d", ErrCorrupt, filepath.Join(dir, ManifestName), m.Rank, m.Users, m.Items)
	}
	files := map[string][]byte{}
	for _, fi := range m.Files {
		if fi.Name != filepath.Base(fi.Name) || fi.Name == ManifestName {
			return nil, fmt.Errorf("%w: %s: bad file name %q", ErrCorrupt, filepath.Join(dir, ManifestName), fi.Name)
		}
		b, err := readChecked(filepath.Join(dir, fi.Name), fi)
		if err != nil {
			return nil, err
		}
		files[fi.Name] = b
	}
	s := &Snapshot{Manifest: m}
	for _, f := range []struct {
		name string
		rows int
		dst  *[]float32
	}{{UserFactorsName, m.Users, &s.X}, {ItemFactorsName, m.Items, &s.Y}} {
		b, ok := files[f.name]
		if !ok {
			return nil, fmt.Errorf("%w: %s: manifest lists no %s", ErrCorrupt, filepath.Join(dir, ManifestName), f.name)
		}
		if *f.dst, err = decodeFactors(b, m.Rank, f.rows); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, filepath.Join(dir, f.name), err)
		}
	}
	for _, f := range []struct {
		name string
		rows int
		dst  *[]string
	}{{UserIDsName, m.Users, &s.UserIDs}, {ItemIDsName, m.Items, &s.ItemIDs}} {
		b, ok := files[f.name]
		if !ok {
			return nil, fmt.Errorf("%w: %s: manifest lists no %s", ErrCorrupt, filepath.Join(dir, ManifestName), f.name)
		}
		ids := splitLines(b)
		if len(ids) != f.rows {
			return nil, fmt.Errorf("%w: %s: %d IDs, manifest says %d", ErrCorrupt, filepath.Join(dir, f.name), len(ids), f.rows)
		}
		*f.dst = ids
	}
	return s, nil
}

// readChecked reads a file and checks its size and CRC against fi.
func readChecked(path string, fi FileInfo) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != fi.Bytes {
		return nil, fmt.Errorf("%w: %s: %d bytes, manifest says %d", ErrCorrupt, path, st.Size(), fi.Bytes)
	}
	if fi.Bytes > MaxFactorBytes+headerBytes+4 {
		return nil, fmt.Errorf("%w: %s: %d bytes is over the %d limit", ErrCorrupt, path, fi.Bytes, int64(MaxFactorBytes))
	}
	b := make([]byte, fi.Bytes)
	if _, err := io.ReadFull(bufio.NewReader(f), b); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	if c := crc32.Checksum(b, castagnoli); c != fi.CRC32C {
		return nil, fmt.Errorf("%w: %s: CRC-32C %08x, manifest says %08x", ErrCorrupt, path, c, fi.CRC32C)
	}
	return b, nil
}

// decodeFactors checks and decodes a factor file's bytes.
func decodeFactors(b []byte, rank, rows int) ([]float32, error) {
	if len(b) < headerBytes+4 {
		return nil, fmt.Errorf("%d bytes is shorter than a header", len(b))
	}
	if string(b[:4]) != magic {
		return nil, fmt.Errorf("bad magic %q", b[:4])
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != version {
		return nil, fmt.Errorf("version %d, want %d", v, version)
	}
	k := binary.LittleEndian.Uint32(b[8:])
	n := binary.LittleEndian.Uint64(b[12:])
	if int64(k) != int64(rank) || n != uint64(rows) {
		return nil, fmt.Errorf("header says %d rows of rank %d, manifest %d of rank %d", n, k, rows, rank)
	}
	payload := uint64(len(b) - headerBytes - 4)
	if n > math.MaxInt64/4/uint64(max(k, 1)) || payload != n*uint64(k)*4 {
		return nil, fmt.Errorf("%d payload bytes for %d rows of rank %d", payload, n, k)
	}
	body := b[:len(b)-4]
	if c, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[len(b)-4:]); c != want {
		return nil, fmt.Errorf("internal CRC-32C %08x, file says %08x", c, want)
	}
	out := make([]float32, n*uint64(k))
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[headerBytes+4*i:]))
	}
	return out, nil
}

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	parts := bytes.Split(b, []byte("\n"))
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}
