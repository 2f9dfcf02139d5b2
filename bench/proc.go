package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// run is one finished child process: what it printed, how long it took and
// the peak resident set it reached (getrusage of the child, so only its own
// memory counts).
type run struct {
	Stdout  []byte
	Wall    time.Duration
	PeakRSS int64 // bytes
}

// child is a started process whose stderr goes to a log file.
type child struct {
	name  string
	cmd   *exec.Cmd
	start time.Time
	out   bytes.Buffer
	log   *os.File
}

// startChild starts bin with args and the extra environment; its stderr
// (and stdout when quiet) go to logDir/name.log.
func startChild(ctx context.Context, logDir, name, bin string, args, env []string, quiet bool) (*child, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	f, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", name, err)
	}
	fmt.Fprintf(f, "# %s %q\n", bin, args)
	c := &child{name: name, log: f}
	c.cmd = exec.CommandContext(ctx, bin, args...)
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stderr = f
	if quiet {
		c.cmd.Stdout = f
	} else {
		c.cmd.Stdout = &c.out
	}
	// A stopped harness must not leave servers behind.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	c.cmd.Cancel = func() error { return c.cmd.Process.Signal(syscall.SIGTERM) }
	c.cmd.WaitDelay = 10 * time.Second
	c.start = time.Now()
	if err := c.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return c, nil
}

// wait waits for the child and returns its figures. A non-zero exit is an
// error that names the log.
func (c *child) wait() (run, error) {
	err := c.cmd.Wait()
	r := run{Stdout: c.out.Bytes(), Wall: time.Since(c.start)}
	if st := c.cmd.ProcessState; st != nil {
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			r.PeakRSS = ru.Maxrss * 1024 // Linux reports KiB
		}
	}
	c.log.Close()
	if err != nil {
		return r, fmt.Errorf("%s: %w (log: %s)", c.name, err, c.log.Name())
	}
	return r, nil
}

// stop asks a long-running child to end and waits for it.
func (c *child) stop() (run, error) {
	if c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	r, err := c.wait()
	if err != nil && c.cmd.ProcessState != nil && !c.cmd.ProcessState.Success() {
		// Ended by our signal: not a failure of the measurement.
		err = nil
	}
	return r, err
}

// runChild runs a process to completion.
func runChild(ctx context.Context, logDir, name, bin string, args, env []string) (run, error) {
	return runChildLimited(ctx, logDir, name, bin, args, env, 0)
}

// runChildLimited runs a process to completion, ending it if its resident
// set grows past limit bytes (0: no limit): the machine is shared, and the
// NumPy reference's Python-list loader can take many GB on large sets.
func runChildLimited(ctx context.Context, logDir, name, bin string, args, env []string, limit int64) (run, error) {
	c, err := startChild(ctx, logDir, name, bin, args, env, false)
	if err != nil {
		return run{}, err
	}
	var over atomic.Int64
	if limit > 0 {
		done := make(chan struct{})
		defer close(done)
		go func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					if rss := residentBytes(c.cmd.Process.Pid); rss > limit {
						over.Store(rss)
						_ = c.cmd.Process.Kill()
						return
					}
				}
			}
		}()
	}
	r, err := c.wait()
	if rss := over.Load(); rss > 0 {
		return r, fmt.Errorf("%s: ended at %.1f GB resident, over the %.1f GB limit (--max-rss)", name, float64(rss)/1e9, float64(limit)/1e9)
	}
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(logDir, name+".log"))
		if len(b) > 2000 {
			b = b[len(b)-2000:]
		}
		return r, fmt.Errorf("%w\n%s", err, b)
	}
	return r, nil
}

// residentBytes reads VmRSS of a process (0 if it is gone).
func residentBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// runTool runs a command for its side effects (builds, data generation),
// its output going to the harness's stderr.
func runTool(ctx context.Context, dir, bin string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Stdout = io.Discard
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %w", bin, args, err)
	}
	return nil
}
