package partition

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// loadFilesEnv names the files BenchmarkLoadFiles loads instead of its
// generated input: "train.csv" or "train.csv,test.csv".
const loadFilesEnv = "COFACTOR_LOAD_FILES"

// BenchmarkLoadFiles times the whole load of a training run — parse on
// GOMAXPROCS goroutines, ID dictionaries, dedupe, the hashed split (10%,
// when no test file is given) and both CSR orientations — and reports
// MB/s of input, ratings/s and the loaded dataset's bytes per training
// rating (both orientations, dictionaries and test set included, after a
// garbage collection). With COFACTOR_LOAD_FILES it loads those files (the
// bench harness compares the time with GNU sort on the same files);
// otherwise 1M generated MovieLens-shaped lines.
func BenchmarkLoadFiles(b *testing.B) {
	var files []string
	if v := os.Getenv(loadFilesEnv); v != "" {
		files = strings.Split(v, ",")
	} else {
		p := filepath.Join(b.TempDir(), "ratings.csv")
		if err := os.WriteFile(p, benchInput(",", "userId,movieId,rating,timestamp", true), 0o644); err != nil {
			b.Fatal(err)
		}
		files = []string{p}
	}
	var size int64
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		size += st.Size()
	}
	threads := runtime.GOMAXPROCS(0)
	ctx := context.Background()
	load := func() *Dataset {
		train, _, err := ReadFileParallel(ctx, files[0], ScanOptions{}, threads)
		if err != nil {
			b.Fatal(err)
		}
		var test *Builder
		opt := SplitOptions{TestFraction: 0.1, Seed: 1}
		if len(files) > 1 {
			if test, _, err = ReadFileParallel(ctx, files[1], ScanOptions{}, threads); err != nil {
				b.Fatal(err)
			}
			opt.TestFraction = 0
		}
		ds, err := NewDataset(train, test, opt)
		if err != nil {
			b.Fatal(err)
		}
		return ds
	}
	b.SetBytes(size)
	b.ResetTimer()
	var ds *Dataset
	for range b.N {
		ds = nil
		ds = load()
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	nnz := ds.ByUser.NNZ()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(ds)
	b.ReportMetric(sec, "s/load")
	b.ReportMetric(float64(nnz)/sec, "ratings/s")
	if nnz > 0 {
		b.ReportMetric(float64(ms.HeapAlloc)/float64(nnz), "heap-B/rating")
	}
}
