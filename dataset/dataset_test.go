package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cofactor-ml/cofactor/internal/leaktest"
	"github.com/cofactor-ml/cofactor/partition"
	"github.com/cofactor-ml/cofactor/transport"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Ignored()...) }

// testStore starts an embedded JetStream server for one test and opens
// the dataset bucket on it with small chunks; it also returns the raw
// bucket, to damage it.
func testStore(t *testing.T, chunk int64) (*Store, *transport.Blobs, context.Context) {
	t.Helper()
	e, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: t.TempDir(), NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	s, err := Open(ctx, nc, WithChunkSize(chunk))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := transport.OpenBlobs(ctx, nc, Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return s, raw, ctx
}

func ratingsFile(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	b.WriteString("user,item,rating\n")
	for range n {
		fmt.Fprintf(&b, "%d,%d,%d\n", rng.IntN(500), rng.IntN(300), 1+rng.IntN(5))
	}
	return []byte(b.String())
}

func sources(files map[string][]byte, order ...string) []Source {
	var out []Source
	for _, name := range order {
		out = append(out, Source{Name: name, R: bytes.NewReader(files[name])})
	}
	return out
}

// objects lists the bucket's object names under prefix.
func objects(t *testing.T, ctx context.Context, raw *transport.Blobs, prefix string) []string {
	t.Helper()
	list, err := raw.List(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range list {
		names = append(names, o.Name)
	}
	return names
}

func TestPutInfoListReadRemove(t *testing.T) {
	t.Parallel()
	s, raw, ctx := testStore(t, 1000)
	files := map[string][]byte{"a.csv": ratingsFile(1, 700), "b.tsv": []byte("1\t2\t3\n4\t5\t6\n")}
	var progress int64
	m, err := s.Put(ctx, "ml", sources(files, "a.csv", "b.tsv"), PutOptions{Progress: func(n int64) { progress = n }})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(files["a.csv"]) + len(files["b.tsv"])); m.Bytes() != want || progress != want {
		t.Errorf("bytes %d, progress %d, want %d", m.Bytes(), progress, want)
	}
	got, err := s.Info(ctx, "ml")
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != m.Generation || len(got.Files) != 2 || got.Files[1].Format != partition.FormatTSV || got.Files[0].Format != partition.FormatCSV {
		t.Fatalf("info %+v", got)
	}
	for i, name := range []string{"a.csv", "b.tsv"} {
		// The stored index is the one of the whole file.
		x := partition.NewIndexer(name, 1000)
		x.Write(files[name])
		want, _ := x.Index(partition.FormatAuto)
		if fmt.Sprint(got.Files[i].FileIndex) != fmt.Sprint(want) {
			t.Errorf("%s: index %+v, want %+v", name, got.Files[i].FileIndex, want)
		}
		data, err := s.ReadAll(ctx, got, i)
		if err != nil || !bytes.Equal(data, files[name]) {
			t.Errorf("%s: read back %d bytes (%v), stored %d", name, len(data), err, len(files[name]))
		}
	}
	if _, err := s.Verify(ctx, "ml"); err != nil {
		t.Error(err)
	}
	if idx := got.Indexes(); idx[0].Name != "ml/a.csv" {
		t.Errorf("index names the file %q", idx[0].Name)
	}
	if _, err := s.Put(ctx, "other", sources(files, "b.tsv"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "ml" || list[1].Name != "other" {
		t.Fatalf("list %v, %v", list, err)
	}
	if err := s.Remove(ctx, "ml"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(ctx, "ml"); !errors.Is(err, ErrNotFound) {
		t.Errorf("info after remove: %v", err)
	}
	if left := objects(t, ctx, raw, "ml/"); len(left) != 0 {
		t.Errorf("objects left after remove: %v", left)
	}
	if err := s.Remove(ctx, "ml"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
}

func TestReplace(t *testing.T) {
	t.Parallel()
	s, raw, ctx := testStore(t, 512)
	first := map[string][]byte{"r.csv": ratingsFile(2, 200)}
	m1, err := s.Put(ctx, "d", sources(first, "r.csv"), PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second := map[string][]byte{"r.csv": ratingsFile(3, 100)}
	if _, err := s.Put(ctx, "d", sources(second, "r.csv"), PutOptions{}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("put over an existing dataset: %v", err)
	}
	m2, err := s.Put(ctx, "d", sources(second, "r.csv"), PutOptions{Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	data, err := s.ReadAll(ctx, m2, 0)
	if err != nil || !bytes.Equal(data, second["r.csv"]) {
		t.Fatalf("after replace: %d bytes, %v", len(data), err)
	}
	if left := objects(t, ctx, raw, "d/"+m1.Generation+"/"); len(left) != 0 {
		t.Errorf("the replaced generation's chunks stay: %v", left)
	}
	// A reader of the replaced generation fails clearly.
	if _, err := s.ReadAll(ctx, m1, 0); !errors.Is(err, ErrMissingChunk) {
		t.Errorf("reading the replaced generation: %v", err)
	}
}

// failingReader fails after n bytes, as a disk or a network might.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestFailedPutLeavesNothing(t *testing.T) {
	t.Parallel()
	s, raw, ctx := testStore(t, 256)
	good := ratingsFile(4, 300)
	tests := map[string]struct {
		files []Source
		opts  PutOptions
		want  error
	}{
		"read error":   {[]Source{{"a.csv", bytes.NewReader(good)}, {"b.csv", &failingReader{bytes.NewReader(good), 2000}}}, PutOptions{}, nil},
		"undetectable": {[]Source{{"a.csv", bytes.NewReader(good)}, {"c.txt", strings.NewReader("hello\nworld\n")}}, PutOptions{}, partition.ErrFormat},
		"empty file":   {[]Source{{"e.csv", strings.NewReader("\n\n")}}, PutOptions{}, partition.ErrEmpty},
		"bad format":   {[]Source{{"a.csv", bytes.NewReader(good)}}, PutOptions{Format: "xls"}, partition.ErrFormat},
		"same names":   {[]Source{{"a.csv", bytes.NewReader(good)}, {"a.csv", bytes.NewReader(good)}}, PutOptions{}, nil},
		"slash":        {[]Source{{"x/a.csv", bytes.NewReader(good)}}, PutOptions{}, nil},
	}
	for name, tc := range tests {
		_, err := s.Put(ctx, "broken", tc.files, tc.opts)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: error %v, want %v", name, err, tc.want)
		}
		if left := objects(t, ctx, raw, "broken/"); len(left) != 0 {
			t.Errorf("%s: objects left: %v", name, left)
		}
	}
	if list, err := s.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("list after failed puts: %v %v", list, err)
	}
	// A crashed put leaves chunks without a manifest: invisible, and
	// Remove clears them.
	if err := raw.Put(ctx, chunkName("crashed", "0123456789abcdef", 0, 0), []byte("1,2,3\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(ctx, "crashed"); !errors.Is(err, ErrNotFound) {
		t.Errorf("info of a crashed put: %v", err)
	}
	if err := s.Remove(ctx, "crashed"); err != nil {
		t.Errorf("remove of a crashed put: %v", err)
	}
	if left := objects(t, ctx, raw, "crashed/"); len(left) != 0 {
		t.Errorf("objects left: %v", left)
	}
}

func TestDamagedChunks(t *testing.T) {
	t.Parallel()
	s, raw, ctx := testStore(t, 300)
	data := ratingsFile(5, 200)
	m, err := s.Put(ctx, "dmg", []Source{{"r.csv", bytes.NewReader(data)}}, PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	read := func() error {
		_, err := s.ReadAll(ctx, m, 0)
		return err
	}
	// A chunk whose bytes changed (same length): its CRC tells.
	chunk := chunkName("dmg", m.Generation, 0, 2)
	orig, err := raw.Get(ctx, chunk, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(orig)
	flipped[10] ^= 0x20
	raw.Put(ctx, chunk, flipped)
	err = read()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `dataset "dmg": file r.csv: chunk 2 of`) {
		t.Errorf("flipped byte: %v", err)
	}
	if _, err := s.Verify(ctx, "dmg"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("verify: %v", err)
	}
	// A chunk of another length.
	raw.Put(ctx, chunk, orig[:100])
	if err := read(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short chunk: %v", err)
	}
	raw.Put(ctx, chunk, append(bytes.Clone(orig), 'x'))
	if err := read(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("long chunk: %v", err)
	}
	// A missing chunk.
	raw.Delete(ctx, chunk)
	err = read()
	if !errors.Is(err, ErrMissingChunk) || !strings.Contains(err.Error(), "chunk 2 of") {
		t.Errorf("missing chunk: %v", err)
	}
	raw.Put(ctx, chunk, orig)
	if err := read(); err != nil {
		t.Errorf("repaired: %v", err)
	}
	// A damaged manifest.
	raw.Put(ctx, manifestName("dmg"), []byte(`{"format":"cofactor-dataset","version":1,"name":"dmg"`))
	if _, err := s.Info(ctx, "dmg"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("damaged manifest: %v", err)
	}
	if _, err := s.Put(ctx, "dmg", []Source{{"r.csv", bytes.NewReader(data)}}, PutOptions{Replace: true}); err != nil {
		t.Errorf("replacing a damaged dataset: %v", err)
	}
}

// TestShardsFromTheStore: shards read through the store parse as the
// local file does, and a damaged chunk fails the shard that reads it.
func TestShardsFromTheStore(t *testing.T) {
	t.Parallel()
	s, raw, ctx := testStore(t, 700)
	data := ratingsFile(6, 3000)
	m, err := s.Put(ctx, "sh", []Source{{"r.csv", bytes.NewReader(data)}}, PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	partition.Scan(ctx, bytes.NewReader(data), partition.ScanOptions{}, func(u, i []byte, r float32) error {
		want = append(want, fmt.Sprintf("%s/%s/%g", u, i, r))
		return nil
	})
	ix := m.Indexes()
	shards := partition.CutShards(ix, partition.FormatAuto, 9, false)
	if len(shards) < 5 {
		t.Fatalf("%d shards", len(shards))
	}
	var got []string
	for _, sh := range shards {
		r := s.Reader(ctx, m, sh.File)
		_, err := partition.ScanShard(ctx, r, &ix[sh.File], sh, partition.ScanOptions{}, func(u, i []byte, v float32, _ int64) error {
			got = append(got, fmt.Sprintf("%s/%s/%g", u, i, v))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%d ratings through shards, %d in the file", len(got), len(want))
	}
	raw.Delete(ctx, chunkName("sh", m.Generation, 0, m.Files[0].Chunks()-1))
	last := shards[len(shards)-1]
	_, err = partition.ScanShard(ctx, s.Reader(ctx, m, 0), &ix[0], last, partition.ScanOptions{}, func([]byte, []byte, float32, int64) error { return nil })
	if !errors.Is(err, ErrMissingChunk) {
		t.Errorf("shard over a missing chunk: %v", err)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", ".", "..", "a/b", "-x", "a b", strings.Repeat("x", 129), "é"} {
		if err := ValidName(name); !errors.Is(err, ErrName) {
			t.Errorf("%q accepted", name)
		}
	}
	for _, name := range []string{"ml-100k", "netflix_2006", "v1.2", "A"} {
		if err := ValidName(name); err != nil {
			t.Errorf("%q refused: %v", name, err)
		}
	}
}

func TestManifestCheck(t *testing.T) {
	t.Parallel()
	x := partition.NewIndexer("r.csv", 4)
	x.Write([]byte("1,2,3\n"))
	ix, _ := x.Index("")
	good := Manifest{Format: ManifestFormat, Version: ManifestVersion, Name: "d", Generation: "0123456789abcdef",
		Files: []File{{FileIndex: ix, SHA256: strings.Repeat("0", 64), CRC32C: []uint32{1, 2}}}}
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(m *Manifest){
		"version":    func(m *Manifest) { m.Version = 2 },
		"generation": func(m *Manifest) { m.Generation = "../x" },
		"no files":   func(m *Manifest) { m.Files = nil },
		"crcs":       func(m *Manifest) { m.Files[0].CRC32C = m.Files[0].CRC32C[:1] },
		"sha":        func(m *Manifest) { m.Files[0].SHA256 = "zz" },
		"chunk size": func(m *Manifest) { m.Files[0].ChunkSize = 0 },
		"two names":  func(m *Manifest) { m.Files = append(m.Files, m.Files[0]) },
		"newlines":   func(m *Manifest) { m.Files[0].Newlines = []int64{9, 9} },
	} {
		m := good
		m.Files = append([]File(nil), good.Files...)
		m.Files[0].CRC32C = append([]uint32(nil), good.Files[0].CRC32C...)
		mut(&m)
		if err := m.Check(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
