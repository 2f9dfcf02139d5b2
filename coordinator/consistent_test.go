package coordinator_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// TestConsistentRead: ?consistent=true answers from the leader after a
// barrier on every member, so a job submitted through one member is seen
// at once through every other; a bad value is a 400.
func TestConsistentRead(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	lead := c.leader()
	spec := smallSpec(t, 1)
	for i := range c.nodes {
		via := (lead + 1 + i) % len(c.nodes)
		id, err := coordinator.NewClient(c.url(via)).Submit(ctx, coordinator.SubmitRequest{Spec: spec, JobID: "consistent-" + c.cfgs[via].ID})
		if err != nil {
			t.Fatal(err)
		}
		for j := range c.nodes {
			for _, path := range []string{"/v1/jobs/" + id, "/v1/jobs", "/v1/schedules"} {
				resp, err := http.Get(c.url(j) + path + "?consistent=true")
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("%s via %s: %d %s", path, c.cfgs[j].ID, resp.StatusCode, b)
				}
				if path == "/v1/jobs/"+id {
					var res job.Result
					if err := json.Unmarshal(b, &res); err != nil || res.JobID != id {
						t.Fatalf("%s via %s: %s", path, c.cfgs[j].ID, b)
					}
				}
			}
		}
	}
	resp, err := http.Get(c.url(0) + "/v1/jobs?consistent=maybe")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("consistent=maybe: %d, want 400", resp.StatusCode)
	}
}
