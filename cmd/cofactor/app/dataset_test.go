package app

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/dataset"
	"github.com/cofactor-ml/cofactor/transport"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// TestDatasetCommands: put, list, info, rm, their JSON and their exit
// codes, against a real JetStream server.
func TestDatasetCommands(t *testing.T) {
	t.Parallel()
	e, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	url := e.ClientURL()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("user,item,rating\n")
	for i := range 500 {
		fmt.Fprintf(&b, "%d,%d,%d\n", i%37, i%23, 1+i%5)
	}
	train := writeFile(t, dir, "train.csv", b.String())
	test := writeFile(t, dir, "test.tsv", "1\t2\t3\n4\t5\t1\n")

	code, stdout, stderr := runCLI(t, "dataset", "put", "ml", train, test, "--nats", url, "--json")
	if code != 0 {
		t.Fatalf("put: exit %d, %s", code, stderr)
	}
	var put datasetSummary
	oneJSON(t, stdout, &put)
	if put.Name != "ml" || len(put.Files) != 2 || put.Files[0].Name != "train.csv" || put.Files[1].Format != "tsv" || put.Bytes != int64(b.Len()+12) {
		t.Fatalf("put: %+v", put)
	}

	code, stdout, _ = runCLI(t, "dataset", "list", "--nats", url, "--json")
	var list struct{ Datasets []datasetSummary }
	oneJSON(t, stdout, &list)
	if code != 0 || len(list.Datasets) != 1 || list.Datasets[0].Generation != put.Generation {
		t.Fatalf("list: exit %d, %+v", code, list)
	}
	code, stdout, _ = runCLI(t, "dataset", "info", "ml", "--nats", url, "--verify", "--json")
	var info datasetSummary
	oneJSON(t, stdout, &info)
	if code != 0 || !info.Verified || info.Files[0].SHA256 != put.Files[0].SHA256 {
		t.Fatalf("info: exit %d, %+v", code, info)
	}
	if code, stdout, _ = runCLI(t, "dataset", "info", "ml", "--nats", url); code != 0 || !strings.Contains(stdout, "train.csv") {
		t.Errorf("info: exit %d, %s", code, stdout)
	}

	// The caller's mistakes are exit 2, with one error line.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dataset", "put", "ml", train, "--nats", url}, `error: dataset: already exists: "ml" (put it with --replace to overwrite it)`},
		{[]string{"dataset", "put", "x", filepath.Join(dir, "nope.csv"), "--nats", url}, "no such file or directory"},
		{[]string{"dataset", "put", "x", writeFile(t, dir, "r.txt", "hello\n"), "--nats", url}, "error: r.txt: cannot detect the input format"},
		{[]string{"dataset", "put", "a/b", train, "--nats", url}, "error: dataset: invalid name"},
		{[]string{"dataset", "put", "x", train}, "error: no NATS server: pass --nats URL"},
		{[]string{"dataset", "put", "x", "--nats", url}, "want NAME and at least one FILE"},
		{[]string{"dataset", "put", "x", train, "--format", "xls", "--nats", url}, `unknown format "xls"`},
		{[]string{"dataset", "info", "nope", "--nats", url}, `error: dataset: not found: "nope"`},
		{[]string{"dataset", "rm", "nope", "--nats", url}, `error: dataset: not found: "nope"`},
		{[]string{"dataset", "frob"}, "unknown command"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "error:") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if code, _, stderr := runCLI(t, "dataset", "put", "ml", test, "--nats", url, "--replace"); code != 0 {
		t.Fatalf("put --replace: exit %d, %s", code, stderr)
	}

	// A damaged chunk: verify fails (exit 1), naming it.
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := dataset.Open(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Info(ctx, "ml")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := transport.OpenBlobs(ctx, nc, dataset.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Put(ctx, "ml/"+m.Generation+"/0/0", []byte("1\t2\t4\n4\t5\t1\n")); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "dataset", "info", "ml", "--verify", "--nats", url)
	if code != 1 || !strings.Contains(stderr, `dataset "ml": file test.tsv: chunk 0 of 1: CRC-32C`) {
		t.Errorf("verify of a damaged dataset: exit %d, %s", code, stderr)
	}

	code, stdout, _ = runCLI(t, "dataset", "rm", "ml", "--nats", url, "--json")
	if code != 0 || !strings.Contains(stdout, `"removed":true`) {
		t.Fatalf("rm: exit %d, %s", code, stdout)
	}
	if code, stdout, _ = runCLI(t, "dataset", "list", "--nats", url, "--json"); code != 0 || strings.TrimSpace(stdout) != `{"datasets":[]}` {
		t.Errorf("list after rm: exit %d, %s", code, stdout)
	}
}

// TestSubmitDatasetFlags: job submit and schedule add take --dataset and
// --test-dataset (train does not), and refuse wrong combinations before
// any request.
func TestSubmitDatasetFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--coordinator", "http://127.0.0.1:1", "job", "submit", "--dataset", "ml", "--input", "r.csv"}, "--input and --dataset cannot be combined"},
		{[]string{"--coordinator", "http://127.0.0.1:1", "job", "submit", "--dataset", "ml", "--test", "t.csv"}, "--test-dataset NAME, not --test FILE"},
		{[]string{"--coordinator", "http://127.0.0.1:1", "job", "submit", "--dataset", "ml", "--test-dataset", "t", "--test-fraction", "0.1"}, "--test-dataset and --test-fraction cannot be combined"},
		{[]string{"--coordinator", "http://127.0.0.1:1", "job", "submit", "--dataset", "../x"}, "dataset: invalid name"},
		{[]string{"--coordinator", "http://127.0.0.1:1", "schedule", "add", "n", "--cron", "@daily", "--test-dataset", "t", "--input", "r.csv"}, "--test-dataset goes with --dataset"},
		{[]string{"train", "--dataset", "ml"}, "unknown flag: --dataset"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
