package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/als"
)

// Finish completes a binary's command tree the same way for the three
// binaries: --version on the root, and a command that only groups others
// (job, snapshot, …) refuses an unknown subcommand as a usage error
// (exit 2) that names the closest ones, instead of printing its help and
// exiting 0. Without arguments a group prints its help. Finish returns
// root; calling it again changes nothing.
func Finish(root *cobra.Command) *cobra.Command {
	if root.Version == "" {
		root.Version = Version()
		root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
		// Declared here (cobra would add it at run time, with -v), so
		// that the flag set and the reference show it.
		if root.Flags().Lookup("version") == nil {
			root.Flags().Bool("version", false, "print the version, commit, Go version and CPU kernel, and exit")
		}
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.SuggestionsMinimumDistance <= 0 {
			c.SuggestionsMinimumDistance = 2
		}
		if c.HasSubCommands() && !c.Runnable() {
			if c.Annotations == nil {
				c.Annotations = map[string]string{}
			}
			c.Annotations[groupAnnotation] = "true"
			c.Args = unknownSubcommand
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}

// groupAnnotation marks the commands Finish made refuse arguments.
const groupAnnotation = "cofactor-group"

// IsGroup reports whether c only groups subcommands: it runs nothing
// itself but print its help (or refuse a mistyped subcommand).
func IsGroup(c *cobra.Command) bool {
	return (c.HasSubCommands() && !c.Runnable()) || c.Annotations[groupAnnotation] != ""
}

// flagError is a usage error for a flag the command does not know,
// unless the command is a group given an argument: then the argument is a
// mistyped subcommand whose flags the group cannot know, and that is the
// error to report.
func flagError(c *cobra.Command, err error) error {
	if args := c.Flags().Args(); len(args) > 0 && c.Annotations[groupAnnotation] != "" {
		return unknownSubcommand(c, args)
	}
	return usageError{err}
}

// unknownSubcommand refuses any argument of a group command: it can only
// be a mistyped subcommand.
func unknownSubcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		return Usagef("%s; did you mean %s?", msg, quoteList(s, " or "))
	}
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return Usagef("%s (commands: %s; see %s --help)", msg, strings.Join(names, ", "), c.CommandPath())
}

func quoteList(words []string, sep string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = fmt.Sprintf("%q", w)
	}
	return strings.Join(q, sep)
}

// releaseVersion is set by a release build:
// go build -ldflags "-X github.com/cofactor-ml/cofactor/internal/cli.releaseVersion=v1.2.0".
var releaseVersion string

// Version describes the running binary: the release or module version
// ("devel" for a build from a work tree), the commit and whether the tree
// had changes (as go build records them), the Go version and platform,
// and the CPU kernel set that training uses.
func Version() string {
	version, commit, modified := "devel", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if releaseVersion != "" {
		version = releaseVersion
	}
	var b strings.Builder
	b.WriteString(version)
	switch {
	case commit == "":
		b.WriteString(", commit unknown (built without version control information)")
	case modified:
		fmt.Fprintf(&b, ", commit %s with local changes", commit)
	default:
		fmt.Fprintf(&b, ", commit %s", commit)
	}
	fmt.Fprintf(&b, ", %s %s/%s, kernel %s (COFACTOR_KERNEL=go|avx2|avx512 forces a lower one)",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, als.KernelName())
	return b.String()
}
