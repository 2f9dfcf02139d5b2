package partition

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
)

const (
	benchLines = 1_000_000
	benchUsers = 140_000
	benchItems = 27_000
)

// benchInput is ~1M ratings shaped like MovieLens ratings.csv: grouped by
// user (integer IDs 1..140000, a few to a few hundred ratings each), item IDs
// 1..27000 with Zipf-skewed popularity, half-star ratings and, optionally, a
// Unix timestamp.
func benchInput(sep string, header string, timestamp bool) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 20, benchItems-1)
	var b bytes.Buffer
	b.Grow(benchLines * 32)
	if header != "" {
		b.WriteString(header)
		b.WriteByte('\n')
	}
	user := 1
	left := 0
	var num []byte
	for range benchLines {
		for left == 0 {
			user = rng.IntN(benchUsers) + 1
			left = int(rng.ExpFloat64()*7) + 1
		}
		left--
		num = strconv.AppendInt(num[:0], int64(user), 10)
		b.Write(num)
		b.WriteString(sep)
		num = strconv.AppendInt(num[:0], int64(zipf.Uint64()+1), 10)
		b.Write(num)
		b.WriteString(sep)
		half := rng.IntN(10) + 1
		num = strconv.AppendInt(num[:0], int64(half/2), 10)
		if half%2 == 1 {
			num = append(num, '.', '5')
		} else if rng.IntN(2) == 0 {
			num = append(num, '.', '0')
		}
		b.Write(num)
		if timestamp {
			b.WriteString(sep)
			num = strconv.AppendInt(num[:0], 789652009+rng.Int64N(700_000_000), 10)
			b.Write(num)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

var benchInputs sync.Map // name -> []byte

// benchScan measures a scan of the named input. With dicts set the callback
// maps both IDs through a Dict and appends to three preallocated slices, as
// a real ingest does; without, it only keeps the rating (the parser alone).
func benchScan(b *testing.B, name string, format Format, dicts bool, gen func() []byte) {
	v, ok := benchInputs.Load(name)
	if !ok {
		v, _ = benchInputs.LoadOrStore(name, gen())
	}
	data := v.([]byte)
	users := make([]int32, 0, benchLines)
	items := make([]int32, 0, benchLines)
	ratings := make([]float32, 0, benchLines)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	var records int64
	for range b.N {
		// A fresh ingest: empty dictionaries, as a real load starts with.
		userDict, itemDict := NewDict(), NewDict()
		users, items, ratings = users[:0], items[:0], ratings[:0]
		fn := func(user, item []byte, rating float32) error {
			users = append(users, userDict.Add(user))
			items = append(items, itemDict.Add(item))
			ratings = append(ratings, rating)
			return nil
		}
		if !dicts {
			fn = func(user, item []byte, rating float32) error {
				ratings = append(ratings, rating)
				return nil
			}
		}
		st, err := Scan(context.Background(), bytes.NewReader(data), ScanOptions{Name: name, Format: format}, fn)
		if err != nil {
			b.Fatal(err)
		}
		if st.Records != benchLines {
			b.Fatalf("%d records", st.Records)
		}
		records += st.Records
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "ratings/s")
}

func BenchmarkScanCSV(b *testing.B) {
	csvTS := func() []byte { return benchInput(",", "userId,movieId,rating,timestamp", true) }
	b.Run("timestamp", func(b *testing.B) { benchScan(b, "csv-ts", FormatCSV, true, csvTS) })
	b.Run("no-timestamp", func(b *testing.B) {
		benchScan(b, "csv", FormatCSV, true, func() []byte { return benchInput(",", "user,item,rating", false) })
	})
	b.Run("timestamp-parse-only", func(b *testing.B) { benchScan(b, "csv-ts", FormatCSV, false, csvTS) })
}

func BenchmarkScanTSV(b *testing.B) {
	b.Run("timestamp", func(b *testing.B) {
		benchScan(b, "tsv-ts", FormatTSV, true, func() []byte { return benchInput("\t", "", true) })
	})
	b.Run("no-timestamp", func(b *testing.B) {
		benchScan(b, "tsv", FormatTSV, true, func() []byte { return benchInput("\t", "", false) })
	})
}

func BenchmarkScanMovieLens(b *testing.B) {
	benchScan(b, "dat", FormatMovieLens, true, func() []byte { return benchInput("::", "", true) })
}
