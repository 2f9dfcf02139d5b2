package allinone

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/internal/testutil"
)

// trainDirect runs spec through Train with one worker: the direct path.
func trainDirect(t testing.TB, spec job.Spec) job.Result {
	t.Helper()
	if !Direct(spec) {
		t.Fatalf("spec %+v does not run directly", spec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Train(ctx, spec, Options{Workers: 1}, nil)
	if err != nil {
		t.Fatalf("job %s: %v", res.JobID, err)
	}
	return res
}

// sameResult fails unless two results of one spec agree on everything
// but the job's identity and its timings.
func sameResult(t *testing.T, cluster, direct job.Result) {
	t.Helper()
	norm := func(r job.Result) map[string]any {
		r.JobID, r.Snapshot, r.SnapshotID, r.Checkpoint = "", "", "", nil
		r.Seconds, r.LoadSeconds, r.SecondsPerIteration = 0, 0, 0
		for i := range r.History {
			r.History[i].Seconds = 0
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		return m
	}
	a, b := norm(cluster), norm(direct)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("results differ:\ncluster %s\ndirect  %s", ja, jb)
	}
	if direct.Checkpoint == nil || !direct.Checkpoint.Final || direct.Checkpoint.ID != direct.SnapshotID ||
		direct.SnapshotID != checkpoint.SnapshotID(direct.JobID, direct.Iterations) {
		t.Errorf("direct run: checkpoint %+v, snapshot ID %q of job %s", direct.Checkpoint, direct.SnapshotID, direct.JobID)
	}
	if direct.SecondsPerIteration <= 0 || direct.LoadSeconds <= 0 || direct.Seconds < direct.LoadSeconds {
		t.Errorf("direct run: %g s/iteration, load %g s of %g s", direct.SecondsPerIteration, direct.LoadSeconds, direct.Seconds)
	}
}

// The direct path is the cluster's single worker without the cluster:
// the same result (counts, RMSE after every iteration, ranking metrics)
// and the same snapshot, for every model variant and block layout.
func TestDirectMatchesCluster(t *testing.T) {
	t.Parallel()
	inputs := map[bool]string{
		false: testutil.WriteRatings(t, synth.Config{Users: 700, Items: 300, Ratings: 30_000, Rank: 6, Noise: 0.3, Seed: 3, ZipfExponent: 0.8}),
		true:  testutil.WriteRatings(t, synth.Config{Users: 700, Items: 300, Ratings: 30_000, Rank: 6, Noise: 0.3, Seed: 3, ZipfExponent: 0.8, Implicit: true}),
	}
	for _, tc := range []struct {
		name                string
		implicit            bool
		solver              string
		biases, nonnegative bool
		p, q                int
	}{
		{"explicit cholesky", false, "cholesky", false, false, 0, 0},
		{"explicit cg 3x2 blocks", false, "cg", false, false, 3, 2},
		{"implicit cholesky 2x3 blocks", true, "cholesky", false, false, 2, 3},
		{"implicit cg", true, "cg", false, false, 0, 0},
		{"explicit biases", false, "auto", true, false, 0, 0},
		{"explicit non-negative", false, "auto", false, true, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := job.DefaultSpec()
			spec.Input, spec.Rank, spec.Solver, spec.Iterations = inputs[tc.implicit], 8, tc.solver, 4
			spec.Implicit, spec.Lambda, spec.TestFraction = tc.implicit, 0.05, 0.2
			spec.Biases, spec.NonNegative = tc.biases, tc.nonnegative
			spec.UserBlocks, spec.ItemBlocks = tc.p, tc.q
			dir := t.TempDir()
			spec.Out = filepath.Join(dir, "cluster")
			cres := train(t, 1, spec)
			spec.Out = filepath.Join(dir, "direct")
			dres := trainDirect(t, spec)
			sameResult(t, cres, dres)
			if dres.Snapshot != spec.Out {
				t.Errorf("snapshot %q, want %q", dres.Snapshot, spec.Out)
			}
			if d := testutil.DirDiff(t, filepath.Join(dir, "cluster"), spec.Out); d != 0 {
				t.Errorf("factors differ by %g", d)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 2 {
				t.Errorf("%d entries beside the snapshots, want none: %v", len(ents)-2, ents)
			}
		})
	}
}

// On ml-latest-small the direct path gives the cluster's model: the
// accuracy tests' explicit and implicit settings.
func TestDirectMovieLens(t *testing.T) {
	t.Parallel()
	skipShort(t)
	for _, implicit := range []bool{false, true} {
		spec := movieLensSpec(t)
		spec.Rank, spec.Lambda = 10, 0.1
		if implicit {
			spec.Rank, spec.Lambda, spec.Alpha, spec.Implicit = 32, 50, 1, true
		}
		dir := t.TempDir()
		spec.Out = filepath.Join(dir, "cluster")
		cres := train(t, 1, spec)
		spec.Out = filepath.Join(dir, "direct")
		dres := trainDirect(t, spec)
		sameResult(t, cres, dres)
		if d := testutil.DirDiff(t, filepath.Join(dir, "cluster"), spec.Out); d > 1e-6 {
			t.Errorf("implicit %v: factors differ by %g", implicit, d)
		}
		if implicit {
			t.Logf("implicit: precision@10 %.4f (cluster %.4f)", *dres.PrecisionAt10, *cres.PrecisionAt10)
		} else {
			t.Logf("explicit: test RMSE %.4f (cluster %.4f)", *dres.TestRMSE, *cres.TestRMSE)
		}
	}
}

// With a directory store the direct path does what the cluster does
// there: checkpoints while it trains, deleted at the end, and the final
// snapshot published as the model's latest and kept within --keep.
func TestDirectDirStore(t *testing.T) {
	t.Parallel()
	input := testutil.WriteRatings(t, synth.Config{Users: 300, Items: 200, Ratings: 8_000, Rank: 4, Noise: 0.2, Seed: 5, ZipfExponent: 0.5})
	store := t.TempDir()
	spec := job.DefaultSpec()
	spec.Input, spec.Rank, spec.Iterations, spec.Store, spec.Model, spec.Keep = input, 4, 3, "dir:"+store, "m", 2
	var ids []string
	for range 3 {
		res := trainDirect(t, spec)
		if want := "dir:" + store + "/" + res.SnapshotID; res.Snapshot != want {
			t.Errorf("snapshot %q, want %q", res.Snapshot, want)
		}
		ids = append(ids, res.SnapshotID)
	}
	repo, _ := checkpoint.OpenURI(context.Background(), spec.Store, nil)
	if latest, err := repo.Latest(context.Background(), "m"); err != nil || latest != ids[2] {
		t.Errorf("latest %q (%v), want %q", latest, err, ids[2])
	}
	ents, _ := os.ReadDir(store)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	// The oldest snapshot went by retention, every checkpoint at the end.
	want := []string{ids[1], ids[2], "latest.m"}
	slices.Sort(want)
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("store holds %v, want %v", names, want)
	}
	if _, err := checkpoint.ReadDir(context.Background(), filepath.Join(store, ids[2])); err != nil {
		t.Error(err)
	}
	// A warm start reads the store too.
	spec.WarmStart, spec.Iterations = ids[2], 1
	if res := trainDirect(t, spec); res.State != job.StateSucceeded {
		t.Errorf("warm start: %s", res.State)
	}
}

// A bad input fails the job as an input error, with the cluster's words;
// the job's Out is not created.
func TestDirectInputError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "bad.csv")
	os.WriteFile(in, []byte("1,2,3\n1,3,x\n"), 0o644)
	spec := job.DefaultSpec()
	spec.Input, spec.Out = in, filepath.Join(dir, "out")
	res, err := Train(context.Background(), spec, Options{Workers: 1}, nil)
	var je *JobError
	if !errors.As(err, &je) || !je.IsInput() || res.State != job.StateFailed {
		t.Fatalf("err %v, state %s, want an input failure", err, res.State)
	}
	if want := in + `:2: rating "x" is not a number`; res.Error != want {
		t.Errorf("error %q, want %q", res.Error, want)
	}
	spec.Input, spec.WarmStart = testutil.WriteRatings(t, synth.Config{Users: 50, Items: 40, Ratings: 500, Rank: 2, Noise: 0.1, Seed: 1}), "no-such-snapshot"
	res, err = Train(context.Background(), spec, Options{Workers: 1}, nil)
	if !errors.As(err, &je) || !je.IsInput() || !strings.Contains(res.Error, "no-such-snapshot") {
		t.Errorf("a missing warm-start snapshot: %v (%s)", err, res.Error)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("the failed jobs left %d entries beside the input", len(ents)-1)
	}
}

// Train chooses: one worker and a job it can run alone go directly, the
// rest through the cluster, with the same result; progress sees every
// iteration either way.
func TestTrainChoosesPath(t *testing.T) {
	t.Parallel()
	input := testutil.WriteRatings(t, synth.Config{Users: 200, Items: 100, Ratings: 4_000, Rank: 3, Noise: 0.2, Seed: 6})
	for _, tc := range []struct {
		workers int
		out     bool
	}{{1, true}, {2, true}, {1, false}} {
		spec := job.DefaultSpec()
		spec.Input, spec.Rank, spec.Iterations = input, 3, 3
		if tc.out {
			spec.Out = filepath.Join(t.TempDir(), "m")
		}
		if Direct(spec) != tc.out {
			t.Errorf("Direct = %v with out %v", !tc.out, tc.out)
		}
		seen := 0
		res, err := Train(context.Background(), spec, Options{Workers: tc.workers}, func(r job.Result) {
			seen = max(seen, len(r.History))
			if job.Finished(r.State) || r.Progress == nil {
				t.Errorf("progress: state %s, progress %v", r.State, r.Progress)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		want := spec.Out
		if !tc.out {
			want = "nats:" + res.SnapshotID // the embedded cluster's store
		}
		if res.Workers != tc.workers || res.Snapshot != want || seen < spec.Iterations-1 || res.TestRMSE == nil || math.IsNaN(*res.TestRMSE) {
			t.Errorf("%d workers, out %v: %d workers, snapshot %q, progress saw %d iterations", tc.workers, tc.out, res.Workers, res.Snapshot, seen)
		}
	}
}
