package transport

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
)

func TestEmbeddedTCPAndInProcess(t *testing.T) {
	e := startServer(t, EmbeddedOptions{ServerName: "emb-1", MaxPayload: 2 << 20})
	url := e.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":-1") {
		t.Fatalf("ClientURL = %q", url)
	}
	tcp, err := Dial(url, "test-tcp")
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
	e := startServer(t, EmbeddedOptions{NoListen: true, JetStream: true, StoreDir: t.TempDir()})
	if url := e.ClientURL(); url != "" {
		t.Errorf("ClientURL = %q, want empty", url)
	}
	nc := connect(t, e)
	if !nc.IsConnected() {
		t.Fatal("not connected")
	}
	// JetStream works over the in-process connection.
	b, err := OpenBlobs(context.Background(), nc, "nolisten")
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
		opts EmbeddedOptions
		want string
	}{
		{"jetstream without dir", EmbeddedOptions{JetStream: true}, "StoreDir"},
		{"max payload", EmbeddedOptions{MaxPayload: MaxFramePayload + 1}, "max payload"},
		{"negative max payload", EmbeddedOptions{MaxPayload: -1}, "max payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := StartEmbedded(tt.opts)
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
	e, err := StartEmbedded(EmbeddedOptions{Port: port})
	if err == nil {
		e.Shutdown()
		t.Fatal("started on a port in use")
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("err = %v, want it to say the address is in use", err)
	}
}

func TestEmbeddedShutdownTwice(t *testing.T) {
	e, err := StartEmbedded(EmbeddedOptions{})
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
	e := startServer(t, EmbeddedOptions{Logger: slog.New(rec)})
	e.Shutdown()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	all := strings.Join(rec.msgs, "\n")
	if !strings.Contains(all, "Server is ready") {
		t.Errorf("log lacks the ready line:\n%s", all)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestDialGivesUp(t *testing.T) {
	url := "nats://127.0.0.1:" + strconv.Itoa(freePort(t))
	start := time.Now()
	nc, err := dial(url, "test", 600*time.Millisecond, nil)
	if err == nil {
		nc.Close()
		t.Fatal("connected to nothing")
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("gave up after %v, want about 600ms", d)
	}
	if !strings.Contains(err.Error(), url) {
		t.Errorf("err = %v, want it to name %s", err, url)
	}
}

func TestDialWaitsForLateServer(t *testing.T) {
	port := freePort(t)
	started := make(chan *Embedded, 1)
	time.AfterFunc(400*time.Millisecond, func() {
		e, err := StartEmbedded(EmbeddedOptions{Port: port})
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
	nc, err := dial("nats://127.0.0.1:"+strconv.Itoa(port), "late", 5*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !nc.IsConnected() {
		t.Error("not connected")
	}
}

func TestDialNonRetryable(t *testing.T) {
	start := time.Now()
	_, err := dial("nats://127.0.0.1:1", "bad", 5*time.Second, []nats.Option{nats.Timeout(-1)})
	if err == nil {
		t.Fatal("connected")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("retried a bad option for %v", d)
	}
}

func TestEmbeddedBadStoreDirFailsFast(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e, err := StartEmbedded(EmbeddedOptions{JetStream: true, StoreDir: file})
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
