package worker

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/transport"
)

// TestTransportContract holds the in-memory transport to what the worker
// relies on from NATS: both networks must pass it alike.
func TestTransportContract(t *testing.T) {
	onNetworks(t, 4096, func(t *testing.T, e network) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		a, b := e.endpoint(t), e.endpoint(t)
		once := transport.RetryPolicy{Timeout: 200 * time.Millisecond, Attempts: 2, Backoff: time.Millisecond}

		if _, err := a.Request(ctx, "test.nobody", []byte("x"), once); !errors.Is(err, transport.ErrUnreachable) {
			t.Errorf("request nobody listens to: %v, want ErrUnreachable", err)
		}
		if a.MaxPayload() != 4096 {
			t.Errorf("max payload %d, want 4096", a.MaxPayload())
		}

		// A reply's buffer is the replier's again once reply returns;
		// only the first reply counts.
		published := make(chan []byte, 1)
		stop, err := b.Subscribe("test.echo", func(data []byte, reply func([]byte) error) {
			if len(data) == 0 {
				published <- data
				return
			}
			buf := append([]byte("echo:"), data...)
			if err := reply(buf); err != nil {
				t.Errorf("reply: %v", err)
			}
			copy(buf, "XXXXX")
			reply([]byte("second"))
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Request(ctx, "test.echo", []byte("hi"), once)
		if err != nil || string(got) != "echo:hi" {
			t.Errorf("echo: %q, %v; want \"echo:hi\"", got, err)
		}
		if _, err := a.Request(ctx, "test.echo", bytes.Repeat([]byte("x"), 5000), once); err == nil || errors.Is(err, transport.ErrUnreachable) {
			t.Errorf("request over the max payload: %v, want a refusal that is not ErrUnreachable", err)
		}
		if err := a.Publish("test.echo", nil); err != nil {
			t.Fatal(err)
		}
		select {
		case <-published:
		case <-ctx.Done():
			t.Fatal("published message not received")
		}
		stop()
		if _, err := a.Request(ctx, "test.echo", []byte("hi"), once); !errors.Is(err, transport.ErrUnreachable) {
			t.Errorf("request after stop: %v, want ErrUnreachable", err)
		}

		blobs, err := a.OpenBlobs(ctx, "test-blobs")
		if err != nil {
			t.Fatal(err)
		}
		if err := blobs.Put(ctx, "a", []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		other, err := b.OpenBlobs(ctx, "test-blobs")
		if err != nil {
			t.Fatal(err)
		}
		if data, err := other.Get(ctx, "a", 10); err != nil || string(data) != "0123456789" {
			t.Errorf("get: %q, %v", data, err)
		}
		if _, err := other.Get(ctx, "a", 9); !errors.Is(err, transport.ErrTooLarge) {
			t.Errorf("get over the limit: %v, want ErrTooLarge", err)
		}
		if _, err := other.Get(ctx, "missing", 10); !errors.Is(err, transport.ErrNotFound) {
			t.Errorf("get of a missing blob: %v, want ErrNotFound", err)
		}
	})
}
