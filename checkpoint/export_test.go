package checkpoint

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exportModel opens the test snapshot.
func exportModel(t *testing.T) *Model {
	t.Helper()
	d := DirStore{Root: t.TempDir()}
	r := NewRepo(d, d)
	writeSnapshot(t, r, "s1", "m", time.Now(), true)
	md, err := r.Open(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// randomModel is a model with random factors of awkward values.
func randomModel(users, items, rank int) *Model {
	rng := rand.New(rand.NewPCG(uint64(users), uint64(items)))
	m := &Model{Rank: rank, X: make([]float32, users*rank), Y: make([]float32, items*rank)}
	for u := range users {
		m.UserIDs = append(m.UserIDs, fmt.Sprintf("u%d", u))
	}
	for i := range items {
		m.ItemIDs = append(m.ItemIDs, fmt.Sprintf("item \"%d\", quoted", i))
	}
	for _, f := range [][]float32{m.X, m.Y} {
		for i := range f {
			f[i] = float32(rng.NormFloat64() * 1e3)
		}
	}
	if len(m.X) > 2 {
		m.X[0], m.X[1], m.X[2] = 1e-42, -3.4028235e38, 0.1
	}
	return m
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Errorf("%s does not end with a newline", filepath.Base(path))
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func readNPYFile(t *testing.T, path string) ([]int, []float32) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	shape, data, err := ReadNPY(f)
	if err != nil {
		t.Fatal(err)
	}
	return shape, data
}

// MUST SHOW: the exported .npy files, read back by the Go reader, hold
// exactly the model's factors.
func TestExportNPY(t *testing.T) {
	t.Parallel()
	for name, md := range map[string]*Model{"snapshot": exportModel(t), "random": randomModel(300, 77, 9), "empty": randomModel(0, 0, 2)} {
		dir := filepath.Join(t.TempDir(), "export")
		if err := ExportNPY(md, dir); err != nil {
			t.Fatal(err)
		}
		if got := dirEntries(t, dir); !slices.Equal(got, []string{ItemFactorsNPY, ItemIDsFile, UserFactorsNPY, UserIDsFile}) {
			t.Errorf("%s: export holds %q", name, got)
		}
		for _, side := range []struct {
			npy, ids string
			wantIDs  []string
			want     []float32
		}{
			{UserFactorsNPY, UserIDsFile, md.UserIDs, md.X},
			{ItemFactorsNPY, ItemIDsFile, md.ItemIDs, md.Y},
		} {
			shape, data := readNPYFile(t, filepath.Join(dir, side.npy))
			if !slices.Equal(shape, []int{len(side.wantIDs), md.Rank}) || !sameFloats(data, side.want) {
				t.Errorf("%s %s: shape %v, factors equal %v", name, side.npy, shape, sameFloats(data, side.want))
			}
			if got := readLines(t, filepath.Join(dir, side.ids)); !slices.Equal(got, side.wantIDs) {
				t.Errorf("%s %s: %q, want %q", name, side.ids, got, side.wantIDs)
			}
		}
	}
}

func TestExportCSV(t *testing.T) {
	t.Parallel()
	md := randomModel(40, 25, 4)
	dir := filepath.Join(t.TempDir(), "export")
	if err := ExportCSV(md, dir); err != nil {
		t.Fatal(err)
	}
	if got := dirEntries(t, dir); !slices.Equal(got, []string{ItemFactorsCSV, ItemIDsFile, UserFactorsCSV, UserIDsFile}) {
		t.Errorf("export holds %q", got)
	}
	for _, side := range []struct {
		file string
		ids  []string
		f    []float32
	}{{UserFactorsCSV, md.UserIDs, md.X}, {ItemFactorsCSV, md.ItemIDs, md.Y}} {
		fh, err := os.Open(filepath.Join(dir, side.file))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(fh).ReadAll()
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(recs[0], []string{"id", "f0", "f1", "f2", "f3"}) || len(recs) != len(side.ids)+1 {
			t.Fatalf("%s: header %q, %d records", side.file, recs[0], len(recs))
		}
		for r, rec := range recs[1:] {
			if rec[0] != side.ids[r] {
				t.Errorf("%s row %d: id %q, want %q", side.file, r, rec[0], side.ids[r])
			}
			for k, s := range rec[1:] {
				v, err := strconv.ParseFloat(s, 32)
				if err != nil || float32(v) != side.f[r*md.Rank+k] {
					t.Errorf("%s row %d f%d: %q, want %g", side.file, r, k, s, side.f[r*md.Rank+k])
				}
			}
		}
	}
	if got := readLines(t, filepath.Join(dir, ItemIDsFile)); !slices.Equal(got, md.ItemIDs) {
		t.Errorf("item IDs %q", got)
	}
}

func TestExportTargets(t *testing.T) {
	t.Parallel()
	md := exportModel(t)
	parent := t.TempDir()

	// An empty directory, then the previous export (of the other format)
	// are replaced whole.
	dir := filepath.Join(parent, "out")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := ExportCSV(md, dir); err != nil {
		t.Fatal(err)
	}
	if err := ExportNPY(md, dir); err != nil {
		t.Fatal(err)
	}
	if got := dirEntries(t, dir); !slices.Equal(got, []string{ItemFactorsNPY, ItemIDsFile, UserFactorsNPY, UserIDsFile}) {
		t.Errorf("after replacing a CSV export: %q", got)
	}

	// Anything else is refused and left as it was.
	other := filepath.Join(parent, "other")
	if err := os.MkdirAll(filepath.Join(other, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(parent, "mine.npy")
	if err := os.WriteFile(mine, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	withNotes := filepath.Join(parent, "notes")
	if err := ExportNPY(md, withNotes); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(withNotes, "README"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{other, mine, withNotes} {
		for _, export := range []func(*Model, string) error{ExportNPY, ExportCSV} {
			if err := export(md, target); !errors.Is(err, ErrExists) {
				t.Errorf("%s: %v, want ErrExists", filepath.Base(target), err)
			}
		}
	}
	if got := dirEntries(t, other); !slices.Equal(got, []string{"sub"}) {
		t.Errorf("other holds %q", got)
	}
	if b, _ := os.ReadFile(mine); string(b) != "mine" {
		t.Errorf("the refused file holds %q", b)
	}
	if err := ExportNPY(md, filepath.Join(parent, "no", "parent")); err == nil {
		t.Error("a missing parent accepted")
	}

	// A model that cannot be exported fails before anything is written.
	bad := randomModel(3, 3, 2)
	bad.ItemIDs[1] = "two\nlines"
	if err := ExportNPY(bad, filepath.Join(parent, "bad")); err == nil || !strings.Contains(err.Error(), `"two\nlines"`) {
		t.Errorf("an ID with a line break: %v", err)
	}
	bad = randomModel(3, 3, 2)
	bad.Y = bad.Y[:5]
	if err := ExportCSV(bad, filepath.Join(parent, "bad")); err == nil {
		t.Error("factors that do not fit the IDs were exported")
	}
	if got := dirEntries(t, parent); !slices.Equal(got, []string{"mine.npy", "notes", "other", "out"}) {
		t.Errorf("parent holds %q (temporaries left?)", got)
	}
}

// A failure while writing leaves nothing at the target and no temporary.
func TestExportFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	err := export(randomModel(2, 2, 1), dir, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, UserFactorsNPY), []byte("half"), 0o644); err != nil {
			return err
		}
		return errors.New("disk full")
	})
	if err == nil || err.Error() != "disk full" {
		t.Fatalf("export: %v", err)
	}
	if got := dirEntries(t, parent); len(got) != 0 {
		t.Errorf("left behind: %q", got)
	}
}

// findNumPy returns a Python interpreter that has NumPy: $COFACTOR_PYTHON,
// python3 on the PATH, or the system's /usr/bin/python3.
func findNumPy(t *testing.T) string {
	t.Helper()
	var candidates []string
	if p := os.Getenv("COFACTOR_PYTHON"); p != "" {
		candidates = append(candidates, p)
	}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	for _, p := range candidates {
		if exec.Command(p, "-c", "import numpy").Run() == nil {
			return p
		}
	}
	t.Skipf("no Python with NumPy (tried %s; set COFACTOR_PYTHON): the NumPy check of the export is skipped", strings.Join(candidates, ", "))
	return ""
}

// numpyCheck loads the exported files with NumPy and compares them with
// the expected values written as exact decimals; it prints each array's
// shape, dtype and the sum of its values' bit patterns.
const numpyCheck = `
import sys
import numpy as np
d = sys.argv[1]
for side in ("user", "item"):
    a = np.load(d + "/" + side + "_factors.npy", allow_pickle=False)
    with open(d + "/" + side + "_factors.npy", "rb") as f:
        version = np.lib.format.read_magic(f)
    ids = open(d + "/" + side + "_ids.txt", encoding="utf-8").read().split("\n")[:-1]
    rows, rank = [int(x) for x in open(d + "/" + side + ".shape").read().split()]
    want = np.loadtxt(d + "/" + side + ".expected", dtype=np.float32, ndmin=2).reshape(rows, rank)
    assert version == (1, 0), version
    assert a.dtype == np.float32, a.dtype
    assert a.shape == (rows, rank), (a.shape, rows, rank)
    assert a.flags["C_CONTIGUOUS"]
    assert len(ids) == rows, (len(ids), rows)
    assert np.array_equal(a, want), np.abs(a - want).max()
    # An exact checksum: the sum of the values' bit patterns.
    print(side, a.shape, a.dtype, int(a.view(np.uint32).astype(np.uint64).sum()))
`

// MUST SHOW: NumPy loads both exported arrays with shape (rows, rank),
// dtype float32 and exactly the model's values.
func TestExportNPYLoadsInNumPy(t *testing.T) {
	t.Parallel()
	py := findNumPy(t)
	for name, md := range map[string]*Model{"snapshot": exportModel(t), "random": randomModel(257, 31, 16)} {
		dir := t.TempDir()
		out := filepath.Join(dir, "export")
		if err := ExportNPY(md, out); err != nil {
			t.Fatal(err)
		}
		var sums []string
		for _, side := range []struct {
			name string
			rows int
			f    []float32
		}{{"user", len(md.UserIDs), md.X}, {"item", len(md.ItemIDs), md.Y}} {
			var b strings.Builder
			var sum uint64
			for i, v := range side.f {
				b.WriteString(strconv.FormatFloat(float64(v), 'g', -1, 32))
				if (i+1)%md.Rank == 0 {
					b.WriteByte('\n')
				} else {
					b.WriteByte(' ')
				}
				sum += uint64(math.Float32bits(v))
			}
			sums = append(sums, fmt.Sprintf("%s (%d, %d) float32 %d", side.name, side.rows, md.Rank, sum))
			if err := os.WriteFile(filepath.Join(out, side.name+".expected"), []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(out, side.name+".shape"), fmt.Appendf(nil, "%d %d", side.rows, md.Rank), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(py, "-c", numpyCheck, out)
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: NumPy refuses the export: %v\n%s", name, err, got)
		}
		if want := strings.Join(sums, "\n") + "\n"; string(got) != want {
			t.Errorf("%s: NumPy printed\n%s\nwant\n%s", name, got, want)
		}
		t.Logf("%s: NumPy: %s", name, strings.TrimSpace(string(got)))
	}
}
