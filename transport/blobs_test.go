package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cofactor-ml/cofactor/transport"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

func openTestBlobs(t *testing.T, e *embedded.Server, bucket string) *transport.Blobs {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := transport.OpenBlobs(ctx, connect(t, e), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestBlobsRoundTrip(t *testing.T) {
	e := startJetStream(t)
	b := openTestBlobs(t, e, "blocks")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	big := randomBytes(10<<20, 1)
	if err := b.Put(ctx, "job1/u/0", big); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, "job1/u/0", int64(len(big)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("10 MB blob differs after the round trip")
	}

	// Overwrite with a smaller blob: the new one is read back whole.
	small := []byte("second version")
	if err := b.Put(ctx, "job1/u/0", small); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "job1/u/0", small); err != nil { // idempotent
		t.Fatal(err)
	}
	got, err = b.Get(ctx, "job1/u/0", 1<<30)
	if err != nil || !bytes.Equal(got, small) {
		t.Fatalf("after overwrite: %q, %v", got, err)
	}

	// An empty blob.
	if err := b.Put(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	got, err = b.Get(ctx, "empty", 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty blob: %q, %v", got, err)
	}
}

func TestBlobsErrors(t *testing.T) {
	e := startJetStream(t)
	b := openTestBlobs(t, e, "errs")
	ctx := context.Background()
	data := randomBytes(1000, 2)
	if err := b.Put(ctx, "a", data); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		get      string
		maxBytes int64
		want     error
		wantMsg  string
	}{
		{"missing", "nope", 1 << 20, transport.ErrNotFound, `"nope"`},
		{"over limit", "a", 999, transport.ErrTooLarge, "1000 bytes, limit 999"},
		{"negative limit", "a", -1, transport.ErrTooLarge, "limit -1"},
		{"at limit", "a", 1000, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.Get(ctx, tt.get, tt.maxBytes)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantMsg)
			}
			if err == nil && !bytes.Equal(got, data) {
				t.Error("data differs")
			}
		})
	}

	if err := b.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "a", 1<<20); !errors.Is(err, transport.ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	if err := b.Delete(ctx, "a"); !errors.Is(err, transport.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if err := b.Delete(ctx, "never"); !errors.Is(err, transport.ErrNotFound) {
		t.Errorf("delete of a missing name: %v", err)
	}
	// Put after delete brings the name back.
	if err := b.Put(ctx, "a", []byte("again")); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, "a", 10); err != nil || string(got) != "again" {
		t.Errorf("after re-put: %q, %v", got, err)
	}
}

func TestBlobsList(t *testing.T) {
	e := startJetStream(t)
	b := openTestBlobs(t, e, "listing")
	ctx := context.Background()

	if got, err := b.List(ctx, ""); err != nil || len(got) != 0 {
		t.Fatalf("empty bucket: %v, %v", got, err)
	}
	blobs := map[string]int{"job1/u/0": 10, "job1/u/1": 20, "job1/i/0": 30, "job2/u/0": 40, "gone": 5}
	for name, n := range blobs {
		if err := b.Put(ctx, name, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		prefix string
		want   []transport.BlobInfo
	}{
		{"job1/u/", []transport.BlobInfo{{"job1/u/0", 10}, {"job1/u/1", 20}}},
		{"job1/", []transport.BlobInfo{{"job1/i/0", 30}, {"job1/u/0", 10}, {"job1/u/1", 20}}},
		{"", []transport.BlobInfo{{"job1/i/0", 30}, {"job1/u/0", 10}, {"job1/u/1", 20}, {"job2/u/0", 40}}},
		{"job3", nil},
	}
	for _, tt := range tests {
		got, err := b.List(ctx, tt.prefix)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, func(a, b transport.BlobInfo) int { return strings.Compare(a.Name, b.Name) })
		if !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) = %v, want %v", tt.prefix, got, tt.want)
		}
	}
}

func TestBlobsOpenExistingAndPersist(t *testing.T) {
	dir := t.TempDir()
	e, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	nc, err := e.Connect()
	if err != nil {
		e.Shutdown()
		t.Fatal(err)
	}
	b1, err := transport.OpenBlobs(ctx, nc, "keep")
	if err == nil {
		err = b1.Put(ctx, "x", []byte("persisted"))
	}
	if err == nil {
		// A second open finds the bucket and sees the blob.
		var b2 *transport.Blobs
		b2, err = transport.OpenBlobs(ctx, nc, "keep")
		if err == nil {
			var got []byte
			got, err = b2.Get(ctx, "x", 100)
			if err == nil && string(got) != "persisted" {
				t.Errorf("second handle read %q", got)
			}
		}
	}
	nc.Close()
	e.Shutdown()
	if err != nil {
		t.Fatal(err)
	}

	// A new server on the same directory still has it (file storage).
	e2 := startServer(t, embedded.Options{JetStream: true, StoreDir: dir})
	b3 := openTestBlobs(t, e2, "keep")
	got, err := b3.Get(ctx, "x", 100)
	if err != nil || string(got) != "persisted" {
		t.Fatalf("after restart: %q, %v", got, err)
	}
}

func TestBlobsBadBucketAndOptions(t *testing.T) {
	e := startJetStream(t)
	nc := connect(t, e)
	ctx := context.Background()
	if _, err := transport.OpenBlobs(ctx, nc, "bad.name"); !errors.Is(err, jetstream.ErrInvalidStoreName) {
		t.Errorf("bad bucket name: %v", err)
	}
	if _, err := transport.OpenBlobs(ctx, nc, "t", transport.WithBlobTimeout(0)); err == nil {
		t.Error("zero timeout accepted")
	}
	// A single server cannot hold three replicas.
	if _, err := transport.OpenBlobs(ctx, nc, "r3", transport.WithReplicas(3)); err == nil {
		t.Error("3 replicas on one server accepted")
	}
	if _, err := transport.OpenBlobs(ctx, nc, "r1", transport.WithReplicas(1), transport.WithBlobTimeout(time.Second)); err != nil {
		t.Error(err)
	}
}

// TestBlobsDigestChecked replaces a stored blob's chunks behind the Object
// Store's back: Get must refuse the data instead of returning it.
func TestBlobsDigestChecked(t *testing.T) {
	e := startJetStream(t)
	nc := connect(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := transport.OpenBlobs(ctx, nc, "tamper")
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(1000, 3)
	if err := b.Put(ctx, "x", data); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	os, err := js.ObjectStore(ctx, "tamper")
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.GetInfo(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "OBJ_tamper")
	if err != nil {
		t.Fatal(err)
	}
	chunks := "$O.tamper.C." + info.NUID
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(chunks)); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(data)
	bad[500] ^= 1
	if _, err := js.Publish(ctx, chunks, bad); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, "x", 1<<20)
	if !errors.Is(err, jetstream.ErrDigestMismatch) {
		t.Fatalf("Get of tampered blob = %d bytes, %v; want ErrDigestMismatch", len(got), err)
	}
}

// TestBlobsPutSameBytesWritesNothing: repeating a Put of the bytes already
// stored publishes nothing (so a role that may write but not purge can
// retry), while different bytes replace the blob.
func TestBlobsPutSameBytesWritesNothing(t *testing.T) {
	e := startJetStream(t)
	b := openTestBlobs(t, e, "repeat")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(connect(t, e))
	if err != nil {
		t.Fatal(err)
	}
	msgs := func() uint64 {
		st, err := js.Stream(ctx, "OBJ_repeat")
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().State.Msgs
	}
	data := randomBytes(300<<10, 7) // several chunks
	if err := b.Put(ctx, "x", data); err != nil {
		t.Fatal(err)
	}
	first := msgs()
	for range 3 {
		if err := b.Put(ctx, "x", data); err != nil {
			t.Fatal(err)
		}
	}
	if got := msgs(); got != first {
		t.Fatalf("repeating a Put of the same bytes: %d messages, then %d", first, got)
	}
	other := slices.Clone(data)
	other[0] ^= 1
	if err := b.Put(ctx, "x", other); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, "x", 1<<20); err != nil || !bytes.Equal(got, other) {
		t.Fatalf("replacing with other bytes: %v", err)
	}
}

// TestBlobsGetCancelledLeavesNothing: Gets whose contexts end at any
// moment leave no goroutine behind (the Object Store's read callback
// blocked on a reader nobody holds, when the context ended while its
// consumer was being created).
func TestBlobsGetCancelledLeavesNothing(t *testing.T) {
	e := startJetStream(t)
	b := openTestBlobs(t, e, "cancel")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 20 {
		if err := b.Put(ctx, fmt.Sprint(i), randomBytes(4096, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		cctx, ccancel := context.WithTimeout(ctx, time.Duration(rng.IntN(3000))*time.Microsecond)
		data, err := b.Get(cctx, fmt.Sprint(i%20), 1<<20)
		ccancel()
		if err == nil && !bytes.Equal(data, randomBytes(4096, uint64(i%20))) {
			t.Fatalf("get %d: wrong bytes", i)
		}
	}
	stuck := func() bool {
		buf := make([]byte, 4<<20)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "jetstream.(*obs).Get.func")
	}
	for deadline := time.Now().Add(5 * time.Second); stuck(); {
		if time.Now().After(deadline) {
			t.Fatal("an Object Store read callback is still blocked after its Get returned")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
