package serve

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/transport"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// loadRig is a server following the latest snapshot of a JetStream store
// (what `cofactor serve --coordinator` follows in a cluster), served over
// TCP by NewHTTPServer, and a publisher that commits a new snapshot and
// moves the pointer every period, as a cluster's jobs do.
type loadRig struct {
	url       string
	published []string // IDs, in order
	mu        sync.Mutex
	stop      func() // stops the publisher, the server and NATS
}

// startLoadRig serves snapshots of users × items at rank, publishing a new
// one every period until stop.
func startLoadRig(t testing.TB, users, items, rank int, period time.Duration) *loadRig {
	t.Helper()
	e, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	openRepo := func(name string) (*checkpoint.Repo, func()) {
		nc, err := transport.Dial(e.ClientURL(), name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := checkpoint.OpenBlobStore(context.Background(), nc)
		if err != nil {
			t.Fatal(err)
		}
		return checkpoint.NewRepo(s, s), nc.Close
	}
	pubRepo, pubClose := openRepo("publisher")
	followRepo, followClose := openRepo("serve")

	rig := &loadRig{}
	// Two factor sets, alternated: publishing reuses them so that the
	// publisher's own work is writing, not generating random numbers.
	specs := []spec{randomSpec(1, users, items, rank, false), randomSpec(2, users, items, rank, false)}
	publish := func(n int) {
		id := fmt.Sprintf("s%04d", n)
		specs[n%2].write(t, pubRepo, id)
		if err := pubRepo.Publish(context.Background(), "default", id); err != nil {
			t.Error(err)
			return
		}
		rig.mu.Lock()
		rig.published = append(rig.published, id)
		rig.mu.Unlock()
	}
	publish(0)

	srv, err := New(WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		srv.Follow(ctx, followRepo, "default")
	}()
	for srv.Snapshot() == "" {
		time.Sleep(10 * time.Millisecond)
	}
	hs, err := NewHTTPServer(srv.Handler(), DefaultHTTPConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(ln)
	}()
	rig.url = "http://" + ln.Addr().String()

	published := make(chan struct{})
	go func() {
		defer close(published)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				publish(n)
			}
		}
	}()
	rig.stop = func() {
		cancel()
		<-published
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		hs.Shutdown(sctx)
		<-served
		<-followed
		followClose()
		pubClose()
		e.Shutdown()
	}
	return rig
}

// loadResult is what one attack measured.
type loadResult struct {
	metrics   vegeta.Metrics
	failures  int // answers not 200, or transport errors
	snapshots map[string]int
	firstErr  string
}

// attack runs clients concurrent clients as fast as they can for d: GET
// /v1/recommend for 90% of requests and /v1/similar for the rest, over
// users and items of the snapshots.
func (rig *loadRig) attack(t testing.TB, clients int, d time.Duration, users, items int) loadResult {
	t.Helper()
	var targets []vegeta.Target
	for j := range 1000 {
		u := (j * 7919) % users
		if j%10 == 9 {
			targets = append(targets, vegeta.Target{Method: "GET", URL: fmt.Sprintf("%s/v1/similar?item=i%d&k=10", rig.url, (j*104729)%items)})
			continue
		}
		targets = append(targets, vegeta.Target{Method: "GET", URL: fmt.Sprintf("%s/v1/recommend?user=u%d&k=10", rig.url, u)})
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true},
	}
	defer client.CloseIdleConnections()
	atk := vegeta.NewAttacker(vegeta.Client(client), vegeta.Workers(uint64(clients)), vegeta.MaxWorkers(uint64(clients)))
	res := loadResult{snapshots: map[string]int{}}
	key := []byte(`"snapshot":"`)
	for r := range atk.Attack(vegeta.NewStaticTargeter(targets...), vegeta.Rate{Freq: 0}, d, "serve") {
		res.metrics.Add(r)
		if r.Code != http.StatusOK || r.Error != "" {
			res.failures++
			if res.firstErr == "" {
				res.firstErr = fmt.Sprintf("%s: %d %s %s", r.URL, r.Code, r.Error, r.Body)
			}
			continue
		}
		if i := bytes.LastIndex(r.Body, key); i >= 0 {
			rest := r.Body[i+len(key):]
			if j := bytes.IndexByte(rest, '"'); j >= 0 {
				res.snapshots[string(rest[:j])]++
			}
		}
	}
	res.metrics.Close()
	return res
}

// MUST SHOW: serve following the latest snapshot answers a sustained load
// from vegeta with zero errors while a new snapshot is published every
// 500 ms; the answers come from many snapshots.
func TestServeUnderLoadWithSwaps(t *testing.T) {
	const users, items, rank = 2000, 3000, 16
	rig := startLoadRig(t, users, items, rank, 500*time.Millisecond)
	defer rig.stop()
	// Attack in rounds of 2 s until the answers have come from at least
	// 3 snapshots (on a loaded machine publishing slows down too).
	served := map[string]int{}
	for round := 1; ; round++ {
		res := rig.attack(t, 8, 2*time.Second, users, items)
		m := res.metrics
		for id, n := range res.snapshots {
			served[id] += n
		}
		t.Logf("round %d, 8 clients, 2 s: %d requests, %.0f/s, p50 %v, p99 %v, %d failures, answers from %d snapshots so far",
			round, m.Requests, m.Throughput, m.Latencies.P50, m.Latencies.P99, res.failures, len(served))
		if m.Requests < 50 {
			t.Fatalf("only %d requests", m.Requests)
		}
		if res.failures != 0 || m.Success != 1 {
			t.Fatalf("%d of %d requests failed (success %.4f); first: %s; status codes %v, errors %v",
				res.failures, m.Requests, m.Success, res.firstErr, m.StatusCodes, m.Errors)
		}
		if round >= 2 && len(served) >= 3 {
			return
		}
		if round == 15 {
			t.Fatalf("answers came from %d snapshots (%v) in %d rounds; want at least 3: the swaps did not happen under load", len(served), served, round)
		}
	}
}

// BenchmarkServeUnderSwaps measures latency and throughput of serve at 1,
// 8 and 64 concurrent clients (vegeta, as fast as each client can go) for
// COFACTOR_LOAD_SECONDS (default 20) each, while a new snapshot of 20,000
// users × 27,000 items at rank 64 is published every 3 s. Run with
// -benchtime 1x; docs/benchmarks.md has the figures.
func BenchmarkServeUnderSwaps(b *testing.B) {
	const users, items, rank = 20_000, benchItems, benchRank
	d := 20 * time.Second
	if v := os.Getenv("COFACTOR_LOAD_SECONDS"); v != "" {
		s, err := strconv.Atoi(v)
		if err != nil || s < 1 {
			b.Fatalf("COFACTOR_LOAD_SECONDS=%q: want a positive number of seconds", v)
		}
		d = time.Duration(s) * time.Second
	}
	for _, clients := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			rig := startLoadRig(b, users, items, rank, 3*time.Second)
			defer rig.stop()
			b.ResetTimer()
			var res loadResult
			for range b.N {
				res = rig.attack(b, clients, d, users, items)
			}
			b.StopTimer()
			m := res.metrics
			b.ReportMetric(float64(m.Latencies.P50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(m.Latencies.P99.Microseconds())/1000, "p99-ms")
			b.ReportMetric(m.Throughput, "req/s")
			b.ReportMetric(float64(m.Requests), "requests")
			b.ReportMetric(float64(res.failures), "errors")
			b.ReportMetric(float64(len(res.snapshots)), "snapshots-served")
			if res.failures != 0 {
				b.Errorf("%d of %d requests failed; first: %s", res.failures, m.Requests, res.firstErr)
			}
		})
	}
}
