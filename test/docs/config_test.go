package docs

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cofactor-ml/cofactor/internal/cli"

	"github.com/cofactor-ml/cofactor/internal/docgen"
)

var update = flag.Bool("update", false, "rewrite docs/config.md from the flag sets")

// generatedConfig renders the configuration reference of the three
// binaries.
func generatedConfig(t *testing.T) []byte {
	t.Helper()
	trees := commandTrees()
	var b bytes.Buffer
	if err := docgen.Markdown(&b, trees["cofactor"], trees["coordinator"], trees["worker"]); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestConfigReferenceUpToDate fails when docs/config.md is not what the
// flag sets generate. Refresh it with
//
//	go test ./test/docs -run ConfigReference -update
func TestConfigReferenceUpToDate(t *testing.T) {
	path := filepath.Join(repoRoot(t), "docs", "config.md")
	want := generatedConfig(t)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it: go test ./test/docs -run ConfigReference -update)", err)
	}
	if !bytes.Equal(have, want) {
		hl, wl := strings.Split(string(have), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(hl), len(wl)); i++ {
			var h, w string
			if i < len(hl) {
				h = hl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if h != w {
				t.Fatalf("docs/config.md is stale from line %d:\n  file:      %q\n  generated: %q\nrefresh it: go test ./test/docs -run ConfigReference -update", i+1, h, w)
			}
		}
	}
}

// TestConfigReferenceCoversEveryFlag checks the generator against the
// trees: every runnable command has a section and every flag of every
// command appears in it.
func TestConfigReferenceCoversEveryFlag(t *testing.T) {
	doc := string(generatedConfig(t))
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && !cli.IsGroup(c) && !strings.Contains(doc, "### `"+c.CommandPath()+"`") {
			t.Errorf("%s has no section", c.CommandPath())
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if !f.Hidden && !strings.Contains(doc, "`--"+f.Name) {
				t.Errorf("%s --%s is not in the reference", c.CommandPath(), f.Name)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	for _, root := range commandTrees() {
		walk(root)
	}
}
