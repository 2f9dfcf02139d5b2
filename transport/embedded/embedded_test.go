package embedded

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/cofactor-ml/cofactor/internal/leaktest"
	"github.com/cofactor-ml/cofactor/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaktest.Ignored()...)
}

// startServer starts a server for one test and shuts it down when the
// test ends.
func startServer(t testing.TB, opts Options) *Server {
	t.Helper()
	e, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// connect opens an in-process connection closed when the test ends.
func connect(t testing.TB, e *Server) *nats.Conn {
	t.Helper()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestEmbeddedTCPAndInProcess(t *testing.T) {
	e := startServer(t, Options{ServerName: "emb-1", MaxPayload: 2 << 20})
	url := e.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":-1") {
		t.Fatalf("ClientURL = %q", url)
	}
	tcp, err := transport.Dial(url, "test-tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	inproc := connect(t, e)
	if got := tcp.MaxPayload(); got != 2<<20 {
		t.Errorf("MaxPayload = %d", got)
	}
	if got := inproc.ConnectedServerName(); got != "emb-1" {
		t.Errorf("server name %q", got)
	}
	// Messages cross between the TCP and the in-process client.
	sub, err := inproc.SubscribeSync("x")
	if err != nil {
		t.Fatal(err)
	}
	if err := inproc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := tcp.Publish("x", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(2 * time.Second)
	if err != nil || string(m.Data) != "hello" {
		t.Fatalf("got %v, %v", m, err)
	}
}

func TestEmbeddedNoListen(t *testing.T) {
	e := startServer(t, Options{NoListen: true, JetStream: true, StoreDir: t.TempDir()})
	if url := e.ClientURL(); url != "" {
		t.Errorf("ClientURL = %q, want empty", url)
	}
	nc := connect(t, e)
	if !nc.IsConnected() {
		t.Fatal("not connected")
	}
	// JetStream works over the in-process connection.
	b, err := transport.OpenBlobs(context.Background(), nc, "nolisten")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(context.Background(), "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddedOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"jetstream without dir", Options{JetStream: true}, "StoreDir"},
		{"max payload", Options{MaxPayload: transport.MaxFramePayload + 1}, "max payload"},
		{"negative max payload", Options{MaxPayload: -1}, "max payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Start(tt.opts)
			if err == nil {
				e.Shutdown()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEmbeddedPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	e, err := Start(Options{Port: port})
	if err == nil {
		e.Shutdown()
		t.Fatal("started on a port in use")
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("err = %v, want it to say the address is in use", err)
	}
}

func TestEmbeddedShutdownTwice(t *testing.T) {
	e, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.Shutdown()
	e.Shutdown()
	if _, err := e.Connect(); err == nil {
		t.Error("connected to a stopped server")
	}
}

// recordingHandler keeps the messages logged through it.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func TestEmbeddedLogger(t *testing.T) {
	rec := &recordingHandler{}
	e := startServer(t, Options{Logger: slog.New(rec)})
	e.Shutdown()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	all := strings.Join(rec.msgs, "\n")
	if !strings.Contains(all, "Server is ready") {
		t.Errorf("log lacks the ready line:\n%s", all)
	}
}

func TestEmbeddedBadStoreDirFailsFast(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e, err := Start(Options{JetStream: true, StoreDir: file})
	if err == nil {
		e.Shutdown()
		t.Fatal("started with a file as the store directory")
	}
	if !strings.Contains(err.Error(), "JetStream") {
		t.Errorf("err = %v, want it to name JetStream", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failed after %v, want at once", d)
	}
}

// TestDialWaitsForLateServer: transport.Dial keeps trying while the
// server is not up yet.
func TestDialWaitsForLateServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	started := make(chan *Server, 1)
	time.AfterFunc(400*time.Millisecond, func() {
		e, err := Start(Options{Port: port})
		if err != nil {
			t.Error(err)
		}
		started <- e
	})
	defer func() {
		if e := <-started; e != nil {
			e.Shutdown()
		}
	}()
	nc, err := transport.Dial("nats://127.0.0.1:"+strconv.Itoa(port), "late")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !nc.IsConnected() {
		t.Error("not connected")
	}
}
