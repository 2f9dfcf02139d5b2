package cli

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/als"
)

// tree is a small command tree: a group with two subcommands and a
// runnable command.
func tree(ran *string) *cobra.Command {
	root := &cobra.Command{Use: "tool"}
	group := &cobra.Command{Use: "job", Short: "jobs"}
	for _, name := range []string{"submit", "status"} {
		group.AddCommand(&cobra.Command{Use: name, Args: NoArgs, RunE: func(*cobra.Command, []string) error { *ran = name; return nil }})
	}
	root.AddCommand(group, &cobra.Command{Use: "train", Args: NoArgs, RunE: func(*cobra.Command, []string) error { *ran = "train"; return nil }})
	return Finish(root)
}

// TestUnknownCommands: a mistyped command or subcommand is a usage error
// (exit 2) that suggests the closest one, or lists them; a group without
// arguments prints its help; known commands run; --version answers.
func TestUnknownCommands(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		ran    string
		stdout string
		stderr string
	}{
		{[]string{"job", "sumbit"}, 2, "", "", `error: unknown command "sumbit" for "tool job"; did you mean "submit"?`},
		{[]string{"job", "frobnicate"}, 2, "", "", `error: unknown command "frobnicate" for "tool job" (commands: status, submit; see tool job --help)`},
		{[]string{"trian"}, 2, "", "", `error: unknown command "trian" for "tool"; did you mean "train"?`},
		{[]string{"job"}, 0, "", "Usage:", ""},
		{[]string{"job", "submit"}, 0, "submit", "", ""},
		{[]string{"train"}, 0, "train", "", ""},
		{[]string{"--version"}, 0, "", "tool devel, commit ", ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var ran string
			root := tree(&ran)
			var out, errb bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&errb)
			code := Run(root, tc.args, &errb)
			if code != tc.code || ran != tc.ran || !strings.Contains(out.String(), tc.stdout) || strings.TrimSpace(errb.String()) != tc.stderr {
				t.Errorf("exit %d, ran %q, stdout %q, stderr %q; want %d, %q, %q, %q", code, ran, out.String(), errb.String(), tc.code, tc.ran, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	v := Version()
	for _, want := range []string{runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH, "kernel " + als.KernelName() + " ", "commit "} {
		if !strings.Contains(v, want) {
			t.Errorf("version %q lacks %q", v, want)
		}
	}
	releaseVersion = "v9.9.9"
	defer func() { releaseVersion = "" }()
	if v := Version(); !strings.HasPrefix(v, "v9.9.9, commit ") {
		t.Errorf("a release build says %q", v)
	}
}
