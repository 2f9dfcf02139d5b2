package transport_test

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// The tests that need a NATS server are this external package: the
// server is package embedded, which imports transport.

// startServer starts an embedded server for one test and shuts it down
// when the test ends.
func startServer(t testing.TB, opts embedded.Options) *embedded.Server {
	t.Helper()
	e, err := embedded.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// startJetStream starts an embedded server with JetStream in a fresh
// directory.
func startJetStream(t testing.TB) *embedded.Server {
	t.Helper()
	return startServer(t, embedded.Options{JetStream: true, StoreDir: t.TempDir()})
}

// connect opens an in-process connection closed when the test ends.
func connect(t testing.TB, e *embedded.Server) *nats.Conn {
	t.Helper()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// seqRows returns n float32s 0, 1, 2, ….
func seqRows(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i)
	}
	return x
}
