package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cofactor-ml/cofactor/internal/secinit"
)

// TestServeProtectedMode: serve listening beyond loopback without HTTPS
// and a read token refuses to start (exit 2, one line naming what is
// missing and --insecure) before it opens the snapshot.
func TestServeProtectedMode(t *testing.T) {
	t.Parallel()
	tok := writeFile(t, t.TempDir(), "read.token", "0123456789abcdef0123456789abcdef\n")
	missing := filepath.Join(t.TempDir(), "no-snapshot")
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"open", []string{"--http-addr", "0.0.0.0:9000"}, []string{"--http-addr 0.0.0.0:9000 without --http-tls-cert, --read-token-file", "--insecure"}},
		{"token without TLS", []string{"--http-addr", ":9000", "--read-token-file", tok}, []string{"--http-addr :9000 without --http-tls-cert;", "--insecure"}},
	} {
		code, _, stderr := runCLI(t, append([]string{"serve", "--snapshot", missing}, c.args...)...)
		if code != 2 || !strings.HasPrefix(stderr, "error: refusing to start") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q; want 2 and one line", c.name, code, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr %q does not say %q", c.name, stderr, w)
			}
		}
	}
	// --insecure passes protected mode: the next error is the missing
	// snapshot's.
	code, _, stderr := runCLI(t, "serve", "--snapshot", missing, "--http-addr", "0.0.0.0:9000", "--insecure")
	if strings.Contains(stderr, "refusing to start") || !strings.Contains(stderr, "no-snapshot") {
		t.Errorf("--insecure: exit %d, stderr %q; want the snapshot's error", code, stderr)
	}
}

// TestSecurityInitCommand: security init writes its files (--json lists
// them), refuses to overwrite them without --force (exit 2) and checks
// its flags.
func TestSecurityInitCommand(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "secure")
	code, out, stderr := runCLI(t, "security", "init", dir, "--coordinator-host", "c1,c2", "--nats-host", "nats", "--json")
	var res secinit.Result
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Files) != 18 || len(res.NKeys) != 3 {
		t.Fatalf("security init: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	before, err := os.ReadFile(filepath.Join(dir, secinit.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "security", "init", dir)
	if code != 2 || !strings.Contains(stderr, "exists") || !strings.Contains(stderr, "--force") {
		t.Errorf("security init over existing files: exit %d, %q; want 2 naming --force", code, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, secinit.AdminToken)); string(after) != string(before) {
		t.Error("a refused security init changed the admin token")
	}
	if code, _, stderr = runCLI(t, "security", "init", dir, "--force"); code != 0 {
		t.Errorf("security init --force: exit %d, %q", code, stderr)
	}
	for _, bad := range [][]string{
		{"security", "init", t.TempDir() + "/x", "--nats-routes", "nats-route://n1:6222"},
		{"security", "init", t.TempDir() + "/x", "--days", "0"},
		{"security", "init", t.TempDir() + "/x", "--coordinator-host", "c1:7000"},
		{"security", "init"},
		{"security", "init", t.TempDir() + "/x", "--workers", "-1"},
		{"security", "init", t.TempDir() + "/x", "--workers", "2", "--worker-ids", "a,b"},
		{"security", "init", t.TempDir() + "/x", "--worker-ids", "a,a"},
		{"security", "init", t.TempDir() + "/x", "--worker-ids", "a.b"},
	} {
		if code, _, stderr := runCLI(t, bad...); code != 2 {
			t.Errorf("%v: exit %d, %q; want 2", bad, code, stderr)
		}
	}
}
