package coordinator

import (
	"context"
	"time"

	"github.com/cofactor-ml/cofactor/internal/natsauth"
)

// ensureBuckets creates the cluster's JetStream buckets, retrying until it
// succeeds or ctx ends: workers and clients may only open buckets, so
// they wait for a coordinator to have made them. A NATS server without
// JetStream (unit tests of the API alone) just keeps it retrying.
func (n *Node) ensureBuckets(ctx context.Context) {
	wait := time.Second
	for {
		err := natsauth.EnsureBuckets(ctx, n.nc, n.cfg.Replicas)
		if err == nil {
			return
		}
		n.log.Warn("JetStream buckets not created yet", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}
