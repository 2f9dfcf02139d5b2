package partition

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// writeParquet writes rows of type T as a Parquet file, in row groups of
// at most groupRows rows (0: one group), and returns its bytes.
func writeParquet[T any](t testing.TB, rows []T, groupRows int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, parquet.PageBufferSize(256))
	for len(rows) > 0 {
		n := len(rows)
		if groupRows > 0 {
			n = min(n, groupRows)
		}
		if _, err := w.Write(rows[:n]); err != nil {
			t.Fatal(err)
		}
		if groupRows > 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		rows = rows[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type intRatings struct {
	User   int64   `parquet:"userId"`
	Item   int32   `parquet:"movieId"`
	Rating float64 `parquet:"rating"`
	Time   int64   `parquet:"timestamp"`
}

type stringRatings struct {
	Extra  string   `parquet:"extra"`
	Item   string   `parquet:"item,dict"`
	Rating *float32 `parquet:"score,optional"`
	User   string   `parquet:"user"`
}

type pairs struct {
	User string `parquet:"u"`
	Item string `parquet:"i"`
}

type nested struct {
	User  string   `parquet:"u"`
	Items []string `parquet:"items,list"`
	R     float32  `parquet:"r"`
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// MUST SHOW: a Parquet file reads as the same ratings as the CSV file of
// the same rows, whether its format is given or detected, from a file or
// a stream, across row groups and pages.
func TestParquetRoundTrip(t *testing.T) {
	t.Parallel()
	var rows []intRatings
	var csv strings.Builder
	csv.WriteString("userId,movieId,rating,timestamp\n")
	for j := 0; j < 5000; j++ {
		r := intRatings{User: int64(j%97) * 1000003, Item: int32(j*7919) % 1201, Rating: float64(j%10+1) / 2, Time: int64(j)}
		rows = append(rows, r)
		csv.WriteString(strings.Join([]string{itoa(r.User), itoa(int64(r.Item)), ftoa(r.Rating), itoa(r.Time)}, ",") + "\n")
	}
	data := writeParquet(t, rows, 1777)
	want := scanAll(t, strings.NewReader(csv.String()), ScanOptions{Name: "r"})
	if want.err != nil || want.stats.Records != 5000 {
		t.Fatalf("the CSV: %+v", want)
	}
	for _, format := range []Format{FormatAuto, FormatParquet} {
		got := scanAll(t, bytes.NewReader(data), ScanOptions{Name: "r", Format: format})
		if got.err != nil || got.recs != want.recs || got.stats.Records != 5000 || got.stats.Format != FormatParquet {
			t.Fatalf("%s from a stream: %v, %+v, same records %v", format, got.err, got.stats, got.recs == want.recs)
		}
	}
	path := writeTemp(t, "ratings.parquet", data)
	csvPath := writeTemp(t, "ratings.csv", []byte(csv.String()))
	wantB, _, err := ReadFile(context.Background(), csvPath, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, threads := range []int{1, 4} {
		b, st, err := ReadFileParallel(context.Background(), path, ScanOptions{}, threads)
		if err != nil || st.Format != FormatParquet || st.Records != 5000 {
			t.Fatalf("%d threads: %v %+v", threads, err, st)
		}
		if !equalBuilders(b, wantB) {
			t.Fatalf("%d threads: the Parquet file reads other ratings than the CSV", threads)
		}
	}
}

func equalBuilders(a, b *Builder) bool {
	if a.Len() != b.Len() || a.Users.Len() != b.Users.Len() || a.Items.Len() != b.Items.Len() {
		return false
	}
	for j := range a.R {
		if a.Users.ID(a.U[j]) != b.Users.ID(b.U[j]) || a.Items.ID(a.I[j]) != b.Items.ID(b.I[j]) || a.R[j] != b.R[j] {
			return false
		}
	}
	return true
}

func TestParquetColumnsAndBadRows(t *testing.T) {
	t.Parallel()
	f32 := func(v float32) *float32 { return &v }
	str := writeParquet(t, []stringRatings{
		{"x", "i1", f32(4), "alice"},
		{"x", "i2", nil, "bob"},
		{"x", "i1", f32(float32(math.NaN())), "carol"},
		{"x", "", f32(3), "dave"},
		{"x", "i3", f32(2.5), "erin"},
	}, 0)
	cols := []string{"user", "item", "score"}
	for _, tc := range []struct {
		name string
		data []byte
		opts ScanOptions
		recs string
		err  string
		skip int64
	}{
		{"by name, fail", str, ScanOptions{Columns: cols}, "alice|i1|4;", "f:2: missing rating", 0},
		{"by name, skip", str, ScanOptions{Columns: cols, OnBadLine: SkipBadLine}, "alice|i1|4;erin|i3|2.5;", "", 3},
		{"first three", str, ScanOptions{}, "x|i1|4;", "f:2: missing rating", 0},
		{"missing column", str, ScanOptions{Columns: []string{"user", "item", "rating"}}, "", `f: no column "rating" (the file has extra, item, score, user)`, 0},
		{"two columns, explicit", str, ScanOptions{Columns: []string{"user", "item"}}, "", "want user,item,rating", 0},
		{"two columns, implicit", str, ScanOptions{Columns: []string{"user", "item"}, Implicit: true},
			"alice|i1|1;bob|i2|1;carol|i1|1;", "f:4: empty item ID", 0},
		{"implicit pairs", writeParquet(t, []pairs{{"a", "b"}, {"c", "d"}}, 0), ScanOptions{Implicit: true}, "a|b|1;c|d|1;", "", 0},
		{"pairs, explicit", writeParquet(t, []pairs{{"a", "b"}}, 0), ScanOptions{}, "", "f: 2 columns", 0},
		{"nested", writeParquet(t, []nested{{"a", []string{"b"}, 1}}, 0), ScanOptions{}, "", `f: column "items" is nested or repeated`, 0},
		{"empty", writeParquet(t, []pairs{}, 0), ScanOptions{Implicit: true}, "", "f: no ratings", 0},
		{"not parquet", []byte("PAR1 and then text\n"), ScanOptions{Format: FormatParquet}, "", "f: not a readable Parquet file", 0},
	} {
		tc.opts.Name = "f"
		if tc.name != "not parquet" {
			tc.opts.Format = FormatAuto
		}
		got := scanAll(t, bytes.NewReader(tc.data), tc.opts)
		if got.recs != tc.recs || got.stats.Skipped != tc.skip || (tc.err == "") != (got.err == nil) ||
			(got.err != nil && !strings.Contains(got.err.Error(), tc.err)) {
			t.Errorf("%s: %q, skipped %d, %v; want %q, %d, %q", tc.name, got.recs, got.stats.Skipped, got.err, tc.recs, tc.skip, tc.err)
		}
		var le *LineError
		if got.err != nil && !errors.As(got.err, &le) && !errors.Is(got.err, ErrFormat) && !errors.Is(got.err, ErrEmpty) {
			t.Errorf("%s: %v is neither a line, format nor empty-input error", tc.name, got.err)
		}
	}
}

func TestDetectParquet(t *testing.T) {
	t.Parallel()
	if f, err := DetectFormat([]byte("PAR1\x15\x04")); f != FormatParquet || err != nil {
		t.Errorf("DetectFormat: %s, %v", f, err)
	}
	if _, err := ParseFormat("parquet"); err != nil {
		t.Error(err)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// FuzzScanParquet feeds damaged and odd Parquet files to the scanner: it
// must return records or a line, format or empty-input error, never panic
// or hang.
func FuzzScanParquet(f *testing.F) {
	f32 := func(v float32) *float32 { return &v }
	for _, seed := range [][]byte{
		writeParquet(f, []intRatings{{1, 2, 3.5, 9}, {4, 5, 1, 9}, {1, 5, 2, 9}}, 2),
		writeParquet(f, []stringRatings{{"x", "i1", f32(4), "a"}, {"x", "i2", nil, "b"}}, 0),
		writeParquet(f, []pairs{{"a", "b"}}, 0),
		writeParquet(f, []nested{{"a", []string{"b", "c"}, 1}}, 0),
	} {
		f.Add(seed, false, uint8(0))
		f.Add(seed, true, uint8(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, implicit bool, cols uint8) {
		opts := ScanOptions{Name: "f", Format: FormatParquet, Implicit: implicit, OnBadLine: BadLinePolicy(cols & 1)}
		if cols&2 != 0 {
			opts.Columns = []string{"user", "item", "score"}
		}
		got := scanAll(t, bytes.NewReader(data), opts)
		if got.err == nil {
			return
		}
		var le *LineError
		switch {
		case errors.As(got.err, &le):
			if le.File != "f" || le.Line < 1 || le.Line > got.stats.Lines || le.Reason == "" {
				t.Fatalf("bad LineError %+v after %d rows", le, got.stats.Lines)
			}
		case errors.Is(got.err, ErrFormat), errors.Is(got.err, ErrEmpty):
		default:
			t.Fatalf("error %v is neither a line, format nor empty-input error", got.err)
		}
	})
}
