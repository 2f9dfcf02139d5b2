package worker

import (
	"testing"

	"github.com/cofactor-ml/cofactor/internal/cyclo"
)

// maxComplexity is the largest cyclomatic complexity a function of this
// package may have: beyond it, split the function by responsibility.
const maxComplexity = 25

// TestComplexity fails for every function above maxComplexity; with -v
// it names the most complex one.
func TestComplexity(t *testing.T) {
	fs, err := cyclo.Dir(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) == 0 {
		t.Fatal("no functions found")
	}
	t.Logf("most complex: %v", fs[0])
	for _, f := range fs {
		if f.Complexity > maxComplexity {
			t.Errorf("%v: above %d", f, maxComplexity)
		}
	}
}
