package serve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/cofactor-ml/cofactor/checkpoint"
)

// BenchmarkBatchTopK is top-10 for every user of a MovieLens-latest-sized
// model (260,000 users × 39,000 items, random factors) at rank 10 and 64,
// on all CPUs. COFACTOR_BENCH_SCALE in (0, 1] shrinks both sides, e.g.
//
//	COFACTOR_BENCH_SCALE=0.1 go test ./serve -run '^$' -bench BatchTopK -benchtime 1x
func BenchmarkBatchTopK(b *testing.B) {
	scale := 1.0
	if v := os.Getenv("COFACTOR_BENCH_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 1 {
			b.Fatalf("COFACTOR_BENCH_SCALE=%q: want a number in (0, 1]", v)
		}
		scale = f
	}
	users, items := max(1, int(260000*scale)), max(1, int(39000*scale))
	for _, rank := range []int{10, 64} {
		var m *checkpoint.Model // built once, on the first round
		b.Run(fmt.Sprintf("users=%d/items=%d/rank=%d", users, items, rank), func(b *testing.B) {
			if m == nil {
				m = batchBenchModel(users, items, rank)
			}
			emitted := 0
			emit := func(int32, []int32, []float32) error { emitted++; return nil }
			b.ResetTimer()
			for range b.N {
				if err := BatchTopK(context.Background(), m, 10, false, 0, emit); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec, "s/op")
			b.ReportMetric(float64(users)/sec, "users/s")
			b.ReportMetric(2*float64(users)*float64(items)*float64(rank)/sec/1e9, "GFLOP/s")
			if emitted != users*b.N {
				b.Fatalf("%d users emitted, want %d", emitted, users*b.N)
			}
		})
	}
}

// batchBenchModel builds a model of random factors in memory, on all CPUs
// (a rank-64 model has 17 million user factors).
func batchBenchModel(users, items, rank int) *checkpoint.Model {
	m := &checkpoint.Model{Rank: rank, X: make([]float32, users*rank), Y: make([]float32, items*rank)}
	var wg sync.WaitGroup
	for p, v := range [][]float32{m.X, m.Y} {
		const pieces = 8
		step := (len(v) + pieces - 1) / pieces
		for i := 0; i < len(v); i += step {
			part := v[i:min(i+step, len(v))]
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(p), uint64(i)))
				for j := range part {
					part[j] = float32(rng.NormFloat64() * 0.3)
				}
			}()
		}
	}
	wg.Wait()
	return m
}
