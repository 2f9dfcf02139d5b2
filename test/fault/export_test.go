//go:build fault

package fault

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/test/testcluster"
)

// The export target paused (SIGSTOP) just before its copy: the leader
// declares it lost, the job resumes on the two others, one of them exports
// and the job succeeds; then the paused worker wakes up and runs the
// export of the epoch the leader gave up on. The --out directory the job
// reported must stay as it was — never absent, never swapped for another
// copy — and equal the undisturbed run. Before checkpoint.CopyToDir took
// turns and skipped a copy already in place (bc4555e), the late export
// renamed the directory away and back: for a moment after `job wait`
// returned there was no manifest in --out, the symptom of the worker-kill
// run that failed (docs/reliability.md).
func TestPausedExportTarget(t *testing.T) {
	c := faultyCluster(t, 3, func(int) string { return "export-stall=3s" })
	ty := newTally(t, "export target paused")
	for i := range runs(t) {
		ty.run(i, func(t *testing.T) float64 {
			id, dist := submitOut(t, c)
			target, mark, _ := waitWorkerLine(t, c, []string{"w1", "w2", "w3"}, 0, "an export to start", func(l string) bool {
				return strings.Contains(l, id) && strings.Contains(l, "export started")
			}, 2*time.Minute)
			p := c.Worker(target)
			signalProc(t, p, syscall.SIGSTOP)
			t.Logf("paused %s before its export", target)
			res := mustSucceed(t, c, id)
			if res.Restarts < 1 {
				t.Errorf("the job was not reassigned while %s was paused (restarts %d)", target, res.Restarts)
			}
			before := inode(t, dist)
			d := compare(t, dist)
			// Watch the directory while the paused worker's late export runs.
			w := watchManifest(filepath.Join(dist, checkpoint.ManifestName))
			signalProc(t, p, syscall.SIGCONT)
			_, _, late := waitWorkerLine(t, c, []string{target}, mark, "the late export to end", func(l string) bool {
				return strings.Contains(l, id) && (strings.Contains(l, "export done") || strings.Contains(l, "task failed"))
			}, time.Minute)
			absent, checks := w.stop()
			t.Logf("%s's late export: %s", target, strings.TrimSpace(late))
			if absent > 0 {
				t.Errorf("%s had no manifest in %d of %d looks after the job succeeded", dist, absent, checks)
			}
			if after := inode(t, dist); after != before {
				t.Errorf("%s was replaced after the job succeeded (inode %d → %d)", dist, before, after)
			}
			// CopyToDir builds beside the directory, as .out.tmp-…
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dist), "."+filepath.Base(dist)+".tmp-*")); len(left) > 0 {
				t.Errorf("copies left beside %s: %v", dist, left)
			}
			d = max(d, compare(t, dist))
			c.WaitReady(3, 3, time.Minute)
			return d
		})
	}
}

// waitWorkerLine waits until match accepts a line of one of workers'
// logs at or after offset from, and returns the worker, the line's offset
// and the line.
func waitWorkerLine(t *testing.T, c *testcluster.Cluster, workers []string, from int64, what string, match func(string) bool, d time.Duration) (who string, at int64, line string) {
	t.Helper()
	testcluster.WaitForWithin(t, d, what, func() bool {
		for _, w := range workers {
			if off, l, ok := findLine(c.Worker(w).Log, from, match); ok {
				who, at, line = w, off, l
				return true
			}
		}
		return false
	})
	return who, at, line
}

// findLine returns the first line of file at or after offset from that
// match accepts, and its offset.
func findLine(file string, from int64, match func(string) bool) (int64, string, bool) {
	f, err := os.Open(file)
	if err != nil {
		return 0, "", false
	}
	defer f.Close()
	if _, err := f.Seek(from, 0); err != nil {
		return 0, "", false
	}
	r := bufio.NewReader(f)
	off := from
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, "", false // a line still being written counts next time
		}
		if match(line) {
			return off, line, true
		}
		off += int64(len(line))
	}
}

func signalProc(t *testing.T, p *testcluster.Proc, s syscall.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(s); err != nil {
		t.Fatalf("%v to %s: %v", s, p.Name, err)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// manifestWatch looks for a file as often as it can until stopped.
type manifestWatch struct {
	done           chan struct{}
	wg             sync.WaitGroup
	absent, checks int
}

func watchManifest(path string) *manifestWatch {
	w := &manifestWatch{done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			select {
			case <-w.done:
				return
			default:
			}
			w.checks++
			if _, err := os.Stat(path); err != nil {
				w.absent++
			}
		}
	}()
	return w
}

func (w *manifestWatch) stop() (absent, checks int) {
	close(w.done)
	w.wg.Wait()
	return w.absent, w.checks
}
