package interop

import (
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/cofactor-ml/cofactor/checkpoint"
)

// FactorRow is one row of a Parquet export.
type FactorRow struct {
	ID      string    `parquet:"id"`
	Factors []float32 `parquet:"factors,list"`
}

// parquetBatch is how many rows are handed to the writer at a time.
const parquetBatch = 1024

// ExportParquet writes the model's factors as user_factors.parquet and
// item_factors.parquet (see the package documentation) and the ID lists
// into the directory dir, atomically: dir may be absent, empty or a
// previous export; nothing partial is left there after a failure
// (checkpoint.Export).
func ExportParquet(m *checkpoint.Model, dir string) error {
	return checkpoint.Export(m, dir,
		checkpoint.ExportFile{Name: checkpoint.UserFactorsParquet, Write: func(w io.Writer) error { return WriteFactors(w, m.UserIDs, m.X, m.Rank) }},
		checkpoint.ExportFile{Name: checkpoint.ItemFactorsParquet, Write: func(w io.Writer) error { return WriteFactors(w, m.ItemIDs, m.Y, m.Rank) }})
}

// WriteFactors writes one Parquet file of rows (ids[r], f[r·rank :
// (r+1)·rank]) to w.
func WriteFactors(w io.Writer, ids []string, f []float32, rank int) error {
	pw := parquet.NewGenericWriter[FactorRow](w, parquet.Compression(&parquet.Snappy))
	rows := make([]FactorRow, 0, parquetBatch)
	for r, id := range ids {
		rows = append(rows, FactorRow{ID: id, Factors: f[r*rank : (r+1)*rank]})
		if len(rows) == cap(rows) || r == len(ids)-1 {
			if _, err := pw.Write(rows); err != nil {
				return err
			}
			rows = rows[:0]
		}
	}
	return pw.Close()
}

// ReadFactors reads a file written by WriteFactors (or any Parquet file
// with an id string column and a factors list column) back: the IDs and
// the factors row-major, with the rank of the first row.
func ReadFactors(r io.ReaderAt, size int64) (ids []string, f []float32, rank int, err error) {
	rows, err := parquet.Read[FactorRow](r, size)
	if err != nil {
		return nil, nil, 0, err
	}
	for _, row := range rows {
		if len(ids) == 0 {
			rank = len(row.Factors)
		}
		ids = append(ids, row.ID)
		f = append(f, row.Factors...)
	}
	return ids, f, rank, nil
}
