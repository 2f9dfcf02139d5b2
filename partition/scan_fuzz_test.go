package partition

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var fuzzFormats = []Format{FormatAuto, FormatCSV, FormatTSV, FormatMovieLens, FormatMM}

// chunkReader hands out its data a few bytes at a time, so that buffer
// refills happen at arbitrary places.
type chunkReader struct {
	data []byte
	size int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data[:min(len(p), r.size, len(r.data))])
	r.data = r.data[n:]
	return n, nil
}

func FuzzScan(f *testing.F) {
	seeds := []string{
		"",
		"\n",
		"\uFEFF",
		"userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n",
		"user,item\na,b\n",
		"1,2,3\r\n4,5,6",
		"\"a,b\",\"c\"\"d\",4\n\"x\ny\",z,abc\n",
		"1,2,3\n4,\"5,6\n7,8,9\n",
		"a\"b,c,1\n\"a\"b,c,1\n",
		"1,2,NaN\n1,2,Inf\n1,2,1e39\n1,2\n,2,3\n1,,3\n",
		"196\t242\t3\t881250949\n186\t302\t3\t891717742\n",
		"user_id\titem_id\trating\n1\t2\t3\n",
		"1::1193::5::978300760\n1::661::3::978302109\n",
		"a:b::c::4\n1::::3\n",
		"%%MatrixMarket matrix coordinate real general\n% c\n3 4 2\n1 4 3.5\n3 1 -2\n",
		"%%MatrixMarket matrix coordinate pattern general\n2 2 2\n1 2\n2 1\n",
		"%%MatrixMarket matrix coordinate integer general\n2 2 3\n0 1 1\n1 x 1\n2 2 2\n9 9 9\n",
		"%%MatrixMarket matrix array real general\n2 2\n1\n",
		"%%MatrixMarket matrix coordinate real symmetric\n1 1 1\n1 1 1\n",
		"%%MatrixMarket matrix coordinate real general\n3 3\n",
		"1 2 3\n",
	}
	for _, name := range []string{"u.data", "ratings.dat", "ratings.csv", "ratings.mtx", "implicit.csv"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, string(data))
	}
	for _, s := range seeds {
		for i := range fuzzFormats {
			f.Add([]byte(s), uint8(i), false, uint8(7))
			f.Add([]byte(s), uint8(i), true, uint8(1))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, format uint8, implicit bool, chunk uint8) {
		opts := ScanOptions{Name: "f", Format: fuzzFormats[int(format)%len(fuzzFormats)], Implicit: implicit}
		fail := fuzzScan(t, bytes.NewReader(data), opts)
		if fail.err != nil {
			var le *LineError
			switch {
			case errors.As(fail.err, &le):
				if le.File != "f" || le.Line < 1 || le.Line > fail.stats.Lines || le.Reason == "" {
					t.Fatalf("bad LineError %+v after %d lines", le, fail.stats.Lines)
				}
			case errors.Is(fail.err, ErrEmpty), errors.Is(fail.err, ErrFormat):
			default:
				t.Fatalf("fail: unexpected error %v (%T)", fail.err, fail.err)
			}
		}
		if fail.stats.Skipped != 0 {
			t.Fatalf("fail: %d skipped", fail.stats.Skipped)
		}
		lines := int64(bytes.Count(data, []byte{'\n'}))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			lines++
		}
		if fail.stats.Lines > lines {
			t.Fatalf("fail: %d lines counted, the input has %d", fail.stats.Lines, lines)
		}

		// A scan fed a few bytes at a time gives the same result.
		size := int(chunk)%64 + 1
		chunked := fuzzScan(t, &chunkReader{data: data, size: size}, opts)
		if chunked.recs != fail.recs || chunked.stats != fail.stats || errText(chunked.err) != errText(fail.err) {
			t.Fatalf("chunks of %d differ:\nwhole   %q %+v %v\nchunked %q %+v %v",
				size, fail.recs, fail.stats, fail.err, chunked.recs, chunked.stats, chunked.err)
		}

		opts.OnBadLine = SkipBadLine
		skip := fuzzScan(t, bytes.NewReader(data), opts)
		if skip.stats.Records+skip.stats.Skipped > skip.stats.Lines {
			t.Fatalf("skip: %+v: more records and skipped lines than lines", skip.stats)
		}
		if skip.stats.Lines > lines {
			t.Fatalf("skip: %d lines counted, the input has %d", skip.stats.Lines, lines)
		}
		if fail.err == nil {
			if skip.err != nil || skip.recs != fail.recs || skip.stats != fail.stats {
				t.Fatalf("skip differs from a clean fail-mode scan:\nfail %q %+v\nskip %q %+v %v",
					fail.recs, fail.stats, skip.recs, skip.stats, skip.err)
			}
		}
		if skip.err != nil && !errors.Is(skip.err, ErrEmpty) && !errors.Is(skip.err, ErrFormat) {
			var le *LineError
			if !errors.As(skip.err, &le) || !strings.HasPrefix(le.Reason, "expected ") || !strings.Contains(le.Reason, " entries, found ") {
				t.Fatalf("skip: unexpected error %v", skip.err)
			}
		}
		if skip.stats.Format != fail.stats.Format {
			t.Fatalf("formats differ: %s, %s", fail.stats.Format, skip.stats.Format)
		}
	})
}

// fuzzScan scans r and checks what the callback receives.
func fuzzScan(t *testing.T, r io.Reader, opts ScanOptions) scanResult {
	var b strings.Builder
	calls := int64(0)
	st, err := Scan(context.Background(), r, opts, func(user, item []byte, rating float32) error {
		calls++
		if len(user) == 0 || len(item) == 0 {
			t.Fatalf("empty ID handed on: %q %q", user, item)
		}
		if math.IsNaN(float64(rating)) || math.IsInf(float64(rating), 0) {
			t.Fatalf("rating %v handed on", rating)
		}
		fmt.Fprintf(&b, "%q|%q|%s;", user, item, strconv.FormatFloat(float64(rating), 'g', -1, 32))
		return nil
	})
	if calls != st.Records {
		t.Fatalf("%d calls, %d records", calls, st.Records)
	}
	if st.Records+st.Skipped > st.Lines {
		t.Fatalf("%+v: more records and skipped lines than lines", st)
	}
	if err == nil && st.Records == 0 {
		t.Fatal("no error without records")
	}
	return scanResult{b.String(), st, err}
}

// FuzzParseRating checks the rating parser against strconv.ParseFloat(s,
// 32): the same value, bit for bit, and the same verdict. Besides the
// string s it builds a plain decimal from m and d (digits of m, d%12
// fraction digits, negative when d >= 128), which steers the fuzzer along
// the fast path and across its 2^24 and 10-digit limits.
func FuzzParseRating(f *testing.F) {
	for _, s := range []string{
		"4", "3.5", "-0.25", "+10.125", "0", "-0", "0.1", ".5", "5.", "16777215", "16777216", "1677721.5",
		"0.0000000001", "0.00000000001", "9999999", "1.0000001", "3.3333333", "0.30000001",
		"1e3", "1E-3", "1e39", "-1e39", "3.4028235e38", "1e-50", "0x1p-2", "1_000",
		"NaN", "nan", "Inf", "+Inf", "-inf", "infinity", "abc", "", "-", ".", "1..2", "4 stars",
	} {
		f.Add(s, uint32(len(s))*2654435761>>7, uint8(len(s)))
	}
	f.Fuzz(func(t *testing.T, s string, m uint32, d uint8) {
		checkRating(t, s)
		digits := strconv.FormatUint(uint64(m%(1<<25)), 10)
		frac := int(d % 12)
		for len(digits) <= frac {
			digits = "0" + digits
		}
		if frac > 0 {
			digits = digits[:len(digits)-frac] + "." + digits[len(digits)-frac:]
		}
		if d >= 128 {
			digits = "-" + digits
		}
		checkRating(t, digits)
	})
}

func checkRating(t *testing.T, s string) {
	t.Helper()
	want, err := strconv.ParseFloat(s, 32)
	state := ratingOK
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		state = ratingNotNumber
	case math.IsNaN(want) || math.IsInf(want, 0):
		state = ratingNotFinite
	}
	if fast, ok := fastRating([]byte(s)); ok {
		if err != nil || math.Float32bits(fast) != math.Float32bits(float32(want)) {
			t.Fatalf("fastRating(%q) = %v (%#x); ParseFloat = %v (%#x), %v",
				s, fast, math.Float32bits(fast), float32(want), math.Float32bits(float32(want)), err)
		}
	}
	got, gotState := parseRating([]byte(s))
	if gotState != state {
		t.Fatalf("parseRating(%q) verdict %d, want %d (ParseFloat %v, %v)", s, gotState, state, want, err)
	}
	if state == ratingOK && math.Float32bits(got) != math.Float32bits(float32(want)) {
		t.Fatalf("parseRating(%q) = %v, ParseFloat = %v", s, got, float32(want))
	}
}
