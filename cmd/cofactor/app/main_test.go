package app

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/cofactor-ml/cofactor/internal/leaktest"
)

// TestMain fails the package's tests if any goroutine outlives them. The
// models train keeps without --out go to a directory of the run.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cofactor-models-")
	if err != nil {
		panic(err)
	}
	os.Setenv(EnvModels, dir)
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(leaktest.Ignored()...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
