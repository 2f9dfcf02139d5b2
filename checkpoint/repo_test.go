package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// checkTestModel checks an opened test snapshot against what writeSnapshot
// wrote.
func checkTestModel(t *testing.T, md *Model, final bool) {
	t.Helper()
	users, items := slices.Concat(testUserBlocks...), slices.Concat(testItemBlocks...)
	if md.Rank != testRank || !slices.Equal(md.UserIDs, users) || !slices.Equal(md.ItemIDs, items) {
		t.Fatalf("rank %d, users %q, items %q", md.Rank, md.UserIDs, md.ItemIDs)
	}
	for _, side := range []struct {
		name   string
		ids    []string
		f      []float32
		counts []int32
		lookup func(string) (int32, bool)
		row    func(int32) []float32
	}{
		{SideUsers, users, md.X, md.UserCounts, md.User, md.UserRow},
		{SideItems, items, md.Y, md.ItemCounts, md.Item, md.ItemRow},
	} {
		if len(side.f) != len(side.ids)*testRank || len(side.counts) != len(side.ids) {
			t.Fatalf("%s: %d factors, %d counts", side.name, len(side.f), len(side.counts))
		}
		for r, id := range side.ids {
			if got, ok := side.lookup(id); !ok || got != int32(r) {
				t.Errorf("%s %q: row %d, %v; want %d", side.name, id, got, ok, r)
			}
			if side.counts[r] != int32(10*r+1) {
				t.Errorf("%s row %d: count %d", side.name, r, side.counts[r])
			}
			for k, v := range side.row(int32(r)) {
				if want := testFactor(side.name, r, k); v != want {
					t.Errorf("%s row %d factor %d = %g, want %g", side.name, r, k, v, want)
				}
			}
		}
		if _, ok := side.lookup("nobody"); ok {
			t.Errorf("%s: an unknown ID was found", side.name)
		}
	}
	if md.HasSeen() != final {
		t.Fatalf("HasSeen %v, want %v", md.HasSeen(), final)
	}
	for u := range users {
		want := testSeen[u]
		if !final {
			want = nil
		}
		if got := md.Seen(int32(u)); !slices.Equal(got, want) {
			t.Errorf("user %d seen %v, want %v", u, got, want)
		}
	}
}

func TestRepoWriteOpen(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			s, p := kind.open(t)
			r := NewRepo(s, p)
			ctx := context.Background()
			created := time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)
			written := writeSnapshot(t, r, "job-1-it0004", "default", created, true)
			writeSnapshot(t, r, "job-1-it0002", "default", created.Add(-time.Hour), false)

			m, err := r.Manifest(ctx, "job-1-it0004")
			if err != nil {
				t.Fatal(err)
			}
			if m.ID != "job-1-it0004" || m.Model != "default" || m.Users != 5 || m.Items != 5 || m.UserBlocks != 2 || m.ItemBlocks != 3 ||
				!m.Created.Equal(created) || len(m.Files) != 7 || m.Metrics["train_rmse"] != 0.75 || m.Format != formatName || m.Version != fileVersion {
				t.Errorf("manifest %+v", m)
			}
			if !slices.IsSortedFunc(m.Files, compareFiles) || len(written.Files) != len(m.Files) {
				t.Errorf("files %v", m.Files)
			}
			md, err := r.Open(ctx, "job-1-it0004")
			if err != nil {
				t.Fatal(err)
			}
			checkTestModel(t, md, true)
			if md.Manifest.ID != "job-1-it0004" {
				t.Errorf("model manifest %+v", md.Manifest)
			}
			md, err = r.Open(ctx, "job-1-it0002")
			if err != nil {
				t.Fatal(err)
			}
			checkTestModel(t, md, false)
			if err := r.Verify(ctx, "job-1-it0004"); err != nil {
				t.Error(err)
			}
			blk, err := r.ReadBlock(ctx, "job-1-it0004", m, SideItems, 2)
			if err != nil || !slices.Equal(blk.IDs, testItemBlocks[2]) {
				t.Errorf("ReadBlock items 2: %v, %v", blk, err)
			}
			if _, err := r.ReadBlock(ctx, "job-1-it0004", m, SideItems, 3); !errors.Is(err, ErrNotFound) {
				t.Errorf("ReadBlock of a block that is not there: %v", err)
			}
			if _, err := r.Open(ctx, "nothing"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Open of a missing snapshot: %v", err)
			}
			// Committing the same manifest again is harmless.
			if err := r.Commit(ctx, "job-1-it0004", written); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Open(ctx, "job-1-it0004"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestRepoCommitRefusesABadManifest(t *testing.T) {
	t.Parallel()
	d := DirStore{Root: t.TempDir()}
	r := NewRepo(d, d)
	m := testManifest()
	m.Users = 99
	if err := r.Commit(context.Background(), "s", m); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Commit: %v", err)
	}
	if names, _ := d.List(context.Background(), ""); len(names) != 0 {
		t.Errorf("written: %q", names)
	}
}

func TestRepoListLatestPublish(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			s, p := kind.open(t)
			r := NewRepo(s, p)
			ctx := context.Background()
			t0 := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
			// Written out of order: List sorts by creation.
			writeSnapshot(t, r, "b-2", "beta", t0.Add(2*time.Minute), true)
			writeSnapshot(t, r, "a-3", "alpha", t0.Add(3*time.Minute), true)
			writeSnapshot(t, r, "a-1", "alpha", t0.Add(1*time.Minute), false)
			// A snapshot without a manifest (being written) and a broken
			// manifest are not listed.
			if err := s.Put(ctx, "a-4/users.0000.cfcf", []byte("partial")); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, "a-5/manifest.json", []byte("{")); err != nil {
				t.Fatal(err)
			}
			ids := func(list []Manifest) []string {
				var out []string
				for _, m := range list {
					out = append(out, m.ID)
				}
				return out
			}
			for model, want := range map[string][]string{"": {"a-1", "b-2", "a-3"}, "alpha": {"a-1", "a-3"}, "beta": {"b-2"}, "gamma": nil} {
				list, err := r.List(ctx, model)
				if err != nil || !slices.Equal(ids(list), want) {
					t.Errorf("List(%q) = %q, %v; want %q", model, ids(list), err, want)
				}
			}
			if _, err := r.Latest(ctx, "alpha"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Latest before Publish: %v", err)
			}
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			ch, err := r.Watch(wctx, "alpha")
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"a-1", "a-3"} {
				if err := r.Publish(ctx, "alpha", id); err != nil {
					t.Fatal(err)
				}
				if got, err := r.Latest(ctx, "alpha"); err != nil || got != id {
					t.Errorf("Latest = %q, %v; want %s", got, err, id)
				}
				if got, _ := next(t, ch); got != id {
					t.Errorf("Watch sent %q, want %s", got, id)
				}
			}
			cancel()
			for range ch {
			}
		})
	}
}

// recordingStore notes the order of deletions and can fail chosen ones.
type recordingStore struct {
	Store
	mu      sync.Mutex
	deleted []string
	failOn  string
}

func (s *recordingStore) Delete(ctx context.Context, name string) error {
	s.mu.Lock()
	s.deleted = append(s.deleted, name)
	s.mu.Unlock()
	if name == s.failOn {
		return errors.New("injected failure")
	}
	return s.Store.Delete(ctx, name)
}

func TestRepoDelete(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			s, p := kind.open(t)
			rec := &recordingStore{Store: s}
			r := NewRepo(rec, p)
			ctx := context.Background()
			writeSnapshot(t, r, "s1", "m", time.Now(), true)
			writeSnapshot(t, r, "s10", "m", time.Now(), true) // shares the prefix "s1"
			if err := r.Delete(ctx, "s1"); err != nil {
				t.Fatal(err)
			}
			if len(rec.deleted) != 8 || rec.deleted[0] != "s1/manifest.json" {
				t.Errorf("deleted %q; want the manifest first, then the 7 files", rec.deleted)
			}
			if names, _ := s.List(ctx, "s1/"); len(names) != 0 {
				t.Errorf("left: %q", names)
			}
			if _, err := r.Open(ctx, "s10"); err != nil {
				t.Errorf("the other snapshot: %v", err)
			}
			if err := r.Delete(ctx, ""); err == nil {
				t.Error("deleting the root snapshot accepted")
			}
			// A failure after the manifest is gone leaves a snapshot no
			// reader lists or opens.
			rec.failOn = "s10/users.0001.cfcf"
			if err := r.Delete(ctx, "s10"); err == nil {
				t.Error("the injected failure was not reported")
			}
			if list, _ := r.List(ctx, ""); len(list) != 0 {
				t.Errorf("listed after a failed Delete: %v", list)
			}
			if _, err := r.Open(ctx, "s10"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Open after a failed Delete: %v", err)
			}
		})
	}
}

func TestRepoRetain(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			s, p := kind.open(t)
			r := NewRepo(s, p)
			ctx := context.Background()
			t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			for i := range 6 {
				writeSnapshot(t, r, fmt.Sprintf("f%d", i), "m", t0.Add(time.Duration(i)*time.Hour), true)
			}
			writeSnapshot(t, r, "interim", "m", t0, false)
			writeSnapshot(t, r, "other0", "other", t0, true)
			writeSnapshot(t, r, "other1", "other", t0.Add(time.Hour), true)
			// The latest pointer names an old snapshot (a rollback).
			if err := r.Publish(ctx, "m", "f0"); err != nil {
				t.Fatal(err)
			}
			deleted, err := r.Retain(ctx, "m", 2, "f2")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(deleted, []string{"f1", "f3"}) {
				t.Errorf("deleted %q, want f1 and f3", deleted)
			}
			var left []string
			list, _ := r.List(ctx, "")
			for _, m := range list {
				left = append(left, m.ID)
			}
			slices.Sort(left)
			if want := []string{"f0", "f2", "f4", "f5", "interim", "other0", "other1"}; !slices.Equal(left, want) {
				t.Errorf("left %q, want %q", left, want)
			}
			if names, _ := s.List(ctx, "f1/"); len(names) != 0 {
				t.Errorf("files of f1 left: %q", names)
			}
			// Keeping more than there are deletes nothing; keep 0 deletes
			// all but the protected.
			if deleted, err := r.Retain(ctx, "m", 10); err != nil || len(deleted) != 0 {
				t.Errorf("keep 10: %q, %v", deleted, err)
			}
			if deleted, err := r.Retain(ctx, "m", 0, "f4"); err != nil || !slices.Equal(deleted, []string{"f2", "f5"}) {
				t.Errorf("keep 0: %q, %v; want f2, f5", deleted, err)
			}
		})
	}
}

// Bug: Retain with a negative keep indexes past its list and panics
// (index out of range) instead of refusing the argument.
func TestRepoRetainNegativeKeep(t *testing.T) {
	t.Parallel()
	d := DirStore{Root: t.TempDir()}
	r := NewRepo(d, d)
	writeSnapshot(t, r, "f0", "m", time.Now(), true)
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("Retain(keep -1) panics: %v", p)
		}
	}()
	if deleted, err := r.Retain(context.Background(), "m", -1); err == nil && len(deleted) != 0 {
		t.Errorf("keep -1 deleted %q", deleted)
	}
}

// dirEntries lists a directory's names.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestCopyToDir(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			s, p := kind.open(t)
			src := NewRepo(s, p)
			ctx := context.Background()
			writeSnapshot(t, src, "new", "m", time.Now(), true)
			parent := t.TempDir()

			// Absent target.
			absent := filepath.Join(parent, "absent")
			if err := CopyToDir(ctx, src, "new", absent); err != nil {
				t.Fatal(err)
			}
			md, err := ReadDir(ctx, absent)
			if err != nil {
				t.Fatal(err)
			}
			checkTestModel(t, md, true)
			if got := dirEntries(t, absent); len(got) != 8 {
				t.Errorf("copy holds %q", got)
			}

			// Empty target.
			empty := filepath.Join(parent, "empty")
			if err := os.Mkdir(empty, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := CopyToDir(ctx, src, "new", empty); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadDir(ctx, empty); err != nil {
				t.Fatal(err)
			}

			// An old snapshot is replaced whole: none of its files stay.
			old := filepath.Join(parent, "old")
			writeOneRowSnapshot(t, old)
			if err := CopyToDir(ctx, src, "new", old); err != nil {
				t.Fatal(err)
			}
			md, err = ReadDir(ctx, old)
			if err != nil {
				t.Fatal(err)
			}
			checkTestModel(t, md, true)

			// A directory holding other files, and a file, are refused and
			// left as they were.
			other := filepath.Join(parent, "other")
			if err := os.Mkdir(other, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(parent, "file")
			if err := os.WriteFile(file, []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, target := range []string{other, file} {
				if err := CopyToDir(ctx, src, "new", target); !errors.Is(err, ErrExists) {
					t.Errorf("%s: %v, want ErrExists", filepath.Base(target), err)
				}
			}
			if got := dirEntries(t, other); !slices.Equal(got, []string{"notes.txt"}) {
				t.Errorf("the refused directory now holds %q", got)
			}
			if b, _ := os.ReadFile(file); string(b) != "mine" {
				t.Errorf("the refused file holds %q", b)
			}
			if err := CopyToDir(ctx, src, "new", filepath.Join(parent, "no", "such", "parent")); err == nil {
				t.Error("a target whose parent is missing accepted")
			}
			if err := CopyToDir(ctx, src, "missing", filepath.Join(parent, "m")); !errors.Is(err, ErrNotFound) {
				t.Errorf("a missing snapshot: %v", err)
			}

			// A damaged source file fails the copy: the target keeps the
			// old snapshot and no temporary is left behind.
			if err := s.Put(ctx, "new/items.0002.cfcf", []byte("damaged")); err != nil {
				t.Fatal(err)
			}
			// A repeat into a directory that already holds the complete
			// snapshot (a re-sent export) leaves it alone.
			if err := CopyToDir(ctx, src, "new", absent); err != nil {
				t.Errorf("repeating a completed copy: %v", err)
			}
			if _, err := ReadDir(ctx, absent); err != nil {
				t.Errorf("the previous copy: %v", err)
			}
			keep := filepath.Join(parent, "keep")
			writeOneRowSnapshot(t, keep)
			err = CopyToDir(ctx, src, "new", keep)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "new/items.0002.cfcf") {
				t.Errorf("copying a damaged snapshot: %v", err)
			}
			if md, err := ReadDir(ctx, keep); err != nil || len(md.UserIDs) != 1 {
				t.Errorf("the target's previous snapshot after a failed copy: %v", err)
			}
			if err := CopyToDir(ctx, src, "new", filepath.Join(parent, "fresh")); err == nil {
				t.Error("copying a damaged snapshot succeeded")
			}
			want := []string{"absent", "empty", "file", "keep", "old", "other"}
			if got := dirEntries(t, parent); !slices.Equal(got, want) {
				t.Errorf("the parent holds %q, want %q", got, want)
			}
		})
	}
}

// flipByte flips one byte of a file in place.
func flipByte(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x40
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// MUST SHOW: one flipped byte, or a cut, in a factor file of a committed
// snapshot makes Verify and Open fail with ErrCorrupt naming that file.
func TestDamagedFileIsNamed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"flipped byte", func(t *testing.T, p string) { flipByte(t, p, 30) }, "users.0001.cfcf: CRC-32C "},
		{"flipped last byte", func(t *testing.T, p string) { st, _ := os.Stat(p); flipByte(t, p, int(st.Size())-1) }, "users.0001.cfcf: CRC-32C "},
		{"truncated", func(t *testing.T, p string) {
			if err := os.Truncate(p, 40); err != nil {
				t.Fatal(err)
			}
		}, "users.0001.cfcf: 40 bytes, the manifest says "},
		{"emptied", func(t *testing.T, p string) {
			if err := os.Truncate(p, 0); err != nil {
				t.Fatal(err)
			}
		}, "users.0001.cfcf: 0 bytes, the manifest says "},
		{"grown", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte{0})
			f.Close()
		}, "users.0001.cfcf: "},
		{"removed", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}, "users.0001.cfcf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// In a store, under a snapshot ID.
			root := t.TempDir()
			d := DirStore{Root: root}
			r := NewRepo(d, d)
			writeSnapshot(t, r, "s1", "m", time.Now(), true)
			tc.damage(t, filepath.Join(root, "s1", "users.0001.cfcf"))
			for what, err := range map[string]error{"Verify": r.Verify(ctx, "s1"), "Open": func() error { _, err := r.Open(ctx, "s1"); return err }()} {
				wantErr := ErrCorrupt
				if tc.name == "removed" {
					wantErr = ErrNotFound
				}
				if !errors.Is(err, wantErr) || !strings.Contains(err.Error(), "s1/"+tc.want) {
					t.Errorf("%s: %v; want %v naming s1/%s", what, err, wantErr, tc.want)
				}
			}
			// In a snapshot directory.
			dir := filepath.Join(t.TempDir(), "snap")
			src := NewRepo(DirStore{Root: t.TempDir()}, nil)
			writeSnapshot(t, src, "s1", "m", time.Now(), true)
			if err := CopyToDir(ctx, src, "s1", dir); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, filepath.Join(dir, "users.0001.cfcf"))
			if _, err := ReadDir(ctx, dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadDir: %v; want an error naming %s", err, tc.want)
			}
		})
	}
}

// The file's own CRC catches damage that a rewritten manifest vouches for.
func TestDamageBehindARewrittenManifest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	d := DirStore{Root: root}
	r := NewRepo(d, d)
	m := writeSnapshot(t, r, "s1", "m", time.Now(), true)
	p := filepath.Join(root, "s1", "items.0002.cfcf")
	orig, _ := os.ReadFile(p)
	flipByte(t, p, 50)
	b, _ := os.ReadFile(p)
	for i, f := range m.Files {
		if f.Name == "items.0002.cfcf" {
			// The manifest's CRC of the damaged file, taken as the
			// manifest takes it: over the whole file or without its
			// trailer.
			if f.CRC32C == crcOf(orig) {
				m.Files[i].CRC32C = crcOf(b)
			} else {
				m.Files[i].CRC32C = crcOf(b[:len(b)-crcBytes])
			}
		}
	}
	if err := r.Commit(ctx, "s1", m); err != nil {
		t.Fatal(err)
	}
	err := r.Verify(ctx, "s1")
	wantCorrupt(t, "Verify", err, "s1/items.0002.cfcf", "the file says")
}

func TestDamagedManifestIsNamed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	d := DirStore{Root: root}
	r := NewRepo(d, d)
	writeSnapshot(t, r, "s1", "m", time.Now(), true)
	p := filepath.Join(root, "s1", ManifestName)
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	err := r.Verify(ctx, "s1")
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "s1/manifest.json") {
		t.Errorf("Verify: %v", err)
	}
}

func TestOpenURI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	for _, uri := range []string{dir, "dir:" + dir} {
		r, err := OpenURI(ctx, uri, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ds, ok := r.Store.(DirStore); !ok || ds.Root != dir {
			t.Errorf("%s: store %#v", uri, r.Store)
		}
		r.Close()
	}
	for _, uri := range []string{"", "nats", "dir:"} {
		if _, err := OpenURI(ctx, uri, nil); !errors.Is(err, ErrURI) {
			t.Errorf("%q: %v, want ErrURI", uri, err)
		}
	}
}

// Bug: the manifest's CRC-32C of a file is taken over the whole file,
// whose last four bytes are the CRC-32C of the rest. A CRC over a message
// followed by its own CRC is the same constant for every message (the
// CRC's residue, 0x48674bc7 for CRC-32C), so every entry records that
// constant and the check against the manifest only repeats the file's own
// check. A valid file of the same size from another snapshot or
// iteration (other factors under the same IDs) is accepted in place of
// the right one.
func TestManifestCRCTellsFilesApart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	d := DirStore{Root: root}
	r := NewRepo(d, d)
	m := writeSnapshot(t, r, "s1", "m", time.Now(), true)
	crcs := map[uint32]string{}
	for _, f := range m.Files {
		if other, dup := crcs[f.CRC32C]; dup {
			t.Errorf("%s and %s have the same CRC-32C %08x in the manifest", other, f.Name, f.CRC32C)
		}
		crcs[f.CRC32C] = f.Name
	}
	// Put another iteration's block in place of users.0001.cfcf: the same
	// IDs and counts, other factors, so the same size.
	stale := &Block{Side: SideUsers, Index: 1, Rank: testRank, IDs: testUserBlocks[1], Counts: []int32{31, 41}, Factors: make([]float32, 2*testRank)}
	data, err := EncodeBlock(stale)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "s1", "users.0001.cfcf")
	if st, err := os.Stat(p); err != nil || st.Size() != int64(len(data)) {
		t.Fatalf("sizes differ: %v", err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	err = r.Verify(ctx, "s1")
	wantCorrupt(t, "Verify of a snapshot holding another iteration's file", err, "s1/users.0001.cfcf", "CRC-32C")
}

// writeOneRowSnapshot writes a snapshot of one user and one item into the
// directory dir.
func writeOneRowSnapshot(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	dr := NewRepo(DirStore{Root: dir}, nil)
	m := testManifest()
	m.Files = nil
	m.UserBlocks, m.ItemBlocks = 1, 1
	for _, side := range []string{SideUsers, SideItems} {
		fi, err := dr.WriteBlock(ctx, "", &Block{Side: side, Rank: testRank, IDs: []string{"x"}, Counts: []int32{1}, Factors: []float32{1, 2, 3}})
		if err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, fi)
	}
	m.Users, m.Items = 1, 1
	if err := dr.Commit(ctx, "", m); err != nil {
		t.Fatal(err)
	}
}

// TestCopyToDirConcurrent copies two snapshots into one directory from
// many goroutines at once (a re-sent export racing the first): every copy
// succeeds, and afterwards the directory holds one of them whole and
// nothing else is left beside it.
func TestCopyToDirConcurrent(t *testing.T) {
	s, p := storeKinds[0].open(t)
	src := NewRepo(s, p)
	ctx := context.Background()
	writeSnapshot(t, src, "a", "m", time.Now(), true)
	writeSnapshot(t, src, "b", "m", time.Now(), true)
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- CopyToDir(ctx, src, []string{"a", "b"}[i%2], dir)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a concurrent copy: %v", err)
		}
	}
	md, err := ReadDir(ctx, dir)
	if err != nil {
		t.Fatalf("after the copies: %v", err)
	}
	checkTestModel(t, md, true)
	if got := dirEntries(t, parent); !slices.Equal(got, []string{"out"}) {
		t.Errorf("the parent holds %q, want only the copy", got)
	}
}

// wholeStore hides a store's PutFrom: the Repo then writes files whole.
type wholeStore struct{ Store }

// TestRepoStreamsFiles: factor and seen files streamed into a store are
// the bytes EncodeBlock and EncodeSeen give, with the same manifest
// entries as when written whole, and a block that does not encode leaves
// no file.
func TestRepoStreamsFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const rows, rank = 70_000, 3 // a factor file of several buffers
	blk := &Block{Side: SideUsers, Index: 2, Rank: rank, IDs: make([]string, rows), Counts: make([]int32, rows), Factors: make([]float32, rows*rank)}
	seen := &Seen{Index: 2, Ptr: make([]int64, rows+1)}
	for r := range rows {
		blk.IDs[r] = fmt.Sprintf("user-%d", r*13)
		blk.Counts[r] = int32(r % 17)
		for k := range rank {
			blk.Factors[r*rank+k] = float32(r) / float32(k+1)
		}
		for it := range r % 5 {
			seen.Items = append(seen.Items, int32(it*1000+r%997))
			seen.Values = append(seen.Values, float32(r%5))
		}
		seen.Ptr[r+1] = int64(len(seen.Items))
	}
	wantBlock, err := EncodeBlock(blk)
	if err != nil {
		t.Fatal(err)
	}
	wantSeen, err := EncodeSeen(seen)
	if err != nil {
		t.Fatal(err)
	}
	var infos [2][2]FileInfo
	for i, kind := range storeKinds {
		s, p := kind.open(t)
		for j, r := range []*Repo{NewRepo(s, p), NewRepo(wholeStore{s}, p)} {
			id := fmt.Sprintf("snap-%d", j)
			fb, err := r.WriteBlock(ctx, id, blk)
			if err != nil {
				t.Fatal(err)
			}
			fs, err := r.WriteSeen(ctx, id, seen)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				fi   FileInfo
				want []byte
			}{{fb, wantBlock}, {fs, wantSeen}} {
				got, err := s.Get(ctx, id+"/"+f.fi.Name, 1<<30)
				if err != nil || !bytes.Equal(got, f.want) {
					t.Fatalf("%s, %s: %d bytes, %v; want the encoder's %d", kind.name, f.fi.Name, len(got), err, len(f.want))
				}
				if f.fi.Bytes != int64(len(f.want)) || f.fi.CRC32C != bodyCRC(f.want) || f.fi.Rows != rows {
					t.Fatalf("%s: entry %+v, want %d bytes, CRC %08x", kind.name, f.fi, len(f.want), bodyCRC(f.want))
				}
			}
			infos[i][j] = fb
		}
		bad := &Seen{Index: 3, Ptr: []int64{0, 2}, Items: []int32{5, 4}}
		if _, err := NewRepo(s, p).WriteSeen(ctx, "snap-0", bad); err == nil || !strings.Contains(err.Error(), "not ascending") {
			t.Fatalf("%s: a seen block out of order: %v", kind.name, err)
		}
		if _, err := s.Get(ctx, "snap-0/"+SeenFileName(3), 1<<20); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: a seen block that failed to encode left a file: %v", kind.name, err)
		}
	}
	if infos[0] != infos[1] {
		t.Fatalf("entries differ between the stores: %+v", infos)
	}
}
