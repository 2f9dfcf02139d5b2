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
	if code != 0 || !strings.HasPrefix(stdout, "worker ") || !strings.Contains(stdout, runtime.Version()) || !strings.Contains(stdout, "kernel ") {
		t.Errorf("--version: exit %d, %q", code, stdout)
	}
	if code, _, stderr := run("strat"); code != 2 || !strings.HasPrefix(stderr, "error: ") {
		t.Errorf("an unknown argument: exit %d, %q", code, stderr)
	}
}
