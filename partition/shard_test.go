package partition

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// indexBytes indexes data as a file called name, writing it in pieces of
// the given size (0: at once).
func indexBytes(tb testing.TB, name string, data []byte, chunk int64, piece int, format Format) (FileIndex, error) {
	tb.Helper()
	x := NewIndexer(name, chunk)
	if piece <= 0 {
		piece = len(data) + 1
	}
	for p := data; len(p) > 0; {
		k := min(piece, len(p))
		x.Write(p[:k])
		p = p[k:]
	}
	return x.Index(format)
}

type shardResult struct {
	recs  []string
	stats ScanStats
	err   string
}

// scanSharded reads data as the shards of one file would be read by
// different workers, in order, and stops at the first failing shard, as
// a job reports the first bad line of its input.
func scanSharded(tb testing.TB, data []byte, chunk int64, n int, opts ScanOptions) shardResult {
	tb.Helper()
	ix, err := indexBytes(tb, "in.csv", data, chunk, 0, opts.Format)
	if err != nil {
		return shardResult{err: err.Error()}
	}
	var res shardResult
	res.stats.Format = scanFormat(&ix, opts.Format)
	r := bytes.NewReader(data)
	for k, sh := range CutShards([]FileIndex{ix}, opts.Format, n, false) {
		var want int64
		st, err := ScanShard(context.Background(), r, &ix, sh, opts, func(u, i []byte, v float32, ord int64) error {
			if ord != want {
				tb.Fatalf("shard %d: ordinal %d, want %d", k, ord, want)
			}
			want++
			res.recs = append(res.recs, fmt.Sprintf("%s|%s|%g", u, i, v))
			return nil
		})
		res.stats.Lines += st.Lines
		res.stats.Records += st.Records
		res.stats.Skipped += st.Skipped
		if err != nil {
			res.err = err.Error()
			return res
		}
	}
	if res.stats.Records == 0 {
		res.err = (&emptyError{file: "in.csv"}).Error()
	}
	return res
}

// scanWhole is Scan over all of data, for comparison.
func scanWhole(data []byte, opts ScanOptions) shardResult {
	opts.Name = "in.csv"
	var res shardResult
	st, err := Scan(context.Background(), bytes.NewReader(data), opts, func(u, i []byte, v float32) error {
		res.recs = append(res.recs, fmt.Sprintf("%s|%s|%g", u, i, v))
		return nil
	})
	res.stats = st
	if err != nil {
		res.err = err.Error()
	}
	return res
}

func shardCases(rng *rand.Rand) map[string]string {
	lines := func(n int, sep string, bad map[int]string) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			if l, ok := bad[i]; ok {
				b.WriteString(l + "\n")
				continue
			}
			fmt.Fprintf(&b, "%d%s%d%s%d.5\n", rng.IntN(40)+1, sep, rng.IntN(30)+1, sep, rng.IntN(5))
		}
		return b.String()
	}
	return map[string]string{
		"csv header":          "user,item,rating\n" + lines(400, ",", nil),
		"csv no header":       lines(400, ",", nil),
		"csv bom crlf blanks": "\xEF\xBB\xBFuserId,movieId,rating\r\n\r\n" + strings.ReplaceAll(lines(300, ",", map[int]string{50: "", 51: "  "}), "\n", "\r\n"),
		"csv bad late":        lines(500, ",", map[int]string{420: "1,2,x"}),
		"csv bad early":       lines(500, ",", map[int]string{3: "1,2", 420: "1,,3"}),
		"csv quoted":          lines(300, ",", map[int]string{250: "\"1\",\"2\n\",3"}),
		"csv no final nl":     strings.TrimSuffix(lines(300, ",", nil), "\n"),
		"blank head":          strings.Repeat("\n", 2000) + "user,item,rating\n" + lines(100, ",", nil),
		"bom only blank":      "\xEF\xBB\xBF \n\n" + lines(100, ",", nil),
		"tsv":                 lines(400, "\t", map[int]string{200: "9\t9"}),
		"tsv header":          "user\titem\trating\n" + lines(400, "\t", nil),
		"movielens":           lines(400, "::", nil),
		"mm":                  "%%MatrixMarket matrix coordinate real general\n3 3 2\n1 2 3\n2 3 4\n",
		"undetectable":        "abc\n" + lines(100, ",", nil),
		"only blanks":         strings.Repeat("\n \n", 500),
		"header only":         "user,item,rating\n" + strings.Repeat("\n", 500),
		"long line":           lines(100, ",", nil) + strings.Repeat("x", maxLineLen+10) + "\n" + lines(100, ",", nil),
		"long tsv line":       lines(100, "\t", nil) + strings.Repeat("y", maxLineLen+3) + "\r\n" + lines(100, "\t", nil),
		"tiny":                "1,2,3",
		"two bytes":           "\xEF\xBB",
	}
}

// TestScanShardsMatchScan parses every input whole and as shards of many
// sizes, and wants the same records in the same order, the same counts and
// the same first error with its line number.
func TestScanShardsMatchScan(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for name, content := range shardCases(rng) {
		data := []byte(content)
		for _, policy := range []BadLinePolicy{FailOnBadLine, SkipBadLine} {
			for _, format := range []Format{FormatAuto, FormatCSV} {
				if format == FormatCSV && !strings.HasPrefix(name, "csv") {
					continue
				}
				opts := ScanOptions{OnBadLine: policy, Format: format}
				want := scanWhole(data, opts)
				chunks, counts := []int64{1, 7, 64, 1000, 1 << 20}, []int{1, 2, 5, 40, 1000}
				if testing.Short() {
					// The race detector's pass: nothing here is concurrent.
					chunks, counts = []int64{7, 1000}, []int{1, 5, 40}
				}
				for _, chunk := range chunks {
					for _, n := range counts {
						if len(data) > 1<<20 && (chunk < 64 || n > 40) {
							continue // long lines: shards inside one would each look for its end
						}
						got := scanSharded(t, data, chunk, n, opts)
						tag := fmt.Sprintf("%s, policy %d, chunk %d, %d shards", name, policy, chunk, n)
						if got.err != want.err {
							t.Fatalf("%s: error %q, want %q", tag, got.err, want.err)
						}
						if !reflect.DeepEqual(got.recs, want.recs) {
							t.Fatalf("%s: %d records, want %d (or in another order)", tag, len(got.recs), len(want.recs))
						}
						if want.err == "" && got.stats != want.stats {
							t.Fatalf("%s: stats %+v, want %+v", tag, got.stats, want.stats)
						}
					}
				}
			}
		}
	}
}

func TestIndexerPiecesAgree(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for name, content := range shardCases(rng) {
		want, werr := indexBytes(t, name, []byte(content), 13, 0, FormatAuto)
		for _, piece := range []int{1, 2, 3, 5, 100} {
			if piece < 5 && len(content) > 64<<10 {
				continue // a byte at a time through a megabyte teaches nothing more
			}
			got, err := indexBytes(t, name, []byte(content), 13, piece, FormatAuto)
			if fmt.Sprint(err) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s, pieces of %d: %+v, %v; want %+v, %v", name, piece, got, err, want, werr)
			}
		}
		if werr != nil {
			continue
		}
		if err := want.Check(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		var nl int64
		for _, k := range want.Newlines {
			nl += k
		}
		if nl != int64(strings.Count(content, "\n")) {
			t.Errorf("%s: %d newlines indexed, %d in the file", name, nl, strings.Count(content, "\n"))
		}
		if want.Quoted != strings.Contains(content, `"`) {
			t.Errorf("%s: quoted %v", name, want.Quoted)
		}
	}
}

func TestIndexerHead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		format  Format
		headEnd int64
		err     string
	}{
		{"1,2,3\n4,5,6\n", FormatCSV, 6, ""},
		{"\n \r\n1\t2\t3\n", FormatTSV, 10, ""},
		{"\xEF\xBB\xBF1::2::3\n", FormatMovieLens, 11, ""},
		{"\xEF\xBB\n1,2,3\n", "", 0, "f: " + detectMsg},
		{"%%MatrixMarket matrix coordinate real general\n", FormatMM, 46, ""},
		{"1,2,3", FormatCSV, 5, ""},
		{" \n\t\n", "", 0, "f: no ratings"},
		{"", "", 0, "f: no ratings"},
	}
	for _, tc := range tests {
		ix, err := indexBytes(t, "f", []byte(tc.in), 4, 0, FormatAuto)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || ix.Format != tc.format || ix.HeadEnd != tc.headEnd {
			t.Errorf("%q: format %q head end %d (%v), want %q %d", tc.in, ix.Format, ix.HeadEnd, err, tc.format, tc.headEnd)
		}
	}
	if _, err := indexBytes(t, "f", []byte("abc\n"), 4, 0, FormatTSV); err != nil {
		t.Errorf("a given format is not detected: %v", err)
	}
}

func TestCutShards(t *testing.T) {
	t.Parallel()
	files := []FileIndex{
		{Name: "a", Size: 1000, Format: FormatCSV, ChunkSize: 100, HeadEnd: 250},
		{Name: "b", Size: 1000, Format: FormatCSV, ChunkSize: 100, Quoted: true},
		{Name: "c", Size: 2000, Format: FormatMM, ChunkSize: 100},
		{Name: "d", Size: 40, Format: FormatTSV, ChunkSize: 100},
		{Name: "e", Size: 1000, Format: FormatTSV, ChunkSize: 100, Quoted: true},
	}
	got := CutShards(files, FormatAuto, 17, true)
	want := []Shard{
		{0, 0, 300, true}, {0, 300, 600, true}, {0, 600, 1000, true},
		{1, 0, 1000, true},
		{2, 0, 2000, true},
		{3, 0, 40, true},
		{4, 0, 300, true}, {4, 300, 600, true}, {4, 600, 1000, true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("shards %v\nwant %v", got, want)
	}
	// As TSV, the quoted file can be cut.
	if s := CutShards(files[1:2], FormatTSV, 3, false); len(s) != 3 {
		t.Errorf("quoted file read as TSV: %v", s)
	}
}

func TestScanShardRefusesBadIndex(t *testing.T) {
	t.Parallel()
	data := []byte("1,2,3\n4,\"5\",6\n7,8,9\n")
	ix, err := indexBytes(t, "f.csv", data, 4, 0, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	ix.Quoted = false // a damaged index
	var errs []error
	for _, sh := range CutShards([]FileIndex{ix}, FormatAuto, 4, false) {
		_, err := ScanShard(context.Background(), bytes.NewReader(data), &ix, sh, ScanOptions{}, func([]byte, []byte, float32, int64) error { return nil })
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); !errors.Is(err, ErrIndex) {
		t.Errorf("error %v, want ErrIndex", err)
	}
	bad := []FileIndex{
		{Name: "", Size: 1, Format: FormatCSV, ChunkSize: 1, Newlines: []int64{0}},
		{Name: "f", Size: 3, Format: FormatCSV, ChunkSize: 2, Newlines: []int64{0}},
		{Name: "f", Size: 3, Format: FormatAuto, ChunkSize: 4, Newlines: []int64{0}},
		{Name: "f", Size: 3, Format: FormatCSV, ChunkSize: 4, Newlines: []int64{5}},
		{Name: "f", Size: 3, Format: FormatCSV, ChunkSize: 0},
		{Name: "f", Size: 3, Format: FormatCSV, ChunkSize: 4, Newlines: []int64{0}, HeadEnd: 9},
	}
	for _, ix := range bad {
		if err := ix.Check(); !errors.Is(err, ErrIndex) {
			t.Errorf("%+v: %v, want ErrIndex", ix, err)
		}
	}
	good, _ := indexBytes(t, "f", data, 4, 0, FormatAuto)
	if _, err := ScanShard(context.Background(), bytes.NewReader(data), &good, Shard{Lo: 3, Hi: 8}, ScanOptions{}, nil); !errors.Is(err, ErrIndex) {
		t.Errorf("a shard off the chunk grid: %v", err)
	}
}

// FuzzScanShard: any input, indexed in any chunk size and cut into any
// number of shards, parses as Scan parses it whole.
func FuzzScanShard(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, c := range shardCases(rng) {
		if len(c) < 4096 {
			f.Add([]byte(c), uint8(7), uint8(5), false)
		}
	}
	f.Add([]byte("u,i,r\n1,2,3\n\n4,5,x\n"), uint8(3), uint8(9), true)
	f.Add([]byte("1\t2\t3\r\n4\t5\n"), uint8(1), uint8(200), false)
	f.Fuzz(func(t *testing.T, data []byte, chunk, n uint8, skip bool) {
		opts := ScanOptions{}
		if skip {
			opts.OnBadLine = SkipBadLine
		}
		want := scanWhole(data, opts)
		got := scanSharded(t, data, int64(chunk)+1, int(n), opts)
		if got.err != want.err {
			t.Fatalf("error %q, want %q", got.err, want.err)
		}
		if !reflect.DeepEqual(got.recs, want.recs) {
			t.Fatalf("records %q, want %q", got.recs, want.recs)
		}
		if want.err == "" && got.stats != want.stats {
			t.Fatalf("stats %+v, want %+v", got.stats, want.stats)
		}
	})
}
