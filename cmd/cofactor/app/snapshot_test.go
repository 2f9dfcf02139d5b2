package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/transport/embedded"
)

// writeTestSnapshot writes snapshot id of model into the repository: 2
// user blocks × 2 item blocks, rank 2, and a final snapshot's seen items.
func writeTestSnapshot(t *testing.T, r *checkpoint.Repo, id, model string, created time.Time) {
	t.Helper()
	ctx := context.Background()
	m := &checkpoint.Manifest{ID: id, Model: model, Job: "job-" + model, Iteration: 3, Rank: 2, Lambda: 0.1,
		Users: 3, Items: 3, UserBlocks: 2, ItemBlocks: 2, Final: true, Created: created}
	for _, b := range []*checkpoint.Block{
		{Side: checkpoint.SideUsers, Index: 0, IDs: []string{"u1", "u2"}, Factors: []float32{1, 2, 3, 4}},
		{Side: checkpoint.SideUsers, Index: 1, IDs: []string{"u3"}, Factors: []float32{5, 6}},
		{Side: checkpoint.SideItems, Index: 0, IDs: []string{"i1"}, Factors: []float32{0.5, -0.5}},
		{Side: checkpoint.SideItems, Index: 1, IDs: []string{"i2", "i3"}, Factors: []float32{1.25, 0, -2, 3}},
	} {
		b.Rank = 2
		b.Counts = make([]int32, len(b.IDs))
		fi, err := r.WriteBlock(ctx, id, b)
		if err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, fi)
	}
	for b, s := range []*checkpoint.Seen{{Index: 0, Ptr: []int64{0, 1, 3}, Items: []int32{0, 1, 2}}, {Index: 1, Ptr: []int64{0, 0}}} {
		fi, err := r.WriteSeen(ctx, id, s)
		if err != nil {
			t.Fatal(b, err)
		}
		m.Files = append(m.Files, fi)
	}
	if err := r.Commit(ctx, id, m); err != nil {
		t.Fatal(err)
	}
}

// testSnapshotDir writes the test snapshot as a snapshot directory.
func testSnapshotDir(t *testing.T) string {
	t.Helper()
	store := checkpoint.DirStore{Root: t.TempDir()}
	r := checkpoint.NewRepo(store, store)
	writeTestSnapshot(t, r, "job-a-it0003", "default", time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC))
	dir := filepath.Join(t.TempDir(), "snap")
	if err := checkpoint.CopyToDir(context.Background(), r, "job-a-it0003", dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// oneJSON decodes stdout, which must hold exactly one JSON object.
func oneJSON(t *testing.T, stdout string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value on stdout:\n%s", stdout)
	}
}

func damage(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotVerify(t *testing.T) {
	t.Parallel()
	dir := testSnapshotDir(t)
	code, stdout, stderr := runCLI(t, "snapshot", "verify", dir)
	if want := "ok: " + dir + ": snapshot job-a-it0003 of model default (iteration 3, final): 3 users × 3 items, rank 2, 7 files, "; code != 0 || !strings.HasPrefix(stdout, want) || stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and %q…", code, stdout, stderr, want)
	}
	code, stdout, stderr = runCLI(t, "snapshot", "verify", dir, "--json")
	var ok map[string]any
	oneJSON(t, stdout, &ok)
	if code != 0 || stderr != "" || ok["ok"] != true || ok["id"] != "job-a-it0003" || ok["path"] != dir || ok["users"] != 3.0 || ok["rank"] != 2.0 {
		t.Errorf("--json: exit %d, %v, stderr %q", code, ok, stderr)
	}
}

// CONTRACT: verify exits 1 naming the bad file.
func TestSnapshotVerifyNamesTheBadFile(t *testing.T) {
	t.Parallel()
	hex := "[0-9a-f]{8}"
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string // a regular expression for the whole stderr
	}{
		{"flipped byte", func(t *testing.T, dir string) {
			damage(t, filepath.Join(dir, "users.0001.cfcf"), func(b []byte) []byte { b[27] ^= 1; return b })
		}, `error: DIR: checkpoint: corrupt snapshot: users\.0001\.cfcf: CRC-32C ` + hex + `, the manifest says ` + hex + `\n`},
		{"truncated", func(t *testing.T, dir string) {
			damage(t, filepath.Join(dir, "items.0001.cfcf"), func(b []byte) []byte { return b[:40] })
		}, `error: DIR: checkpoint: corrupt snapshot: items\.0001\.cfcf: 40 bytes, the manifest says 65\n`},
		{"grown", func(t *testing.T, dir string) {
			damage(t, filepath.Join(dir, "items.0000.cfcf"), func(b []byte) []byte { return append(b, 0) })
		}, `error: DIR: checkpoint: corrupt snapshot: items\.0000\.cfcf: 48 bytes, more than the 47 expected\n`},
		{"removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "users.0000.cfcf")); err != nil {
				t.Fatal(err)
			}
		}, `error: DIR: checkpoint: not found: users\.0000\.cfcf\n`},
		{"two bad files", func(t *testing.T, dir string) {
			damage(t, filepath.Join(dir, "users.0000.cfcf"), func(b []byte) []byte { b[40] ^= 1; return b })
			damage(t, filepath.Join(dir, "items.0001.cfcf"), func(b []byte) []byte { b[40] ^= 1; return b })
		}, `error: DIR: checkpoint: corrupt snapshot: items\.0001\.cfcf: CRC-32C ` + hex + `, the manifest says ` + hex + ` \(and 1 more bad files\)\n`},
		{"seen file", func(t *testing.T, dir string) {
			damage(t, filepath.Join(dir, "seen.0000.cfsn"), func(b []byte) []byte { b[30] ^= 1; return b })
		}, `error: DIR: checkpoint: corrupt snapshot: seen\.0000\.cfsn: CRC-32C ` + hex + `, the manifest says ` + hex + `\n`},
		{"manifest", func(t *testing.T, dir string) {
			damage(t, filepath.Join(dir, "manifest.json"), func(b []byte) []byte { return b[:len(b)/2] })
		}, `error: DIR: manifest\.json: checkpoint: corrupt snapshot: manifest\.json: unexpected end of JSON input\n`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := testSnapshotDir(t)
			tc.damage(t, dir)
			want := regexp.MustCompile("^" + strings.ReplaceAll(tc.want, "DIR", regexp.QuoteMeta(dir)) + "$")
			code, stdout, stderr := runCLI(t, "snapshot", "verify", dir)
			if code != 1 || stdout != "" || !want.MatchString(stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %s", code, stdout, stderr, want)
			}
			code, stdout, stderr2 := runCLI(t, "snapshot", "verify", "--json", dir)
			var res struct {
				OK       bool   `json:"ok"`
				Path     string `json:"path"`
				Problems []struct {
					File, Error string
				} `json:"problems"`
			}
			oneJSON(t, stdout, &res)
			if code != 1 || res.OK || res.Path != dir || len(res.Problems) == 0 || stderr2 != stderr {
				t.Errorf("--json: exit %d, %+v, stderr %q", code, res, stderr2)
			}
			for _, p := range res.Problems {
				if p.File == "" || !strings.Contains(p.Error, p.File) {
					t.Errorf("--json: problem %+v does not name its file", p)
				}
			}
		})
	}
}

func TestSnapshotVerifyUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := writeFile(t, dir, "f.txt", "x")
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"snapshot", "verify"}, "error: which snapshot? give a snapshot directory, or --store URI[@ID]\n"},
		{[]string{"snapshot", "verify", dir, dir}, fmt.Sprintf("error: unexpected argument %q\n", dir)},
		{[]string{"snapshot", "verify", dir}, "error: " + dir + " is not a snapshot directory (no manifest.json)\n"},
		{[]string{"snapshot", "verify", file}, "error: " + file + " is not a snapshot directory (it is a file)\n"},
		{[]string{"snapshot", "verify", missing}, "error: stat " + missing + ": no such file or directory\n"},
		{[]string{"snapshot", "verify", "--bogus", dir}, "error: unknown flag: --bogus\n"},
	} {
		code, stdout, stderr := runCLI(t, tc.args...)
		if code != 2 || stderr != tc.want || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2, %q", tc.args[2:], code, stderr, stdout, tc.want)
		}
	}
}

func TestSnapshotExport(t *testing.T) {
	t.Parallel()
	dir := testSnapshotDir(t)
	md, err := checkpoint.ReadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "export")
	code, stdout, stderr := runCLI(t, "snapshot", "export", dir, "--format", "npy", "--out", out)
	want := "exported job-a-it0003 (3 users × 3 items, rank 2) to " + out + ": user_factors.npy, item_factors.npy, user_ids.txt, item_ids.txt\n"
	if code != 0 || stdout != want || stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, want)
	}
	for _, side := range []struct {
		npy, ids string
		wantIDs  []string
		want     []float32
	}{{"user_factors.npy", "user_ids.txt", md.UserIDs, md.X}, {"item_factors.npy", "item_ids.txt", md.ItemIDs, md.Y}} {
		f, err := os.Open(filepath.Join(out, side.npy))
		if err != nil {
			t.Fatal(err)
		}
		shape, data, err := checkpoint.ReadNPY(f)
		f.Close()
		if err != nil || !slices.Equal(shape, []int{3, 2}) || !slices.Equal(data, side.want) {
			t.Errorf("%s: shape %v, %v, %v; want %v", side.npy, shape, data, err, side.want)
		}
		b, _ := os.ReadFile(filepath.Join(out, side.ids))
		if string(b) != strings.Join(side.wantIDs, "\n")+"\n" {
			t.Errorf("%s: %q", side.ids, b)
		}
	}

	// CSV, into the previous export (replaced), with --json.
	code, stdout, stderr = runCLI(t, "snapshot", "export", dir, "--format", "csv", "--out", out, "--json")
	var res map[string]any
	oneJSON(t, stdout, &res)
	if code != 0 || stderr != "" || res["format"] != "csv" || res["users"] != 3.0 || res["rank"] != 2.0 || res["snapshot"] != "job-a-it0003" {
		t.Fatalf("csv: exit %d, %v, %q", code, res, stderr)
	}
	b, _ := os.ReadFile(filepath.Join(out, "item_factors.csv"))
	if want := "id,f0,f1\ni1,0.5,-0.5\ni2,1.25,0\ni3,-2,3\n"; string(b) != want {
		t.Errorf("item_factors.csv:\n%s\nwant\n%s", b, want)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 4 {
		t.Errorf("%d files after replacing the npy export with csv", len(ents))
	}
}

func TestSnapshotExportFailures(t *testing.T) {
	t.Parallel()
	dir := testSnapshotDir(t)
	parent := t.TempDir()
	foreign := filepath.Join(parent, "foreign")
	if err := os.Mkdir(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, foreign, "notes.txt", "mine")
	out := filepath.Join(parent, "out")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{dir, "--format", "xml", "--out", out}, "error: --format \"xml\": want npy, csv or parquet\n"},
		{[]string{dir}, "error: --out DIR is required\n"},
		{[]string{"--out", out}, "error: which snapshot? give a snapshot directory, or --store URI[@ID]\n"},
		{[]string{parent, "--out", out}, "error: " + parent + " is not a snapshot directory (no manifest.json)\n"},
		{[]string{dir, "--out", foreign}, "error: --out: checkpoint: target exists and is not a snapshot: " + foreign + " holds notes.txt, which an export does not write\n"},
		{[]string{dir, "--out", filepath.Join(parent, "no", "such")}, "error: --out: stat " + filepath.Join(parent, "no") + ": no such file or directory\n"},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"snapshot", "export"}, tc.args...)...)
		if code != 2 || stderr != tc.want || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2, %q", tc.args, code, stderr, stdout, tc.want)
		}
	}
	// A damaged snapshot: exit 1 naming the file, nothing at --out.
	damage(t, filepath.Join(dir, "items.0001.cfcf"), func(b []byte) []byte { b[30] ^= 1; return b })
	code, stdout, stderr := runCLI(t, "snapshot", "export", dir, "--out", out)
	want := regexp.MustCompile(`^error: ` + regexp.QuoteMeta(dir) + `: checkpoint: corrupt snapshot: items\.0001\.cfcf: CRC-32C [0-9a-f]{8}, the manifest says [0-9a-f]{8}\n$`)
	if code != 1 || stdout != "" || !want.MatchString(stderr) {
		t.Errorf("damaged: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 1 {
		t.Errorf("the output's parent holds %d entries, want only foreign", len(ents))
	}
	if b, _ := os.ReadFile(filepath.Join(foreign, "notes.txt")); string(b) != "mine" {
		t.Errorf("the refused directory changed")
	}
}

// writeTestStore fills a repository with three snapshots of two models
// and publishes one of each.
func writeTestStore(t *testing.T, r *checkpoint.Repo) {
	t.Helper()
	t0 := time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)
	writeTestSnapshot(t, r, "a-it0003", "alpha", t0)
	writeTestSnapshot(t, r, "b-it0003", "beta", t0.Add(time.Hour))
	writeTestSnapshot(t, r, "a2-it0003", "alpha", t0.Add(2*time.Hour))
	ctx := context.Background()
	if err := r.Publish(ctx, "alpha", "a-it0003"); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(ctx, "beta", "b-it0003"); err != nil {
		t.Fatal(err)
	}
}

// tableRows splits a table into lines of fields.
func tableRows(s string) [][]string {
	var out [][]string
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		out = append(out, strings.Fields(l))
	}
	return out
}

type listJSON struct {
	Snapshots []struct {
		ID        string    `json:"id"`
		Model     string    `json:"model"`
		Job       string    `json:"job"`
		Iteration int       `json:"iteration"`
		Final     bool      `json:"final"`
		Latest    bool      `json:"latest"`
		Created   time.Time `json:"created"`
		Users     int       `json:"users"`
		Items     int       `json:"items"`
		Rank      int       `json:"rank"`
		Files     int       `json:"files"`
	} `json:"snapshots"`
	Latest map[string]string `json:"latest"`
}

// checkList runs `snapshot list` with the store flags and checks the
// table and the JSON.
func checkList(t *testing.T, store ...string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, append([]string{"snapshot", "list"}, store...)...)
	want := [][]string{
		{"ID", "MODEL", "JOB", "ITERATION", "FINAL", "CREATED", "USERS", "ITEMS", "RANK", "LATEST"},
		{"a-it0003", "alpha", "job-alpha", "3", "yes", "2024-06-01T10:00:00Z", "3", "3", "2", "*"},
		{"b-it0003", "beta", "job-beta", "3", "yes", "2024-06-01T11:00:00Z", "3", "3", "2", "*"},
		{"a2-it0003", "alpha", "job-alpha", "3", "yes", "2024-06-01T12:00:00Z", "3", "3", "2"},
	}
	if got := tableRows(stdout); code != 0 || stderr != "" || !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("list %v: exit %d, stderr %q, table\n%s", store, code, stderr, stdout)
	}
	code, stdout, stderr = runCLI(t, append([]string{"snapshot", "list", "--json"}, store...)...)
	var res listJSON
	oneJSON(t, stdout, &res)
	if code != 0 || stderr != "" || len(res.Snapshots) != 3 || res.Snapshots[0].ID != "a-it0003" || !res.Snapshots[0].Latest ||
		res.Snapshots[2].Latest || res.Snapshots[2].Files != 6 || res.Snapshots[1].Users != 3 ||
		!res.Snapshots[1].Created.Equal(time.Date(2024, 6, 1, 11, 0, 0, 0, time.UTC)) ||
		!maps(res.Latest, map[string]string{"alpha": "a-it0003", "beta": "b-it0003"}) {
		t.Errorf("list --json %v: exit %d, stderr %q, %+v", store, code, stderr, res)
	}
	code, stdout, _ = runCLI(t, append([]string{"snapshot", "list", "--json", "--model", "beta"}, store...)...)
	res = listJSON{}
	oneJSON(t, stdout, &res)
	if code != 0 || len(res.Snapshots) != 1 || res.Snapshots[0].ID != "b-it0003" || !maps(res.Latest, map[string]string{"beta": "b-it0003"}) {
		t.Errorf("list --model beta: %+v", res)
	}
	code, stdout, _ = runCLI(t, append([]string{"snapshot", "list", "--json", "--model", "gamma"}, store...)...)
	if code != 0 || stdout != `{"snapshots":[],"latest":{}}`+"\n" {
		t.Errorf("list --model gamma: exit %d, %q", code, stdout)
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkPull pulls from the store and verifies the copy.
func checkPull(t *testing.T, store ...string) {
	t.Helper()
	parent := t.TempDir()
	out := filepath.Join(parent, "pulled")
	code, stdout, stderr := runCLI(t, append([]string{"snapshot", "pull", "a2-it0003", "--out", out}, store...)...)
	if want := "pulled a2-it0003 (model alpha, 3 users × 3 items, rank 2) to " + out + "\n"; code != 0 || stdout != want || stderr != "" {
		t.Fatalf("pull: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	md, err := checkpoint.ReadDir(context.Background(), out)
	if err != nil || md.Manifest.ID != "a2-it0003" || !slices.Equal(md.UserIDs, []string{"u1", "u2", "u3"}) {
		t.Fatalf("the pulled snapshot: %v", err)
	}
	// --latest replaces the pulled snapshot with the model's latest.
	code, stdout, stderr = runCLI(t, append([]string{"snapshot", "pull", "--latest", "alpha", "--out", out, "--json"}, store...)...)
	var res map[string]any
	oneJSON(t, stdout, &res)
	if code != 0 || stderr != "" || res["id"] != "a-it0003" || res["out"] != out || res["files"] != 7.0 {
		t.Fatalf("pull --latest: exit %d, %v, %q", code, res, stderr)
	}
	if md, err := checkpoint.ReadDir(context.Background(), out); err != nil || md.Manifest.ID != "a-it0003" {
		t.Fatalf("after pull --latest: %v", err)
	}
	if code, _, stderr := runCLI(t, "snapshot", "verify", out); code != 0 {
		t.Errorf("verify of the pulled snapshot: %s", stderr)
	}
	foreign := filepath.Join(parent, "foreign")
	if err := os.Mkdir(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, foreign, "x", "mine")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nothing", "--out", filepath.Join(parent, "n")}, "error: no snapshot nothing in "},
		{[]string{"--latest", "gamma", "--out", filepath.Join(parent, "n")}, "error: model gamma has no published snapshot in "},
		{[]string{"a-it0003", "--out", foreign}, "error: --out: checkpoint: target exists and is not a snapshot: " + foreign + " holds other files\n"},
	} {
		code, stdout, stderr := runCLI(t, append(append([]string{"snapshot", "pull"}, tc.args...), store...)...)
		if code != 2 || stdout != "" || !strings.HasPrefix(stderr, tc.want) {
			t.Errorf("pull %v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 2 {
		t.Errorf("the parent holds %d entries, want pulled and foreign", len(ents))
	}
}

func TestSnapshotListPullDirStore(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "store")
	d := checkpoint.DirStore{Root: root}
	writeTestStore(t, checkpoint.NewRepo(d, d))
	checkList(t, "--store", root)
	checkList(t, "--store", "dir:"+root)
	checkPull(t, "--store", root)

	empty := t.TempDir()
	code, stdout, _ := runCLI(t, "snapshot", "list", "--store", empty)
	if code != 0 || stdout != "no snapshots in "+empty+"\n" {
		t.Errorf("an empty store: exit %d, %q", code, stdout)
	}
}

func TestSnapshotListPullNATS(t *testing.T) {
	t.Parallel()
	e, err := embedded.Start(embedded.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s, err := checkpoint.OpenBlobStore(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	writeTestStore(t, checkpoint.NewRepo(s, s))
	url := e.ClientURL()
	checkList(t, "--store", url)
	checkList(t, "--store", "nats", "--nats", url)
	checkList(t, "--nats", url)
	checkPull(t, "--store", url)
	checkPull(t, "--nats", url)
}

func TestSnapshotStoreUsage(t *testing.T) {
	t.Parallel()
	dir := testSnapshotDir(t)
	file := writeFile(t, t.TempDir(), "f", "x")
	out := filepath.Join(t.TempDir(), "out")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"list"}, "error: no store: pass --store nats://HOST:PORT[/MODEL], --store dir:PATH or --nats URL\n"},
		{[]string{"list", "--store", "nats"}, "error: --store nats needs --nats URL or --coordinator URL (or pass --store nats://HOST:PORT)\n"},
		{[]string{"list", "--store", "dir:x", "--nats", "nats://h:1"}, "error: --nats goes with --store nats only, not with --store dir:x\n"},
		{[]string{"list", "--store", "dir:"}, "error: --store \"dir:\" names no directory\n"},
		{[]string{"list", "--store", file}, "error: --store " + file + " is not a directory\n"},
		{[]string{"list", "--store", dir}, "error: " + dir + " is a snapshot directory, not a store (try: cofactor snapshot verify " + dir + ")\n"},
		{[]string{"list", "--store", dir, "--model", "a b"}, "error: --model: checkpoint: \"a b\" is not a valid snapshot ID or model name (letters, digits, _ - ., at most 200)\n"},
		{[]string{"list", "x", "--store", dir}, "error: unexpected argument \"x\"\n"},
		{[]string{"pull", "--store", dir}, "error: --out DIR is required\n"},
		{[]string{"pull", "a", "--latest", "m", "--store", dir}, "error: give a snapshot ID or --latest MODEL, not both\n"},
		{[]string{"pull", "a", "b", "--store", dir}, "error: unexpected argument \"b\"\n"},
		{[]string{"pull", "../a", "--out", out, "--store", dir}, "error: checkpoint: \"../a\" is not a valid snapshot ID or model name (letters, digits, _ - ., at most 200)\n"},
		{[]string{"pull", "a", "--store", dir}, "error: --out DIR is required\n"},
		{[]string{"pull", "a", "--out", out}, "error: no store: pass --store nats://HOST:PORT[/MODEL], --store dir:PATH or --nats URL\n"},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"snapshot"}, tc.args...)...)
		if code != 2 || stderr != tc.want || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2, %q", tc.args, code, stderr, stdout, tc.want)
		}
	}
}

// What train --out writes, verify accepts and export turns into arrays of
// the trained shape.
func TestSnapshotOfATrainedModel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := writeFile(t, dir, "r.csv", "user,item,rating\n1,10,4\n1,11,3\n2,10,5\n2,12,1\n3,11,2\n3,12,5\n")
	snap := filepath.Join(dir, "model")
	if code, _, stderr := runCLI(t, "train", "--input", in, "--rank", "3", "--iterations", "2", "--test-fraction", "0", "--out", snap); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	if code, stdout, stderr := runCLI(t, "snapshot", "verify", snap); code != 0 || !strings.HasPrefix(stdout, "ok: ") {
		t.Fatalf("verify: exit %d, %q, %q", code, stdout, stderr)
	}
	out := filepath.Join(dir, "npy")
	if code, _, stderr := runCLI(t, "snapshot", "export", snap, "--format", "npy", "--out", out); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	for name, rows := range map[string]int{"user_factors.npy": 3, "item_factors.npy": 3} {
		f, err := os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		shape, _, err := checkpoint.ReadNPY(f)
		f.Close()
		if err != nil || !slices.Equal(shape, []int{rows, 3}) {
			t.Errorf("%s: shape %v, %v", name, shape, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(out, "user_ids.txt"))
	if ids := strings.Fields(string(b)); len(ids) != 3 || !slices.Contains(ids, "2") {
		t.Errorf("user_ids.txt: %q", b)
	}
}
