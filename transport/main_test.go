package transport

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/cofactor-ml/cofactor/internal/leaktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaktest.Ignored()...)
}
