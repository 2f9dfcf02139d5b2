// Package docs checks that the documentation and the deploy files tell the
// truth: docs/config.md is what the flag sets generate, every command line
// in deploy/ and in the docs names commands and flags that exist, the
// Dockerfile builds what `go build` builds, and the README's and docs'
// runnable (```sh) blocks run as written.
package docs

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/spf13/cobra"

	cofactorapp "github.com/cofactor-ml/cofactor/cmd/cofactor/app"
	coordinatorapp "github.com/cofactor-ml/cofactor/cmd/coordinator/app"
	workerapp "github.com/cofactor-ml/cofactor/cmd/worker/app"
	"github.com/cofactor-ml/cofactor/internal/docgen"
)

// cleanups run after every test of the package.
var cleanups []func()

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	os.Exit(code)
}

// repoRoot is the directory holding go.mod above the test's directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// commandTrees returns fresh command trees of the three binaries (checking
// a command line sets flags on them).
func commandTrees() map[string]*cobra.Command {
	return map[string]*cobra.Command{
		"cofactor":    cofactorapp.NewCommand(strings.NewReader(""), io.Discard, io.Discard),
		"coordinator": coordinatorapp.NewCommand(io.Discard, io.Discard),
		"worker":      workerapp.NewCommand(io.Discard, io.Discard),
	}
}

// binaries are the programs whose command lines are checked.
var binaries = []string{"cofactor", "coordinator", "worker", "nats-server"}

// binaryName returns which of binaries word runs ("" for none): a bare
// name, or one under bin/, ./bin/, $PWD/bin/ or /usr/local/bin/.
func binaryName(word string) string {
	for _, dir := range []string{"", "bin/", "./bin/", "$PWD/bin/", "/usr/local/bin/"} {
		for _, b := range binaries {
			if word == dir+b {
				return b
			}
		}
	}
	return ""
}

// checkCommandLine checks argv (argv[0] one of binaries) against the real
// flag sets.
func checkCommandLine(argv []string) error {
	switch argv[0] {
	case "nats-server":
		return checkNATSArgs(argv[1:])
	case "cofactor", "coordinator", "worker":
		_, err := docgen.CheckArgs(commandTrees()[argv[0]], argv[1:])
		return err
	}
	return fmt.Errorf("%s is not a cofactor binary", argv[0])
}

// checkNATSArgs checks nats-server flags against the server's own flag set.
func checkNATSArgs(args []string) error {
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := server.ConfigureOptions(fs, nil, func() {}, func() {}, func() {}); err != nil {
		return err
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			return fmt.Errorf("nats-server has no flag %s", a)
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if !hasValue {
			i++
		}
	}
	return nil
}

// commandLine is one command found in a file, for messages.
type commandLine struct {
	where string // file:line
	argv  []string
}

// ourCommands picks the commands that run one of binaries out of shell
// commands: directly, after environment assignments or exec, through
// `go run ./cmd/NAME`, or inside `kubectl exec`/`docker compose exec|run`.
func ourCommands(cmds []shellCommand) []commandLine {
	var out []commandLine
	for _, c := range cmds {
		w := c.words
		for len(w) > 0 && (isAssignment(w[0]) || w[0] == "exec" || w[0] == "sudo" || w[0] == "env") {
			w = w[1:]
		}
		if len(w) == 0 {
			continue
		}
		if len(w) >= 3 && w[0] == "go" && w[1] == "run" && strings.HasPrefix(w[2], "./cmd/") {
			out = append(out, commandLine{c.where, append([]string{strings.TrimPrefix(w[2], "./cmd/")}, w[3:]...)})
			continue
		}
		if w[0] == "kubectl" || w[0] == "docker" {
			// The command a container runs: after "--" (kubectl exec) or
			// after exec/run and the container or service (docker).
			start := slices.Index(w, "--") + 1
			if w[0] == "docker" {
				start = max(slices.Index(w, "exec"), slices.Index(w, "run")) + 1
			}
			for j := start; start > 0 && j < len(w); j++ {
				if b := binaryName(w[j]); b != "" {
					out = append(out, commandLine{c.where, append([]string{b}, w[j+1:]...)})
					break
				}
			}
			continue
		}
		if b := binaryName(w[0]); b != "" {
			out = append(out, commandLine{c.where, append([]string{b}, w[1:]...)})
		}
	}
	return out
}

var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func isAssignment(w string) bool { return assignment.MatchString(w) }

// shellCommand is one simple command of a script.
type shellCommand struct {
	where string
	words []string
}

// splitShell splits a POSIX shell script into simple commands: words with
// quotes removed and expansions ($VAR, ${VAR}) kept as written. Commands
// end at newlines (not escaped), ;, &, |, ( and ); a command substitution
// $(...) is a command of its own. Comments are dropped. It is not a shell:
// enough for the command lines of docs and deploy files.
func splitShell(name string, firstLine int, script string) []shellCommand {
	var (
		out       []shellCommand
		words     []string
		word      strings.Builder
		inWord    bool
		line      = firstLine
		startLine = firstLine
		quote     byte // 0, '\'' or '"'
	)
	flushWord := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	flushCmd := func() {
		flushWord()
		if len(words) > 0 {
			out = append(out, shellCommand{fmt.Sprintf("%s:%d", name, startLine), words})
		}
		words = nil
		startLine = line
	}
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				word.WriteByte(c)
			}
			if c == '\n' {
				line++
			}
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(script) && strings.IndexByte("\"\\$`", script[i+1]) >= 0:
				i++
				word.WriteByte(script[i])
			case c == '\\' && i+1 < len(script) && script[i+1] == '\n':
				i++
				line++
			default:
				if c == '\n' {
					line++
				}
				word.WriteByte(c)
			}
		case c == '\\' && i+1 < len(script) && script[i+1] == '\n':
			i++
			line++
		case c == '\\' && i+1 < len(script):
			i++
			word.WriteByte(script[i])
			inWord = true
		case c == '\'' || c == '"':
			quote = c
			inWord = true
		case c == '#' && !inWord:
			for i+1 < len(script) && script[i+1] != '\n' {
				i++
			}
		case c == '$' && i+1 < len(script) && script[i+1] == '(':
			// A command substitution: what comes before it in the word is
			// dropped with it.
			word.Reset()
			inWord = false
			flushCmd()
			i++
		case c == '\n':
			flushCmd()
			line++
			startLine = line
		case c == ';' || c == '&' || c == '|' || c == '(' || c == ')':
			flushCmd()
		case c == ' ' || c == '\t' || c == '\r':
			flushWord()
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	flushCmd()
	return out
}

// fencedBlock is one fenced code block of a Markdown file.
type fencedBlock struct {
	file    string
	line    int    // line of the opening fence
	info    string // the info string: "sh", "text", ""
	heading string // the nearest heading above
	body    string
}

// markdownBlocks returns the fenced code blocks of a Markdown file.
func markdownBlocks(t testing.TB, path, name string) []fencedBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out     []fencedBlock
		cur     *fencedBlock
		body    strings.Builder
		heading string
		fence   string
	)
	for i, l := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(l)
		if cur == nil {
			if strings.HasPrefix(l, "#") {
				heading = strings.TrimSpace(strings.TrimLeft(l, "#"))
			}
			if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
				fence = trimmed[:3]
				cur = &fencedBlock{file: name, line: i + 1, info: strings.TrimSpace(trimmed[3:]), heading: heading}
				body.Reset()
			}
			continue
		}
		if trimmed == fence {
			cur.body = body.String()
			out = append(out, *cur)
			cur = nil
			continue
		}
		body.WriteString(l)
		body.WriteByte('\n')
	}
	if cur != nil {
		t.Fatalf("%s:%d: unclosed code block", name, cur.line)
	}
	return out
}

// runnable reports whether a block is meant to run: ```sh, ```bash or
// ```shell. Everything else (```text, ```json, a bare ```) is illustrative.
func (b fencedBlock) runnable() bool {
	switch b.info {
	case "sh", "bash", "shell":
		return true
	}
	return false
}
