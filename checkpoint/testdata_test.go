package checkpoint

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/store (the Example's store) from writeExampleStore")

// writeExampleStore writes the store the package Example reads: one final
// snapshot of the model "default", published.
func writeExampleStore(t *testing.T, root string) {
	t.Helper()
	ctx := context.Background()
	d := DirStore{Root: root}
	r := NewRepo(d, d)
	id := "job-20240601-it0010"
	m := &Manifest{ID: id, Model: "default", Job: "job-20240601", Iteration: 10, Rank: 2, Lambda: 0.05,
		Users: 2, Items: 3, UserBlocks: 1, ItemBlocks: 1, Final: true, Created: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC),
		Metrics: map[string]float64{"train_rmse": 0.5}}
	for _, b := range []*Block{
		{Side: SideUsers, Rank: 2, IDs: []string{"alice", "bob"}, Counts: []int32{1, 2}, Factors: []float32{1, 0.5, 0.25, 2}},
		{Side: SideItems, Rank: 2, IDs: []string{"matrix", "amelie", "heat"}, Counts: []int32{2, 1, 0}, Factors: []float32{4, 2, 0.5, 3, 1, 1}},
	} {
		fi, err := r.WriteBlock(ctx, id, b)
		if err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, fi)
	}
	// alice trained on matrix; bob on matrix and amelie.
	fi, err := r.WriteSeen(ctx, id, &Seen{Ptr: []int64{0, 1, 3}, Items: []int32{0, 0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	m.Files = append(m.Files, fi)
	if err := r.Commit(ctx, id, m); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(ctx, "default", id); err != nil {
		t.Fatal(err)
	}
}

// TestExampleStoreIsCurrent checks that testdata/store is what
// writeExampleStore writes today (after a format change, run
// `go test ./checkpoint -run TestExampleStoreIsCurrent -update`).
func TestExampleStoreIsCurrent(t *testing.T) {
	want := filepath.Join("testdata", "store")
	if *update {
		if err := os.RemoveAll(want); err != nil {
			t.Fatal(err)
		}
		writeExampleStore(t, want)
	}
	got := t.TempDir()
	writeExampleStore(t, got)
	names, err := DirStore{Root: got}.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	committed, err := DirStore{Root: want}.List(context.Background(), "")
	if err != nil || len(committed) != len(names) {
		t.Fatalf("testdata/store holds %q (%v), want %q; run with -update", committed, err, names)
	}
	for _, n := range names {
		a, _ := os.ReadFile(filepath.Join(got, n))
		b, err := os.ReadFile(filepath.Join(want, n))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("testdata/store/%s is not what writeExampleStore writes (%v); run with -update", n, err)
		}
	}
}
