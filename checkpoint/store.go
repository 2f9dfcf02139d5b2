package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cofactor-ml/cofactor/transport"
)

// Store holds named files. Put is atomic: a reader sees the whole file or
// none of it. Implementations: DirStore and BlobStore.
type Store interface {
	Put(ctx context.Context, name string, data []byte) error
	// Get returns ErrNotFound for a missing name and refuses a file larger
	// than maxBytes before reading it.
	Get(ctx context.Context, name string, maxBytes int64) ([]byte, error)
	// Delete removes a name; a missing one is not an error.
	Delete(ctx context.Context, name string) error
	// List returns the names that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// StreamStore is a Store that writes a file as its encoder produces it,
// without the whole file in memory. PutFrom is atomic like Put; write
// must produce the same bytes each time it is called (PutFrom may call it
// more than once), and an error from it leaves nothing stored.
type StreamStore interface {
	Store
	PutFrom(ctx context.Context, name string, write func(io.Writer) error) error
}

// Pointers hold each model's "latest" pointer: the ID of its newest
// published snapshot.
type Pointers interface {
	SetLatest(ctx context.Context, model, id string) error
	// Latest returns ErrNotFound when the model has none.
	Latest(ctx context.Context, model string) (string, error)
	// Watch sends the pointer's value now (if set) and at every change,
	// until ctx ends; then it closes the channel.
	Watch(ctx context.Context, model string) (<-chan string, error)
}

// DirStore keeps files under a root directory. Each Put writes a temporary
// file beside the target, syncs it, renames it into place and syncs the
// directory.
type DirStore struct{ Root string }

func (d DirStore) path(name string) (string, error) {
	clean := filepath.Clean(filepath.FromSlash(name))
	if name == "" || filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("checkpoint: bad file name %q", name)
	}
	return filepath.Join(d.Root, clean), nil
}

// Put writes name atomically.
func (d DirStore) Put(_ context.Context, name string, data []byte) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeAtomic(p, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// PutFrom writes name atomically from write.
func (d DirStore) PutFrom(_ context.Context, name string, write func(io.Writer) error) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return writeAtomic(p, write)
}

// writeAtomic writes a file through a synced temporary one and a rename.
func writeAtomic(p string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), p); err != nil {
		return err
	}
	return syncDir(filepath.Dir(p))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Get reads name.
func (d DirStore) Get(_ context.Context, name string, maxBytes int64) ([]byte, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxBytes {
		return nil, fmt.Errorf("%w: %s: %d bytes, more than the %d expected", ErrCorrupt, name, st.Size(), maxBytes)
	}
	b := make([]byte, st.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	return b, nil
}

// Delete removes name.
func (d DirStore) Delete(_ context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Remove the snapshot's directory once it is empty (never the root).
	if dir := filepath.Dir(p); dir != filepath.Clean(d.Root) {
		os.Remove(dir)
	}
	return nil
}

// List returns the names under the root that start with prefix.
func (d DirStore) List(_ context.Context, prefix string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(d.Root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() && p != d.Root && strings.HasPrefix(e.Name(), ".") {
			return filepath.SkipDir // temporaries (CopyToDir's copies in progress)
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(d.Root, p)
		if err != nil {
			return err
		}
		if name := filepath.ToSlash(rel); strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// latestName is the pointer file of a model in a DirStore.
func latestName(model string) string { return "latest." + model }

// SetLatest writes the model's pointer file.
func (d DirStore) SetLatest(ctx context.Context, model, id string) error {
	if err := ValidID(model); err != nil {
		return err
	}
	if err := ValidID(id); err != nil {
		return err
	}
	return d.Put(ctx, latestName(model), []byte(id+"\n"))
}

// Latest reads the model's pointer file.
func (d DirStore) Latest(ctx context.Context, model string) (string, error) {
	if err := ValidID(model); err != nil {
		return "", err
	}
	b, err := d.Get(ctx, latestName(model), 1024)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if err := ValidID(id); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrCorrupt, latestName(model), err)
	}
	return id, nil
}

// DirPollInterval is how often a DirStore's Watch looks at a pointer.
const DirPollInterval = 100 * time.Millisecond

// Watch polls the pointer file every DirPollInterval.
func (d DirStore) Watch(ctx context.Context, model string) (<-chan string, error) {
	if err := ValidID(model); err != nil {
		return nil, err
	}
	ch := make(chan string, 1)
	go func() {
		defer close(ch)
		last := ""
		tick := time.NewTicker(DirPollInterval)
		defer tick.Stop()
		for {
			if id, err := d.Latest(ctx, model); err == nil && id != last {
				select {
				case ch <- id:
					last = id
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return ch, nil
}

// Bucket names of the NATS store.
const (
	SnapshotBucket = "cofactor-snapshots"
	LatestBucket   = "cofactor-latest"
)

// BlobStore keeps files in the JetStream Object Store and pointers in a
// JetStream key-value bucket, whose Watch pushes changes at once.
type BlobStore struct {
	blobs *transport.Blobs
	kv    jetstream.KeyValue
}

// OpenBlobStore opens (creating if needed) the snapshot buckets on nc.
func OpenBlobStore(ctx context.Context, nc *nats.Conn) (*BlobStore, error) {
	b, err := transport.OpenBlobs(ctx, nc, SnapshotBucket)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	// Look the bucket up before creating it: only coordinators may create
	// or update a stream, and an update is never needed.
	kv, err := js.KeyValue(ctx, LatestBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: LatestBucket, History: 1, Storage: jetstream.FileStorage})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, LatestBucket) // another process created it first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: opening the %s bucket: %w", LatestBucket, err)
	}
	return &BlobStore{blobs: b, kv: kv}, nil
}

// Put stores name.
func (s *BlobStore) Put(ctx context.Context, name string, data []byte) error {
	return s.blobs.Put(ctx, name, data)
}

// PutFrom stores name from write, streamed through the object store.
func (s *BlobStore) PutFrom(ctx context.Context, name string, write func(io.Writer) error) error {
	return s.blobs.PutFrom(ctx, name, write)
}

// Get reads name.
func (s *BlobStore) Get(ctx context.Context, name string, maxBytes int64) ([]byte, error) {
	b, err := s.blobs.Get(ctx, name, maxBytes)
	switch {
	case errors.Is(err, transport.ErrNotFound):
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	case errors.Is(err, transport.ErrTooLarge):
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	case err != nil && strings.Contains(err.Error(), "digest"):
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	return b, err
}

// Delete removes name.
func (s *BlobStore) Delete(ctx context.Context, name string) error {
	if err := s.blobs.Delete(ctx, name); err != nil && !errors.Is(err, transport.ErrNotFound) {
		return err
	}
	return nil
}

// List returns the names that start with prefix.
func (s *BlobStore) List(ctx context.Context, prefix string) ([]string, error) {
	infos, err := s.blobs.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.Name
	}
	slices.Sort(out)
	return out, nil
}

// SetLatest sets the model's pointer.
func (s *BlobStore) SetLatest(ctx context.Context, model, id string) error {
	if err := ValidID(model); err != nil {
		return err
	}
	if err := ValidID(id); err != nil {
		return err
	}
	_, err := s.kv.Put(ctx, latestName(model), []byte(id))
	return err
}

// Latest reads the model's pointer.
func (s *BlobStore) Latest(ctx context.Context, model string) (string, error) {
	if err := ValidID(model); err != nil {
		return "", err
	}
	e, err := s.kv.Get(ctx, latestName(model))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", fmt.Errorf("%w: no snapshot of model %s is published", ErrNotFound, model)
	}
	if err != nil {
		return "", err
	}
	id := string(e.Value())
	if err := ValidID(id); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrCorrupt, latestName(model), err)
	}
	return id, nil
}

// Watch follows the model's pointer through a key-value watcher.
func (s *BlobStore) Watch(ctx context.Context, model string) (<-chan string, error) {
	if err := ValidID(model); err != nil {
		return nil, err
	}
	w, err := s.kv.Watch(ctx, latestName(model))
	if err != nil {
		return nil, err
	}
	ch := make(chan string, 1)
	go func() {
		defer close(ch)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil || e.Operation() != jetstream.KeyValuePut {
					continue // nil marks the end of the initial values
				}
				select {
				case ch <- string(e.Value()):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch, nil
}
