package partition

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Parquet input: the file's top-level columns named by ScanOptions.Columns
// (default: the first three, or the first two for implicit data without a
// third) are read in batches in lockstep, one rating per row. IDs may be
// strings (BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY) or integers (INT32, INT64,
// written in decimal); ratings any number type. A row is a "line" of the
// error messages: "ratings.parquet:17: empty user ID" names the 17th row.
// Null IDs, null or non-finite ratings are bad lines.

// parquetMagic starts (and ends) every Parquet file.
var parquetMagic = []byte("PAR1")

// parquetBatch is how many rows are read from each column at a time.
const parquetBatch = 4096

// maxParquetStream bounds a Parquet input read from a stream (not a file):
// Parquet needs random access, so a stream is read into memory first.
const maxParquetStream = 4 << 30

// scanParquet reads the scanner's input as Parquet. A regular file is read
// in place; any other reader is read into memory.
func (s *scanner) scanParquet() (err error) {
	var ra io.ReaderAt
	var size int64
	if f, ok := s.r.src.(*os.File); ok {
		if fi, serr := f.Stat(); serr == nil && fi.Mode().IsRegular() {
			ra, size = f, fi.Size()
		}
	}
	if sr, ok := s.r.src.(*io.SectionReader); ok && ra == nil {
		// A file read in place (a dataset's file in the cluster's store).
		ra, size = sr, sr.Size()
	}
	if ra == nil {
		// What the scanner buffered starts at the magic (detection
		// consumes nothing but blank lines, which a Parquet file does not
		// start with); the rest is still in the source.
		head := s.r.buf[s.r.pos:s.r.end]
		rest, rerr := io.ReadAll(io.LimitReader(s.r.src, maxParquetStream))
		if rerr != nil {
			return fmt.Errorf("%s: %w", s.opts.Name, rerr)
		}
		data := append(append(make([]byte, 0, len(head)+len(rest)), head...), rest...)
		ra, size = bytes.NewReader(data), int64(len(data))
	}
	// A damaged file can make the decoder panic; that is bad input here,
	// not a crash.
	defer func() {
		if p := recover(); p != nil {
			err = &formatError{file: s.opts.Name, msg: fmt.Sprintf("not a readable Parquet file: %v", p)}
		}
	}()
	return s.readParquet(ra, size)
}

func (s *scanner) readParquet(ra io.ReaderAt, size int64) error {
	bad := func(format string, a ...any) error {
		return &formatError{file: s.opts.Name, msg: fmt.Sprintf(format, a...)}
	}
	f, err := parquet.OpenFile(ra, size)
	if err != nil {
		return bad("not a readable Parquet file: %v", err)
	}
	cols, err := parquetColumns(f.Root().Columns(), s.opts.Columns, s.opts.Implicit)
	if err != nil {
		return bad("%v", err)
	}
	readers := make([]*parquetColumn, len(cols))
	for i, c := range cols {
		readers[i] = &parquetColumn{col: c, pages: c.Pages(), buf: make([]parquet.Value, parquetBatch)}
		if lt := c.Type().LogicalType(); lt != nil {
			if it, ok := lt.Value.(*format.IntType); ok && !it.IsSigned {
				readers[i].unsigned = true
			}
		}
		defer readers[i].close()
	}
	var idBuf [2][]byte
	rows := f.NumRows()
	for done := int64(0); done < rows; {
		n := int(min(parquetBatch, rows-done))
		for _, r := range readers {
			if err := r.read(n); err != nil {
				return bad("column %q: %v", r.col.Name(), err)
			}
		}
		for j := 0; j < n; j++ {
			if err := s.poll(); err != nil {
				return err
			}
			s.st.Lines++
			row := done + int64(j) + 1
			var missing string
			for side := 0; side < 2; side++ {
				v := readers[side].buf[j]
				if v.IsNull() {
					missing = [2]string{reasonEmptyUser, reasonEmptyItem}[side]
					break
				}
				idBuf[side] = appendParquetID(idBuf[side][:0], v, readers[side].unsigned)
				if len(idBuf[side]) == 0 {
					missing = [2]string{reasonEmptyUser, reasonEmptyItem}[side]
					break
				}
				if len(idBuf[side]) > MaxIDLen {
					missing = fmt.Sprintf("%s ID longer than %d bytes", [2]string{"user", "item"}[side], MaxIDLen)
					break
				}
			}
			if missing != "" {
				if err := s.bad(row, missing); err != nil {
					return err
				}
				continue
			}
			rating := float32(1)
			if len(readers) == 3 {
				v := readers[2].buf[j]
				r, ok := parquetNumber(v, readers[2].unsigned)
				switch {
				case v.IsNull():
					if err := s.bad(row, "missing rating"); err != nil {
						return err
					}
					continue
				case !ok || math.IsNaN(r) || math.IsInf(r, 0) || math.Abs(r) > math.MaxFloat32:
					if err := s.badf(row, "rating %v is not finite", r); err != nil {
						return err
					}
					continue
				case s.opts.Implicit && r < 0:
					if err := s.badf(row, "rating %v is negative; implicit strengths must be ≥ 0", r); err != nil {
						return err
					}
					continue
				}
				rating = float32(r)
			}
			if err := s.fn(idBuf[0], idBuf[1], rating); err != nil {
				return err
			}
			s.st.Records++
		}
		done += int64(n)
	}
	return nil
}

// parquetColumns picks the user, item and (optional) rating columns among
// a file's top-level columns: by name, or the first three (two for
// implicit data without a third).
func parquetColumns(all []*parquet.Column, names []string, implicit bool) ([]*parquet.Column, error) {
	var cols []*parquet.Column
	if len(names) == 0 {
		n := min(3, len(all))
		if n < 2 || (n == 2 && !implicit) {
			return nil, fmt.Errorf("%d columns; want user, item and rating columns (choose them with --columns)", len(all))
		}
		cols = all[:n]
	} else {
		if len(names) < 2 || len(names) > 3 || (len(names) == 2 && !implicit) {
			return nil, fmt.Errorf("--columns %s: want user,item,rating (user,item for implicit data)", strings.Join(names, ","))
		}
		for _, name := range names {
			var found *parquet.Column
			for _, c := range all {
				if c.Name() == name {
					found = c
				}
			}
			if found == nil {
				have := make([]string, len(all))
				for i, c := range all {
					have[i] = c.Name()
				}
				return nil, fmt.Errorf("no column %q (the file has %s)", name, strings.Join(have, ", "))
			}
			cols = append(cols, found)
		}
	}
	for i, c := range cols {
		if !c.Leaf() || c.MaxRepetitionLevel() > 0 || c.MaxDefinitionLevel() > 1 {
			return nil, fmt.Errorf("column %q is nested or repeated; want a flat column", c.Name())
		}
		switch k := c.Type().Kind(); {
		case i < 2 && k != parquet.Int32 && k != parquet.Int64 && k != parquet.ByteArray && k != parquet.FixedLenByteArray:
			return nil, fmt.Errorf("column %q holds %v values; IDs must be strings or integers", c.Name(), k)
		case i == 2 && k != parquet.Int32 && k != parquet.Int64 && k != parquet.Float && k != parquet.Double:
			return nil, fmt.Errorf("column %q holds %v values; ratings must be numbers", c.Name(), k)
		}
	}
	return cols, nil
}

// parquetColumn reads one column's values in batches across pages and row
// groups.
type parquetColumn struct {
	col      *parquet.Column
	pages    parquet.Pages
	page     parquet.Page
	values   parquet.ValueReader
	buf      []parquet.Value
	unsigned bool
}

// read fills buf[:n] with the column's next n values.
func (c *parquetColumn) read(n int) error {
	for got := 0; got < n; {
		if c.values == nil {
			p, err := c.pages.ReadPage()
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%d values short of the file's row count", n-got)
			}
			if err != nil {
				return err
			}
			c.release()
			c.page, c.values = p, p.Values()
		}
		m, err := c.values.ReadValues(c.buf[got:n])
		got += m
		if errors.Is(err, io.EOF) {
			c.values = nil
		} else if err != nil {
			return err
		}
	}
	return nil
}

func (c *parquetColumn) release() {
	if c.page != nil {
		parquet.Release(c.page)
		c.page = nil
	}
}

func (c *parquetColumn) close() {
	c.release()
	c.pages.Close()
}

// appendParquetID appends an ID value's text: string bytes as they are,
// integers in decimal.
func appendParquetID(b []byte, v parquet.Value, unsigned bool) []byte {
	switch v.Kind() {
	case parquet.Int32:
		if unsigned {
			return strconv.AppendUint(b, uint64(v.Uint32()), 10)
		}
		return strconv.AppendInt(b, int64(v.Int32()), 10)
	case parquet.Int64:
		if unsigned {
			return strconv.AppendUint(b, v.Uint64(), 10)
		}
		return strconv.AppendInt(b, v.Int64(), 10)
	}
	return append(b, v.ByteArray()...)
}

// parquetNumber reads a rating value.
func parquetNumber(v parquet.Value, unsigned bool) (float64, bool) {
	switch v.Kind() {
	case parquet.Float:
		return float64(v.Float()), true
	case parquet.Double:
		return v.Double(), true
	case parquet.Int32:
		if unsigned {
			return float64(v.Uint32()), true
		}
		return float64(v.Int32()), true
	case parquet.Int64:
		if unsigned {
			return float64(v.Uint64()), true
		}
		return float64(v.Int64()), true
	}
	return 0, false
}
