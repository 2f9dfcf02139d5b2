package worker

import (
	"context"
	"errors"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/transport"
)

// Transport is the worker's view of the network: all its job loop needs to
// talk to the coordinators and to the other workers, and to reach the
// block store and the jobs' snapshot stores. In production it is NATS
// ([WithConn], or a connection dialled from Config.NATSURL); the package's
// tests also run workers over an in-memory one.
//
// Delivery is NATS core's: at most once, no order between subjects, a
// message to a subject nobody listens on is dropped. The worker copes with
// loss by retrying requests and with duplicates by answering them
// idempotently (see the package doc).
//
// Implementations must be safe for concurrent use.
type Transport interface {
	// Publish sends data on subject to whoever listens, without an
	// answer. A nil error does not mean anyone received it.
	Publish(subject string, data []byte) error
	// Subscribe calls h for each message on subject, one message at a
	// time, until stop is called. Once Subscribe returns, messages sent
	// to subject from any endpoint reach h. A call of h may still be
	// running when stop returns.
	Subscribe(subject string, h Handler) (stop func(), err error)
	// Request sends data to subject and returns the first reply, retrying
	// as p says on timeouts and when nobody listens, as transport.Request
	// does: when the attempts run out the error wraps
	// transport.ErrUnreachable; when ctx ends it is ctx.Err(). A request
	// may be delivered more than once.
	Request(ctx context.Context, subject string, data []byte, p transport.RetryPolicy) ([]byte, error)
	// MaxPayload is the largest message, in bytes, the transport carries.
	MaxPayload() int
	// OpenBlobs opens the blob bucket of rating blocks and ID lists. It
	// fails while the bucket does not exist yet (the coordinators create
	// it); the caller retries.
	OpenBlobs(ctx context.Context, bucket string) (Blobs, error)
	// OpenSnapshots opens the snapshot store a job spec's Store URI names
	// (checkpoint.ParseStoreURI). The caller closes the repository.
	OpenSnapshots(ctx context.Context, uri string) (*checkpoint.Repo, error)
}

// Handler handles one message received on a subscribed subject. reply
// answers the sender of a request (it fails with [ErrClosed] once the
// transport is closed, and is a no-op for a message that wants no
// answer). data is the handler's to keep; reply copies what it is given
// before it returns, so the caller may reuse that buffer.
type Handler func(data []byte, reply func([]byte) error)

// Blobs is a bucket of named blobs: the rating blocks and ID lists of jobs.
// *transport.Blobs is the NATS one.
type Blobs interface {
	// Put stores data under name, replacing any blob of that name.
	Put(ctx context.Context, name string, data []byte) error
	// Get returns the blob stored under name; an error wrapping
	// transport.ErrNotFound for a missing name and transport.ErrTooLarge
	// for one larger than maxBytes.
	Get(ctx context.Context, name string, maxBytes int64) ([]byte, error)
}

// ErrClosed is wrapped by a reply that failed because the transport is
// closed (the worker is stopping): nothing to report.
var ErrClosed = errors.New("worker: transport closed")
