package worker

import (
	"context"
	"errors"
	"testing"
)

// refusingBlobs refuses the first n puts, as a busy JetStream does.
type refusingBlobs struct {
	Blobs
	n, puts int
}

func (b *refusingBlobs) Put(ctx context.Context, name string, data []byte) error {
	b.puts++
	if b.puts <= b.n {
		return errors.New("nats: API error: code=429 err_code=10077 description=too many requests")
	}
	return nil
}

// TestPutRetrying: a block store that refuses puts for a while delays a
// block's put, it does not fail it; a cancelled context ends the retries.
func TestPutRetrying(t *testing.T) {
	w := &Worker{log: quietLogger()}
	b := &refusingBlobs{n: 3}
	w.blobs = b
	if err := w.putRetrying(context.Background(), "x", []byte("y")); err != nil || b.puts != 4 {
		t.Fatalf("err %v after %d puts; want nil after 4", err, b.puts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b = &refusingBlobs{n: 1 << 30}
	w.blobs = b
	if err := w.putRetrying(ctx, "x", []byte("y")); err == nil || b.puts != 1 {
		t.Fatalf("err %v after %d puts with a cancelled context; want the refusal after 1", err, b.puts)
	}
}
