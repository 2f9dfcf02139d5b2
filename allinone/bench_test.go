package allinone

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/partition"
)

// The MovieLens-20M shape: 138,493 users, 26,744 items, 20M ratings, all of
// them training. COFACTOR_BENCH_SCALE=0.1 shrinks all three for a quick run.
var (
	benchOnce  sync.Once
	benchFiles map[bool]string
	benchDir   string
)

func benchScale(b *testing.B) float64 {
	s := 1.0
	if v := os.Getenv("COFACTOR_BENCH_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 1 {
			b.Fatalf("COFACTOR_BENCH_SCALE=%q: want a number in (0, 1]", v)
		}
		s = f
	}
	return s
}

// benchInput writes the synthetic sets as CSV once per test binary.
func benchInput(b *testing.B, implicit bool) string {
	benchOnce.Do(func() {
		s := benchScale(b)
		var err error
		if benchDir, err = os.MkdirTemp("", "cofactor-bench-"); err != nil {
			b.Fatal(err)
		}
		benchFiles = map[bool]string{}
		for _, imp := range []bool{false, true} {
			set, err := synth.New(synth.Config{
				Users: int(138_493 * s), Items: int(26_744 * s), Ratings: int64(20_000_263 * s),
				Rank: 16, Noise: 0.5, Seed: 20, ZipfExponent: 0.8, Implicit: imp,
			})
			if err != nil {
				b.Fatal(err)
			}
			p := fmt.Sprintf("%s/ratings-%v.csv", benchDir, imp)
			f, err := os.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			if err := set.WriteCSV(context.Background(), f); err != nil {
				b.Fatal(err)
			}
			f.Close()
			benchFiles[imp] = p
		}
	})
	return benchFiles[implicit]
}

func benchSpec(b *testing.B, implicit bool, solver string) job.Spec {
	spec := job.DefaultSpec()
	spec.Input = benchInput(b, implicit)
	spec.TestFraction = 0
	spec.Rank, spec.Lambda, spec.Implicit, spec.Solver = 64, 0.05, implicit, solver
	return spec
}

var benchModels = []struct {
	name     string
	implicit bool
	solver   string
}{
	{"explicit/cholesky", false, "cholesky"},
	{"explicit/cg", false, "cg"},
	{"implicit/cholesky", true, "cholesky"},
	{"implicit/cg", true, "cg"},
}

// benchDatasets caches the loaded datasets of BenchmarkEngine by (model,
// hold-out fraction): each load of the 20M-shaped set takes seconds.
var benchDatasets = map[string]*partition.Dataset{}

// BenchmarkEngine times one ALS iteration (users then items) of the bare
// engine: one process, no messages, every block updated in turn with all
// CPUs. It is the yardstick of the cluster's overhead. The holdout=0.2
// variants hold out 20% of the pairs as a test set (16.0M training
// ratings: the performance issue's targets) and report the test RMSE of
// the explicit model after the b.N iterations (-benchtime 5x: after 5);
// holdout=0 trains on all 20M ratings.
func BenchmarkEngine(b *testing.B) {
	for _, holdout := range []float64{0.2, 0} {
		for _, m := range benchModels {
			b.Run(fmt.Sprintf("holdout=%g/%s", holdout, m.name), func(b *testing.B) {
				spec := benchSpec(b, m.implicit, m.solver)
				spec.TestFraction = holdout
				key := fmt.Sprintf("%v/%g", m.implicit, holdout)
				ds := benchDatasets[key]
				if ds == nil {
					var err error
					if ds, _, err = job.LoadDataset(context.Background(), spec); err != nil {
						b.Fatal(err)
					}
					benchDatasets[key] = ds
				}
				benchEngine(b, spec, ds)
			})
		}
	}
}

func benchEngine(b *testing.B, spec job.Spec, ds *partition.Dataset) {
	layout, err := partition.NewLayout(ds, 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	solver, err := als.NewSolver(spec.ALS(runtime.GOMAXPROCS(0)))
	if err != nil {
		b.Fatal(err)
	}
	k := spec.Rank
	f := [2][]float32{make([]float32, ds.Users.Len()*k), make([]float32, ds.Items.Len()*k)}
	for side, d := range []*partition.Dict{ds.Users, ds.Items} {
		for i, id := range d.IDs() {
			als.InitRow(f[side][i*k:(i+1)*k], spec.Seed, als.Side(side), id)
		}
	}
	// The gathered rows: one block per side, so the gather is the whole
	// other side in Needed order, allocated here once.
	var gather []float32
	yty := make([]float64, k*k)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, side := range []partition.Side{partition.Users, partition.Items} {
			self, other := f[side], f[side.Other()]
			if spec.Implicit {
				als.Gram(other, k, runtime.GOMAXPROCS(0), yty)
			}
			for _, blk := range layout.Blocks(side) {
				gather = gather[:0]
				for _, r := range blk.Needed {
					gather = append(gather, other[int(r)*k:int(r)*k+k]...)
				}
				_, err := solver.UpdateBlock(ctx, als.BlockUpdate{
					Rows:  als.Rows{Ptr: blk.Rows.Ptr, Col: blk.Rows.Col, Val: blk.Rows.Val},
					Other: gather, YtY: yty, X: self[int(blk.Start)*k : int(blk.End())*k],
					Loss: side == partition.Items,
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(sec, "s/iteration")
	b.ReportMetric(2*float64(ds.ByUser.NNZ())/sec, "ratings/s")
	if !spec.Implicit && len(ds.Test.R) > 0 {
		rmse, _ := als.Errors(ds.Test.U, ds.Test.I, ds.Test.R, f[partition.Users], f[partition.Items], k, 0)
		b.ReportMetric(rmse, "test-RMSE")
	}
}

// BenchmarkLoadDataset times job.LoadDataset on the 20M-shaped CSV (386 MB,
// the file `cofactor gen --users 138493 --items 26744 --ratings 20000263
// --rank 16 --noise 0.5 --seed 20` writes) with the default 10% hold-out:
// parsing, ID dictionaries, dedupe, split and both CSR orientations.
func BenchmarkLoadDataset(b *testing.B) {
	spec := job.DefaultSpec()
	spec.Input = benchInput(b, false)
	st, err := os.Stat(spec.Input)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ResetTimer()
	for range b.N {
		ds, _, err := job.LoadDataset(context.Background(), spec)
		if err != nil {
			b.Fatal(err)
		}
		if ds.ByUser.NNZ() == 0 {
			b.Fatal("no ratings")
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/load")
}

// BenchmarkCluster times iterations through the all-in-one cluster with 1,
// 2 and 4 in-process workers sharing the machine's cores: the same phases,
// messages and row exchange as separate machines, over in-process NATS
// connections. Each benchmark iteration is one job of 3 ALS iterations;
// s/iteration is the job's mean (partitioning excluded), bytes/iteration
// what the workers sent each other.
func BenchmarkCluster(b *testing.B) {
	for _, m := range benchModels {
		for _, workers := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("%s/workers=%d", m.name, workers), func(b *testing.B) {
				spec := benchSpec(b, m.implicit, m.solver)
				spec.Iterations = 3
				ctx := context.Background()
				c, err := Start(ctx, Options{Workers: workers})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				var spi, bytes float64
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					res, err := c.Run(ctx, spec, nil)
					if err != nil {
						b.Fatal(err)
					}
					spi += res.SecondsPerIteration
					bytes += float64(res.BytesExchanged) / float64(len(res.History))
				}
				b.ReportMetric(spi/float64(b.N), "s/iteration")
				b.ReportMetric(bytes/float64(b.N), "bytes/iteration")
			})
		}
	}
}
