package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStores runs the same checks on both Store implementations.
func TestStores(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				name string
				run  func(t *testing.T, s Store, p Pointers)
			}{
				{"PutGetDeleteList", testPutGetDeleteList},
				{"Missing", testMissing},
				{"Oversize", testOversize},
				{"Pointers", testPointers},
				{"Watch", testWatch},
				{"WatchWithoutValue", testWatchWithoutValue},
				{"PutFrom", testPutFrom},
			} {
				t.Run(tc.name, func(t *testing.T) {
					s, p := kind.open(t)
					tc.run(t, s, p)
				})
			}
		})
	}
}

func testPutGetDeleteList(t *testing.T, s Store, _ Pointers) {
	ctx := context.Background()
	files := map[string][]byte{
		"a/manifest.json":    []byte(`{"x":1}`),
		"a/users.0000.cfcf":  bytes.Repeat([]byte{1, 2, 3}, 200000), // several Object Store chunks
		"ab/items.0000.cfcf": []byte("ab"),
		"b/x":                {},
		"latest.m":           []byte("a\n"),
	}
	for n, b := range files {
		if err := s.Put(ctx, n, b); err != nil {
			t.Fatalf("Put %s: %v", n, err)
		}
	}
	for n, b := range files {
		got, err := s.Get(ctx, n, int64(len(b)))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("Get %s: %d bytes, %v; want %d bytes", n, len(got), err, len(b))
		}
	}
	// Put replaces.
	if err := s.Put(ctx, "b/x", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "b/x", 100); err != nil || string(got) != "new" {
		t.Fatalf("after a second Put: %q, %v", got, err)
	}
	for prefix, want := range map[string][]string{
		"":       {"a/manifest.json", "a/users.0000.cfcf", "ab/items.0000.cfcf", "b/x", "latest.m"},
		"a/":     {"a/manifest.json", "a/users.0000.cfcf"},
		"a":      {"a/manifest.json", "a/users.0000.cfcf", "ab/items.0000.cfcf"},
		"latest": {"latest.m"},
		"zzz":    nil,
	} {
		got, err := s.List(ctx, prefix)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, %v; want %q", prefix, got, err, want)
		}
	}
	if err := s.Delete(ctx, "a/manifest.json"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "a/manifest.json"); err != nil {
		t.Errorf("deleting a missing name: %v", err)
	}
	if _, err := s.Get(ctx, "a/manifest.json", 100); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	if got, _ := s.List(ctx, "a/"); !slices.Equal(got, []string{"a/users.0000.cfcf"}) {
		t.Errorf("List after Delete = %q", got)
	}
}

func testMissing(t *testing.T, s Store, _ Pointers) {
	ctx := context.Background()
	for _, n := range []string{"nothing", "no/such/file"} {
		if _, err := s.Get(ctx, n, 100); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), n) {
			t.Errorf("Get %s: %v, want ErrNotFound naming it", n, err)
		}
	}
	if got, err := s.List(ctx, ""); err != nil || len(got) != 0 {
		t.Errorf("List of an empty store: %q, %v", got, err)
	}
}

func testOversize(t *testing.T, s Store, _ Pointers) {
	ctx := context.Background()
	if err := s.Put(ctx, "big", make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "big", 999)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "big") || got != nil {
		t.Errorf("Get over the limit: %d bytes, %v; want ErrCorrupt naming the file", len(got), err)
	}
	if got, err := s.Get(ctx, "big", 1000); err != nil || len(got) != 1000 {
		t.Errorf("Get at the limit: %d bytes, %v", len(got), err)
	}
}

func testPointers(t *testing.T, _ Store, p Pointers) {
	ctx := context.Background()
	if _, err := p.Latest(ctx, "m"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Latest of a model without a pointer: %v, want ErrNotFound", err)
	}
	for _, id := range []string{"s1", "s2-it0003"} {
		if err := p.SetLatest(ctx, "m", id); err != nil {
			t.Fatal(err)
		}
		if got, err := p.Latest(ctx, "m"); err != nil || got != id {
			t.Errorf("Latest = %q, %v; want %q", got, err, id)
		}
	}
	if err := p.SetLatest(ctx, "other", "s9"); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Latest(ctx, "m"); got != "s2-it0003" {
		t.Errorf("another model's pointer moved m's to %q", got)
	}
	for _, model := range []string{"", "a/b", "../x"} {
		if err := p.SetLatest(ctx, model, "s1"); err == nil {
			t.Errorf("SetLatest accepts model %q", model)
		}
		if _, err := p.Latest(ctx, model); err == nil {
			t.Errorf("Latest accepts model %q", model)
		}
		if _, err := p.Watch(ctx, model); err == nil {
			t.Errorf("Watch accepts model %q", model)
		}
	}
}

// Bug: neither SetLatest checks the snapshot ID. DirStore's Latest then
// fails on what SetLatest wrote (ErrCorrupt); BlobStore's Latest returns
// it as is, and an empty ID makes Repo.Open read the store's root as a
// snapshot. The stores must refuse it at SetLatest, alike.
func TestSetLatestRefusesBadIDs(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			_, p := kind.open(t)
			ctx := context.Background()
			for _, id := range []string{"", "../x", "a/b", "a b"} {
				if err := p.SetLatest(ctx, "m", id); err == nil {
					got, err := p.Latest(ctx, "m")
					t.Errorf("SetLatest(m, %q) accepted; Latest now gives %q, %v", id, got, err)
				}
			}
		})
	}
}

// next waits up to a second for a value on ch.
func next(t *testing.T, ch <-chan string) (string, bool) {
	t.Helper()
	select {
	case v, ok := <-ch:
		return v, ok
	case <-time.After(time.Second):
		t.Fatal("nothing within 1 s")
		return "", false
	}
}

func testWatch(t *testing.T, _ Store, p Pointers) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := p.SetLatest(ctx, "m", "s1"); err != nil {
		t.Fatal(err)
	}
	ch, err := p.Watch(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := next(t, ch); !ok || v != "s1" {
		t.Fatalf("first value %q (open %v), want the current s1", v, ok)
	}
	for _, id := range []string{"s2", "s3", "s4"} {
		if err := p.SetLatest(ctx, "m", id); err != nil {
			t.Fatal(err)
		}
		if err := p.SetLatest(ctx, "other", "x"+id); err != nil {
			t.Fatal(err)
		}
		if v, ok := next(t, ch); !ok || v != id {
			t.Fatalf("after SetLatest %s: %q (open %v)", id, v, ok)
		}
	}
	cancel()
	deadline := time.After(time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the channel is still open 1 s after the context ended")
		}
	}
}

func testWatchWithoutValue(t *testing.T, _ Store, p Pointers) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := p.Watch(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-ch:
		t.Fatalf("a value %q before any SetLatest", v)
	case <-time.After(3 * DirPollInterval):
	}
	if err := p.SetLatest(ctx, "m", "first"); err != nil {
		t.Fatal(err)
	}
	if v, ok := next(t, ch); !ok || v != "first" {
		t.Fatalf("got %q (open %v), want first", v, ok)
	}
	cancel()
	for range ch {
	}
}

func TestDirStoreRefusesNamesOutsideTheRoot(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "store")
	d := DirStore{Root: root}
	ctx := context.Background()
	for _, n := range []string{"", "..", "../x", "a/../../x", "/etc/x"} {
		if err := d.Put(ctx, n, []byte("x")); err == nil {
			t.Errorf("Put %q accepted", n)
		}
		if _, err := d.Get(ctx, n, 10); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get %q: %v, want a refusal", n, err)
		}
		if err := d.Delete(ctx, n); err == nil {
			t.Errorf("Delete %q accepted", n)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(root)); len(ents) != 0 {
		t.Errorf("files outside the root: %v", ents)
	}
}

func TestDirStorePutLeavesNoTemporaries(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d := DirStore{Root: root}
	ctx := context.Background()
	for i := range 5 {
		if err := d.Put(ctx, "s/f", bytes.Repeat([]byte{byte(i)}, 10)); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(root, "s"))
	if err != nil || len(ents) != 1 || ents[0].Name() != "f" {
		t.Errorf("directory holds %v (%v), want only f", ents, err)
	}
	if st, err := os.Stat(filepath.Join(root, "s", "f")); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v", st.Mode(), err)
	}
}

// Bug: DirStore.Delete removes the directory holding the name when it is
// left empty, and for a name at the top that is the store's root itself:
// deleting a model's only pointer removes the directory an operator made
// (with its owner and mode) or mounted.
func TestDirStoreDeleteKeepsTheRoot(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "snapshots")
	if err := os.Mkdir(root, 0o750); err != nil {
		t.Fatal(err)
	}
	d := DirStore{Root: root}
	ctx := context.Background()
	if err := d.SetLatest(ctx, "m", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "latest.m"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("the store's root is gone after deleting its last file: %v", err)
	}
}

// Bug: DirStore.List walks into hidden directories, such as the
// temporary copy that CopyToDir builds beside its target: a listing made
// while a snapshot is pulled into the store's root (or after a crash left
// the copy) shows the half-built copy's files, and Repo.List shows the
// snapshot twice.
func TestDirStoreListSkipsHiddenDirectories(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	src := NewRepo(DirStore{Root: t.TempDir()}, nil)
	writeSnapshot(t, src, "s1", "m", time.Now(), true)
	// What CopyToDir(ctx, src, "s1", root+"/s1") leaves beside its target
	// while it works.
	if err := CopyToDir(context.Background(), src, "s1", filepath.Join(root, ".s1.tmp-123")); err != nil {
		t.Fatal(err)
	}
	d := DirStore{Root: root}
	if names, _ := d.List(context.Background(), ""); len(names) != 0 {
		t.Errorf("List shows %q", names)
	}
	if list, _ := NewRepo(d, d).List(context.Background(), ""); len(list) != 0 {
		t.Errorf("Repo.List shows %d snapshots, want none", len(list))
	}
}

// testPutFrom: a streamed file is stored whole from many small writes,
// repeating it is harmless, and a writer that fails midway leaves the
// name as it was (the old file, or none).
func testPutFrom(t *testing.T, s Store, _ Pointers) {
	ctx := context.Background()
	ss, ok := s.(StreamStore)
	if !ok {
		t.Fatalf("%T does not take streams", s)
	}
	data := make([]byte, 700_000) // several Object Store chunks
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	writeIn := func(piece int, data []byte, failAt int) func(io.Writer) error {
		return func(w io.Writer) error {
			for off := 0; off < len(data); off += piece {
				if failAt >= 0 && off >= failAt {
					return errInjected
				}
				if _, err := w.Write(data[off:min(off+piece, len(data))]); err != nil {
					return err
				}
			}
			return nil
		}
	}
	for range 2 { // the second time the same bytes are there already
		if err := ss.PutFrom(ctx, "s/users.0000.cfcf", writeIn(1000, data, -1)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, "s/users.0000.cfcf", int64(len(data))); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get after PutFrom: %d bytes, %v; want %d bytes", len(got), err, len(data))
		}
	}
	other := slices.Clone(data)
	other[len(other)-1]++
	err := ss.PutFrom(ctx, "s/users.0000.cfcf", writeIn(4096, other, 300_000))
	if !errors.Is(err, errInjected) {
		t.Fatalf("a writer failing midway: %v, want its error", err)
	}
	if got, err := s.Get(ctx, "s/users.0000.cfcf", int64(len(data))); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after a failed PutFrom the old file is gone: %d bytes, %v", len(got), err)
	}
	if err := ss.PutFrom(ctx, "s/new", writeIn(4096, other, 200_000)); !errors.Is(err, errInjected) {
		t.Fatalf("a writer failing midway: %v, want its error", err)
	}
	if _, err := s.Get(ctx, "s/new", 1<<20); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed PutFrom of a new name left something: %v", err)
	}
	if got, err := s.List(ctx, "s/"); err != nil || !slices.Equal(got, []string{"s/users.0000.cfcf"}) {
		t.Fatalf("List after a failed PutFrom = %q, %v", got, err)
	}
}

var errInjected = errors.New("injected writer failure")
