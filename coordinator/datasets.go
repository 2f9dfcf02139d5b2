package coordinator

import (
	"context"
	"errors"
	"fmt"

	"github.com/cofactor-ml/cofactor/dataset"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// checkDatasets refuses, as the client's error (400), a spec naming a
// dataset the cluster's store does not hold: a job on a missing dataset is
// refused when it is submitted (or its schedule added), not failed later
// on a worker. A dataset removed after that fails the job when it is
// ingested.
func (n *Node) checkDatasets(ctx context.Context, s job.Spec) error {
	if s.Dataset == "" && s.TestDataset == "" {
		return nil
	}
	st, err := dataset.Open(ctx, n.nc)
	if err != nil {
		return fmt.Errorf("opening the dataset store: %w", err)
	}
	for _, name := range []string{s.Dataset, s.TestDataset} {
		if name == "" {
			continue
		}
		_, err := st.Info(ctx, name)
		switch {
		case errors.Is(err, dataset.ErrNotFound):
			return fmt.Errorf("%w: %w (store it with `cofactor dataset put %s FILE...`)", errBadRequest, err, name)
		case errors.Is(err, dataset.ErrCorrupt):
			return fmt.Errorf("%w: %w (put it again with --replace)", errBadRequest, err)
		case err != nil:
			return err
		}
	}
	return nil
}
