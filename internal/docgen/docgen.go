// Package docgen owns the generated configuration reference
// (docs/config.md): it renders the commands and flags of cobra command
// trees as Markdown, and resolves a documented command line against those
// trees so that tests can check every command and flag that deploy files
// and docs use.
//
// # Determinism
//
// The output depends only on the command trees: commands appear in the
// order cobra lists them (sorted by name), flags sorted by name, and
// nothing machine-dependent is printed (a flag whose default depends on
// the machine must say so in its usage text and default to 0 or "").
package docgen

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cofactor-ml/cofactor/internal/cli"
)

// Header is the start of the generated file: what it is and how to refresh
// it.
const Header = `# Configuration reference

<!-- Generated from the cobra flag sets of cofactor, coordinator and worker by
internal/docgen. Do not edit: after adding or changing a command or a flag, run
  go test ./test/docs -run ConfigReference -update
and commit the result. -->

Every command of the three binaries with its flags, generated from the flag
definitions themselves (` + "`go test ./test/docs -run ConfigReference -update`" + `
refreshes it; a test fails when it is stale). Flags of a parent command
(` + "`--coordinator`" + ` of ` + "`cofactor`" + `) are accepted after any of its subcommands.
Durations take Go syntax (` + "`500ms`, `5s`, `2m`" + `). Exit codes and the JSON the
commands print are in the README; the runbook shows the flags in use.
`

// Markdown writes the reference of the command trees roots (each a
// binary's root command) to w: Header, then one section per binary with a
// subsection per runnable command.
func Markdown(w io.Writer, roots ...*cobra.Command) error {
	var b bytes.Buffer
	b.WriteString(Header)
	for _, root := range roots {
		fmt.Fprintf(&b, "\n## %s\n", root.Name())
		if root.Short != "" {
			fmt.Fprintf(&b, "\n%s.\n", strings.TrimSuffix(root.Short, "."))
		}
		var subs []*cobra.Command
		for _, c := range commandList(root) {
			if c != root {
				subs = append(subs, c)
			}
		}
		if len(subs) > 0 {
			b.WriteString("\nCommands:")
			for i, c := range subs {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, " [`%s`](#%s)", c.CommandPath(), anchor(c.CommandPath()))
			}
			b.WriteString(".\n")
		}
		for _, c := range commandList(root) {
			writeCommand(&b, c, c == root)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// commandList is root and every command below it that runs or has flags
// of its own, depth first in cobra's order, without help and completion.
func commandList(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if runs(c) || hasOwnFlags(c) {
			out = append(out, c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}

func hasOwnFlags(c *cobra.Command) bool {
	n := 0
	ownFlags(c).VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && f.Name != "help" {
			n++
		}
	})
	return n > 0
}

// ownFlags are the flags defined on c itself, persistent or not.
func ownFlags(c *cobra.Command) *pflag.FlagSet {
	fs := pflag.NewFlagSet(c.Name(), pflag.ContinueOnError)
	fs.AddFlagSet(c.LocalNonPersistentFlags())
	fs.AddFlagSet(c.PersistentFlags())
	return fs
}

// anchor is the GitHub-style anchor of a heading "`path`".
func anchor(path string) string {
	return strings.ReplaceAll(strings.ToLower(path), " ", "-")
}

func writeCommand(b *bytes.Buffer, c *cobra.Command, isRoot bool) {
	fmt.Fprintf(b, "\n### `%s`\n", c.CommandPath())
	if c.Short != "" && !isRoot {
		fmt.Fprintf(b, "\n%s.\n", strings.TrimSuffix(c.Short, "."))
	}
	b.WriteString("\n```text\n")
	b.WriteString(useLine(c))
	b.WriteString("\n")
	if long := strings.TrimSpace(c.Long); long != "" {
		b.WriteString("\n")
		b.WriteString(long)
		b.WriteString("\n")
	}
	b.WriteString("```\n")
	var rows []string
	ownFlags(c).VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		rows = append(rows, flagRow(f))
	})
	if len(rows) > 0 {
		b.WriteString("\n| flag | default | meaning |\n| --- | --- | --- |\n")
		for _, r := range rows {
			b.WriteString(r)
		}
	}
	var inherited []string
	c.InheritedFlags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && f.Name != "help" {
			inherited = append(inherited, "`--"+f.Name+"`")
		}
	})
	if len(inherited) > 0 && !isRoot {
		fmt.Fprintf(b, "\nAlso accepts %s (of `%s`).\n", strings.Join(inherited, ", "), c.Root().Name())
	}
}

// useLine is the command's path followed by its Use line's arguments.
func useLine(c *cobra.Command) string {
	use := c.Use
	if i := strings.IndexByte(use, ' '); i >= 0 {
		use = use[i:]
	} else {
		use = ""
	}
	line := c.CommandPath() + use
	if cli.IsGroup(c) {
		return c.CommandPath() + " [flags] COMMAND"
	}
	if c.HasAvailableFlags() && !strings.Contains(line, "[flags]") && !strings.Contains(line, "--") {
		line += " [flags]"
	}
	return line
}

// flagRow is one table row: the flag with its value's type, its default,
// and its usage.
func flagRow(f *pflag.Flag) string {
	name := "--" + f.Name
	if f.Shorthand != "" {
		name = "-" + f.Shorthand + ", " + name
	}
	varname, usage := pflag.UnquoteUsage(f)
	if varname != "" {
		name += " " + varname
	}
	def := "—"
	switch {
	case f.Value.Type() == "bool" && f.DefValue == "false":
		def = "off"
	case f.Value.Type() == "bool" && f.DefValue == "true":
		def = "on"
	case f.DefValue == "" || f.DefValue == "[]":
		def = "—"
	default:
		def = "`" + homeRelative(f.DefValue) + "`"
	}
	return fmt.Sprintf("| `%s` | %s | %s |\n", name, def, cell(usage))
}

// homeRelative writes a default under the user's home directory (one
// computed from $HOME when the flags were made) as ~/…, so the reference
// reads the same whoever generates it.
func homeRelative(v string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/" {
		return v
	}
	if rest, ok := strings.CutPrefix(v, home+string(os.PathSeparator)); ok {
		return "~/" + filepath.ToSlash(rest)
	}
	return v
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "*", `\*`)
	s = strings.ReplaceAll(s, "<", "&lt;")
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}
