package coordinator_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/dataset"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// TestSubmitChecksDatasets: a job or a schedule naming a dataset the
// store does not hold is refused at once (400, exit 2 for the CLI); once
// the dataset is stored it is accepted.
func TestSubmitChecksDatasets(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := c.client()
	spec := job.DefaultSpec()
	spec.Dataset, spec.TestDataset, spec.TestFraction = "ratings", "held-out", 0
	refused := func(what string, err error, name string) {
		t.Helper()
		var ae *coordinator.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, `dataset: not found: "`+name+`"`) {
			t.Fatalf("%s: %v, want 400 naming %q", what, err, name)
		}
	}
	_, err := cl.Submit(ctx, coordinator.SubmitRequest{Spec: spec})
	refused("submit", err, "ratings")
	err = cl.AddSchedule(ctx, coordinator.ScheduleRequest{Name: "nightly", Cron: "@daily", Spec: spec})
	refused("schedule add", err, "ratings")

	st, err := dataset.Open(ctx, c.conn())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "ratings", []dataset.Source{{Name: "r.csv", R: strings.NewReader("1,2,3\n")}}, dataset.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.Submit(ctx, coordinator.SubmitRequest{Spec: spec})
	refused("submit without the test dataset", err, "held-out")
	spec.TestDataset, spec.TestFraction = "", 0.1
	if err := cl.AddSchedule(ctx, coordinator.ScheduleRequest{Name: "nightly", Cron: "@daily", Spec: spec}); err != nil {
		t.Fatalf("schedule add of a stored dataset: %v", err)
	}
}
