package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/transport"
)

// natsTransport is [Transport] over a NATS connection: subjects are NATS
// subjects, requests go through transport.Request, blobs live in a
// JetStream Object Store bucket.
type natsTransport struct {
	nc *nats.Conn
	// security and name are how snapshot stores on other NATS servers
	// (nats:// store URIs) are dialled.
	security transport.Security
	name     string
}

// newNATSTransport wraps nc; it does not close it.
func newNATSTransport(nc *nats.Conn, security transport.Security, name string) *natsTransport {
	return &natsTransport{nc: nc, security: security, name: name}
}

func (t *natsTransport) Publish(subject string, data []byte) error {
	return t.nc.Publish(subject, data)
}

func (t *natsTransport) Subscribe(subject string, h Handler) (func(), error) {
	sub, err := t.nc.Subscribe(subject, func(m *nats.Msg) {
		h(m.Data, func(b []byte) error {
			if m.Reply == "" {
				return nil
			}
			err := m.Respond(b)
			if errors.Is(err, nats.ErrConnectionClosed) {
				return fmt.Errorf("%w: %w", ErrClosed, err)
			}
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	// The server knows the subscription once a round trip has passed:
	// from then on, messages from other connections reach it.
	if err := t.nc.Flush(); err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	return func() { sub.Unsubscribe() }, nil
}

func (t *natsTransport) Request(ctx context.Context, subject string, data []byte, p transport.RetryPolicy) ([]byte, error) {
	m, err := transport.Request(ctx, t.nc, subject, data, p)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

func (t *natsTransport) MaxPayload() int { return int(t.nc.MaxPayload()) }

func (t *natsTransport) OpenBlobs(ctx context.Context, bucket string) (Blobs, error) {
	b, err := transport.OpenBlobs(ctx, t.nc, bucket)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (t *natsTransport) OpenSnapshots(ctx context.Context, uri string) (*checkpoint.Repo, error) {
	u, err := checkpoint.ParseStoreURI(uri)
	if err != nil {
		return nil, err
	}
	return checkpoint.OpenStore(ctx, u, checkpoint.OpenOptions{Conn: t.nc, Security: t.security, Name: t.name})
}
