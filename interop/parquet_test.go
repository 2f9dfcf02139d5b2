package interop

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
)

// snapshot writes a small snapshot directory and opens it.
func snapshot(t *testing.T) *checkpoint.Model {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "snap")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r, id := checkpoint.OpenDir(dir)
	m := &checkpoint.Manifest{ID: "s", Model: "default", Job: "j", Iteration: 1, Rank: 3, Lambda: 0.1, Users: 2, Items: 1500,
		UserBlocks: 1, ItemBlocks: 1, Final: true, Created: time.Now().UTC()}
	items := make([]string, 1500)
	counts := make([]int32, 1500)
	factors := make([]float32, 3*1500)
	for i := range items {
		items[i] = "item-" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + itoa(i)
		counts[i] = int32(i % 7)
		for c := 0; c < 3; c++ {
			factors[3*i+c] = float32(i*3+c) / 7
		}
	}
	for _, b := range []*checkpoint.Block{
		{Side: checkpoint.SideUsers, Rank: 3, IDs: []string{"ünïcode", "b"}, Counts: []int32{1, 2}, Factors: []float32{1, -2, 3.5, 0, 1e-30, -1e30}},
		{Side: checkpoint.SideItems, Rank: 3, IDs: items, Counts: counts, Factors: factors},
	} {
		fi, err := r.WriteBlock(ctx, id, b)
		if err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, fi)
	}
	if err := r.Commit(ctx, id, m); err != nil {
		t.Fatal(err)
	}
	md, err := checkpoint.ReadDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// MUST SHOW: a Parquet export reads back as the snapshot's IDs and
// factors, bit for bit, with the ID lists beside it.
func TestExportParquetRoundTrip(t *testing.T) {
	t.Parallel()
	m := snapshot(t)
	out := filepath.Join(t.TempDir(), "export")
	if err := ExportParquet(m, out); err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		file string
		ids  []string
		f    []float32
	}{{checkpoint.UserFactorsParquet, m.UserIDs, m.X}, {checkpoint.ItemFactorsParquet, m.ItemIDs, m.Y}} {
		fh, err := os.Open(filepath.Join(out, side.file))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := fh.Stat()
		ids, f, rank, err := ReadFactors(fh, st.Size())
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		if rank != m.Rank || !slices.Equal(ids, side.ids) || !slices.Equal(f, side.f) {
			t.Errorf("%s: rank %d, %d IDs, %d factors differ from the snapshot's", side.file, rank, len(ids), len(f))
		}
	}
	ents, _ := os.ReadDir(out)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{checkpoint.ItemIDsFile, checkpoint.ItemFactorsParquet, checkpoint.UserIDsFile, checkpoint.UserFactorsParquet}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("export holds %v, want %v", names, want)
	}
	// Exporting again replaces the previous export.
	if err := ExportParquet(m, out); err != nil {
		t.Errorf("a second export over the first: %v", err)
	}
}
