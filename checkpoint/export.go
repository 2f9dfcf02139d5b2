package checkpoint

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Names of the files an export writes.
const (
	UserFactorsNPY = "user_factors.npy"
	ItemFactorsNPY = "item_factors.npy"
	UserFactorsCSV = "user_factors.csv"
	ItemFactorsCSV = "item_factors.csv"
	UserIDsFile    = "user_ids.txt"
	ItemIDsFile    = "item_ids.txt"
	// The Parquet export's files (written by package interop, which
	// keeps the Parquet library out of this package).
	UserFactorsParquet = "user_factors.parquet"
	ItemFactorsParquet = "item_factors.parquet"
)

var exportNames = []string{UserFactorsNPY, ItemFactorsNPY, UserFactorsCSV, ItemFactorsCSV, UserIDsFile, ItemIDsFile,
	UserFactorsParquet, ItemFactorsParquet}

// ExportFile is one file of an export: its name (one of the names above)
// and what writes its content.
type ExportFile struct {
	Name  string
	Write func(w io.Writer) error
}

// Export writes files and the ID lists (user_ids.txt, item_ids.txt) into
// the directory dir, atomically and refusing an existing path as
// ExportNPY does. ExportNPY and ExportCSV are Export with their files.
func Export(m *Model, dir string, files ...ExportFile) error {
	for _, f := range files {
		if !slices.Contains(exportNames, f.Name) {
			return fmt.Errorf("checkpoint: export: %q is not an export file name", f.Name)
		}
	}
	return export(m, dir, func(tmp string) error {
		for _, f := range files {
			if err := writeFileSync(filepath.Join(tmp, f.Name), f.Write); err != nil {
				return err
			}
		}
		return nil
	})
}

// ExportNPY writes the model's factors for NumPy into the directory dir:
// user_factors.npy and item_factors.npy (float32 '<f4', C order, shape
// (rows, rank), format version 1.0) and user_ids.txt and item_ids.txt (one
// external ID a line, in the rows' order).
//
// The files are written into a temporary directory beside dir, which is
// then renamed to dir: after a failure nothing partial is at dir. dir may
// be absent, empty or a previous export (which is replaced); any other
// existing path is refused with ErrExists.
func ExportNPY(m *Model, dir string) error {
	return Export(m, dir,
		ExportFile{UserFactorsNPY, func(w io.Writer) error { return WriteNPY(w, []int{len(m.UserIDs), m.Rank}, m.X) }},
		ExportFile{ItemFactorsNPY, func(w io.Writer) error { return WriteNPY(w, []int{len(m.ItemIDs), m.Rank}, m.Y) }})
}

// ExportCSV writes the model's factors as CSV into the directory dir:
// user_factors.csv and item_factors.csv (a header "id,f0,f1,…", then one
// row a user or item: its external ID and its factors, each the shortest
// decimal that reads back as the same float32) and user_ids.txt and
// item_ids.txt as ExportNPY does. It is atomic and refuses an existing
// path as ExportNPY does.
func ExportCSV(m *Model, dir string) error {
	return Export(m, dir,
		ExportFile{UserFactorsCSV, func(w io.Writer) error { return writeFactorsCSV(w, m.Rank, m.UserIDs, m.X) }},
		ExportFile{ItemFactorsCSV, func(w io.Writer) error { return writeFactorsCSV(w, m.Rank, m.ItemIDs, m.Y) }})
}

// export checks the model and the target, lets write fill a temporary
// directory, adds the ID files and renames the result to dir.
func export(m *Model, dir string, write func(tmp string) error) (err error) {
	if m.Rank < 1 || len(m.X) != len(m.UserIDs)*m.Rank || len(m.Y) != len(m.ItemIDs)*m.Rank {
		return fmt.Errorf("checkpoint: export: %d user IDs, %d item IDs and %d, %d factors do not fit rank %d",
			len(m.UserIDs), len(m.ItemIDs), len(m.X), len(m.Y), m.Rank)
	}
	for _, side := range []struct {
		what string
		ids  []string
	}{{"user", m.UserIDs}, {"item", m.ItemIDs}} {
		for _, id := range side.ids {
			if id == "" || strings.ContainsAny(id, "\r\n") {
				return fmt.Errorf("checkpoint: export: %s ID %q cannot be written one a line", side.what, id)
			}
		}
	}
	if err := CheckExportTarget(dir); err != nil {
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
	if err := write(tmp); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		ids  []string
	}{{UserIDsFile, m.UserIDs}, {ItemIDsFile, m.ItemIDs}} {
		if err := writeFileSync(filepath.Join(tmp, f.name), func(w io.Writer) error {
			for _, id := range f.ids {
				if _, err := io.WriteString(w, id+"\n"); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	return replaceDir(tmp, dir, parent)
}

// replaceDir renames tmp to dir, replacing a directory already there: dir
// is at every moment the old directory or the new one (or, for the instant
// between two renames, absent).
func replaceDir(tmp, dir, parent string) error {
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

// CheckExportTarget reports whether dir may receive an export (ExportNPY,
// ExportCSV): it must be absent, an empty directory or a previous export
// (a directory holding only files an export writes), and its parent must
// exist. Callers use it to fail before reading a model.
func CheckExportTarget(dir string) error {
	ents, err := targetEntries(dir, os.Lstat, "is not a directory")
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !slices.Contains(exportNames, e.Name()) {
			return fmt.Errorf("%w: %s holds %s, which an export does not write", ErrExists, dir, e.Name())
		}
	}
	return nil
}

// writeFileSync creates path, lets write fill it through a buffer, and
// syncs and closes it.
func writeFileSync(path string, write func(io.Writer) error) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := write(bw); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	return f.Sync()
}

// writeFactorsCSV writes "id,f0,…" and one row per ID.
func writeFactorsCSV(w io.Writer, rank int, ids []string, f []float32) error {
	cw := csv.NewWriter(w)
	rec := make([]string, rank+1)
	rec[0] = "id"
	for k := range rank {
		rec[k+1] = "f" + strconv.Itoa(k)
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for r, id := range ids {
		rec[0] = id
		for k, v := range f[r*rank : (r+1)*rank] {
			rec[k+1] = strconv.FormatFloat(float64(v), 'g', -1, 32)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
