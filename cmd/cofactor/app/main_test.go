package app

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/cofactor-ml/cofactor/internal/leaktest"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Ignored()...) }
