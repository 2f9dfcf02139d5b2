package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func sample() *Snapshot {
	return &Snapshot{
		Manifest: Manifest{Model: "m", Job: "j1", Iteration: 3, Rank: 2, Lambda: 0.1, Metrics: map[string]float64{"test_rmse": 0.9}},
		UserIDs:  []string{"1", "2", "3"},
		ItemIDs:  []string{"a", "b"},
		X:        []float32{1, 2, 3, 4, 5, 6},
		Y:        []float32{-1, 0.5, 7, 8},
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "snap")
	if err := WriteDir(dir, sample()); err != nil {
		t.Fatal(err)
	}
	got, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := sample()
	if !slices.Equal(got.X, want.X) || !slices.Equal(got.Y, want.Y) ||
		!slices.Equal(got.UserIDs, want.UserIDs) || !slices.Equal(got.ItemIDs, want.ItemIDs) {
		t.Errorf("round trip changed the data: %+v", got)
	}
	m := got.Manifest
	if m.Users != 3 || m.Items != 2 || m.Rank != 2 || m.Iteration != 3 || m.Metrics["test_rmse"] != 0.9 || len(m.Files) != 4 {
		t.Errorf("manifest %+v", m)
	}
	// Nothing but the snapshot is left beside it.
	ents, _ := os.ReadDir(filepath.Dir(dir))
	if len(ents) != 1 {
		t.Errorf("parent holds %d entries, want 1", len(ents))
	}
}

func TestReadRefusesDamage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file string
		damage     func(b []byte) []byte
		want       string
	}{
		{"flipped byte", UserFactorsName, func(b []byte) []byte { b[len(b)/2] ^= 1; return b }, "CRC-32C"},
		{"truncated", ItemFactorsName, func(b []byte) []byte { return b[:len(b)-3] }, "bytes, manifest says"},
		{"ids edited", UserIDsName, func(b []byte) []byte { b[0] = '9'; return b }, "CRC-32C"},
		{"manifest garbage", ManifestName, func(b []byte) []byte { return b[:10] }, "manifest.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "snap")
			if err := WriteDir(dir, sample()); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, tc.file)
			b, _ := os.ReadFile(p)
			if err := os.WriteFile(p, tc.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadDir(dir)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.file) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrCorrupt naming %s and %q", err, tc.file, tc.want)
			}
		})
	}
}

func TestWriteDirTargets(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	// A directory with other files is refused and untouched.
	other := filepath.Join(root, "other")
	os.Mkdir(other, 0o755)
	os.WriteFile(filepath.Join(other, "keep.txt"), []byte("x"), 0o644)
	if err := WriteDir(other, sample()); !errors.Is(err, ErrExists) {
		t.Errorf("non-snapshot dir: %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(filepath.Join(other, "keep.txt")); string(b) != "x" {
		t.Error("the refused directory was changed")
	}
	// An existing snapshot is replaced.
	snap := filepath.Join(root, "snap")
	if err := WriteDir(snap, sample()); err != nil {
		t.Fatal(err)
	}
	s2 := sample()
	s2.X[0] = 42
	if err := WriteDir(snap, s2); err != nil {
		t.Fatal(err)
	}
	got, err := ReadDir(snap)
	if err != nil || got.X[0] != 42 {
		t.Fatalf("replacement: %v %v", err, got)
	}
	// A missing parent fails before anything is written.
	if err := WriteDir(filepath.Join(root, "no", "such"), sample()); err == nil {
		t.Error("missing parent accepted")
	}
	// Bad shapes are refused.
	bad := sample()
	bad.Y = bad.Y[:3]
	if err := WriteDir(filepath.Join(root, "bad"), bad); err == nil {
		t.Error("inconsistent factors accepted")
	}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary %s left behind", e.Name())
		}
	}
}
