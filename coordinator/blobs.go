package coordinator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/transport"
)

// The raft log names bulk data; this file keeps it. A partition summary
// (P×Q row needs, per-block sizes) and a checkpoint's manifest (a file
// per block) grow with the block layout, so the leader writes them as
// blobs of the block store and commits a BlobRef. Readers load a blob by
// its ref, check its SHA-256 and keep it in a small in-memory cache.

// ErrBlob marks a blob that is missing or does not match its ref.
var ErrBlob = errors.New("coordinator: blob does not match the log")

// maxBlobBytes bounds a summary or manifest read back from the store.
const maxBlobBytes = 256 << 20

// blobsCached is how many decoded blobs a node keeps.
const blobsCached = 32

// blobStore is the node's access to the block store's control blobs.
type blobStore struct {
	n     *Node
	mu    sync.Mutex
	blobs *transport.Blobs
	cache map[string]any // by SHA-256: *wire.PartitionSummary or *checkpoint.Manifest
	order []string       // cache keys, oldest first
}

func (s *blobStore) open(ctx context.Context) (*transport.Blobs, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blobs != nil {
		return s.blobs, nil
	}
	b, err := transport.OpenBlobs(ctx, s.n.nc, wire.BlockBucket)
	if err != nil {
		return nil, err
	}
	s.blobs = b
	return b, nil
}

func (s *blobStore) cached(sum string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.cache[sum]
	return v, ok
}

func (s *blobStore) keep(sum string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = map[string]any{}
	}
	if _, ok := s.cache[sum]; !ok {
		s.order = append(s.order, sum)
	}
	s.cache[sum] = v
	for len(s.order) > blobsCached {
		delete(s.cache, s.order[0])
		s.order = s.order[1:]
	}
}

// put stores v as JSON under name, retrying until it succeeds or ctx
// ends, and returns its ref. The value is cached.
func (s *blobStore) put(ctx context.Context, name string, v any) (BlobRef, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return BlobRef{}, err
	}
	digest := sha256.Sum256(data)
	ref := BlobRef{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(digest[:])}
	wait := 100 * time.Millisecond
	for {
		b, err := s.open(ctx)
		if err == nil {
			err = b.Put(ctx, name, data)
		}
		if err == nil {
			s.keep(ref.SHA256, v)
			return ref, nil
		}
		s.n.log.Warn("control blob not stored yet", "blob", name, "err", err)
		select {
		case <-ctx.Done():
			return BlobRef{}, fmt.Errorf("storing %s: %w", name, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// get loads the blob of ref into v (a pointer), checking its digest.
func (s *blobStore) get(ctx context.Context, ref BlobRef, v any) error {
	b, err := s.open(ctx)
	if err != nil {
		return err
	}
	data, err := b.Get(ctx, ref.Name, maxBlobBytes)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBlob, ref.Name, err)
	}
	digest := sha256.Sum256(data)
	if got := hex.EncodeToString(digest[:]); got != ref.SHA256 {
		return fmt.Errorf("%w: %s has SHA-256 %s, the log says %s", ErrBlob, ref.Name, got, ref.SHA256)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBlob, ref.Name, err)
	}
	return nil
}

// summary returns the whole partition summary of p. A job partitioned by
// an earlier build has no blob: its summary holds the counts only, so
// sizing and the lower bound do without the row needs.
func (s *blobStore) summary(ctx context.Context, p *PartitionInfo) (*wire.PartitionSummary, error) {
	if p.Summary.Name == "" {
		return &wire.PartitionSummary{PartitionCounts: p.PartitionCounts}, nil
	}
	if v, ok := s.cached(p.Summary.SHA256); ok {
		if sum, ok := v.(*wire.PartitionSummary); ok {
			return sum, nil
		}
	}
	var sum wire.PartitionSummary
	if err := s.get(ctx, p.Summary, &sum); err != nil {
		return nil, err
	}
	if err := checkSummary(&sum); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBlob, p.Summary.Name, err)
	}
	s.keep(p.Summary.SHA256, &sum)
	return &sum, nil
}

// manifest returns the manifest of committed checkpoint c.
func (s *blobStore) manifest(ctx context.Context, c CheckpointInfo) (*checkpoint.Manifest, error) {
	if v, ok := s.cached(c.Manifest.SHA256); ok {
		if m, ok := v.(*checkpoint.Manifest); ok {
			return m, nil
		}
	}
	var m checkpoint.Manifest
	if err := s.get(ctx, c.Manifest, &m); err != nil {
		return nil, err
	}
	if m.ID != c.ID {
		return nil, fmt.Errorf("%w: %s holds the manifest of %s", ErrBlob, c.Manifest.Name, m.ID)
	}
	s.keep(c.Manifest.SHA256, &m)
	return &m, nil
}

// checkSummary refuses a partition summary whose shape the driver could
// not use: block counts outside 1..job.MaxBlocks, or per-block lists of
// another length.
func checkSummary(p *wire.PartitionSummary) error {
	info := partitionInfo(p, BlobRef{})
	if err := checkPartition(&info); err != nil {
		return err
	}
	n := p.UserBlocks + p.ItemBlocks
	switch {
	case len(p.UserNeeds) != p.UserBlocks || len(p.ItemNeeds) != p.ItemBlocks:
		return fmt.Errorf("%w: partition needs of %d×%d blocks for %d×%d", ErrCommand, len(p.UserNeeds), len(p.ItemNeeds), p.UserBlocks, p.ItemBlocks)
	case (p.BlockBytes != nil && len(p.BlockBytes) != n) || (p.BlockRows != nil && len(p.BlockRows) != n):
		return fmt.Errorf("%w: partition block sizes for %d or %d blocks, not %d", ErrCommand, len(p.BlockBytes), len(p.BlockRows), n)
	}
	return nil
}
