package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// BenchmarkPublishToAnswer measures, for each store, the time from the
// moment a new snapshot (20,000 users × 27,000 items at rank 64) is
// published — its manifest committed and the model's latest pointer moved —
// to the first HTTP answer of a following server that comes from it: the
// pointer's notification, reading and checking every file, indexing, and
// the swap.
func BenchmarkPublishToAnswer(b *testing.B) {
	for _, kind := range []string{"dir", "nats"} {
		b.Run(kind, func(b *testing.B) {
			var repo *checkpoint.Repo
			if kind == "dir" {
				d := checkpoint.DirStore{Root: b.TempDir()}
				repo = checkpoint.NewRepo(d, d)
			} else {
				e, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: b.TempDir(), NoListen: true})
				if err != nil {
					b.Fatal(err)
				}
				defer e.Shutdown()
				nc, err := e.Connect()
				if err != nil {
					b.Fatal(err)
				}
				defer nc.Close()
				s, err := checkpoint.OpenBlobStore(context.Background(), nc)
				if err != nil {
					b.Fatal(err)
				}
				repo = checkpoint.NewRepo(s, s)
			}
			sp := randomSpec(3, 20_000, benchItems, benchRank, false)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			srv, err := New()
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				srv.Follow(ctx, repo, "default")
			}()
			defer func() { cancel(); <-done }()
			h := srv.Handler()
			answerFrom := func() string {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/recommend?user=u7&k=10", nil))
				if rec.Code != http.StatusOK {
					return ""
				}
				var r struct {
					Snapshot string `json:"snapshot"`
				}
				json.Unmarshal(rec.Body.Bytes(), &r)
				return r.Snapshot
			}
			var delays []time.Duration
			for i := 0; i <= b.N; i++ {
				id := fmt.Sprintf("s%04d", i)
				sp.write(b, repo, id)
				start := time.Now()
				if err := repo.Publish(ctx, "default", id); err != nil {
					b.Fatal(err)
				}
				for answerFrom() != id {
					if time.Since(start) > 10*time.Second {
						b.Fatalf("snapshot %s not served after 10 s", id)
					}
					time.Sleep(200 * time.Microsecond)
				}
				if i > 0 { // the first one also starts the server
					delays = append(delays, time.Since(start))
				}
			}
			sort.Slice(delays, func(a, c int) bool { return delays[a] < delays[c] })
			b.ReportMetric(float64(delays[len(delays)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(delays[len(delays)-1].Microseconds())/1000, "max-ms")
		})
	}
}
