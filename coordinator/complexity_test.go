package coordinator

import (
	"testing"

	"github.com/cofactor-ml/cofactor/internal/cyclo"
)

// maxComplexity bounds the cyclomatic complexity of every function of
// the package (issue 11): beyond it a function does several things and
// should be split. worker/ holds itself to the same bound.
const maxComplexity = 25

func TestComplexity(t *testing.T) {
	funcs, err := cyclo.Dir(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(funcs) > 0 {
		t.Logf("most complex: %v", funcs[0])
	}
	for _, f := range funcs {
		if f.Complexity > maxComplexity {
			t.Errorf("%v: above %d; split it", f, maxComplexity)
		}
	}
}
