package app

import (
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// TestStoreModel: every command's store flags read one URI form — a
// nats:// URI's path names the model (unless --model names another),
// @SNAPSHOT picks the snapshot (or --snapshot, the older spelling), a bare
// path is a directory, and "nats" or --nats alone is the cluster's store.
func TestStoreModel(t *testing.T) {
	t.Parallel()
	snapDir := handSnapshot(1).dir(t)
	storeDir := t.TempDir()
	tests := []struct {
		args              []string
		model, snap, kind string
		dir               string // a snapshot directory
		bad               bool
	}{
		{[]string{"--store", "nats://127.0.0.1:4222/movies"}, "movies", "", "nats", "", false},
		{[]string{"--store", "nats://127.0.0.1:4222/movies@latest"}, "movies", "latest", "nats", "", false},
		{[]string{"--store", "nats://127.0.0.1:4222/movies@job1-it0003"}, "movies", "job1-it0003", "nats", "", false},
		{[]string{"--store", "nats://127.0.0.1:4222/movies", "--snapshot", "s1"}, "movies", "s1", "nats", "", false},
		{[]string{"--store", "nats://127.0.0.1:4222/movies@s1", "--snapshot", "s1"}, "movies", "s1", "nats", "", false},
		{[]string{"--store", "nats://127.0.0.1:4222/movies@s1", "--snapshot", "s2"}, "", "", "", "", true},
		{[]string{"--store", "nats://127.0.0.1:4222/movies", "--model", "movies"}, "movies", "", "nats", "", false},
		{[]string{"--store", "nats://127.0.0.1:4222/movies", "--model", "books"}, "", "", "", "", true},
		{[]string{"--store", "nats://127.0.0.1:4222", "--model", "books"}, "books", "", "nats", "", false},
		{[]string{"--snapshot", "nats://127.0.0.1:4222/movies@s1"}, "movies", "s1", "nats", "", false},
		{[]string{"--store", "dir:" + storeDir}, "default", "", "dir", "", false},
		{[]string{"--store", "dir:" + storeDir + "@s7"}, "default", "s7", "dir", "", false},
		{[]string{"--store", storeDir + "@latest"}, "default", "latest", "dir", "", false},
		{[]string{"--store", storeDir}, "default", "", "dir", "", false},
		{[]string{"--snapshot", storeDir}, "default", "", "dir", "", false},
		{[]string{"--store", "dir:" + filepath.Join(storeDir, "absent")}, "", "", "", "", true},
		{[]string{"--store", snapDir}, "default", "", "dir", snapDir, false},
		{[]string{"--store", "dir:" + snapDir}, "default", "", "dir", snapDir, false},
		{[]string{"--snapshot", snapDir}, "default", "", "dir", snapDir, false},
		{[]string{"--snapshot", "s1"}, "", "", "", "", true},
		{[]string{"--store", "nats"}, "default", "", "cluster", "", false},
		{[]string{"--store", "nats@s1"}, "default", "s1", "cluster", "", false},
		{[]string{"--nats", "nats://127.0.0.1:4222"}, "default", "", "cluster", "", false},
		{[]string{"--store", "dir:x", "--nats", "nats://127.0.0.1:4222"}, "", "", "", "", true},
		{[]string{"--store", "nats://h:1/m@"}, "", "", "", "", true},
		{[]string{"--store", "s3://bucket"}, "", "", "", "", true},
	}
	for _, tt := range tests {
		o := &snapshotOptions{}
		cmd := &cobra.Command{Use: "x"}
		o.addFlags(cmd, "snapshot", &cli.NATSFlags{}, true)
		if err := cmd.ParseFlags(tt.args); err != nil {
			t.Fatal(err)
		}
		got, err := o.resolve(cmd)
		switch {
		case tt.bad && err == nil:
			t.Errorf("%v: accepted: %+v", tt.args, got)
		case !tt.bad && err != nil:
			t.Errorf("%v: %v", tt.args, err)
		case !tt.bad && (!got.set || got.model != tt.model || got.snap != tt.snap || got.uri.Kind.String() != tt.kind || got.dir != tt.dir || got.uri.Snapshot != ""):
			t.Errorf("%v: %+v; want model %q, snapshot %q, kind %s, dir %q", tt.args, got, tt.model, tt.snap, tt.kind, tt.dir)
		}
	}
}

// TestTrainingStore: train, job submit and schedule add read --store the
// same way, and refuse a snapshot selector.
func TestTrainingStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args              []string
		store, model, out string
		bad               bool
	}{
		{[]string{"--store", "nats://127.0.0.1:4222/movies"}, "nats://127.0.0.1:4222/movies", "movies", "", false},
		{[]string{"--store", "nats://127.0.0.1:4222/movies", "--model", "books"}, "", "", "", true},
		{[]string{"--store", "nats://127.0.0.1:4222/movies@s1"}, "", "", "", true},
		{[]string{"--store", "dir:/srv/models"}, "dir:/srv/models", "default", "", false},
		{[]string{"--store", "models"}, "dir:models", "default", "", false},
		{[]string{"--store", "nats"}, "nats", "default", "", false},
		{[]string{"--out", "dir:/tmp/m"}, "", "default", "/tmp/m", false},
		{[]string{"--out", "nats://h:1/m"}, "", "", "", true},
	}
	for _, tt := range tests {
		o := newTrainOptions()
		cmd := &cobra.Command{Use: "x"}
		o.addFlags(cmd)
		if err := cmd.ParseFlags(tt.args); err != nil {
			t.Fatal(err)
		}
		sp := o.spec
		err := trainingStore(cmd, &sp)
		switch {
		case tt.bad && err == nil:
			t.Errorf("%v: accepted: store %q model %q", tt.args, sp.Store, sp.Model)
		case !tt.bad && err != nil:
			t.Errorf("%v: %v", tt.args, err)
		case tt.bad:
		case tt.store == "" && sp.Store != job.DefaultSpec().Store, tt.store != "" && sp.Store != tt.store, sp.Model != tt.model, sp.Out != tt.out:
			t.Errorf("%v: store %q model %q out %q; want %q %q %q", tt.args, sp.Store, sp.Model, sp.Out, tt.store, tt.model, tt.out)
		}
	}
}
