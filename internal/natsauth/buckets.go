package natsauth

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/dataset"
	"github.com/cofactor-ml/cofactor/internal/wire"
	"github.com/cofactor-ml/cofactor/transport"
)

// Bucket is a JetStream bucket cofactor keeps: an Object Store (stream
// OBJ_<name>, data subjects $O.<name>.>) or a key-value bucket (stream
// KV_<name>, data subjects $KV.<name>.>).
type Bucket struct {
	Name string
	KV   bool
}

// Stream is the name of the JetStream stream behind the bucket.
func (b Bucket) Stream() string {
	if b.KV {
		return "KV_" + b.Name
	}
	return "OBJ_" + b.Name
}

// Data is the subject space the bucket's entries are published on.
func (b Bucket) Data() string {
	if b.KV {
		return "$KV." + b.Name + ".>"
	}
	return "$O." + b.Name + ".>"
}

// Buckets lists every bucket the cluster creates, in a fixed order.
var Buckets = []Bucket{
	{Name: wire.BlockBucket},
	{Name: checkpoint.SnapshotBucket},
	{Name: checkpoint.LatestBucket, KV: true},
	{Name: dataset.Bucket},
}

// EnsureBuckets creates every bucket of [Buckets] that does not exist
// and makes each keep replicas copies (updating those that keep
// another number). Coordinators call it when they start, before workers
// and clients, which may only open buckets, need them. With replicas
// above 1 the NATS cluster needs at least that many JetStream servers;
// otherwise the error wraps transport.ErrReplicas and says so.
func EnsureBuckets(ctx context.Context, nc *nats.Conn, replicas int) error {
	if replicas < 1 || replicas > transport.MaxReplicas {
		return fmt.Errorf("%w: %d replicas not in 1..%d", transport.ErrReplicas, replicas, transport.MaxReplicas)
	}
	if _, err := transport.OpenBlobs(ctx, nc, wire.BlockBucket); err != nil {
		return err
	}
	if _, err := checkpoint.OpenBlobStore(ctx, nc); err != nil {
		return err
	}
	if _, err := dataset.Open(ctx, nc); err != nil {
		return err
	}
	for _, b := range Buckets {
		if err := transport.SetReplicas(ctx, nc, b.Stream(), replicas); err != nil {
			return fmt.Errorf("%w (--replicas %d needs a NATS cluster of at least %d JetStream servers)", err, replicas, replicas)
		}
	}
	return nil
}
