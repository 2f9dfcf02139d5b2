package testutil

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/synth"
)

// WriteRatings writes the synthetic rating set cfg describes as CSV in a
// fresh temporary directory and returns its path.
func WriteRatings(t testing.TB, cfg synth.Config) string {
	t.Helper()
	s, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ratings.csv")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.WriteCSV(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	return p
}

// SnapshotDiff is the largest absolute difference between two snapshots'
// factors, rows matched by external ID. It fails the test when the two do
// not hold the same rank and IDs.
func SnapshotDiff(t testing.TB, a, b *checkpoint.Model) float64 {
	t.Helper()
	k := a.Rank
	if b.Rank != k {
		t.Fatalf("snapshots of rank %d and %d", k, b.Rank)
	}
	var worst float64
	for _, side := range []struct {
		ida, idb []string
		fa, fb   []float32
	}{{a.UserIDs, b.UserIDs, a.X, b.X}, {a.ItemIDs, b.ItemIDs, a.Y, b.Y}} {
		if len(side.ida) != len(side.idb) {
			t.Fatalf("%d rows against %d", len(side.ida), len(side.idb))
		}
		pos := make(map[string]int, len(side.idb))
		for i, id := range side.idb {
			pos[id] = i
		}
		for i, id := range side.ida {
			j, ok := pos[id]
			if !ok {
				t.Fatalf("ID %q is in one snapshot only", id)
			}
			for c := 0; c < k; c++ {
				worst = max(worst, math.Abs(float64(side.fa[i*k+c])-float64(side.fb[j*k+c])))
			}
		}
	}
	return worst
}

// DirDiff is SnapshotDiff of two snapshot directories.
func DirDiff(t testing.TB, dirA, dirB string) float64 {
	t.Helper()
	a := readSnapshotDir(t, dirA)
	b := readSnapshotDir(t, dirB)
	return SnapshotDiff(t, a, b)
}

// readSnapshotDir reads a snapshot directory, failing the test with the
// directory's name and what its parent holds: a missing manifest then
// tells a copy that never happened (no entry) from one interrupted or
// under way (a temporary ".name.tmp-…" beside it).
func readSnapshotDir(t testing.TB, dir string) *checkpoint.Model {
	t.Helper()
	m, err := checkpoint.ReadDir(context.Background(), dir)
	if err == nil {
		return m
	}
	var names []string
	if ents, lerr := os.ReadDir(filepath.Dir(dir)); lerr == nil {
		for _, e := range ents {
			names = append(names, e.Name())
		}
	}
	t.Fatalf("reading snapshot %s: %v (its parent holds %q)", dir, err, names)
	return nil
}
