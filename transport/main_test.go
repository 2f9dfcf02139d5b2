package transport

import (
	"testing"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/cofactor-ml/cofactor/internal/leaktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaktest.Ignored()...)
}

// startServer starts an embedded server for one test and shuts it down
// when the test ends.
func startServer(t testing.TB, opts EmbeddedOptions) *Embedded {
	t.Helper()
	e, err := StartEmbedded(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// startJetStream starts an embedded server with JetStream in a fresh
// directory.
func startJetStream(t testing.TB) *Embedded {
	t.Helper()
	return startServer(t, EmbeddedOptions{JetStream: true, StoreDir: t.TempDir()})
}

// connect opens an in-process connection closed when the test ends.
func connect(t testing.TB, e *Embedded) *nats.Conn {
	t.Helper()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
