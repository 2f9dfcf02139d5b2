package docs

import (
	"context"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// instruction is one Dockerfile instruction with continuation lines joined.
type instruction struct {
	line int
	op   string // upper case: FROM, RUN, COPY, ...
	args string
}

func parseDockerfile(t *testing.T, p string) []instruction {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		cont := strings.HasSuffix(line, `\`)
		cur.WriteString(strings.TrimSuffix(line, `\`))
		cur.WriteByte(' ')
		if cont {
			continue
		}
		op, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{start, strings.ToUpper(op), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// goBuild is one `go build` of a RUN instruction.
type goBuild struct {
	env  []string // VAR=value before the command
	args []string // after "go build"
	out  string   // the -o value
	pkgs []string
}

// goBuilds finds the go build commands of the RUN instructions.
func goBuilds(ins []instruction) []goBuild {
	var out []goBuild
	for _, in := range ins {
		if in.op != "RUN" {
			continue
		}
		for _, c := range splitShell("Dockerfile", in.line, in.args) {
			w := c.words
			var env []string
			for len(w) > 0 && isAssignment(w[0]) {
				env = append(env, w[0])
				w = w[1:]
			}
			if len(w) < 2 || w[0] != "go" || w[1] != "build" {
				continue
			}
			b := goBuild{env: env, args: w[2:]}
			for i := 0; i < len(b.args); i++ {
				a := b.args[i]
				switch {
				case a == "-o" && i+1 < len(b.args):
					i++
					b.out = b.args[i]
				case a == "-trimpath" || a == "-v" || a == "-a" || a == "-race":
				case strings.HasPrefix(a, "-") && !strings.Contains(a, "="):
					i++ // a flag with a value
				case strings.HasPrefix(a, "-"):
				default:
					b.pkgs = append(b.pkgs, a)
				}
			}
			out = append(out, b)
		}
	}
	return out
}

// expectedBinaries are the executables a build writes: the main packages
// of its patterns into a directory -o, or the file -o names.
func (b goBuild) expectedBinaries(t *testing.T, root string) []string {
	t.Helper()
	if !strings.HasSuffix(b.out, "/") {
		return []string{path.Base(b.out)}
	}
	cmd := exec.Command("go", append([]string{"list", "-f", "{{if eq .Name \"main\"}}{{.ImportPath}}{{end}}"}, b.pkgs...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", b.pkgs, err)
	}
	var names []string
	for _, ip := range strings.Fields(string(out)) {
		names = append(names, path.Base(ip))
	}
	return names
}

var dockerBuild struct {
	once sync.Once
	dir  string
	log  string
	err  error
}

// buildCmdBinaries runs the Dockerfile's go build commands locally, with
// their environment and flags, into a temporary directory it returns (once
// per test binary).
func buildCmdBinaries(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	dockerBuild.once.Do(func() {
		dockerBuild.dir, dockerBuild.err = os.MkdirTemp("", "cofactor-docs-bin-")
		if dockerBuild.err != nil {
			return
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dockerBuild.dir) })
		ins := parseDockerfile(t, filepath.Join(root, "deploy", "compose", "Dockerfile"))
		for _, b := range goBuilds(ins) {
			// The same command, writing under the temporary directory
			// instead of /out.
			local := filepath.Join(dockerBuild.dir, strings.TrimPrefix(b.out, "/out"))
			if strings.HasSuffix(b.out, "/") {
				local += "/"
			}
			args := slices.Clone(b.args)
			for i, a := range args {
				if a == b.out {
					args[i] = local
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			cmd := exec.CommandContext(ctx, "go", append([]string{"build"}, args...)...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), b.env...)
			out, err := cmd.CombinedOutput()
			cancel()
			dockerBuild.log += "go build " + strings.Join(args, " ") + "\n" + string(out)
			if err != nil {
				dockerBuild.err = err
				return
			}
		}
	})
	if dockerBuild.err != nil {
		t.Fatalf("the Dockerfile's go build commands: %v\n%s", dockerBuild.err, dockerBuild.log)
	}
	return dockerBuild.dir
}

// TestDockerfileBuildsTheBinaries: the image's build stage builds the same
// binaries as `go build -o bin/ ./cmd/...` plus the pinned nats-server, the
// commands work when run here, and the runtime stage runs them as a
// non-root user.
func TestDockerfileBuildsTheBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary (skipped with -short)")
	}
	root := repoRoot(t)
	ins := parseDockerfile(t, filepath.Join(root, "deploy", "compose", "Dockerfile"))

	var froms []instruction
	var buildStage string
	for _, in := range ins {
		if in.op == "FROM" {
			froms = append(froms, in)
			if f := strings.Fields(in.args); strings.HasPrefix(f[0], "golang:1.26") && len(f) == 3 && strings.EqualFold(f[1], "AS") {
				buildStage = f[2]
			}
		}
	}
	if buildStage == "" || len(froms) < 2 {
		t.Fatalf("want a golang:1.26 build stage (FROM golang:1.26 AS NAME) and a runtime stage; FROM lines: %v", froms)
	}
	last := froms[len(froms)-1]
	var runtime []instruction
	for _, in := range ins {
		if in.line > last.line {
			runtime = append(runtime, in)
		}
	}
	user, copied := "", false
	for _, in := range runtime {
		switch in.op {
		case "USER":
			user = in.args
		case "COPY":
			copied = copied || strings.Contains(in.args, "--from="+buildStage+" /out/")
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("the runtime stage runs as %q: want a non-root USER", user)
	}
	if !copied {
		t.Errorf("the runtime stage does not COPY --from=%s /out/", buildStage)
	}

	builds := goBuilds(ins)
	var want []string
	sawCmd := false
	for _, b := range builds {
		if !slices.Contains(b.env, "CGO_ENABLED=0") {
			t.Errorf("go build %v: not CGO_ENABLED=0 (the runtime image has no C library to match)", b.args)
		}
		if !strings.HasPrefix(b.out, "/out/") && b.out != "/out" {
			t.Errorf("go build %v writes %q, outside /out/", b.args, b.out)
		}
		if slices.Equal(b.pkgs, []string{"./cmd/..."}) {
			sawCmd = true
			if !slices.Equal(b.env, []string{"CGO_ENABLED=0"}) || !slices.Equal(b.args, []string{"-trimpath", "-o", "/out/", "./cmd/..."}) {
				t.Errorf("the binaries' build is %v go build %v, want CGO_ENABLED=0 go build -trimpath -o /out/ ./cmd/...", b.env, b.args)
			}
		}
		want = append(want, b.expectedBinaries(t, root)...)
	}
	if !sawCmd {
		t.Errorf("no RUN line builds ./cmd/...")
	}
	slices.Sort(want)
	// What `go build -o bin/ ./cmd/...` builds, and the NATS server.
	ref := goBuild{out: "bin/", pkgs: []string{"./cmd/..."}}.expectedBinaries(t, root)
	ref = append(ref, "nats-server")
	slices.Sort(ref)
	if !slices.Equal(want, ref) {
		t.Errorf("the Dockerfile builds %v; go build -o bin/ ./cmd/... and nats-server are %v", want, ref)
	}
	for _, b := range []string{"cofactor", "coordinator", "worker"} {
		if !slices.Contains(ref, b) {
			t.Errorf("./cmd/... has no %s (CONTRACT.md)", b)
		}
	}

	dir := buildCmdBinaries(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("running the Dockerfile's builds wrote %v, want %v", got, want)
	}
	for _, b := range got {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, filepath.Join(dir, b), "--help").CombinedOutput()
		cancel()
		if err != nil || len(out) == 0 {
			t.Errorf("%s --help: %v\n%s", b, err, out)
		}
	}
}
