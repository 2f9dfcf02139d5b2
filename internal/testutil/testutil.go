// Package testutil holds what tests across packages share: the reference
// data, synthetic inputs and snapshot comparisons.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// SharedData returns the path of rel inside the shared data folder, which
// lives beside the repository (../shared/data) or where COFACTOR_SHARED_DATA
// points. It skips the test, saying why, when the file is absent: a fresh
// clone has no shared folder; CI always has it.
func SharedData(t testing.TB, rel string) string {
	t.Helper()
	root := os.Getenv("COFACTOR_SHARED_DATA")
	if root == "" {
		dir, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				t.Fatal("testutil: no go.mod above the test's directory")
			}
			dir = parent
		}
		root = filepath.Join(dir, "..", "shared", "data")
	}
	p := filepath.Join(root, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared data %s not found (set COFACTOR_SHARED_DATA or place the shared folder beside the repository): %v", rel, err)
	}
	return p
}
