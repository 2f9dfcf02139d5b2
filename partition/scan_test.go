package partition

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// scanResult is everything a scan produced, in a comparable form.
type scanResult struct {
	recs  string // "user|item|rating;" per record
	stats ScanStats
	err   error
}

func scanAll(t testing.TB, r io.Reader, opts ScanOptions) scanResult {
	t.Helper()
	var b strings.Builder
	st, err := Scan(context.Background(), r, opts, func(user, item []byte, rating float32) error {
		fmt.Fprintf(&b, "%s|%s|%s;", user, item, strconv.FormatFloat(float64(rating), 'g', -1, 32))
		return nil
	})
	return scanResult{b.String(), st, err}
}

// scanBoth scans input from one whole reader and from a one-byte-at-a-time
// reader, which moves every buffer boundary, and checks they agree.
func scanBoth(t *testing.T, input string, opts ScanOptions) scanResult {
	t.Helper()
	whole := scanAll(t, strings.NewReader(input), opts)
	bytewise := scanAll(t, iotest.OneByteReader(strings.NewReader(input)), opts)
	if whole.recs != bytewise.recs || whole.stats != bytewise.stats || errText(whole.err) != errText(bytewise.err) {
		t.Errorf("one-byte reader differs:\nwhole    %q %+v %v\nbytewise %q %+v %v",
			whole.recs, whole.stats, whole.err, bytewise.recs, bytewise.stats, bytewise.err)
	}
	return whole
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestScanValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		format   Format
		implicit bool
		in       string
		want     string
		lines    int64
		used     Format // format reported; defaults to format
	}{
		{name: "csv plain", format: FormatCSV, in: "1,2,3.5\n3,4,5\n", want: "1|2|3.5;3|4|5;", lines: 2},
		{name: "csv movielens header", format: FormatCSV, in: "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n", want: "1|31|2.5;", lines: 2},
		{name: "csv user item rating header", format: FormatCSV, in: "user,item,rating\na,b,1\n", want: "a|b|1;", lines: 2},
		{name: "csv header other names", format: FormatCSV, in: "uid,iid,score\n7,8,9\n", want: "7|8|9;", lines: 2},
		{name: "csv header USER_ID", format: FormatCSV, in: "USER_ID,x,3\n7,8,9\n", want: "7|8|9;", lines: 2},
		{name: "csv quoted header", format: FormatCSV, in: "\"userId\",\"movieId\",\"rating\"\n1,2,3\n", want: "1|2|3;", lines: 2},
		{name: "csv bom", format: FormatCSV, in: "\uFEFFuserId,movieId,rating\n1,2,3\n", want: "1|2|3;", lines: 2},
		{name: "csv bom no header", format: FormatCSV, in: "\uFEFF1,2,3\n", want: "1|2|3;", lines: 1},
		{name: "csv crlf", format: FormatCSV, in: "user,item,rating\r\n1,2,3\r\n4,5,6\r\n", want: "1|2|3;4|5|6;", lines: 3},
		{name: "csv no final newline", format: FormatCSV, in: "1,2,3\n4,5,6", want: "1|2|3;4|5|6;", lines: 2},
		{name: "csv crlf no final newline", format: FormatCSV, in: "1,2,3\r\n4,5,6", want: "1|2|3;4|5|6;", lines: 2},
		{name: "csv blank lines", format: FormatCSV, in: "\n1,2,3\n\n  \n\r\n4,5,6\n\n", want: "1|2|3;4|5|6;", lines: 7},
		{name: "csv spaces trimmed", format: FormatCSV, in: " 1 ,\t2\t, 3.5 ,x\n", want: "1|2|3.5;", lines: 1},
		{name: "csv extra fields", format: FormatCSV, in: "1,2,3,4,5,six\n", want: "1|2|3;", lines: 1},
		{name: "csv string ids", format: FormatCSV, in: "u-1,Item 2,4\n", want: "u-1|Item 2|4;", lines: 1},
		{name: "csv quoted comma", format: FormatCSV, in: "\"a,b\",c,1\n", want: "a,b|c|1;", lines: 1},
		{name: "csv escaped quotes", format: FormatCSV, in: "\"say \"\"hi\"\"\",\"\"\"\",2\n", want: "say \"hi\"|\"|2;", lines: 1},
		{name: "csv quoted rating", format: FormatCSV, in: "a,b,\"4.5\"\n", want: "a|b|4.5;", lines: 1},
		{name: "csv quoted spaces kept", format: FormatCSV, in: "\" a \" , \"b\"\t,3\n", want: " a |b|3;", lines: 1},
		{name: "csv quoted newline", format: FormatCSV, in: "\"a\nb\",c,1\nd,e,2\n", want: "a\nb|c|1;d|e|2;", lines: 3},
		{name: "csv quoted crlf", format: FormatCSV, in: "\"a\r\nb\",c,1\r\nd,e,2\r\n", want: "a\r\nb|c|1;d|e|2;", lines: 3},
		{name: "csv quoted timestamp newline", format: FormatCSV, in: "a,b,1,\"x\n\ny\"\nc,d,2", want: "a|b|1;c|d|2;", lines: 4},
		{name: "csv quoted last field no newline", format: FormatCSV, in: "a,b,\"3\"", want: "a|b|3;", lines: 1},
		{name: "csv quoted then empty rating field", format: FormatCSV, implicit: true, in: "\"a\",b", want: "a|b|1;", lines: 1},
		{name: "csv ratings", format: FormatCSV, in: "a,b,-0.25\na,b,+4\na,b,10.125\na,b,1e2\na,b,.5\na,b,5.\na,b,0x1p-2\n", want: "a|b|-0.25;a|b|4;a|b|10.125;a|b|100;a|b|0.5;a|b|5;a|b|0.25;", lines: 7},
		{name: "csv not a header when rating is numeric", format: FormatCSV, in: "item,user,5\n", want: "item|user|5;", lines: 1},

		{name: "tsv u.data", format: FormatTSV, in: "196\t242\t3\t881250949\n186\t302\t3\t891717742\n", want: "196|242|3;186|302|3;", lines: 2},
		{name: "tsv header", format: FormatTSV, in: "user_id\titem_id\trating\n1\t2\t3\n", want: "1|2|3;", lines: 2},
		{name: "tsv crlf bom no final newline", format: FormatTSV, in: "\uFEFF1\t2\t3\r\n4\t5\t6", want: "1|2|3;4|5|6;", lines: 2},
		{name: "tsv quotes are data", format: FormatTSV, in: "\"a\t\"b\t3\n", want: "\"a|\"b|3;", lines: 1},

		{name: "movielens", format: FormatMovieLens, in: "1::1193::5::978300760\n1::661::3::978302109\n", want: "1|1193|5;1|661|3;", lines: 2},
		{name: "movielens crlf no final newline", format: FormatMovieLens, in: "1::2::3\r\n4::5::6", want: "1|2|3;4|5|6;", lines: 2},
		{name: "movielens single colons kept", format: FormatMovieLens, in: "a:b::c::4\n", want: "a:b|c|4;", lines: 1},

		{name: "implicit csv header", format: FormatCSV, implicit: true, in: "user,item\na,b\nc,d\n", want: "a|b|1;c|d|1;", lines: 3},
		{name: "implicit csv counts", format: FormatCSV, implicit: true, in: "a,b,3\nc,d\n", want: "a|b|3;c|d|1;", lines: 2},
		{name: "implicit tsv", format: FormatTSV, implicit: true, in: "a\tb\n", want: "a|b|1;", lines: 1},
		{name: "implicit movielens", format: FormatMovieLens, implicit: true, in: "a::b\n", want: "a|b|1;", lines: 1},

		{name: "mm real", format: FormatMM, in: "%%MatrixMarket matrix coordinate real general\n% comment\n%\n3 4 2\n1 4 3.5\n3 1 -2\n", want: "1|4|3.5;3|1|-2;", lines: 6},
		{name: "mm integer", format: FormatMM, in: "%%MatrixMarket matrix coordinate integer general\n2 2 1\n2 2 5\n", want: "2|2|5;", lines: 3},
		{name: "mm pattern", format: FormatMM, in: "%%MatrixMarket matrix coordinate pattern general\n2 2 2\n1 2\n2 1\n", want: "1|2|1;2|1|1;", lines: 4},
		{name: "mm case and blanks", format: FormatMM, in: "%%matrixmarket MATRIX Coordinate REAL General\r\n\r\n  2\t2  1 \r\n\t1   2\t4.5  \r\n", want: "1|2|4.5;", lines: 4},
		{name: "mm leading zeros and sign", format: FormatMM, in: "%%MatrixMarket matrix coordinate real general\n20 20 1\n+007 017 1\n", want: "7|17|1;", lines: 3},
		{name: "mm no final newline", format: FormatMM, in: "%%MatrixMarket matrix coordinate real general\n1 1 1\n1 1 2", want: "1|1|2;", lines: 3},
		{name: "mm extra values ignored", format: FormatMM, in: "%%MatrixMarket matrix coordinate real general\n1 1 1\n1 1 2 9 9\n", want: "1|1|2;", lines: 3},
		{name: "mm implicit real without value", format: FormatMM, implicit: true, in: "%%MatrixMarket matrix coordinate real general\n1 1 1\n1 1\n", want: "1|1|1;", lines: 3},

		{name: "auto csv", format: FormatAuto, in: "userId,movieId,rating\n1,2,3\n", want: "1|2|3;", lines: 2, used: FormatCSV},
		{name: "auto empty format is auto", format: "", in: "1\t2\t3\n", want: "1|2|3;", lines: 1, used: FormatTSV},
		{name: "auto movielens after blank lines", format: FormatAuto, in: "\n\r\n1::2::3\n", want: "1|2|3;", lines: 3, used: FormatMovieLens},
		{name: "auto mm", format: FormatAuto, in: "%%MatrixMarket matrix coordinate pattern general\n1 1 1\n1 1\n", want: "1|1|1;", lines: 3, used: FormatMM},
		{name: "auto bom csv", format: FormatAuto, in: "\uFEFFa,b,1\n", want: "a|b|1;", lines: 1, used: FormatCSV},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := scanBoth(t, tc.in, ScanOptions{Name: "in", Format: tc.format, Implicit: tc.implicit})
			if res.err != nil {
				t.Fatalf("error: %v", res.err)
			}
			if res.recs != tc.want {
				t.Errorf("records\n got %q\nwant %q", res.recs, tc.want)
			}
			used := tc.used
			if used == "" {
				used = tc.format
			}
			if res.stats.Format != used || res.stats.Lines != tc.lines || res.stats.Skipped != 0 ||
				res.stats.Records != int64(strings.Count(tc.want, ";")) {
				t.Errorf("stats %+v, want format %s, %d lines", res.stats, used, tc.lines)
			}
		})
	}
}

func TestScanFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file     string
		format   Format
		implicit bool
		records  int64
		first    string
	}{
		{"u.data", FormatTSV, false, 10, "196|242|3;"},
		{"ratings.dat", FormatMovieLens, false, 8, "1|1193|5;"},
		{"ratings.csv", FormatCSV, false, 6, "1|2|3.5;"},
		{"ratings.mtx", FormatMM, false, 6, "1|1|5;"},
		{"implicit.csv", FormatCSV, true, 4, "alice|book-17|1;"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			auto := scanBoth(t, string(data), ScanOptions{Name: tc.file, Implicit: tc.implicit})
			named := scanBoth(t, string(data), ScanOptions{Name: tc.file, Format: tc.format, Implicit: tc.implicit})
			for _, res := range []scanResult{auto, named} {
				if res.err != nil {
					t.Fatal(res.err)
				}
				if res.stats.Format != tc.format || res.stats.Records != tc.records {
					t.Errorf("stats %+v, want %s with %d records", res.stats, tc.format, tc.records)
				}
				if !strings.HasPrefix(res.recs, tc.first) {
					t.Errorf("records %q, want them to start %q", res.recs, tc.first)
				}
			}
		})
	}
}

func TestScanBadLines(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", maxLineLen)
	tests := []struct {
		name     string
		format   Format
		implicit bool
		in       string
		err      string // the error under FailOnBadLine
		want     string // records under SkipBadLine
		skipped  int64
	}{
		{name: "not a number", format: FormatCSV, in: "userId,movieId,rating\n1,2,3\n1,3,abc\n1,4,4\n",
			err: `in:3: rating "abc" is not a number`, want: "1|2|3;1|4|4;", skipped: 1},
		{name: "empty rating", format: FormatCSV, in: "1,2,3\n1,3,\n", err: `in:2: rating "" is not a number`, want: "1|2|3;", skipped: 1},
		{name: "rating with comma decimal", format: FormatTSV, in: "1\t2\t3\n1\t3\t3,5\n", err: `in:2: rating "3,5" is not a number`, want: "1|2|3;", skipped: 1},
		{name: "NaN", format: FormatCSV, in: "1,2,3\n1,3,NaN\n", err: `in:2: rating "NaN" is not finite`, want: "1|2|3;", skipped: 1},
		{name: "nan lower", format: FormatCSV, in: "1,2,3\n1,3,nan\n", err: `in:2: rating "nan" is not finite`, want: "1|2|3;", skipped: 1},
		{name: "Inf", format: FormatCSV, in: "1,2,3\n1,3,Inf\n", err: `in:2: rating "Inf" is not finite`, want: "1|2|3;", skipped: 1},
		{name: "+Inf", format: FormatCSV, in: "1,2,3\n1,3,+Inf\n", err: `in:2: rating "+Inf" is not finite`, want: "1|2|3;", skipped: 1},
		{name: "-Inf", format: FormatCSV, in: "1,2,3\n1,3,-Inf\n", err: `in:2: rating "-Inf" is not finite`, want: "1|2|3;", skipped: 1},
		{name: "Infinity", format: FormatMovieLens, in: "1::2::3\n1::3::infinity\n", err: `in:2: rating "infinity" is not finite`, want: "1|2|3;", skipped: 1},
		{name: "overflow", format: FormatCSV, in: "1,2,3\n1,3,1e39\n", err: `in:2: rating "1e39" is not finite`, want: "1|2|3;", skipped: 1},
		{name: "negative overflow", format: FormatCSV, in: "1,2,3\n1,3,-3.5e38\n", err: `in:2: rating "-3.5e38" is not finite`, want: "1|2|3;", skipped: 1},
		{name: "NaN first line is no header", format: FormatCSV, in: "1,3,NaN\n1,2,3\n", err: `in:1: rating "NaN" is not finite`, want: "1|2|3;", skipped: 1},
		{name: "two fields", format: FormatCSV, in: "1,2,3\n1,2\n", err: "in:2: expected at least 3 fields (user, item, rating), found 2", want: "1|2|3;", skipped: 1},
		{name: "one field", format: FormatCSV, in: "1,2,3\nabc\n", err: "in:2: expected at least 3 fields (user, item, rating), found 1", want: "1|2|3;", skipped: 1},
		{name: "one field tsv", format: FormatTSV, in: "1\t2\t3\n1 2 3\n", err: "in:2: expected at least 3 fields (user, item, rating), found 1", want: "1|2|3;", skipped: 1},
		{name: "movielens two fields", format: FormatMovieLens, in: "1::2::3\n1::2:3\n", err: "in:2: expected at least 3 fields (user, item, rating), found 2", want: "1|2|3;", skipped: 1},
		{name: "implicit one field", format: FormatCSV, implicit: true, in: "a,b\nc\n", err: "in:2: expected at least 2 fields (user, item), found 1", want: "a|b|1;", skipped: 1},
		{name: "implicit bad rating", format: FormatCSV, implicit: true, in: "a,b\nc,d,x\n", err: `in:2: rating "x" is not a number`, want: "a|b|1;", skipped: 1},
		{name: "long user ID", format: FormatCSV, in: "a,b,1\n" + strings.Repeat("u", MaxIDLen+1) + ",b,2\n", err: "in:2: user ID longer than 4096 bytes", want: "a|b|1;", skipped: 1},
		{name: "long item ID", format: FormatTSV, in: "a\tb\t1\nc\t" + strings.Repeat("i", MaxIDLen+1) + "\t2\n", err: "in:2: item ID longer than 4096 bytes", want: "a|b|1;", skipped: 1},
		{name: "implicit negative", format: FormatCSV, implicit: true, in: "a,b,2\nc,d,-0.5\n", err: `in:2: rating "-0.5" is negative; implicit strengths must be ≥ 0`, want: "a|b|2;", skipped: 1},
		{name: "implicit negative mm", format: FormatMM, implicit: true, in: "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n2 2 -3\n", err: `in:4: rating "-3" is negative; implicit strengths must be ≥ 0`, want: "1|1|1;", skipped: 1},
		{name: "empty user", format: FormatCSV, in: "1,2,3\n ,2,3\n", err: "in:2: empty user ID", want: "1|2|3;", skipped: 1},
		{name: "empty quoted user", format: FormatCSV, in: "1,2,3\n\"\",2,3\n", err: "in:2: empty user ID", want: "1|2|3;", skipped: 1},
		{name: "empty item", format: FormatTSV, in: "1\t2\t3\n1\t\t3\n", err: "in:2: empty item ID", want: "1|2|3;", skipped: 1},
		{name: "empty item movielens", format: FormatMovieLens, in: "1::2::3\n1::::3\n", err: "in:2: empty item ID", want: "1|2|3;", skipped: 1},
		{name: "unterminated", format: FormatCSV, in: "1,2,3\n4,\"5,6\n7,8,9\n", err: "in:2: unterminated quoted field", want: "1|2|3;", skipped: 1},
		{name: "unterminated on later line", format: FormatCSV, in: "1,2,3\n\"a\nb\",\"c\n", err: "in:3: unterminated quoted field", want: "1|2|3;", skipped: 1},
		{name: "quote in unquoted field", format: FormatCSV, in: "1,2,3\na\"b,c,1\n4,5,6\n", err: "in:2: quote in unquoted field", want: "1|2|3;4|5|6;", skipped: 1},
		{name: "text after closing quote", format: FormatCSV, in: "1,2,3\n\"a\"b,c,1\n4,5,6\n", err: "in:2: text after closing quote", want: "1|2|3;4|5|6;", skipped: 1},
		{name: "bad line after quoted newline", format: FormatCSV, in: "\"a\nb\nc\",d,1\ne,f,g\nh,i,2\n", err: `in:4: rating "g" is not a number`, want: "a\nb\nc|d|1;h|i|2;", skipped: 1},
		{name: "bad field inside multi-line record", format: FormatCSV, in: "1,2,3\n\"a\nb\",c,x\n", err: `in:3: rating "x" is not a number`, want: "1|2|3;", skipped: 1},
		{name: "bad count of multi-line record", format: FormatCSV, in: "1,2,3\n\"a\nb\",c\n", err: "in:2: expected at least 3 fields (user, item, rating), found 2", want: "1|2|3;", skipped: 1},
		{name: "long line", format: FormatCSV, in: "1,2,3\n" + long + "y\n4,5,6\n", err: "in:2: line longer than 1048576 bytes", want: "1|2|3;4|5|6;", skipped: 1},
		{name: "long line crlf", format: FormatTSV, in: "1\t2\t3\n" + long + "y\r\n4\t5\t6\n", err: "in:2: line longer than 1048576 bytes", want: "1|2|3;4|5|6;", skipped: 1},
		{name: "long last line", format: FormatMovieLens, in: "1::2::3\n" + long + "y", err: "in:2: line longer than 1048576 bytes", want: "1|2|3;", skipped: 1},
		{name: "long quoted record", format: FormatCSV, in: "1,2,3\n\"a\n" + long + "\nb\",c,1\n4,5,6\n", err: "in:2: line longer than 1048576 bytes", want: "1|2|3;4|5|6;", skipped: 1},
		{name: "long line opening a quoted field", format: FormatCSV, in: "1,2,3\n" + long + ",\"a\nb\",c,1\n4,5,6\n", err: "in:2: line longer than 1048576 bytes", want: "1|2|3;4|5|6;", skipped: 1},
		{name: "long quoted record on one line", format: FormatCSV, in: "1,2,3\n\"" + long + "\",c,1\n4,5,6\n", err: "in:2: line longer than 1048576 bytes", want: "1|2|3;4|5|6;", skipped: 1},
		{name: "header only on the first record", format: FormatCSV, in: "a\"b,c,1\nuser,item,rating\n1,2,3\n", err: "in:1: quote in unquoted field", want: "1|2|3;", skipped: 2},
		{name: "header only on the first record after a long line", format: FormatTSV, in: long + "y\nuser\titem\n1\t2\t3\n", err: "in:1: line longer than 1048576 bytes", want: "1|2|3;", skipped: 2},
		{name: "mm row index 0", format: FormatMM, in: "%%MatrixMarket matrix coordinate real general\n3 3 2\n0 1 1\n1 1 1\n", err: "in:3: row index 0 outside 1..3", want: "1|1|1;", skipped: 1},
		{name: "mm row index too big", format: FormatMM, in: "%%MatrixMarket matrix coordinate real general\n3 3 2\n4 1 1\n1 1 1\n", err: "in:3: row index 4 outside 1..3", want: "1|1|1;", skipped: 1},
		{name: "mm column index too big", format: FormatMM, in: "%%MatrixMarket matrix coordinate real general\n3 2 2\n1 1 1\n1 3 1\n", err: "in:4: column index 3 outside 1..2", want: "1|1|1;", skipped: 1},
		{name: "mm negative index", format: FormatMM, in: "%%MatrixMarket matrix coordinate real general\n3 3 2\n1 -1 1\n1 1 1\n", err: "in:3: column index -1 outside 1..3", want: "1|1|1;", skipped: 1},
		{name: "mm index not an integer", format: FormatMM, in: "%%MatrixMarket matrix coordinate real general\n3 3 2\nx 1 1\n1 1 1\n", err: `in:3: index "x" is not an integer`, want: "1|1|1;", skipped: 1},
		{name: "mm fractional index", format: FormatMM, in: "%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1.0 1\n1 1 1\n", err: `in:3: index "1.0" is not an integer`, want: "1|1|1;", skipped: 1},
		{name: "mm value", format: FormatMM, in: "%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1 x\n1 1 1\n", err: `in:3: rating "x" is not a number`, want: "1|1|1;", skipped: 1},
		{name: "mm value NaN", format: FormatMM, in: "%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1 NaN\n1 1 1\n", err: `in:3: rating "NaN" is not finite`, want: "1|1|1;", skipped: 1},
		{name: "mm missing value", format: FormatMM, in: "%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1\n1 1 1\n", err: "in:3: expected at least 3 fields (user, item, rating), found 2", want: "1|1|1;", skipped: 1},
		{name: "mm pattern one field", format: FormatMM, in: "%%MatrixMarket matrix coordinate pattern general\n3 3 2\n1\n1 1\n", err: "in:3: expected at least 2 fields (user, item), found 1", want: "1|1|1;", skipped: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := ScanOptions{Name: "in", Format: tc.format, Implicit: tc.implicit}
			res := scanBoth(t, tc.in, opts)
			var le *LineError
			if !errors.As(res.err, &le) || !errors.Is(res.err, ErrBadLine) {
				t.Fatalf("fail: error %v (%T), want a *LineError", res.err, res.err)
			}
			if res.err.Error() != tc.err {
				t.Errorf("fail: error\n got %q\nwant %q", res.err.Error(), tc.err)
			}
			if le.File != "in" || !strings.HasPrefix(tc.err, fmt.Sprintf("in:%d: %s", le.Line, le.Reason)) {
				t.Errorf("fail: LineError fields %+v do not match %q", le, tc.err)
			}
			opts.OnBadLine = SkipBadLine
			res = scanBoth(t, tc.in, opts)
			if res.err != nil {
				t.Fatalf("skip: error %v", res.err)
			}
			if res.recs != tc.want || res.stats.Skipped != tc.skipped {
				t.Errorf("skip: records %q, skipped %d; want %q, %d", res.recs, res.stats.Skipped, tc.want, tc.skipped)
			}
			if lines := int64(strings.Count(strings.TrimSuffix(tc.in, "\n"), "\n") + 1); res.stats.Lines != lines {
				t.Errorf("skip: %d lines, want %d", res.stats.Lines, lines)
			}
		})
	}
}

func TestScanSkipCountsEveryBadLine(t *testing.T) {
	t.Parallel()
	in := "user,item,rating\n1,2,x\n1,2\n,2,3\n1,,3\n1,2,NaN\n\"1,2,3\n"
	res := scanBoth(t, "a,b,1\n"+in[len("user,item,rating\n"):], ScanOptions{Name: "in", Format: FormatCSV, OnBadLine: SkipBadLine})
	if res.err != nil || res.recs != "a|b|1;" || res.stats.Skipped != 6 || res.stats.Lines != 7 {
		t.Errorf("got %q %+v %v", res.recs, res.stats, res.err)
	}
}

func TestScanEmpty(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		format Format
		skip   bool
		in     string
	}{
		{"empty auto", FormatAuto, false, ""},
		{"empty csv", FormatCSV, false, ""},
		{"empty mm", FormatMM, false, ""},
		{"bom only", FormatAuto, false, "\uFEFF"},
		{"blank lines auto", FormatAuto, false, "\n \n\t\r\n"},
		{"blank lines tsv", FormatTSV, false, "\n\n"},
		{"csv header only", FormatCSV, false, "userId,movieId,rating,timestamp\n"},
		{"auto header only", FormatAuto, false, "user,item,rating"},
		{"tsv header only", FormatTSV, false, "user\titem\trating\n\n"},
		{"all skipped", FormatCSV, true, "1,2,x\n3,4\n"},
		{"mm no entries", FormatMM, false, "%%MatrixMarket matrix coordinate real general\n% none\n5 5 0\n"},
		{"mm all skipped", FormatMM, true, "%%MatrixMarket matrix coordinate real general\n5 5 1\n0 0 0\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := ScanOptions{Name: "ratings.csv", Format: tc.format}
			if tc.skip {
				opts.OnBadLine = SkipBadLine
			}
			res := scanBoth(t, tc.in, opts)
			if !errors.Is(res.err, ErrEmpty) || res.err.Error() != "ratings.csv: no ratings" {
				t.Errorf("error %v, want exactly \"ratings.csv: no ratings\" wrapping ErrEmpty", res.err)
			}
			if res.stats.Records != 0 {
				t.Errorf("%d records", res.stats.Records)
			}
		})
	}
}

func TestScanStructuralErrors(t *testing.T) {
	t.Parallel()
	const banner = "%%MatrixMarket matrix coordinate real general\n"
	tests := []struct {
		name   string
		format Format
		in     string
		err    string
		sentry error
	}{
		{"undetectable", FormatAuto, "\n1 2 3\n", "m.mtx: cannot detect the input format from its first line; pass --format csv|tsv|movielens|mm", ErrFormat},
		{"undetectable one word", FormatAuto, "hello", "m.mtx: cannot detect the input format from its first line; pass --format csv|tsv|movielens|mm", ErrFormat},
		{"unknown format", Format("xml"), "1,2,3\n", `m.mtx: unknown format "xml" (want auto, csv, tsv, movielens, mm or parquet)`, ErrFormat},
		{"mm array", FormatAuto, "%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4\n",
			`m.mtx:1: Matrix Market format "array" is not supported; want coordinate`, ErrFormat},
		{"mm symmetric", FormatMM, "%%MatrixMarket matrix coordinate real symmetric\n1 1 1\n1 1 1\n",
			`m.mtx:1: Matrix Market symmetry "symmetric" is not supported; want general`, ErrFormat},
		{"mm skew", FormatMM, "%%MatrixMarket matrix coordinate real skew-symmetric\n1 1 1\n1 1 1\n",
			`m.mtx:1: Matrix Market symmetry "skew-symmetric" is not supported; want general`, ErrFormat},
		{"mm hermitian", FormatMM, "%%MatrixMarket matrix coordinate complex hermitian\n",
			`m.mtx:1: Matrix Market field "complex" is not supported; want real, integer or pattern`, ErrFormat},
		{"mm complex", FormatMM, "%%MatrixMarket matrix coordinate Complex general\n1 1 1\n1 1 1 0\n",
			`m.mtx:1: Matrix Market field "complex" is not supported; want real, integer or pattern`, ErrFormat},
		{"mm vector", FormatMM, "%%MatrixMarket vector coordinate real general\n",
			`m.mtx:1: Matrix Market object "vector" is not supported; want matrix`, ErrFormat},
		{"mm short header", FormatMM, "%%MatrixMarket matrix coordinate real\n1 1 1\n1 1 1\n",
			`m.mtx:1: malformed Matrix Market header; want "%%MatrixMarket matrix coordinate real|integer|pattern general"`, ErrFormat},
		{"mm no banner", FormatMM, "1 1 1\n1 1 1\n",
			`m.mtx:1: not a Matrix Market file; want "%%MatrixMarket matrix coordinate real|integer|pattern general"`, ErrFormat},
		{"mm bad size line", FormatMM, banner + "% c\n3 3\n1 1 1\n",
			`m.mtx:3: malformed Matrix Market size line "3 3"; want "ROWS COLUMNS ENTRIES"`, ErrFormat},
		{"mm size line not numbers", FormatMM, banner + "3 x 1\n1 1 1\n",
			`m.mtx:2: malformed Matrix Market size line "3 x 1"; want "ROWS COLUMNS ENTRIES"`, ErrFormat},
		{"mm negative size", FormatMM, banner + "3 -3 1\n1 1 1\n",
			`m.mtx:2: malformed Matrix Market size line "3 -3 1"; want "ROWS COLUMNS ENTRIES"`, ErrFormat},
		{"mm missing size line", FormatMM, banner + "% only comments\n",
			`m.mtx:2: missing Matrix Market size line`, ErrFormat},
		{"mm too few entries", FormatMM, banner + "3 3 3\n1 1 1\n2 2 2\n",
			"m.mtx:4: expected 3 entries, found 2", ErrBadLine},
		{"mm too many entries", FormatMM, banner + "3 3 1\n1 1 1\n2 2 2\n3 3 3\n\n",
			"m.mtx:6: expected 1 entries, found 3", ErrBadLine},
		{"mm no entries", FormatMM, banner + "3 3 2\n",
			"m.mtx:2: expected 2 entries, found 0", ErrBadLine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, policy := range []BadLinePolicy{FailOnBadLine, SkipBadLine} {
				res := scanBoth(t, tc.in, ScanOptions{Name: "m.mtx", Format: tc.format, OnBadLine: policy})
				if res.err == nil || res.err.Error() != tc.err || !errors.Is(res.err, tc.sentry) {
					t.Errorf("policy %d: error %v, want %q wrapping %v", policy, res.err, tc.err, tc.sentry)
				}
			}
		})
	}
}

func TestScanMMTooManyEntriesNotHandedOn(t *testing.T) {
	t.Parallel()
	res := scanAll(t, strings.NewReader("%%MatrixMarket matrix coordinate real general\n3 3 1\n1 1 1\n2 2 2\n"), ScanOptions{Name: "m", Format: FormatMM})
	if res.recs != "1|1|1;" {
		t.Errorf("records %q, want only the first", res.recs)
	}
}

func TestDetectFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		head string
		want Format
		err  error
	}{
		{"%%MatrixMarket matrix coordinate real general\n", FormatMM, nil},
		{"%%matrixmarket matrix coordinate real general", FormatMM, nil},
		{"\uFEFF\n\n%%MatrixMarket matrix", FormatMM, nil},
		{"1::1193::5::978300760\n", FormatMovieLens, nil},
		{"196\t242\t3\t881250949\n", FormatTSV, nil},
		{"userId,movieId,rating,timestamp\r\n", FormatCSV, nil},
		{"user,item\n", FormatCSV, nil},
		{"\uFEFFuser,item,rating\n", FormatCSV, nil},
		{"\r\n  \n1,2,3", FormatCSV, nil},
		{"a::b,c\n", FormatMovieLens, nil},
		{"a\tb,c\n", FormatTSV, nil},
		{"1 2 3\n1,2,3\n", "", ErrFormat},
		{"% comment\n", "", ErrFormat},
		{"hello", "", ErrFormat},
		{"", "", ErrEmpty},
		{"\n\t\n", "", ErrEmpty},
	}
	for _, tc := range tests {
		got, err := DetectFormat([]byte(tc.head))
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("DetectFormat(%q) = %q, %v; want %q, %v", tc.head, got, err, tc.want, tc.err)
		}
	}
	_, err := DetectFormat([]byte("x"))
	if want := "cannot detect the input format from its first line; pass --format csv|tsv|movielens|mm"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestScanCallbackError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	for _, in := range []string{"a,b,1\nc,d,2\n", "\"a\",b,1\nc,d,2\n", "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n2 2 2\n"} {
		n := 0
		st, err := Scan(context.Background(), strings.NewReader(in), ScanOptions{Name: "in"}, func(user, item []byte, rating float32) error {
			n++
			return stop
		})
		if err != stop || n != 1 || st.Records != 0 {
			t.Errorf("%q: error %v after %d calls, %d records; want the callback's error unchanged after 1 call", in, err, n, st.Records)
		}
	}
}

func TestScanContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Scan(ctx, strings.NewReader("1,2,3\n"), ScanOptions{Name: "in"}, func([]byte, []byte, float32) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: error %v", err)
	}

	for _, format := range []Format{FormatCSV, FormatMM} {
		var b bytes.Buffer
		const lines = 300_000
		if format == FormatMM {
			fmt.Fprintf(&b, "%%%%MatrixMarket matrix coordinate real general\n%d 10 %d\n", lines, lines)
		}
		for i := range lines {
			if format == FormatMM {
				fmt.Fprintf(&b, "%d 1 4\n", i+1)
			} else {
				fmt.Fprintf(&b, "%d,1,4\n", i)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		st, err := Scan(ctx, &b, ScanOptions{Name: "in", Format: format}, func([]byte, []byte, float32) error {
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: cancelled during: error %v", format, err)
		}
		if st.Records == 0 || st.Records > 1<<17 {
			t.Errorf("%s: %d records before the scan stopped; want it to stop within 65536 lines", format, st.Records)
		}
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("disk on fire")
	}
	r.n--
	return copy(p, "1,2,3\n"), nil
}

func TestScanReadError(t *testing.T) {
	t.Parallel()
	for _, format := range []Format{FormatAuto, FormatCSV} {
		_, err := Scan(context.Background(), &failingReader{n: 2}, ScanOptions{Name: "in", Format: format}, func([]byte, []byte, float32) error { return nil })
		if err == nil || err.Error() != "in: disk on fire" {
			t.Errorf("%s: error %v", format, err)
		}
	}
	for _, format := range []Format{FormatAuto, FormatCSV, FormatMM} {
		_, err := Scan(context.Background(), &failingReader{n: 0}, ScanOptions{Name: "in", Format: format}, func([]byte, []byte, float32) error { return nil })
		if err == nil || err.Error() != "in: disk on fire" {
			t.Errorf("%s at the start: error %v", format, err)
		}
	}
}

// TestScanAllocations checks that records cost no allocation: a scan of many
// lines allocates as much as a scan of a few.
func TestScanAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	gen := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString("userId,movieId,rating,timestamp\n")
		for i := range n {
			fmt.Fprintf(&b, "%d,%d,%d.5,1112486027\n", i%100, i%37, i%5)
		}
		return b.Bytes()
	}
	small, large := gen(10), gen(20_000)
	users, items := NewDict(), NewDict()
	fn := func(u, i []byte, r float32) error {
		users.Add(u)
		items.Add(i)
		return nil
	}
	allocs := func(data []byte) float64 {
		return testing.AllocsPerRun(5, func() {
			if _, err := Scan(context.Background(), bytes.NewReader(data), ScanOptions{Name: "in"}, fn); err != nil {
				t.Fatal(err)
			}
		})
	}
	allocs(large) // fill the dictionaries
	if a, b := allocs(small), allocs(large); b > a {
		t.Errorf("%v allocations for 20000 records, %v for 10", b, a)
	}
}

func TestParseRating(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		want  float32
		state int
	}{
		{"4", 4, ratingOK},
		{"3.5", 3.5, ratingOK},
		{"-0.25", -0.25, ratingOK},
		{"+10.125", 10.125, ratingOK},
		{"0.1", 0.1, ratingOK},
		{"16777215", 16777215, ratingOK},
		{"16777217", 16777216, ratingOK}, // past the fast path, correctly rounded
		{"0.0000000001", 1e-10, ratingOK},
		{"0.00000000001", 1e-11, ratingOK},
		{"1e3", 1000, ratingOK},
		{"3.4028235e38", 3.4028235e38, ratingOK},
		{"1e-50", 0, ratingOK},
		{"abc", 0, ratingNotNumber},
		{"", 0, ratingNotNumber},
		{"-", 0, ratingNotNumber},
		{".", 0, ratingNotNumber},
		{"4 stars", 0, ratingNotNumber},
		{"NaN", 0, ratingNotFinite},
		{"-inf", 0, ratingNotFinite},
		{"1e39", 0, ratingNotFinite},
		{"3.5e38", 0, ratingNotFinite},
	}
	for _, tc := range tests {
		got, state := parseRating([]byte(tc.in))
		if got != tc.want || state != tc.state {
			t.Errorf("parseRating(%q) = %v, %d; want %v, %d", tc.in, got, state, tc.want, tc.state)
		}
	}
}

// TestFastRatingMatchesParseFloat walks many plain decimals through the fast
// path and compares each with strconv.ParseFloat(s, 32).
func TestFastRatingMatchesParseFloat(t *testing.T) {
	t.Parallel()
	check := func(s string) {
		t.Helper()
		got, ok := fastRating([]byte(s))
		if !ok {
			return
		}
		want, err := strconv.ParseFloat(s, 32)
		if err != nil || float32(want) != got || (got == 0 && (s[0] == '-') != (1/got < 0)) {
			t.Fatalf("fastRating(%q) = %v, ParseFloat = %v, %v", s, got, want, err)
		}
	}
	taken := 0
	for m := uint32(0); m < 1<<24; m += 7919 {
		for d := 0; d <= 10; d++ {
			s := strconv.FormatUint(uint64(m), 10)
			for len(s) <= d {
				s = "0" + s
			}
			if d > 0 {
				s = s[:len(s)-d] + "." + s[len(s)-d:]
			}
			check(s)
			check("-" + s)
			taken++
		}
	}
	for _, s := range []string{"16777215", "1677721.5", "0.16777215", "9999999", "0.0000000001", "1.0000001", "0.3", "3.3333333", "-0", "-0.0", "+0."} {
		check(s)
	}
	if _, ok := fastRating([]byte("0.0000012345")); !ok {
		t.Error("ten fraction digits should take the fast path")
	}
	for _, s := range []string{"16777216", "1.00000000000", "1e5", "0x10", "1_0", "Inf", "1..2", "--1", "1.-2"} {
		if _, ok := fastRating([]byte(s)); ok {
			t.Errorf("fastRating(%q) took the fast path", s)
		}
	}
	if taken < 20000 {
		t.Errorf("only %d inputs", taken)
	}
}
