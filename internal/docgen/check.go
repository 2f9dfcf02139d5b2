package docgen

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cofactor-ml/cofactor/internal/cli"
)

// ErrCommandLine is wrapped by every error of CheckArgs.
var ErrCommandLine = errors.New("docgen: bad command line")

// CheckArgs checks a command line of the binary whose root command is root;
// args leave out the binary's name. Leading words name subcommands until a
// runnable command is reached (a word that names no subcommand of a command
// that cannot run is an error), and every flag must exist on that command
// or be inherited from its parents. A literal value is parsed by the flag's
// type; a value holding an expansion — $VAR, ${VAR}, $(VAR), a systemd
// specifier %i — is taken on trust. CheckArgs returns the command the line
// runs. root is changed by parsing: pass a fresh tree.
func CheckArgs(root *cobra.Command, args []string) (*cobra.Command, error) {
	cmd := root
	positional := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = true
			i = len(args)
			continue
		case strings.HasPrefix(a, "--") && len(a) > 2:
			name, value, hasValue := strings.Cut(a[2:], "=")
			if name == "help" {
				continue
			}
			f := lookup(cmd, name, false)
			if f == nil {
				return nil, fmt.Errorf("%w: %s has no flag --%s", ErrCommandLine, cmd.CommandPath(), name)
			}
			if !hasValue && f.NoOptDefVal == "" {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("%w: %s: flag --%s needs a value", ErrCommandLine, cmd.CommandPath(), name)
				}
				i++
				value, hasValue = args[i], true
			}
			if hasValue {
				if err := setValue(f, value); err != nil {
					return nil, fmt.Errorf("%w: %s: --%s %q: %v", ErrCommandLine, cmd.CommandPath(), name, value, err)
				}
			}
		case strings.HasPrefix(a, "-") && len(a) == 2 && a != "-":
			if a == "-h" {
				continue
			}
			f := lookup(cmd, a[1:], true)
			if f == nil {
				return nil, fmt.Errorf("%w: %s has no flag %s", ErrCommandLine, cmd.CommandPath(), a)
			}
			if f.NoOptDefVal == "" {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("%w: %s: flag %s needs a value", ErrCommandLine, cmd.CommandPath(), a)
				}
				i++
				if err := setValue(f, args[i]); err != nil {
					return nil, fmt.Errorf("%w: %s: %s %q: %v", ErrCommandLine, cmd.CommandPath(), a, args[i], err)
				}
			}
		case strings.HasPrefix(a, "-") && a != "-" && !isExpansion(a):
			return nil, fmt.Errorf("%w: %s: %q is not a flag (flags are --name or -x)", ErrCommandLine, cmd.CommandPath(), a)
		default:
			if !positional {
				if sub := subcommand(cmd, a); sub != nil {
					cmd = sub
					continue
				}
				positional = true
				if !runs(cmd) && !isExpansion(a) {
					return nil, fmt.Errorf("%w: %s has no subcommand %q (it has %s)", ErrCommandLine, cmd.CommandPath(), a, subcommandNames(cmd))
				}
			}
		}
	}
	if !runs(cmd) {
		return nil, fmt.Errorf("%w: %s needs a subcommand (one of %s)", ErrCommandLine, cmd.CommandPath(), subcommandNames(cmd))
	}
	return cmd, nil
}

func lookup(cmd *cobra.Command, name string, short bool) *pflag.Flag {
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
		if short {
			if f := fs.ShorthandLookup(name); f != nil {
				return f
			}
		} else if f := fs.Lookup(name); f != nil {
			return f
		}
	}
	return nil
}

func setValue(f *pflag.Flag, v string) error {
	if isExpansion(v) {
		return nil
	}
	return f.Value.Set(v)
}

// isExpansion reports whether s holds a shell, Kubernetes or systemd
// expansion, whose value is only known where the line runs.
func isExpansion(s string) bool {
	return strings.Contains(s, "$") || strings.Contains(s, "%")
}

func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name || c.HasAlias(name) {
			return c
		}
	}
	return nil
}

func subcommandNames(cmd *cobra.Command) string {
	var names []string
	for _, c := range cmd.Commands() {
		if !c.Hidden && c.Name() != "help" && c.Name() != "completion" {
			names = append(names, c.Name())
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// runs reports whether a command does something of its own: a group that
// only prints its help does not.
func runs(c *cobra.Command) bool { return c.Runnable() && !cli.IsGroup(c) }
