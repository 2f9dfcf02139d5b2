package train

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/partition"
)

// The MovieLens-20M shape: 138,493 users, 26,744 items, 20M ratings.
// COFACTOR_BENCH_SCALE=0.1 shrinks all three for a quick run.
var (
	benchOnce sync.Once
	benchData map[bool]*partition.Dataset
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

func benchDataset(b *testing.B, implicit bool) *partition.Dataset {
	benchOnce.Do(func() {
		benchData = map[bool]*partition.Dataset{}
		s := benchScale(b)
		for _, imp := range []bool{false, true} {
			cfg := synth.Config{
				Users: int(138_493 * s), Items: int(26_744 * s), Ratings: int64(20_000_263 * s),
				Rank: 16, Noise: 0.5, Seed: 20, ZipfExponent: 0.8, Implicit: imp,
			}
			set, err := synth.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			bl := partition.NewBuilder()
			var ub, ib []byte
			err = set.Each(context.Background(), func(u int, items []int32, ratings []float32) error {
				ub = strconv.AppendInt(ub[:0], int64(u)+1, 10)
				for j, it := range items {
					ib = strconv.AppendInt(ib[:0], int64(it)+1, 10)
					bl.Add(ub, ib, ratings[j])
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			ds, err := partition.NewDataset(bl, nil, partition.SplitOptions{})
			if err != nil {
				b.Fatal(err)
			}
			benchData[imp] = ds
		}
	})
	return benchData[implicit]
}

// BenchmarkIteration times one full ALS iteration (users then items) at
// rank 64 on the 20M-shaped set with all CPUs, single process.
func BenchmarkIteration(b *testing.B) {
	for _, tc := range []struct {
		name     string
		implicit bool
		solver   als.SolverKind
	}{
		{"explicit/cholesky", false, als.SolverCholesky},
		{"explicit/cg", false, als.SolverCG},
		{"implicit/cholesky", true, als.SolverCholesky},
		{"implicit/cg", true, als.SolverCG},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ds := benchDataset(b, tc.implicit)
			cfg := als.DefaultConfig()
			cfg.Rank, cfg.Implicit, cfg.Solver, cfg.Lambda = 64, tc.implicit, tc.solver, 0.05
			solver, err := als.NewSolver(cfg)
			if err != nil {
				b.Fatal(err)
			}
			layout, err := partition.NewLayout(ds, 1, 1)
			if err != nil {
				b.Fatal(err)
			}
			k := cfg.Rank
			x := initFactors(ds.Users, k, 1, als.UserSide)
			y := initFactors(ds.Items, k, 1, als.ItemSide)
			ph := &phaser{solver: solver, layout: layout, k: k}
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := ph.run(ctx, partition.Users, x, y); err != nil {
					b.Fatal(err)
				}
				if _, err := ph.run(ctx, partition.Items, y, x); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec, "s/iteration")
			b.ReportMetric(2*float64(ds.ByUser.NNZ())/sec, "ratings/s")
		})
	}
}
