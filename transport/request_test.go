package transport_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/transport"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// fastRetry keeps retry tests short.
func fastRetry(attempts int) transport.RetryPolicy {
	return transport.RetryPolicy{Timeout: 150 * time.Millisecond, Attempts: attempts, Backoff: 5 * time.Millisecond}
}

func TestRequestRetriesUntilAnswered(t *testing.T) {
	e := startServer(t, embedded.Options{})
	srv, cli := connect(t, e), connect(t, e)
	var seen atomic.Int32
	sub, err := srv.Subscribe("svc", func(m *nats.Msg) {
		if seen.Add(1) <= 2 {
			return // lose the first two requests
		}
		_ = m.Respond(append([]byte("re:"), m.Data...))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := srv.Flush(); err != nil {
		t.Fatal(err)
	}
	msg, err := transport.Request(context.Background(), cli, "svc", []byte("x"), fastRetry(5))
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "re:x" {
		t.Errorf("reply %q", msg.Data)
	}
	if n := seen.Load(); n != 3 {
		t.Errorf("responder saw %d requests, want 3", n)
	}
}

func TestRequestNoResponders(t *testing.T) {
	e := startServer(t, embedded.Options{})
	nc := connect(t, e)
	start := time.Now()
	_, err := transport.Request(context.Background(), nc, "nobody.home", nil, transport.RetryPolicy{Timeout: 5 * time.Second, Attempts: 3, Backoff: 10 * time.Millisecond})
	if !errors.Is(err, transport.ErrUnreachable) || !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("err = %v, want transport.ErrUnreachable wrapping ErrNoResponders", err)
	}
	// Three attempts answered at once by the server, pauses 10 + 20 ms.
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v, want well under the 5 s attempt timeout", d)
	}
}

func TestRequestTimeoutsRunOut(t *testing.T) {
	e := startServer(t, embedded.Options{})
	srv, cli := connect(t, e), connect(t, e)
	var seen atomic.Int32
	sub, err := srv.Subscribe("silent", func(*nats.Msg) { seen.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := srv.Flush(); err != nil {
		t.Fatal(err)
	}
	p := transport.RetryPolicy{Timeout: 50 * time.Millisecond, Attempts: 3, Backoff: time.Millisecond}
	_, err = transport.Request(context.Background(), cli, "silent", nil, p)
	if !errors.Is(err, transport.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want transport.ErrUnreachable wrapping a timeout", err)
	}
	if n := seen.Load(); n != 3 {
		t.Errorf("responder saw %d requests, want 3", n)
	}
}

func TestRequestContextEnds(t *testing.T) {
	e := startServer(t, embedded.Options{})
	nc := connect(t, e)
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, context.DeadlineExceeded},
		{"already canceled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			// Attempts 0: retry until the context ends.
			_, err := transport.Request(ctx, nc, "nobody.home", nil, transport.RetryPolicy{Timeout: 5 * time.Second, Backoff: 20 * time.Millisecond})
			if !errors.Is(err, tt.want) || errors.Is(err, transport.ErrUnreachable) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("returned after %v", d)
			}
		})
	}
}

func TestRequestNonRetryableError(t *testing.T) {
	e := startServer(t, embedded.Options{})
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	_, err = transport.Request(context.Background(), nc, "svc", nil, fastRetry(0))
	if !errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrConnectionClosed at once", err)
	}
}

func TestRetryDefaults(t *testing.T) {
	p := transport.DefaultRetry()
	if p.Timeout != 5*time.Second || p.Attempts != 5 || p.Backoff != 50*time.Millisecond {
		t.Errorf("transport.DefaultRetry() = %+v", p)
	}
}

// TestRequestFramesEndToEnd serves a block's rows in chunks the way workers
// do, with a responder that answers errors in transport.FrameError, and reassembles
// them on the other side.
func TestRequestFramesEndToEnd(t *testing.T) {
	const k, rows = 8, 1000
	e := startServer(t, embedded.Options{MaxPayload: 4096})
	srv, cli := connect(t, e), connect(t, e)
	perChunk := transport.RowsPerChunk(int(cli.MaxPayload()), k)
	if perChunk < 1 {
		t.Fatalf("transport.RowsPerChunk = %d", perChunk)
	}
	factors := seqRows(rows * k)
	sub, err := srv.Subscribe(transport.WorkerRowsSubject("w1"), func(m *nats.Msg) {
		h, _, err := transport.DecodeFrame(m.Data)
		if err != nil {
			_ = m.Respond(transport.ErrorFrame(transport.Header{}, err.Error()))
			return
		}
		lo, hi, ok := transport.ChunkBounds(rows, perChunk, int(h.Chunk))
		if h.Type != transport.FrameRowsRequest || h.Block != 3 || !ok {
			_ = m.Respond(transport.ErrorFrame(h, "bad request"))
			return
		}
		out := h
		out.Type, out.Chunks, out.Rows, out.Cols = transport.FrameRows, uint32(transport.ChunkCount(rows, perChunk)), uint32(hi-lo), k
		_ = m.Respond(transport.AppendFrame(nil, out, transport.AppendFloat32s(nil, factors[lo*k:hi*k])))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := srv.Flush(); err != nil {
		t.Fatal(err)
	}

	got := make([]float32, rows*k)
	req := transport.Header{Type: transport.FrameRowsRequest, Side: 1, Job: "job", Iteration: 2, Block: 3, Peer: 0, Cols: k}
	chunks := 1
	for c := 0; c < chunks; c++ {
		req.Chunk = uint32(c)
		msg, err := transport.Request(context.Background(), cli, transport.WorkerRowsSubject("w1"), transport.AppendFrame(nil, req, nil), fastRetry(3))
		if err != nil {
			t.Fatal(err)
		}
		h, p, err := transport.DecodeFrame(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := transport.FrameErr(h, p); err != nil {
			t.Fatal(err)
		}
		if h.Chunk != req.Chunk || h.Job != req.Job || h.Iteration != req.Iteration {
			t.Fatalf("answer %+v does not match request %+v", h, req)
		}
		chunks = int(h.Chunks)
		lo := c * perChunk * k
		transport.DecodeFloat32s(got[lo:lo+int(h.Rows)*k], p)
	}
	if chunks != transport.ChunkCount(rows, perChunk) || chunks < 2 {
		t.Fatalf("%d chunks", chunks)
	}
	for i := range got {
		if got[i] != factors[i] {
			t.Fatalf("value %d: %v, want %v", i, got[i], factors[i])
		}
	}

	// A request the responder refuses comes back as a transport.RemoteError.
	req.Block, req.Chunk = 4, 0
	msg, err := transport.Request(context.Background(), cli, transport.WorkerRowsSubject("w1"), transport.AppendFrame(nil, req, nil), fastRetry(3))
	if err != nil {
		t.Fatal(err)
	}
	h, p, err := transport.DecodeFrame(msg.Data)
	var re *transport.RemoteError
	if err != nil || !errors.As(transport.FrameErr(h, p), &re) || re.Msg != "bad request" {
		t.Fatalf("got %+v %q %v, want a transport.RemoteError", h, p, err)
	}
}
