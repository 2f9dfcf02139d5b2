package app

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/serve"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// testSnapshot is a hand-made model of rank 2:
//
//	item   i0     i1     i2     i3     i4     i5
//	y      (1,0)  (0,1)  (1,1)  (2,0)  (1,0)  (0,0)
//
// alice = (1,0) scores 1 0 1 2 1 0 and trained on i2 and i3; bob = (0,1);
// carol = (−1,−1). Snapshot "v2" doubles every item factor.
type testSnapshot struct {
	users, items []string
	x, y         []float32
	seen         [][]int32
	model        string // "" for "default"
}

func handSnapshot(scale float32) testSnapshot {
	y := []float32{1, 0, 0, 1, 1, 1, 2, 0, 1, 0, 0, 0}
	for i := range y {
		y[i] *= scale
	}
	return testSnapshot{
		users: []string{"alice", "bob", "carol"}, items: []string{"i0", "i1", "i2", "i3", "i4", "i5"},
		x: []float32{1, 0, 0, 1, -1, -1}, y: y, seen: [][]int32{{2, 3}, {1}, {}},
	}
}

// randomSnapshot has small integer factors: every score is exact and ties
// are frequent.
func randomSnapshot(users, items, rank int) testSnapshot {
	rng := rand.New(rand.NewPCG(1, 2))
	ts := testSnapshot{x: make([]float32, users*rank), y: make([]float32, items*rank), seen: make([][]int32, users)}
	for u := range users {
		ts.users = append(ts.users, fmt.Sprintf("user,%d", u)) // a comma: CSV quoting
	}
	for i := range items {
		ts.items = append(ts.items, fmt.Sprintf("item-%d", i))
	}
	for i := range ts.x {
		ts.x[i] = float32(rng.IntN(7) - 3)
	}
	for i := range ts.y {
		ts.y[i] = float32(rng.IntN(7) - 3)
	}
	for u := range ts.seen {
		for i := rng.IntN(20); i < items; i += 1 + rng.IntN(30) {
			ts.seen[u] = append(ts.seen[u], int32(i))
		}
	}
	return ts
}

// write stores the snapshot as id of repo ("" for a snapshot directory).
func (ts testSnapshot) write(t *testing.T, repo *checkpoint.Repo, id string) {
	t.Helper()
	ctx := context.Background()
	rank := len(ts.x) / len(ts.users)
	counts := func(n int) []int32 {
		c := make([]int32, n)
		for i := range c {
			c[i] = int32(n - i)
		}
		return c
	}
	var files []checkpoint.FileInfo
	for _, b := range []*checkpoint.Block{
		{Side: checkpoint.SideUsers, Rank: rank, IDs: ts.users, Counts: counts(len(ts.users)), Factors: ts.x},
		{Side: checkpoint.SideItems, Rank: rank, IDs: ts.items, Counts: counts(len(ts.items)), Factors: ts.y},
	} {
		fi, err := repo.WriteBlock(ctx, id, b)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fi)
	}
	s := &checkpoint.Seen{Ptr: []int64{0}}
	for _, items := range ts.seen {
		s.Items = append(s.Items, items...)
		s.Ptr = append(s.Ptr, int64(len(s.Items)))
	}
	fi, err := repo.WriteSeen(ctx, id, s)
	if err != nil {
		t.Fatal(err)
	}
	mid := id
	if mid == "" {
		mid = "hand"
	}
	model := ts.model
	if model == "" {
		model = "default"
	}
	if err := repo.Commit(ctx, id, &checkpoint.Manifest{
		ID: mid, Model: model, Job: "test", Iteration: 1, Rank: rank, Lambda: 0.1,
		Users: len(ts.users), Items: len(ts.items), UserBlocks: 1, ItemBlocks: 1, Final: true,
		Created: time.Now().UTC(), Files: append(files, fi),
	}); err != nil {
		t.Fatal(err)
	}
}

func (ts testSnapshot) dir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	repo, id := checkpoint.OpenDir(dir)
	ts.write(t, repo, id)
	return dir
}

func TestRecommendAndSimilarCommands(t *testing.T) {
	t.Parallel()
	dir := handSnapshot(1).dir(t)
	root := t.TempDir()
	store := checkpoint.DirStore{Root: root}
	repo := checkpoint.NewRepo(store, store)
	handSnapshot(1).write(t, repo, "v1")
	handSnapshot(2).write(t, repo, "v2")
	if err := repo.Publish(context.Background(), "default", "v2"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"recommend --json", []string{"recommend", "--snapshot", dir, "--user", "alice", "--k", "3", "--json"},
			`{"user":"alice","items":[{"item":"i3","score":2},{"item":"i0","score":1},{"item":"i2","score":1}]}` + "\n"},
		{"recommend --exclude-seen", []string{"recommend", "--snapshot", dir, "--user", "alice", "--k", "2", "--exclude-seen", "--json"},
			`{"user":"alice","items":[{"item":"i0","score":1},{"item":"i4","score":1}]}` + "\n"},
		{"recommend k above the items", []string{"recommend", "--snapshot", dir, "--user", "carol", "--k", "100", "--json"},
			`{"user":"carol","items":[{"item":"i5","score":0},{"item":"i0","score":-1},{"item":"i1","score":-1},{"item":"i4","score":-1},{"item":"i2","score":-2},{"item":"i3","score":-2}]}` + "\n"},
		{"recommend human", []string{"recommend", "--snapshot", dir, "--user", "bob", "--k", "2"},
			"top 2 items for user bob (snapshot hand):\n   1  i1                   1.0000\n   2  i2                   1.0000\n"},
		{"recommend an ID in a store", []string{"recommend", "--store", "dir:" + root, "--snapshot", "v1", "--user", "alice", "--k", "1", "--json"},
			`{"user":"alice","items":[{"item":"i3","score":2}]}` + "\n"},
		{"recommend latest in a store", []string{"recommend", "--store", root, "--snapshot", "latest", "--user", "alice", "--k", "1", "--json"},
			`{"user":"alice","items":[{"item":"i3","score":4}]}` + "\n"},
		{"similar --json", []string{"similar", "--snapshot", dir, "--item", "i0", "--k", "2", "--json"},
			`{"item":"i0","items":[{"item":"i3","score":1},{"item":"i4","score":1}]}` + "\n"},
		{"similar human", []string{"similar", "--store", "dir:" + root, "--snapshot", "latest", "--item", "i5", "--k", "1"},
			"1 items most similar to i5 (snapshot v2):\n   1  i0                   0.0000\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != 0 || stdout != tc.want || stderr != "" {
				t.Errorf("exit %d, stdout %q, stderr %q\nwant stdout %q", code, stdout, stderr, tc.want)
			}
		})
	}
}

func TestRecommendUsageErrors(t *testing.T) {
	t.Parallel()
	dir := handSnapshot(1).dir(t)
	empty := t.TempDir()
	root := t.TempDir()
	out := filepath.Join(t.TempDir(), "all.csv")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"recommend", "--snapshot", dir, "--user", "zz"}, `error: user "zz" is not in the snapshot`},
		{[]string{"recommend", "--user", "alice"}, "error: no snapshot: pass --store URI[@ID] (nats://HOST:PORT/MODEL, dir:PATH) or --snapshot DIR"},
		{[]string{"recommend", "--snapshot", dir}, "error: no user: pass --user ID, or --all with --out FILE"},
		{[]string{"recommend", "--snapshot", dir, "--user", "alice", "--k", "0"}, "error: --k 0 must be ≥ 1"},
		{[]string{"recommend", "--snapshot", dir, "--user", "alice", "--all", "--out", out}, "error: --user and --all cannot be combined"},
		{[]string{"recommend", "--snapshot", dir, "--all"}, "error: --all needs --out FILE"},
		{[]string{"recommend", "--snapshot", dir, "--user", "alice", "--out", out}, "error: --out goes with --all"},
		{[]string{"recommend", "--snapshot", dir, "--all", "--out", filepath.Join(empty, "no", "x.csv")}, "error: --out " + filepath.Join(empty, "no", "x.csv") + ": directory " + filepath.Join(empty, "no") + " does not exist"},
		{[]string{"recommend", "--snapshot", filepath.Join(empty, "none"), "--user", "alice"}, "error: --snapshot " + filepath.Join(empty, "none") + ": not a snapshot directory (to name a snapshot in a store: --store URI@ID, or --store URI --snapshot ID)"},
		{[]string{"recommend", "--snapshot", empty, "--user", "alice"}, "error: model default has no published snapshot in " + empty},
		{[]string{"recommend", "--store", root, "--snapshot", "latest", "--user", "alice"}, "error: model default has no published snapshot in " + root},
		{[]string{"recommend", "--store", root, "--snapshot", "../x", "--user", "alice"}, `error: --snapshot: checkpoint: "../x" is not a valid snapshot ID or model name (letters, digits, _ - ., at most 200)`},
		{[]string{"recommend", "--store", "dir:", "--snapshot", "v1", "--user", "alice"}, `error: --store "dir:" names no directory`},
		{[]string{"recommend", "--store", "nats", "--snapshot", "v1", "--user", "alice"}, "error: --store nats needs --nats URL or --coordinator URL (or pass --store nats://HOST:PORT)"},
		{[]string{"similar", "--snapshot", dir, "--item", "nope"}, `error: item "nope" is not in the snapshot`},
		{[]string{"similar", "--snapshot", dir}, "error: no item: pass --item ID"},
		{[]string{"similar", "--snapshot", dir, "--item", "i1", "--k", "-1"}, "error: --k -1 must be ≥ 1"},
		{[]string{"serve"}, "error: nothing to serve: pass --store URI[@ID], --snapshot DIR or --coordinator URL"},
		{[]string{"serve", "--snapshot", dir, "--max-k", "0"}, "error: --max-k 0 must be ≥ 1"},
		{[]string{"serve", "--store", root, "--model", "a/b"}, `error: --model: checkpoint: "a/b" is not a valid snapshot ID or model name (letters, digits, _ - ., at most 200)`},
		{[]string{"serve", "--snapshot", dir, "--log-level", "loud"}, `error: --log-level "loud": want debug, info, warn or error`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if os.Getenv(EnvCoordinator) != "" {
				t.Skipf("%s is set", EnvCoordinator)
			}
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != 2 || stderr != tc.want+"\n" || stdout != "" {
				t.Errorf("exit %d, stderr %q, stdout %q\nwant exit 2, %q", code, stderr, stdout, tc.want)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s exists after failures", out)
	}
}

// recommend --all writes every user's top K as CSV, equal to the single-
// user answers, atomically.
func TestRecommendAll(t *testing.T) {
	t.Parallel()
	ts := randomSnapshot(150, 700, 5)
	dir := ts.dir(t)
	m, err := checkpoint.ReadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, excludeSeen := range []bool{false, true} {
		t.Run(fmt.Sprintf("exclude-seen=%v", excludeSeen), func(t *testing.T) {
			outDir := t.TempDir()
			out := filepath.Join(outDir, "top.csv")
			args := []string{"recommend", "--snapshot", dir, "--all", "--k", "7", "--out", out, "--threads", "2", "--json"}
			if excludeSeen {
				args = append(args, "--exclude-seen")
			}
			code, stdout, stderr := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var summary map[string]any
			if err := json.Unmarshal([]byte(stdout), &summary); err != nil || summary["rows"] != 150.0*7 || summary["users"] != 150.0 {
				t.Errorf("summary %q (%v)", stdout, err)
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			recs, err := csv.NewReader(f).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			want := [][]string{{"user", "rank", "item", "score"}}
			for u := range m.UserIDs {
				for j, e := range serve.RecommendUser(m, int32(u), 7, serve.Filter{ExcludeSeen: excludeSeen}) {
					want = append(want, []string{m.UserIDs[u], strconv.Itoa(j + 1), m.ItemIDs[e.Item], strconv.FormatFloat(float64(e.Score), 'g', -1, 32)})
				}
			}
			if fmt.Sprint(recs) != fmt.Sprint(want) {
				t.Errorf("CSV differs from the single-user answers: %d rows, want %d; first rows %v", len(recs), len(want), recs[:min(4, len(recs))])
			}
			if ents, _ := os.ReadDir(outDir); len(ents) != 1 {
				t.Errorf("%d files beside the output, want only it", len(ents))
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs `cofactor serve args` until the returned stop is called,
// and returns the base URL it serves on.
func startServe(t *testing.T, args ...string) (base string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	root := newRoot(streams{strings.NewReader(""), &out, &errb})
	root.SetArgs(append([]string{"serve", "--http-addr", "127.0.0.1:0"}, args...))
	done := make(chan int, 1)
	go func() {
		code := cli.ExitOK
		if err := root.ExecuteContext(ctx); err != nil {
			t.Logf("serve: %v", err)
			code = cli.ExitCode(err)
		}
		done <- code
	}()
	addr := regexp.MustCompile(`addr=(http://\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := addr.FindStringSubmatch(errb.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("serve exited %d: %s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start: %s", errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	stop = func() int {
		if stopped {
			return cli.ExitOK
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatalf("serve did not stop: %s", errb.String())
		}
		return 0
	}
	t.Cleanup(func() { stop() })
	return base, stop
}

// get fetches a URL and decodes its JSON answer.
func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %q: %v", url, b, err)
	}
	return resp.StatusCode, v
}

// waitSnapshot polls /healthz until it names snapshot id.
func waitSnapshot(t *testing.T, base, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, v := get(t, base+"/healthz")
		if code == 200 && v["snapshot"] == id {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz still %d %v, want snapshot %s", code, v, id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeSnapshotDir(t *testing.T) {
	t.Parallel()
	base, stop := startServe(t, "--snapshot", handSnapshot(1).dir(t))
	waitSnapshot(t, base, "hand")
	code, v := get(t, base+"/v1/recommend?user=alice&k=2")
	b, _ := json.Marshal(v)
	if want := `{"items":[{"item":"i3","score":2},{"item":"i0","score":1}],"snapshot":"hand","user":"alice"}`; code != 200 || string(b) != want {
		t.Errorf("GET /v1/recommend: %d %s, want %s", code, b, want)
	}
	code, v = get(t, base+"/v1/similar?item=i1&k=1")
	if code != 200 || v["item"] != "i1" {
		t.Errorf("GET /v1/similar: %d %v", code, v)
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exited %d after cancellation", code)
	}
}

// serve --store follows the model's latest pointer.
func TestServeFollowsStore(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	store := checkpoint.DirStore{Root: root}
	repo := checkpoint.NewRepo(store, store)
	base, stop := startServe(t, "--store", "dir:"+root, "--model", "default")
	if code, v := get(t, base+"/healthz"); code != 503 {
		t.Errorf("/healthz before a publish: %d %v, want 503", code, v)
	}
	ctx := context.Background()
	for n, id := range []string{"v1", "v2"} {
		handSnapshot(float32(n+1)).write(t, repo, id)
		if err := repo.Publish(ctx, "default", id); err != nil {
			t.Fatal(err)
		}
		waitSnapshot(t, base, id)
		code, v := get(t, base+"/v1/recommend?user=alice&k=1")
		items, _ := v["items"].([]any)
		if code != 200 || v["snapshot"] != id || len(items) != 1 || items[0].(map[string]any)["score"] != float64(2*(n+1)) {
			t.Errorf("after publishing %s: %d %v", id, code, v)
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exited %d after cancellation", code)
	}
}

// serve --coordinator asks GET /v1/config where the snapshots are and
// follows the model in the cluster's NATS store.
func TestServeThroughCoordinator(t *testing.T) {
	t.Parallel()
	ns, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	coord := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/config" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(coordinator.ClientConfig{NATSURL: ns.ClientURL(), Store: "nats"})
	}))
	defer coord.Close()

	ctx := context.Background()
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	repo, err := checkpoint.OpenURI(ctx, "nats", nc)
	if err != nil {
		t.Fatal(err)
	}
	handSnapshot(1).write(t, repo, "cluster-v1")
	if err := repo.Publish(ctx, "default", "cluster-v1"); err != nil {
		t.Fatal(err)
	}
	base, stop := startServe(t, "--coordinator", coord.URL)
	waitSnapshot(t, base, "cluster-v1")
	if code, v := get(t, base+"/v1/recommend?user=nobody&k=1"); code != 200 || v["fallback"] != "popular" {
		t.Errorf("unknown user: %d %v", code, v)
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exited %d after cancellation", code)
	}
	// recommend finds the cluster's store the same way.
	code, stdout, stderr := runCLI(t, "--coordinator", coord.URL, "recommend", "--store", "nats", "--snapshot", "latest", "--user", "bob", "--k", "1", "--json")
	if want := `{"user":"bob","items":[{"item":"i1","score":1}]}` + "\n"; code != 0 || stdout != want {
		t.Errorf("recommend through the coordinator: exit %d, %q %q; want %q", code, stdout, stderr, want)
	}
}
