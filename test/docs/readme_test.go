package docs

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// coveredElsewhere are documented commands the doc test does not run, and
// why: a line of a runnable block that starts with one of these is left
// out.
var coveredElsewhere = []struct{ prefix, why string }{
	{"go test ./...", "the test suite this test belongs to; .ci/run runs it"},
	{"bash .ci/run", "CI itself"},
	{"go test ./als -run '^$' -bench", "a benchmark run of minutes; go vet and go test compile it"},
	{"COFACTOR_BENCH_SCALE=", "a benchmark run of minutes; go vet and go test compile it"},
}

// documents are the Markdown files whose commands are checked and run, in
// the order they run: the README, then docs/*.md but the generated
// reference.
func documents(t *testing.T) []string {
	root := repoRoot(t)
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(docs)
	out := []string{"README.md"}
	for _, d := range docs {
		if filepath.Base(d) != "config.md" {
			out = append(out, filepath.Join("docs", filepath.Base(d)))
		}
	}
	return out
}

// TestDocCommandLines checks every cofactor, coordinator, worker and
// nats-server command in the README's and docs' shell and text blocks
// against the binaries' flag sets, runnable or not.
func TestDocCommandLines(t *testing.T) {
	root := repoRoot(t)
	n := 0
	for _, doc := range documents(t) {
		for _, b := range markdownBlocks(t, filepath.Join(root, doc), doc) {
			switch b.info {
			case "sh", "bash", "shell", "text", "console":
			default:
				continue
			}
			for _, c := range ourCommands(splitShell(doc, b.line+1, b.body)) {
				n++
				if err := checkCommandLine(c.argv); err != nil {
					t.Errorf("%s: %s: %v", c.where, strings.Join(c.argv, " "), err)
				}
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d command lines found in the docs", n)
	}
	t.Logf("%d command lines checked", n)
}

// TestDocCommands runs the README's and docs' runnable blocks (```sh) as
// written, in a copy of the repository with bin/ built by
// `go build -o bin/ ./cmd/...` (as the README says) and ../shared/data
// where the README expects it. A document is one terminal session: its
// blocks run in order, each in its own process group, and what a block
// starts in the background (&) lives until the document's last block has
// run; then every group is killed. A block must exit 0 and leave behind
// what its commands write (--out, -o, --data-dir, -sd).
func TestDocCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs the documented commands, clusters included (skipped with -short)")
	}
	root := repoRoot(t)
	work := t.TempDir()
	repo := filepath.Join(work, "cofactor")
	copyRepo(t, root, repo)
	shared := sharedDataDir(root)
	if shared != "" {
		if err := os.MkdirAll(filepath.Join(work, "shared"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(shared, filepath.Join(work, "shared", "data")); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Log("the shared data (../shared/data or $COFACTOR_SHARED_DATA) is absent: blocks that read it are skipped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// Models train keeps without --out stay in the test's directory.
	env := append(blockEnv(), "COFACTOR_MODELS="+filepath.Join(work, "models"))
	logs := filepath.Join(work, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}

	// The README's "Build the binaries with `go build -o bin/ ./cmd/...`".
	setup := &session{t: t, dir: repo, env: env, logs: logs}
	setup.run(ctx, "setup", "go build -o bin/ ./cmd/...")
	setup.close()

	for _, doc := range documents(t) {
		blocks := markdownBlocks(t, filepath.Join(root, doc), doc)
		var runnable []fencedBlock
		for _, b := range blocks {
			if b.runnable() {
				runnable = append(runnable, b)
			}
		}
		if len(runnable) == 0 {
			continue
		}
		t.Run(doc, func(t *testing.T) {
			checkPortsFree(t, runnable)
			s := &session{t: t, dir: repo, env: env, logs: logs}
			defer s.close()
			os.Remove(filepath.Join(logs, "session.env"))
			for _, b := range runnable {
				name := fmt.Sprintf("%s:%d", b.file, b.line)
				if (strings.Contains(b.body, "../shared/data") || hasDownload(b.body)) && shared == "" {
					t.Logf("%s (%s): skipped: it reads ../shared/data or downloads what the test takes from there, which is absent", name, b.heading)
					continue
				}
				script := dropCovered(t, name, b.body)
				script = provideDownloads(t, name, repo, shared, script)
				start := time.Now()
				if !s.run(ctx, name, script) {
					return // later blocks build on this one
				}
				t.Logf("%s (%s): ok in %.1f s", name, b.heading, time.Since(start).Seconds())
				checkOutputs(t, name, repo, b)
			}
		})
	}
}

// downloads are the files the docs tell users to download, and how the
// test makes the same file from the shared data instead (CI has no
// network beyond package registries).
var downloads = map[string]func(shared, dst string) error{
	// GroupLens' zip: a folder ml-latest-small/ with the CSV files and the
	// licence.
	"https://files.grouplens.org/datasets/movielens/ml-latest-small.zip": func(shared, dst string) error {
		return zipFiles(dst, filepath.Join(shared, "ml-latest-small"), "ml-latest-small/", "ratings.csv", "movies.csv", "README.txt")
	},
}

// hasDownload reports whether a script downloads one of downloads.
func hasDownload(script string) bool {
	for url := range downloads {
		if strings.Contains(script, url) {
			return true
		}
	}
	return false
}

// provideDownloads replaces each `curl … -o FILE URL` of a known URL by
// the file made from the shared data, written where curl would write it
// (relative to dir).
func provideDownloads(t *testing.T, name, dir, shared, script string) string {
	t.Helper()
	lines := strings.Split(script, "\n")
	for i, line := range lines {
		cmds := splitShell(name, 1, line)
		if len(cmds) != 1 || cmds[0].words[0] != "curl" {
			continue
		}
		w := cmds[0].words
		var out, url string
		for j := 1; j < len(w); j++ {
			switch {
			case w[j] == "-o" && j+1 < len(w):
				out = w[j+1]
				j++
			case strings.HasPrefix(w[j], "https://"):
				url = w[j]
			}
		}
		provide := downloads[url]
		if provide == nil {
			continue
		}
		if out == "" {
			t.Fatalf("%s: %s: the doc test supplies the file only when curl names it with -o", name, line)
		}
		dst := filepath.Join(dir, out)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := provide(shared, dst); err != nil {
			t.Fatalf("%s: making %s from the shared data: %v", name, out, err)
		}
		t.Logf("%s: not run here: %s (the file is made from the shared data)", name, strings.TrimSpace(line))
		lines[i] = ": " + strconv.Quote(line)
	}
	return strings.Join(lines, "\n")
}

// zipFiles writes a zip archive at dst holding the named files of dir
// under prefix.
func zipFiles(dst, dir, prefix string, names ...string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			f.Close()
			return err
		}
		w, err := zw.Create(prefix + n)
		if err != nil {
			f.Close()
			return err
		}
		if _, err := w.Write(data); err != nil {
			f.Close()
			return err
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// dropCovered comments out the lines of coveredElsewhere.
func dropCovered(t *testing.T, name, body string) string {
	lines := strings.Split(body, "\n")
	for i, line := range lines {
		for _, c := range coveredElsewhere {
			if strings.HasPrefix(strings.TrimSpace(line), c.prefix) {
				t.Logf("%s: not run here: %s (%s)", name, strings.TrimSpace(line), c.why)
				lines[i] = ": " + strconv.Quote(line)
			}
		}
	}
	return strings.Join(lines, "\n")
}

// session runs the blocks of one document.
type session struct {
	t      *testing.T
	dir    string
	env    []string
	logs   string
	groups []int
}

// run runs one block with bash in a process group of its own and reports
// whether it exited 0 (failing the test otherwise, with its output).
func (s *session) run(ctx context.Context, name, script string) bool {
	t := s.t
	t.Helper()
	logPath := filepath.Join(s.logs, strings.NewReplacer("/", "_", ":", "_").Replace(name)+".log")
	// A file, not a pipe: background processes keep writing to it after
	// the block's shell has exited, and Wait does not wait for them.
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	// Like a terminal: what earlier blocks exported is set again, and the
	// block's exports are saved for the next one.
	envFile := filepath.Join(s.logs, "session.env")
	wrapped := fmt.Sprintf("if [ -f %[1]q ]; then . %[1]q; fi\nset -eo pipefail -x\n%[2]s\nset +x\nexport -p > %[1]q\n", envFile, script)
	cmd := exec.CommandContext(bctx, "bash", "-c", wrapped)
	cmd.Dir = s.dir
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.groups = append(s.groups, cmd.Process.Pid)
	err = cmd.Wait()
	if err != nil {
		out, _ := os.ReadFile(logPath)
		if bctx.Err() != nil {
			err = fmt.Errorf("%w (timed out)", err)
		}
		t.Errorf("%s: %v; its output:\n%s", name, err, tail(string(out), 80))
		return false
	}
	if testing.Verbose() {
		out, _ := os.ReadFile(logPath)
		t.Logf("%s: output:\n%s", name, tail(string(out), 40))
	}
	return true
}

// close ends every process the session's blocks started: SIGTERM to each
// group, SIGKILL to what is left after 10 s.
func (s *session) close() {
	for _, g := range s.groups {
		syscall.Kill(-g, syscall.SIGTERM)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, g := range s.groups {
		for time.Now().Before(deadline) && syscall.Kill(-g, 0) == nil {
			time.Sleep(50 * time.Millisecond)
		}
		if syscall.Kill(-g, syscall.SIGKILL) == nil {
			s.t.Logf("process group %d did not stop on SIGTERM: killed", g)
		}
	}
	s.groups = nil
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = append([]string{fmt.Sprintf("[%d lines before]", len(l)-lines)}, l[len(l)-lines:]...)
	}
	return strings.Join(l, "\n")
}

// outputFlags name what a command writes.
var outputFlags = regexp.MustCompile(`^(--out|-o|--data-dir|-sd)$`)

// checkOutputs checks that what a block's commands write exists.
func checkOutputs(t *testing.T, name, dir string, b fencedBlock) {
	t.Helper()
	for _, c := range splitShell(b.file, b.line+1, b.body) {
		w := c.words
		for i := 0; i+1 < len(w); i++ {
			if !outputFlags.MatchString(w[i]) || w[i+1] == "-" {
				continue
			}
			p := strings.ReplaceAll(w[i+1], "$PWD", dir)
			if strings.Contains(p, "$") {
				continue
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: %s %s %s: nothing was written: %v", name, w[0], w[i], w[i+1], err)
			}
		}
	}
}

// checkPortsFree fails early, saying which, when a port the blocks listen
// on is taken.
func checkPortsFree(t *testing.T, blocks []fencedBlock) {
	t.Helper()
	re := regexp.MustCompile(`(?:--(?:raft|http|metrics)-addr |-p )(?:127\.0\.0\.1:)?(\d+)`)
	seen := map[string]bool{}
	for _, b := range blocks {
		for _, mm := range re.FindAllStringSubmatch(b.body, -1) {
			port := mm[1]
			if seen[port] {
				continue
			}
			seen[port] = true
			ln, err := net.Listen("tcp", "127.0.0.1:"+port)
			if err != nil {
				t.Fatalf("%s's commands listen on 127.0.0.1:%s, which is taken: %v", b.file, port, err)
			}
			ln.Close()
		}
	}
}

// blockEnv is the environment of the blocks: the test's, without a
// coordinator preset, and with the build settings of the Dockerfile
// (-trimpath, CGO_ENABLED=0) so that builds in the copied tree reuse the
// build cache instead of compiling everything again for its new path.
func blockEnv() []string {
	var env []string
	goflags := "-trimpath"
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "COFACTOR_COORDINATOR", "CGO_ENABLED":
			continue
		case "GOFLAGS":
			goflags = strings.TrimSpace(v + " -trimpath")
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOFLAGS="+goflags, "CGO_ENABLED=0")
}

// sharedDataDir is the shared data folder ("" when absent).
func sharedDataDir(root string) string {
	dir := os.Getenv("COFACTOR_SHARED_DATA")
	if dir == "" {
		dir = filepath.Join(root, "..", "shared", "data")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return ""
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	return abs
}

// copyRepo copies the working tree (not .git, not build outputs) to dst.
func copyRepo(t *testing.T, src, dst string) {
	t.Helper()
	skip := map[string]bool{".git": true, "bin": true}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if skip[r] {
			if !d.IsDir() {
				return nil // .git is a file in a git worktree: SkipDir would skip its siblings
			}
			return filepath.SkipDir
		}
		target := filepath.Join(dst, r)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case !d.Type().IsRegular() || strings.HasSuffix(p, ".test") || strings.HasSuffix(p, ".prof"):
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked: another engineer's editor
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReadmeForNewUsers: the README's commands work from a clone alone.
// No runnable block reads ../shared (what this project's tests use, which
// users do not have); the real-data example downloads its data and a
// synthetic one needs none; the cluster's workers show --metrics-addr.
func TestReadmeForNewUsers(t *testing.T) {
	var realData, synthetic bool
	workers := 0
	for _, b := range markdownBlocks(t, filepath.Join(repoRoot(t), "README.md"), "README.md") {
		if !b.runnable() {
			continue
		}
		if strings.Contains(b.body, "../shared") {
			t.Errorf("README.md:%d (%s): reads ../shared, which a user's clone lacks", b.line, b.heading)
		}
		realData = realData || hasDownload(b.body)
		for _, c := range ourCommands(splitShell(b.file, b.line+1, b.body)) {
			switch {
			case c.argv[0] == "cofactor" && len(c.argv) > 1 && c.argv[1] == "gen":
				synthetic = true
			case c.argv[0] == "worker":
				workers++
				if !slices.Contains(c.argv, "--metrics-addr") {
					t.Errorf("%s: %s: no --metrics-addr (how is it monitored?)", c.where, strings.Join(c.argv, " "))
				}
			}
		}
	}
	if !realData || !synthetic || workers == 0 {
		t.Errorf("README: real-data download %v, synthetic example %v, %d worker commands", realData, synthetic, workers)
	}
}
