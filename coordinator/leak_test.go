package coordinator_test

import (
	"io"
	"net/http"
	"os"
	"runtime"
	"testing"
	"time"
)

// openFiles counts this process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestClusterStatusDoesNotLeak: thousands of GET /v1/cluster on a
// secured cluster (each asks the other two members for their status over
// HTTPS) leave the process's open files and heap where they were. Every
// call used to build a TLS transport per member and never close it: 1,500
// calls took a coordinator from 21 to 3,021 open files.
func TestClusterStatusDoesNotLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a secured three-coordinator cluster")
	}
	c := startSecureCluster(t)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c.tlsCfg}}
	defer hc.CloseIdleConnections()
	call := func(i int) {
		req, _ := http.NewRequest("GET", c.url(i%len(c.nodes))+"/v1/cluster", nil)
		req.Header.Set("Authorization", "Bearer "+readToken)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET /v1/cluster: %d", resp.StatusCode)
		}
	}
	for i := range 100 { // warm up: every member's connections to the others
		call(i)
	}
	files, heap := openFiles(t), heapInUse()
	const calls = 3000
	for i := range calls {
		call(i)
	}
	filesAfter, heapAfter := openFiles(t), heapInUse()
	t.Logf("%d calls: open files %d → %d, heap in use %.1f → %.1f MB", calls, files, filesAfter, float64(heap)/(1<<20), float64(heapAfter)/(1<<20))
	if filesAfter > files+20 {
		t.Errorf("open files grew from %d to %d over %d calls", files, filesAfter, calls)
	}
	if heapAfter > heap+16<<20 {
		t.Errorf("heap in use grew from %.1f to %.1f MB over %d calls", float64(heap)/(1<<20), float64(heapAfter)/(1<<20), calls)
	}
}
