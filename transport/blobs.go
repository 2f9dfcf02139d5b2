package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	// ErrNotFound is returned for a blob name the bucket does not hold.
	ErrNotFound = errors.New("transport: blob not found")
	// ErrTooLarge is returned by [Blobs.Get] for a blob larger than the
	// caller's limit.
	ErrTooLarge = errors.New("transport: blob too large")
)

// Blobs stores named byte blobs (rating blocks, and later checkpoints) in
// one JetStream Object Store bucket. The Object Store cuts a blob into
// chunks under max_payload and records its size and SHA-256 digest; Get
// verifies the digest. Safe for concurrent use.
type Blobs struct {
	os jetstream.ObjectStore
	// put is the same bucket through a JetStream handle whose requests
	// time out after PutAckTimeout: what Put writes with when the caller
	// gives no deadline.
	put     jetstream.ObjectStore
	bucket  string
	chunk   uint32        // the Object Store chunk size: under the server's max_payload
	timeout time.Duration // bounds every read (the caller's context aborts it sooner)
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Name string
	Size int64
}

// OpenTimeout bounds looking up (and creating) a bucket.
const OpenTimeout = 10 * time.Second

// DefaultBlobTimeout bounds a [Blobs] operation whose context has no
// deadline (the whole operation, reading every chunk), except a Put.
const DefaultBlobTimeout = time.Minute

// PutAckTimeout bounds, in a [Blobs.Put] whose context has no deadline,
// the wait for each chunk's acknowledgement (the Object Store times its
// publishes out one by one then, so a large blob takes as long as it needs
// while it progresses). It is shorter than DefaultBlobTimeout so that a
// write whose chunks went to a stream leader that has just died (a NATS
// server of the cluster lost) fails in this time instead of a minute and
// is redone on the new leader.
const PutAckTimeout = 15 * time.Second

type blobsConfig struct {
	store   jetstream.ObjectStoreConfig
	timeout time.Duration
}

// BlobsOption adjusts [OpenBlobs].
type BlobsOption func(*blobsConfig)

// WithReplicas sets how many copies of the bucket a clustered JetStream
// keeps (1..5) when OpenBlobs creates it; the default is 1. An existing
// bucket keeps its own setting.
func WithReplicas(n int) BlobsOption {
	return func(c *blobsConfig) { c.store.Replicas = n }
}

// WithBlobTimeout replaces DefaultBlobTimeout.
func WithBlobTimeout(d time.Duration) BlobsOption {
	return func(c *blobsConfig) { c.timeout = d }
}

// OpenBlobs opens the Object Store bucket, creating it (file storage, one
// replica unless WithReplicas says otherwise) when it does not exist. The
// bucket name may hold letters, digits, '-' and '_'.
func OpenBlobs(ctx context.Context, nc *nats.Conn, bucket string, opts ...BlobsOption) (*Blobs, error) {
	cfg := blobsConfig{
		store:   jetstream.ObjectStoreConfig{Bucket: bucket, Storage: jetstream.FileStorage, Replicas: 1},
		timeout: DefaultBlobTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.timeout <= 0 {
		return nil, fmt.Errorf("transport: blobs %s: timeout %v must be positive", bucket, cfg.timeout)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(cfg.timeout))
	if err != nil {
		return nil, fmt.Errorf("transport: blobs %s: %w", bucket, err)
	}
	// Opening is a lookup and at most one create: bounded, so that a
	// role refused the create (only coordinators create buckets; NATS
	// answers a refused request with silence) fails in seconds, not
	// after the blob timeout.
	octx, cancel := context.WithTimeout(ctx, OpenTimeout)
	defer cancel()
	os, err := js.ObjectStore(octx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		os, err = js.CreateObjectStore(octx, cfg.store)
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Another process created it first.
			os, err = js.ObjectStore(octx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("transport: blobs %s: open: %w", bucket, err)
	}
	pjs, err := jetstream.New(nc, jetstream.WithDefaultTimeout(min(cfg.timeout, PutAckTimeout)))
	if err != nil {
		return nil, fmt.Errorf("transport: blobs %s: %w", bucket, err)
	}
	put, err := pjs.ObjectStore(octx, bucket)
	if err != nil {
		return nil, fmt.Errorf("transport: blobs %s: open: %w", bucket, err)
	}
	// A chunk travels as one message with JetStream headers: leave room
	// for them under the server's max_payload.
	chunk := uint32(128 << 10)
	if mp := nc.MaxPayload() - 1024; mp > 0 && mp < int64(chunk) {
		chunk = uint32(mp)
	}
	return &Blobs{os: os, put: put, bucket: bucket, chunk: chunk, timeout: cfg.timeout}, nil
}

// Put stores data under name, replacing any blob of that name. Repeating
// a Put is harmless and cheap: when the bucket already holds these exact
// bytes under name (same size and SHA-256), nothing is written, so a
// role that may write but not purge (replacing an object purges the old
// chunks) can retry its writes. A Get racing a Put of the same name
// returns the old or the new blob whole, or fails; never a mix. Of two
// racing Puts of one name, one version wins whole (the other's chunks may
// stay behind as unreferenced data until the bucket is deleted).
//
// Without a deadline on ctx, each chunk must be acknowledged within
// PutAckTimeout (the Object Store's per-publish timeout applies only
// then); with one, the deadline bounds the whole write.
func (b *Blobs) Put(ctx context.Context, name string, data []byte) error {
	if info, err := b.os.GetInfo(ctx, name); err == nil && !info.Deleted && info.Size == uint64(len(data)) {
		sum := sha256.Sum256(data)
		if info.Digest == digestValue(sum[:]) {
			return nil
		}
	}
	return b.putReader(ctx, name, bytes.NewReader(data))
}

func digestValue(sum []byte) string { return "SHA-256=" + base64.URLEncoding.EncodeToString(sum) }

// PutFrom is Put of the bytes write produces, streamed to the bucket a
// chunk at a time rather than held whole. write must produce the same
// bytes each time it is called: when the bucket holds a blob of that name
// it is called once more first, to compare digests (a repeated PutFrom
// writes nothing). An error from write aborts the put; the partial chunks
// are purged and the old blob, if any, stays.
func (b *Blobs) PutFrom(ctx context.Context, name string, write func(io.Writer) error) error {
	if info, err := b.os.GetInfo(ctx, name); err == nil && !info.Deleted {
		h := &sizedHash{h: sha256.New()}
		if err := write(h); err != nil {
			return err
		}
		if info.Size == uint64(h.n) && info.Digest == digestValue(h.h.Sum(nil)) {
			return nil
		}
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		// Whole chunks through the pipe: the Object Store sends what one
		// Read returns as one chunk.
		bw := bufio.NewWriterSize(pw, int(b.chunk))
		err := write(bw)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err) // nil: the reader sees EOF
		done <- err
	}()
	err := b.putReader(ctx, name, pr)
	pr.CloseWithError(errPutEnded) // unblocks write if the put stopped reading
	if werr := <-done; werr != nil && !errors.Is(werr, errPutEnded) {
		return werr
	}
	return err
}

var errPutEnded = errors.New("transport: the blob put ended")

type sizedHash struct {
	h hash.Hash
	n int64
}

func (s *sizedHash) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	return s.h.Write(p)
}

func (b *Blobs) putReader(ctx context.Context, name string, r io.Reader) error {
	obs := b.os
	if _, ok := ctx.Deadline(); !ok {
		obs = b.put
	}
	if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: name, Opts: &jetstream.ObjectMetaOptions{ChunkSize: b.chunk}}, r); err != nil {
		return fmt.Errorf("transport: blobs %s: put %q: %w", b.bucket, name, err)
	}
	return nil
}

// Get returns the blob stored under name. It refuses with [ErrTooLarge],
// before reading any of its data, a blob whose recorded size exceeds
// maxBytes, and returns [ErrNotFound] for a missing name. The data is
// checked against the digest recorded at Put.
func (b *Blobs) Get(ctx context.Context, name string, maxBytes int64) ([]byte, error) {
	info, err := b.os.GetInfo(ctx, name)
	if err != nil {
		return nil, b.wrap("get", name, err)
	}
	if err := b.checkSize(name, info, maxBytes); err != nil {
		return nil, err
	}
	// The Object Store reads an object through a consumer that it creates
	// under the context it is given: when that context ends while the
	// consumer is being created, the consumer may still deliver a chunk to
	// a callback whose reader was never returned, and that callback blocks
	// for good (nats.go v1.55.0, jetstream/object.go). So the read runs
	// under a context that only the blob timeout ends, and the caller's
	// ctx aborts it by closing the reader once it has one.
	gctx, gcancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
	defer gcancel()
	res, err := b.os.Get(gctx, name)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, b.wrap("get", name, err)
	}
	defer res.Close()
	stop := context.AfterFunc(ctx, func() { res.Close() })
	defer stop()
	// The blob may have been replaced since GetInfo: check the version
	// being read, and never read more than the limit either way.
	info, err = res.Info()
	if err != nil {
		return nil, b.wrap("get", name, err)
	}
	if err := b.checkSize(name, info, maxBytes); err != nil {
		return nil, err
	}
	data := make([]byte, info.Size)
	if _, err := io.ReadFull(res, data); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, b.wrap("get", name, err)
	}
	// The end of the stream is where the Object Store checks the digest.
	var extra [1]byte
	if n, err := res.Read(extra[:]); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("more data than the recorded size %d (%d more bytes)", info.Size, n)
		}
		return nil, b.wrap("get", name, err)
	}
	return data, nil
}

func (b *Blobs) checkSize(name string, info *jetstream.ObjectInfo, maxBytes int64) error {
	if maxBytes < 0 || info.Size > uint64(maxBytes) {
		return fmt.Errorf("%w: blobs %s: %q is %d bytes, limit %d", ErrTooLarge, b.bucket, name, info.Size, maxBytes)
	}
	return nil
}

// Delete removes the blob stored under name; it returns [ErrNotFound] when
// there is none.
func (b *Blobs) Delete(ctx context.Context, name string) error {
	info, err := b.os.GetInfo(ctx, name)
	if err != nil {
		return b.wrap("delete", name, err)
	}
	if err := b.os.Delete(ctx, info.Name); err != nil {
		return b.wrap("delete", name, err)
	}
	return nil
}

// List returns the blobs whose names start with prefix ("" for all), in
// the order the bucket last stored them.
func (b *Blobs) List(ctx context.Context, prefix string) ([]BlobInfo, error) {
	objs, err := b.os.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("transport: blobs %s: list: %w", b.bucket, err)
	}
	var out []BlobInfo
	for _, o := range objs {
		if o.Deleted || !strings.HasPrefix(o.Name, prefix) {
			continue
		}
		out = append(out, BlobInfo{Name: o.Name, Size: int64(o.Size)})
	}
	return out, nil
}

func (b *Blobs) wrap(op, name string, err error) error {
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("%w: blobs %s: %s %q", ErrNotFound, b.bucket, op, name)
	}
	return fmt.Errorf("transport: blobs %s: %s %q: %w", b.bucket, op, name, err)
}

// ErrReplicas: a bucket cannot have the replicas asked for (the NATS
// cluster has fewer JetStream servers, or the count is out of range).
var ErrReplicas = errors.New("transport: replicas")

// MaxReplicas is the most copies JetStream keeps of a stream.
const MaxReplicas = 5

// SetReplicas makes the JetStream stream keep n copies (1..MaxReplicas),
// updating it when it keeps another number. A NATS cluster with fewer
// than n JetStream servers refuses: the error wraps ErrReplicas and
// carries the server's reason.
func SetReplicas(ctx context.Context, nc *nats.Conn, stream string, n int) error {
	if n < 1 || n > MaxReplicas {
		return fmt.Errorf("%w: %d not in 1..%d", ErrReplicas, n, MaxReplicas)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("transport: stream %s: %w", stream, err)
	}
	ctx, cancel := context.WithTimeout(ctx, OpenTimeout)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("transport: stream %s: %w", stream, err)
	}
	cfg := st.CachedInfo().Config
	if cfg.Replicas == n {
		return nil
	}
	cfg.Replicas = n
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("%w: stream %s: %d replicas: %w", ErrReplicas, stream, n, err)
	}
	return nil
}
