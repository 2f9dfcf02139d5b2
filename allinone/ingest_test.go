package allinone

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/dataset"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/internal/testutil"
	"github.com/cofactor-ml/cofactor/transport"
)

// putDataset stores files as dataset name in c's store, in small chunks
// so that each file makes several shards.
func putDataset(t *testing.T, c *Cluster, name string, files ...string) *dataset.Manifest {
	t.Helper()
	nc, err := c.ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	st, err := dataset.Open(ctx, nc, dataset.WithChunkSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	var srcs []dataset.Source
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, dataset.Source{Name: filepath.Base(f), R: bytes.NewReader(data)})
	}
	m, err := st.Put(ctx, name, srcs, dataset.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runDataset trains spec on a fresh cluster of the given size that holds
// files as the dataset "ds", and returns the result and the snapshot.
func runDataset(t *testing.T, workers int, spec job.Spec, files ...string) (job.Result, *checkpoint.Model, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	putDataset(t, c, "ds", files...)
	spec.Dataset, spec.Out = "ds", filepath.Join(t.TempDir(), "model")
	res, err := c.Run(ctx, spec, nil)
	if err != nil {
		return res, nil, err
	}
	s, err := checkpoint.ReadDir(ctx, spec.Out)
	if err != nil {
		t.Fatal(err)
	}
	return res, s, nil
}

// Issue 12: a dataset job is ingested by every worker, and its factors per
// external ID are those of one worker and of the single-process path
// (--input, what `cofactor train` runs) on the same file.
func TestDatasetIngestMatchesInput(t *testing.T) {
	t.Parallel()
	skipShort(t)
	for _, tc := range []struct {
		name             string
		implicit, biases bool
	}{
		{"explicit", false, false},
		{"explicit biases", false, true},
		{"implicit", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input := testutil.WriteRatings(t, synth.Config{Users: 900, Items: 400, Ratings: 40_000, Rank: 6, Noise: 0.3, Seed: 5, ZipfExponent: 0.8, Implicit: tc.implicit})
			spec := job.DefaultSpec()
			spec.Rank, spec.Iterations, spec.Lambda = 8, 5, 0.05
			spec.Implicit, spec.Biases = tc.implicit, tc.biases
			local := spec
			local.Input = input
			want := snapshotFactors(t, 1, local)
			wantRes := train(t, 1, func() job.Spec { s := local; s.Out = ""; return s }())
			for _, workers := range []int{1, 3} {
				res, got, err := runDataset(t, workers, spec, input)
				if err != nil {
					t.Fatalf("%d workers: %v", workers, err)
				}
				if res.Users != wantRes.Users || res.Items != wantRes.Items || res.TrainRatings != wantRes.TrainRatings ||
					res.TestRatings != wantRes.TestRatings || res.TestSkipped != wantRes.TestSkipped || res.Duplicates != wantRes.Duplicates {
					t.Errorf("%d workers: %d users, %d items, %d/%d ratings (%d skipped, %d repeated); --input: %d, %d, %d/%d (%d, %d)", workers,
						res.Users, res.Items, res.TrainRatings, res.TestRatings, res.TestSkipped, res.Duplicates,
						wantRes.Users, wantRes.Items, wantRes.TrainRatings, wantRes.TestRatings, wantRes.TestSkipped, wantRes.Duplicates)
				}
				if res.Workers != workers || res.UserBlocks != workers {
					t.Errorf("%d workers: ran on %d workers with %d user blocks", workers, res.Workers, res.UserBlocks)
				}
				if d := testutil.SnapshotDiff(t, want, got); d > 1e-5 {
					t.Errorf("%d workers: factors differ by %g from the --input run", workers, d)
				}
			}
		})
	}
}

// A dataset job without --blocks on sparse data gets more item blocks
// than workers (the coordinator's default layout, so that a worker's
// gather of user rows is smaller), and its factors are still those of the
// single-process run.
func TestDatasetAutoBlocks(t *testing.T) {
	t.Parallel()
	skipShort(t)
	input := testutil.WriteRatings(t, synth.Config{Users: 3000, Items: 300, Ratings: 12_000, Rank: 6, Noise: 0.3, Seed: 12, ZipfExponent: 0.8})
	spec := job.DefaultSpec()
	spec.Rank, spec.Iterations, spec.Lambda = 8, 3, 0.05
	local := spec
	local.Input = input
	want := snapshotFactors(t, 1, local)
	res, got, err := runDataset(t, 3, spec, input)
	if err != nil {
		t.Fatal(err)
	}
	if res.UserBlocks != 3 || res.ItemBlocks <= 3 {
		t.Errorf("layout %d×%d on 3 workers, want 3 user blocks and more item blocks", res.UserBlocks, res.ItemBlocks)
	}
	if d := testutil.SnapshotDiff(t, want, got); d > 1e-5 {
		t.Errorf("factors differ by %g from the --input run", d)
	}
}

// A bad line of a dataset fails the job with the dataset's file and the
// line, as an input error.
func TestDatasetBadLine(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("user,item,rating\n")
	for k := range 5000 {
		b.WriteString(strings.Repeat("1", 1+k%3) + "," + strings.Repeat("2", 1+k%5) + ",3\n")
	}
	b.WriteString("7,8,x\n")
	for range 3000 {
		b.WriteString("4,5,1\n")
	}
	in := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	res, _, err := runDataset(t, 2, job.DefaultSpec(), in)
	var je *JobError
	if !errors.As(err, &je) || !je.IsInput() || res.State != job.StateFailed {
		t.Fatalf("err %v, state %s, want an input failure", err, res.State)
	}
	if want := `ds/bad.csv:5002: rating "x" is not a number`; res.Error != want {
		t.Errorf("error %q, want %q", res.Error, want)
	}
}

// A dataset missing a chunk fails the job, naming the dataset, the file
// and the chunk.
func TestDatasetMissingChunk(t *testing.T) {
	t.Parallel()
	input := testutil.WriteRatings(t, synth.Config{Users: 300, Items: 200, Ratings: 20_000, Rank: 4, Noise: 0.3, Seed: 6})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := putDataset(t, c, "ds", input)
	nc, err := c.ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	blobs, err := transport.OpenBlobs(ctx, nc, dataset.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := blobs.Delete(ctx, "ds/"+m.Generation+"/0/2"); err != nil {
		t.Fatal(err)
	}
	spec := job.DefaultSpec()
	spec.Dataset = "ds"
	res, err := c.Run(ctx, spec, nil)
	var je *JobError
	if !errors.As(err, &je) || res.State != job.StateFailed {
		t.Fatalf("err %v, state %s, want a failed job", err, res.State)
	}
	if want := `dataset "ds": file ` + filepath.Base(input) + `: chunk 2 of`; !strings.Contains(res.Error, want) || !strings.Contains(res.Error, "put it again with --replace") {
		t.Errorf("error %q, want it to name %q", res.Error, want)
	}
}
