package coordinator

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/transport"
)

// What the log names, the block store holds: a blob read back by its ref
// is the value stored; a blob changed since, or missing, is refused with
// ErrBlob rather than used.
func TestBlobRefs(t *testing.T) {
	_, nc := testNATS(t)
	ctx := context.Background()
	n := &Node{nc: nc, log: slog.New(slog.DiscardHandler)}
	leader := &blobStore{n: n}
	sum := summary()
	ref, err := leader.put(ctx, wire.SummaryBlob("j1"), sum)
	if err != nil {
		t.Fatal(err)
	}
	info := partitionInfo(sum, ref)

	// Another coordinator (no cache) loads it from the store.
	other := &blobStore{n: n}
	got, err := other.summary(ctx, &info)
	if err != nil || len(got.UserNeeds) != 2 || got.ItemNeeds[0][1] != 5 {
		t.Fatalf("summary read back: %+v, %v", got, err)
	}
	// The job's partition as an earlier build committed it: counts only.
	legacy := partitionInfo(sum, BlobRef{})
	if got, err := other.summary(ctx, &legacy); err != nil || got.UserBlocks != 2 || got.UserNeeds != nil {
		t.Fatalf("summary of a v1 partition: %+v, %v", got, err)
	}

	m := &checkpoint.Manifest{ID: "j1-it0001", Job: "j1", Iteration: 1, Files: []checkpoint.FileInfo{{Name: "f", Bytes: 3}}}
	mref, err := leader.put(ctx, wire.ManifestBlob("j1", m.ID), m)
	if err != nil {
		t.Fatal(err)
	}
	ci := checkpointInfo(m, mref)
	if got, err := other.manifest(ctx, ci); err != nil || got.ID != m.ID || len(got.Files) != 1 {
		t.Fatalf("manifest read back: %+v, %v", got, err)
	}

	// Replaced behind the log's back: refused.
	blobs, err := transport.OpenBlobs(ctx, nc, wire.BlockBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := blobs.Put(ctx, wire.SummaryBlob("j1"), []byte(`{"user_blocks":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := (&blobStore{n: n}).summary(ctx, &info); !errors.Is(err, ErrBlob) {
		t.Fatalf("a replaced summary: %v, want ErrBlob", err)
	}
	// Deleted: refused.
	if err := blobs.Delete(ctx, wire.ManifestBlob("j1", m.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := (&blobStore{n: n}).manifest(ctx, ci); !errors.Is(err, ErrBlob) {
		t.Fatalf("a deleted manifest: %v, want ErrBlob", err)
	}
}
