package app

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// TestVersionAndUsage: --version names the binary, its version, Go and
// the kernel; an argument the command does not take exits 2.
func TestVersionAndUsage(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, stdout, _ := run("--version")
	if code != 0 || !strings.HasPrefix(stdout, "coordinator ") || !strings.Contains(stdout, runtime.Version()) || !strings.Contains(stdout, "kernel ") {
		t.Errorf("--version: exit %d, %q", code, stdout)
	}
	if code, _, stderr := run("strat"); code != 2 || !strings.HasPrefix(stderr, "error: ") {
		t.Errorf("an unknown argument: exit %d, %q", code, stderr)
	}
}

// TestProtectedMode: a coordinator whose API or raft listens beyond
// loopback without TLS and tokens refuses to start (exit 2, one error
// line naming the listener, what it lacks and --insecure) before it
// opens anything.
func TestProtectedMode(t *testing.T) {
	base := []string{"--id", "c1", "--data-dir", t.TempDir(), "--bootstrap", "--nats", "nats://127.0.0.1:1"}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"api on every interface", []string{"--raft-addr", "127.0.0.1:7000", "--http-addr", "0.0.0.0:8080"},
			[]string{"--http-addr 0.0.0.0:8080 without --http-tls-cert, --admin-token-file", "--insecure"}},
		{"api on all interfaces, no host", []string{"--raft-addr", "127.0.0.1:7000", "--http-addr", ":8080"},
			[]string{"--http-addr :8080", "--insecure"}},
		{"raft beyond loopback", []string{"--raft-addr", "10.11.12.13:7000", "--http-addr", "127.0.0.1:8080"},
			[]string{"--raft-addr 10.11.12.13:7000 without --raft-tls-cert, --raft-tls-key, --raft-tls-ca", "--insecure"}},
	} {
		var out, errb bytes.Buffer
		code := Main(append(append([]string{}, base...), c.args...), &out, &errb)
		stderr := errb.String()
		if code != 2 || !strings.HasPrefix(stderr, "error: refusing to start") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q; want 2 and one error line", c.name, code, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr %q does not say %q", c.name, stderr, w)
			}
		}
	}
}
