package serve

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
)

// The benchmark model: 27,000 items at rank 64 (MovieLens-25M-sized
// catalogue), random factors.
const (
	benchUsers, benchItems, benchRank = 2000, 27_000, 64
)

// reportLatency reports the median and 99th percentile of per-call
// durations in microseconds.
func reportLatency(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(q float64) float64 { return float64(d[min(int(q*float64(len(d))), len(d)-1)]) / 1e3 }
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkRecommend: one user's top 10 over 27,000 items at rank 64, by
// the core function, through the HTTP handler in process, and through a
// loopback HTTP server and client.
func BenchmarkRecommend(b *testing.B) {
	m := randomSpec(1, benchUsers, benchItems, benchRank, false).model(b)
	b.Logf("scoring kernel %s", dotKernel)
	b.Run("core", func(b *testing.B) {
		b.ReportAllocs()
		d := make([]time.Duration, 0, b.N)
		u := int32(0)
		for b.Loop() {
			start := time.Now()
			RecommendUser(m, u, 10, Filter{})
			d = append(d, time.Since(start))
			u = (u + 1) % benchUsers
		}
		reportLatency(b, d)
	})
	s, err := New()
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Load(m, "bench"); err != nil {
		b.Fatal(err)
	}
	paths := make([]string, benchUsers)
	for u := range paths {
		paths[u] = fmt.Sprintf("/v1/recommend?user=u%d&k=10", u)
	}
	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		h := s.Handler()
		d := make([]time.Duration, 0, b.N)
		u := 0
		for b.Loop() {
			req := httptest.NewRequest("GET", paths[u], nil)
			w := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(w, req)
			d = append(d, time.Since(start))
			if w.Code != 200 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
			u = (u + 1) % benchUsers
		}
		reportLatency(b, d)
	})
	b.Run("loopback", func(b *testing.B) {
		ts := httptest.NewServer(s.Handler())
		defer ts.Close()
		client := ts.Client()
		d := make([]time.Duration, 0, b.N)
		u := 0
		for b.Loop() {
			start := time.Now()
			resp, err := client.Get(ts.URL + paths[u])
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			d = append(d, time.Since(start))
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
			u = (u + 1) % benchUsers
		}
		reportLatency(b, d)
	})
}

// BenchmarkSimilar: an item's 10 nearest items by cosine over 27,000
// items at rank 64, norms precomputed.
func BenchmarkSimilar(b *testing.B) {
	m := randomSpec(1, 1, benchItems, benchRank, false).model(b)
	ix, err := NewIndex(m, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	d := make([]time.Duration, 0, b.N)
	i := int32(0)
	for b.Loop() {
		start := time.Now()
		ix.Similar(i, 10)
		d = append(d, time.Since(start))
		i = (i + 1) % benchItems
	}
	reportLatency(b, d)
}

// BenchmarkFoldIn: a new user of 50 ratings against 27,000 items at rank
// 64, explicit and implicit (YᵀY precomputed by the index).
func BenchmarkFoldIn(b *testing.B) {
	for _, implicit := range []bool{false, true} {
		sp := randomSpec(1, 1, benchItems, benchRank, false)
		sp.implicit, sp.alpha = implicit, 10
		m := sp.model(b)
		ix, err := NewIndex(m, 2)
		if err != nil {
			b.Fatal(err)
		}
		ratings := make([]Rating, 50)
		for j := range ratings {
			ratings[j] = Rating{Item: int32(j * 517), Value: float32(1 + j%5)}
		}
		b.Run(fmt.Sprintf("implicit=%v", implicit), func(b *testing.B) {
			d := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				x, err := ix.FoldIn(ratings)
				if err != nil {
					b.Fatal(err)
				}
				ix.Recommend(x, 10, Filter{})
				d = append(d, time.Since(start))
			}
			reportLatency(b, d)
		})
	}
}

// BenchmarkOpenAndSwap: opening a published snapshot of 20,000 users and
// 27,000 items at rank 64 from a directory store (every file's CRC
// checked), indexing it and putting it in service.
func BenchmarkOpenAndSwap(b *testing.B) {
	store := checkpoint.DirStore{Root: b.TempDir()}
	repo := checkpoint.NewRepo(store, store)
	randomSpec(1, 20_000, benchItems, benchRank, false).write(b, repo, "big")
	s, err := New()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		m, err := repo.Open(ctx, "big")
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Load(m, "big"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/swap")
}
