package coordinator

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
)

// TestIngestAttemptFailure: a worker's report that an ingest round cannot
// be run again ends the step so that the next one starts a new attempt,
// without counting as one of the step's failures, and only so many times
// for a job: then the job fails, naming the cause.
func TestIngestAttemptFailure(t *testing.T) {
	d := &driver{n: &Node{cfg: Config{MaxStepFailures: 3}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	ctx := context.Background()
	newStep := func(jobID string) *step {
		return &step{j: &Job{ID: jobID}, c: wire.Command{Type: wire.CmdIngest, Job: jobID, Epoch: 7, Iteration: wire.IngestBuildUsers}}
	}
	report := func(s *step, kind string) wire.Report {
		return wire.Report{Type: wire.RepFailed, Job: s.j.ID, Worker: "w2", For: wire.CmdIngest, Epoch: 7, Iteration: wire.IngestBuildUsers,
			Kind: kind, Error: "partition: an ingest round that cannot be repeated was run again"}
	}
	for i := 1; i <= 2; i++ {
		s := newStep("j1")
		err := d.failed(ctx, s, report(s, wire.KindIngestAttempt))
		if !errors.Is(err, errIngestAgain) || !strings.Contains(err.Error(), "w2") {
			t.Fatalf("abandoned attempt %d: %v, want errIngestAgain naming the worker", i, err)
		}
		if d.failures != 0 {
			t.Fatalf("abandoned attempt %d counted as %d step failures", i, d.failures)
		}
	}
	s := newStep("j1")
	var sf *stepFailure
	if err := d.failed(ctx, s, report(s, wire.KindIngestAttempt)); !errors.As(err, &sf) || sf.kind != job.KindRuntime ||
		!strings.Contains(sf.msg, "started 3 times") || !strings.Contains(sf.msg, "cannot be repeated") {
		t.Fatalf("third abandoned attempt: %v, want the job failed naming the cause", err)
	}
	// Another job starts its own count.
	s = newStep("j2")
	if err := d.failed(ctx, s, report(s, wire.KindIngestAttempt)); !errors.Is(err, errIngestAgain) {
		t.Fatalf("another job's first abandoned attempt: %v", err)
	}
	// A runtime failure of the round is one of the step's failures, as before.
	s = newStep("j2")
	if err := d.failed(ctx, s, report(s, job.KindRuntime)); err != nil || d.failures != 1 {
		t.Fatalf("a runtime failure: %v, %d failures; want the step to go on, 1 failure", err, d.failures)
	}
}
