package docgen

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// tree is a small command tree: root with a persistent flag, a group
// without a Run, and runnable leaves.
func tree() *cobra.Command {
	root := &cobra.Command{Use: "tool", Short: "A tool"}
	root.PersistentFlags().String("server", "", "server URL")
	group := &cobra.Command{Use: "job", Short: "Jobs"}
	var n int
	var d string
	submit := &cobra.Command{Use: "submit --input FILE", Short: "Submit a job", Long: "submit sends a job.\nIt returns its ID.", RunE: func(*cobra.Command, []string) error { return nil }}
	submit.Flags().IntVar(&n, "rank", 10, "rank | factors")
	submit.Flags().StringVar(&d, "input", "", "input file")
	submit.Flags().BoolP("json", "j", false, "print JSON")
	submit.Flags().Duration("wait", 0, "how long to wait")
	hidden := &cobra.Command{Use: "secret", Hidden: true, Run: func(*cobra.Command, []string) {}}
	group.AddCommand(submit, hidden)
	root.AddCommand(group)
	return root
}

func TestCheckArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
		cmd  string
	}{
		{[]string{"job", "submit", "--input", "x.csv", "--rank", "8"}, true, "tool job submit"},
		{[]string{"--server", "http://a", "job", "submit", "--rank=8", "-j"}, true, "tool job submit"},
		{[]string{"job", "submit", "--server", "$URL", "--wait", "5s", "POSITIONAL"}, true, "tool job submit"},
		{[]string{"job", "submit", "--rank", "${RANK}"}, true, "tool job submit"},
		{[]string{"job", "submit", "--rank", "%i"}, true, "tool job submit"},
		{[]string{"job", "submit", "--rank", "eight"}, false, ""},
		{[]string{"job", "submit", "--wait", "5"}, false, ""},
		{[]string{"job", "submit", "--rnak", "8"}, false, ""},
		{[]string{"job", "submit", "--input"}, false, ""},
		{[]string{"job", "submit", "-x"}, false, ""},
		{[]string{"job"}, false, ""},
		{[]string{"job", "sumbit"}, false, ""},
		{[]string{}, false, ""},
		{[]string{"job", "submit", "--help"}, true, "tool job submit"},
	} {
		cmd, err := CheckArgs(tree(), tc.args)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case !tc.ok && err == nil:
			t.Errorf("%q: no error", tc.args)
		case !tc.ok && !errors.Is(err, ErrCommandLine):
			t.Errorf("%q: %v does not wrap ErrCommandLine", tc.args, err)
		case tc.ok && cmd.CommandPath() != tc.cmd:
			t.Errorf("%q runs %q, want %q", tc.args, cmd.CommandPath(), tc.cmd)
		}
	}
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := Markdown(&b, tree()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		Header,
		"## tool\n",
		"Commands: [`tool job submit`](#tool-job-submit).",
		"### `tool`\n",
		"tool [flags] COMMAND",
		"### `tool job submit`\n\nSubmit a job.\n",
		"tool job submit --input FILE\n\nsubmit sends a job.\nIt returns its ID.\n```",
		"| `--rank int` | `10` | rank \\| factors |",
		"| `-j, --json` | off | print JSON |",
		"| `--input string` | — | input file |",
		"| `--wait duration` | `0s` | how long to wait |",
		"Also accepts `--server` (of `tool`).",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the reference lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"secret", "### `tool job`", "completion", "--help"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("the reference holds %q", unwanted)
		}
	}
	var again bytes.Buffer
	if err := Markdown(&again, tree()); err != nil || again.String() != out {
		t.Errorf("two renderings differ (err %v)", err)
	}
}
