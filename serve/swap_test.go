package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
)

// swapSpec is snapshot n of the swap test: random factors seeded by n,
// plus a last factor that adds 100·n to every score, so that an answer
// shows which snapshot scored it even without its "snapshot" field.
func swapSpec(n, users, items, rank int) spec {
	sp := randomSpec(uint64(100+n), users, items, rank, false)
	for i := range sp.x {
		sp.x[i] *= 0.5
	}
	for u := range users {
		sp.x[u*rank+rank-1] = 1
	}
	for i := range items {
		sp.y[i*rank+rank-1] = float32(100 * n)
	}
	return sp
}

// MUST SHOW: a server following a repository while clients hammer it.
// Five snapshots are published one after another; every request succeeds,
// every answer is exactly what the snapshot it names gives (never a mix of
// two), and each swap is in service within 1 s of its Publish call.
func TestServingUnderSwaps(t *testing.T) {
	t.Parallel()
	const (
		nUsers, nItems, rank = 400, 3000, 16
		snapshots            = 5
		clients              = 4
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := checkpoint.DirStore{Root: t.TempDir()}
	repo := checkpoint.NewRepo(store, store)

	// Each snapshot as the test reads it: the reference for the answers.
	var refMu sync.RWMutex
	refs := map[string]*Index{}
	write := func(n int) string {
		id := fmt.Sprintf("snap-%d", n)
		swapSpec(n, nUsers, nItems, rank).write(t, repo, id)
		m, err := repo.Open(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ix, err := NewIndex(m, 1)
		if err != nil {
			t.Fatal(err)
		}
		refMu.Lock()
		refs[id] = ix
		refMu.Unlock()
		return id
	}

	swaps := make(chan SwapEvent, snapshots+1)
	s, err := New(WithSwapHook(func(e SwapEvent) { swaps <- e }))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	followed := make(chan error, 1)
	go func() { followed <- s.Follow(ctx, repo, "default") }()

	waitSwap := func(id string) SwapEvent {
		t.Helper()
		select {
		case e := <-swaps:
			if e.ID != id {
				t.Fatalf("swapped to %s, want %s", e.ID, id)
			}
			return e
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not in service after 5 s", id)
		}
		return SwapEvent{}
	}
	first := write(0)
	if err := repo.Publish(ctx, "default", first); err != nil {
		t.Fatal(err)
	}
	waitSwap(first)

	// The clients: GET /v1/recommend for user after user, and now and then
	// GET /v1/similar, checking every answer against its snapshot.
	var requests, failures, mismatches atomic.Int64
	var countMu sync.Mutex
	perSnapshot := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	transport := &http.Transport{MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	defer transport.CloseIdleConnections()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 0))
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				u := rng.IntN(nUsers + 20) // a few users no snapshot holds
				similar := c == 0 && j%5 == 4
				path := fmt.Sprintf("/v1/recommend?user=u%d&k=10", u)
				if similar {
					path = fmt.Sprintf("/v1/similar?item=i%d&k=10", rng.IntN(nItems))
				}
				requests.Add(1)
				resp, err := client.Get(ts.URL + path)
				if err != nil {
					failures.Add(1)
					t.Errorf("%s: %v", path, err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
					t.Errorf("%s: %d %s %v", path, resp.StatusCode, body, err)
					continue
				}
				var got struct {
					Recommendation
					Item string `json:"item"`
				}
				if err := json.Unmarshal(body, &got); err != nil {
					failures.Add(1)
					t.Errorf("%s: %v", path, err)
					continue
				}
				refMu.RLock()
				ix := refs[got.Snapshot]
				refMu.RUnlock()
				if ix == nil {
					mismatches.Add(1)
					t.Errorf("%s: answer from unknown snapshot %q", path, got.Snapshot)
					continue
				}
				m := ix.Model()
				var want []ScoredItem
				switch {
				case similar:
					i, _ := m.Item(got.Item)
					want = items(m, ix.Similar(i, 10))
				case got.Fallback == FallbackPopular:
					want = items(m, ix.Popular(10, Filter{}))
				default:
					row, ok := m.User(got.User)
					if !ok {
						mismatches.Add(1)
						t.Errorf("%s: personal answer for a user snapshot %s lacks", path, got.Snapshot)
						continue
					}
					want = items(m, ix.RecommendUser(row, 10, Filter{}))
					// The scores themselves say which snapshot made them.
					var n int
					fmt.Sscanf(got.Snapshot, "snap-%d", &n)
					for _, e := range got.Items {
						if math.Round(float64(e.Score)/100) != float64(n) {
							mismatches.Add(1)
							t.Errorf("%s: score %v is not of snapshot %s", path, e.Score, got.Snapshot)
							break
						}
					}
				}
				if !reflect.DeepEqual(got.Items, want) {
					mismatches.Add(1)
					t.Errorf("%s: answer %v, snapshot %s gives %v", path, got.Items, got.Snapshot, want)
					continue
				}
				countMu.Lock()
				perSnapshot[got.Snapshot]++
				countMu.Unlock()
			}
		}()
	}

	var delays []time.Duration
	for n := 1; n <= snapshots; n++ {
		time.Sleep(150 * time.Millisecond) // let the clients see the current one
		id := write(n)
		published := time.Now()
		if err := repo.Publish(ctx, "default", id); err != nil {
			t.Fatal(err)
		}
		e := waitSwap(id)
		d := e.At.Sub(published)
		delays = append(delays, d)
		t.Logf("%s: in service %v after Publish (opening and indexing it took %v)", id, d.Round(time.Millisecond), e.Load.Round(time.Millisecond))
		if d > time.Second {
			t.Errorf("%s: swap observed %v after Publish, want ≤ 1 s", id, d)
		}
	}
	time.Sleep(150 * time.Millisecond)
	close(stop)
	wg.Wait()
	cancel()
	if err := <-followed; err != nil {
		t.Errorf("Follow: %v", err)
	}
	t.Logf("%d requests, %d failed, %d answers not matching their snapshot; answers per snapshot %v; swap delays %v",
		requests.Load(), failures.Load(), mismatches.Load(), perSnapshot, delays)
	if failures.Load() != 0 || mismatches.Load() != 0 {
		t.Errorf("%d failed requests and %d mismatched answers, want none", failures.Load(), mismatches.Load())
	}
	for n := 0; n <= snapshots; n++ {
		if id := fmt.Sprintf("snap-%d", n); perSnapshot[id] == 0 {
			t.Errorf("no answer came from %s", id)
		}
	}
}
