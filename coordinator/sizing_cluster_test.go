package coordinator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// A job whose blocks would not fit a worker's --memory fails before any
// block is loaded, as bad input naming the worker and the numbers.
func TestClusterRefusesJobThatDoesNotFit(t *testing.T) {
	c := startCluster(t)
	c.startWorkerMemory("w3", 4096)
	eventually(t, "w3 registered", func() error {
		st, err := c.client().Cluster(context.Background())
		if err != nil {
			return err
		}
		if len(st.Workers) != 3 {
			return fmt.Errorf("%d workers", len(st.Workers))
		}
		return nil
	})
	id, err := c.client().Submit(context.Background(), coordinator.SubmitRequest{Spec: smallSpec(t, 2)})
	if err != nil {
		t.Fatal(err)
	}
	res := waitJob(t, c.client(), id)
	if res.State != job.StateFailed || res.ErrorKind != job.KindInput ||
		!strings.Contains(res.Error, "worker w3 needs") || !strings.Contains(res.Error, "offers 4096") || strings.Contains(res.Error, "worker w1") {
		t.Fatalf("job: %s, kind %s, error %q; want failed as input naming w3's need and its 4096 bytes", res.State, res.ErrorKind, res.Error)
	}
	if res.Progress != nil && res.Progress.Iteration > 0 {
		t.Errorf("the job ran to iteration %d before it was refused", res.Progress.Iteration)
	}
}
