package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// fillURIStore writes model "movies" (v1, then v2 = v1 with doubled item
// factors, published as its latest) and model "default" (d1) into repo.
func fillURIStore(t *testing.T, repo *checkpoint.Repo) {
	t.Helper()
	ctx := context.Background()
	for n, id := range []string{"v1", "v2"} {
		ts := handSnapshot(float32(n + 1))
		ts.model = "movies"
		ts.write(t, repo, id)
	}
	handSnapshot(1).write(t, repo, "d1")
	if err := repo.Publish(ctx, "movies", "v2"); err != nil {
		t.Fatal(err)
	}
	if err := repo.Publish(ctx, "default", "d1"); err != nil {
		t.Fatal(err)
	}
}

// uriStores returns the store flags of model "movies" in three spellings
// of the URI form — a NATS server (nats://HOST:PORT/movies), dir:PATH and
// a bare PATH (with --model movies) — each taking a selector suffix.
func uriStores(t *testing.T) map[string]func(sel string) []string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "store")
	d := checkpoint.DirStore{Root: root}
	fillURIStore(t, checkpoint.NewRepo(d, d))

	ns, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	bs, err := checkpoint.OpenBlobStore(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	fillURIStore(t, checkpoint.NewRepo(bs, bs))
	url := ns.ClientURL()
	return map[string]func(string) []string{
		"nats": func(sel string) []string { return []string{"--store", url + "/movies" + sel} },
		"dir":  func(sel string) []string { return []string{"--store", "dir:" + root + sel, "--model", "movies"} },
		"path": func(sel string) []string { return []string{"--store", root + sel, "--model", "movies"} },
	}
}

// TestStoreURIEveryCommand: each command that reads a snapshot takes the
// same --store URI, with the model's latest by default and @ID for one
// snapshot, from a NATS server and from a directory alike.
func TestStoreURIEveryCommand(t *testing.T) {
	t.Parallel()
	testCSV := writeFile(t, t.TempDir(), "test.csv", "user,item,rating\nalice,i0,1\nbob,i1,1\ncarol,i5,1\n")
	for form, store := range uriStores(t) {
		for _, sel := range []struct{ suffix, id, score string }{{"", "v2", "4"}, {"@latest", "v2", "4"}, {"@v1", "v1", "2"}} {
			run := func(what string, args ...string) string {
				t.Helper()
				code, stdout, stderr := runCLI(t, append(args, store(sel.suffix)...)...)
				if code != 0 {
					t.Errorf("%s %s%s: exit %d: %s", form, what, sel.suffix, code, stderr)
				}
				return stdout
			}
			if got, want := run("recommend", "recommend", "--user", "alice", "--k", "1", "--json"),
				`{"user":"alice","items":[{"item":"i3","score":`+sel.score+`}]}`+"\n"; got != want {
				t.Errorf("%s recommend%s: %q, want %q", form, sel.suffix, got, want)
			}
			for _, c := range [][]string{{"similar", "--item", "i5", "--k", "1"}, {"similar-users", "--user", "alice", "--k", "1"}} {
				if got := run(c[0], c...); !strings.Contains(got, "(snapshot "+sel.id+")") {
					t.Errorf("%s %s%s: %q does not name snapshot %s", form, c[0], sel.suffix, got, sel.id)
				}
			}
			var rep struct{ Snapshot string }
			if json.Unmarshal([]byte(run("evaluate", "evaluate", "--test", testCSV, "--json")), &rep); rep.Snapshot != sel.id {
				t.Errorf("%s evaluate%s: snapshot %q, want %s", form, sel.suffix, rep.Snapshot, sel.id)
			}
			var show struct {
				ID     string `json:"id"`
				Model  string `json:"model"`
				Latest bool   `json:"latest"`
			}
			if json.Unmarshal([]byte(run("snapshot show", "snapshot", "show", "--json")), &show); show.ID != sel.id || show.Model != "movies" || show.Latest != (sel.id == "v2") {
				t.Errorf("%s snapshot show%s: %+v, want %s", form, sel.suffix, show, sel.id)
			}
			if got := run("snapshot verify", "snapshot", "verify"); !strings.HasPrefix(got, "ok: ") || !strings.Contains(got, "snapshot "+sel.id+" of model movies") {
				t.Errorf("%s snapshot verify%s: %q", form, sel.suffix, got)
			}
			var exp struct{ Snapshot string }
			out := filepath.Join(t.TempDir(), "export")
			if json.Unmarshal([]byte(run("snapshot export", "snapshot", "export", "--format", "csv", "--out", out, "--json")), &exp); exp.Snapshot != sel.id {
				t.Errorf("%s snapshot export%s: snapshot %q, want %s", form, sel.suffix, exp.Snapshot, sel.id)
			}
			pulled := filepath.Join(t.TempDir(), "pulled")
			run("snapshot pull", "snapshot", "pull", "--out", pulled)
			if md, err := checkpoint.ReadDir(context.Background(), pulled); err != nil || md.Manifest.ID != sel.id {
				t.Errorf("%s snapshot pull%s: %v", form, sel.suffix, err)
			}
		}
		// list: the model's snapshots only, and its latest.
		var list listJSON
		oneJSON(t, func() string {
			_, out, _ := runCLI(t, append([]string{"snapshot", "list", "--json"}, store("")...)...)
			return out
		}(), &list)
		if len(list.Snapshots) != 2 || list.Snapshots[0].ID != "v1" || list.Snapshots[1].ID != "v2" || !maps(list.Latest, map[string]string{"movies": "v2"}) {
			t.Errorf("%s snapshot list: %+v", form, list)
		}
		if code, _, stderr := runCLI(t, append([]string{"snapshot", "list"}, store("@v1")...)...); code != 2 || !strings.Contains(stderr, "list takes a store") {
			t.Errorf("%s snapshot list of a snapshot: exit %d, %s", form, code, stderr)
		}
		// serve follows the latest, or serves one snapshot.
		for _, sel := range []struct{ suffix, id string }{{"", "v2"}, {"@v1", "v1"}} {
			base, stop := startServe(t, store(sel.suffix)...)
			waitSnapshot(t, base, sel.id)
			if code := stop(); code != 0 {
				t.Errorf("%s serve%s exited %d", form, sel.suffix, code)
			}
		}
	}
}

// TestStoreURIOlderFlags: the older spellings still work — --snapshot
// DIR, --store URI --snapshot ID|latest, --nats URL for the cluster's
// store — and the URI form is accepted where --snapshot took a directory.
func TestStoreURIOlderFlags(t *testing.T) {
	t.Parallel()
	stores := uriStores(t)
	nats := stores["nats"]("")[1]
	dir := handSnapshot(1).dir(t)
	for _, args := range [][]string{
		{"recommend", "--snapshot", dir},
		{"recommend", "--store", dir},
		{"recommend", "--store", "dir:" + dir},
		{"recommend", "--store", nats, "--snapshot", "v1"},
		{"recommend", "--snapshot", nats + "@v1"},
	} {
		code, stdout, stderr := runCLI(t, append(args, "--user", "alice", "--k", "1", "--json")...)
		if want := `{"user":"alice","items":[{"item":"i3","score":2}]}` + "\n"; code != 0 || stdout != want {
			t.Errorf("%v: exit %d, %q %s; want %q", args, code, stdout, stderr, want)
		}
	}
	code, stdout, stderr := runCLI(t, "recommend", "--store", nats, "--snapshot", "latest", "--model", "movies", "--user", "alice", "--k", "1", "--json")
	if want := `{"user":"alice","items":[{"item":"i3","score":4}]}` + "\n"; code != 0 || stdout != want {
		t.Errorf("--snapshot latest: exit %d, %q %s; want %q", code, stdout, stderr, want)
	}
	for _, args := range [][]string{
		{"snapshot", "verify", dir},
		{"snapshot", "verify", "--snapshot", dir},
		{"snapshot", "pull", "--store", nats, "--snapshot", "v1", "--out", filepath.Join(t.TempDir(), "p")},
		{"snapshot", "verify", nats + "@v1"},
		{"snapshot", "show", "--store", nats, "--snapshot", "v1"},
	} {
		if code, _, stderr := runCLI(t, args...); code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, stderr)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"recommend", "--store", nats + "@v1", "--snapshot", "v2", "--user", "alice"}, "name different snapshots"},
		{[]string{"recommend", "--store", nats, "--model", "books", "--user", "alice"}, "name different models"},
		{[]string{"recommend", "--store", nats + "@", "--user", "alice"}, "names no snapshot after '@'"},
		{[]string{"recommend", "--store", nats + "@nope", "--user", "alice"}, "no snapshot nope in"},
		{[]string{"snapshot", "verify", dir, "--store", nats}, "not both"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestStoreURITraining: train and job submit take the same URI: a
// nats:// URI's /MODEL names the model trained, a bare path is a
// directory store, and a snapshot selector is refused.
func TestStoreURITraining(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := writeFile(t, dir, "r.csv", "user,item,rating\nalice,i0,4\nalice,i1,3\nbob,i0,5\nbob,i2,1\ncarol,i1,2\ncarol,i2,5\n")
	ns, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	for _, store := range []string{ns.ClientURL() + "/trained", "dir:" + filepath.Join(dir, "store"), filepath.Join(dir, "bare")} {
		args := []string{"train", "--input", in, "--rank", "2", "--iterations", "2", "--test-fraction", "0", "--workers", "1",
			"--models", filepath.Join(dir, "kept"), "--store", store}
		model := "default"
		if strings.HasPrefix(store, "nats://") {
			model = "trained"
		} else if err := mkdir(filepath.Join(dir, "store"), filepath.Join(dir, "bare")); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := runCLI(t, args...); code != 0 {
			t.Fatalf("train --store %s: exit %d: %s", store, code, stderr)
		}
		code, stdout, stderr := runCLI(t, "recommend", "--store", store, "--model", model, "--user", "alice", "--k", "1", "--json")
		if code != 0 || !strings.HasPrefix(stdout, `{"user":"alice","items":[{"item":`) {
			t.Errorf("recommend --store %s after train --store %s: exit %d, %q %s", store, store, code, stdout, stderr)
		}
	}
	if code, _, stderr := runCLI(t, "train", "--input", in, "--store", ns.ClientURL()+"/m@v1"); code != 2 || !strings.Contains(stderr, "names a snapshot") {
		t.Errorf("train --store URI@ID: exit %d, %s", code, stderr)
	}

	var specs []job.Spec
	coord := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Spec job.Spec `json:"spec"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		specs = append(specs, req.Spec)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"job_id": "j1"}`))
	}))
	defer coord.Close()
	code, _, stderr := runCLI(t, "--coordinator", coord.URL, "job", "submit", "--input", in, "--store", "nats://10.0.0.1:4222/movies", "--out", "dir:"+filepath.Join(dir, "copy"))
	if code != 0 || len(specs) != 1 {
		t.Fatalf("job submit: exit %d: %s", code, stderr)
	}
	if sp := specs[0]; sp.Model != "movies" || sp.Store != "nats://10.0.0.1:4222/movies" || sp.Out != filepath.Join(dir, "copy") {
		t.Errorf("job submit sent model %q, store %q, out %q", sp.Model, sp.Store, sp.Out)
	}
}

func mkdir(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}
