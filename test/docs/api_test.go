package docs

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/dataset"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/serve"
)

// sourceRoutes reads the "METHOD /path" patterns a file registers on its
// ServeMux.
func sourceRoutes(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), file))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	re := regexp.MustCompile(`(?:mux\.Handle(?:Func)?|[rR]oute)\("([A-Z]+ /[^"]*)"`)
	for _, m := range re.FindAllStringSubmatch(string(data), -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}

// TestAPIRoutesDocumented: docs/api.md has a section for every route the
// coordinator and serve register, and none for a route they do not.
func TestAPIRoutesDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string][]string{}
	part := ""
	heading := regexp.MustCompile("^#+ `([A-Z]+ /[^`]*)`")
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "## ") {
			part = strings.TrimPrefix(line, "## ")
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			documented[part] = append(documented[part], m[1])
		}
	}
	for part, file := range map[string]string{"Coordinator API": "coordinator/http.go", "Serve API": "serve/http.go"} {
		want := sourceRoutes(t, file)
		if len(want) == 0 {
			t.Fatalf("no routes found in %s", file)
		}
		have := documented[part]
		sort.Strings(have)
		for _, r := range want {
			if !slices.Contains(have, r) {
				t.Errorf("docs/api.md, %s: no section for %s (registered in %s)", part, r, file)
			}
		}
		for _, r := range have {
			if !slices.Contains(want, r) {
				t.Errorf("docs/api.md, %s: documents %s, which %s does not register", part, r, file)
			}
		}
	}
}

// jsonTypes are the types a `<!-- json: NAME -->` marker may name: a JSON
// example under it must decode into the type with no unknown field.
var jsonTypes = map[string]func() any{
	"object":                      func() any { return &map[string]any{} },
	"coordinator.APIError":        func() any { return &coordinator.APIError{} },
	"coordinator.NodeStatus":      func() any { return &coordinator.NodeStatus{} },
	"coordinator.ClusterStatus":   func() any { return &coordinator.ClusterStatus{} },
	"coordinator.ClientConfig":    func() any { return &coordinator.ClientConfig{} },
	"coordinator.ServerInfo":      func() any { return &coordinator.ServerInfo{} },
	"coordinator.RemoveRequest":   func() any { return &coordinator.RemoveRequest{} },
	"coordinator.SubmitRequest":   func() any { return &coordinator.SubmitRequest{} },
	"coordinator.SubmitResponse":  func() any { return &coordinator.SubmitResponse{} },
	"coordinator.JobList":         func() any { return &coordinator.JobList{} },
	"coordinator.JobLogs":         func() any { return &coordinator.JobLogs{} },
	"coordinator.ScheduleList":    func() any { return &coordinator.ScheduleList{} },
	"coordinator.ScheduleRequest": func() any { return &coordinator.ScheduleRequest{} },
	"job.Result":                  func() any { return &job.Result{} },
	"serve.Recommendation":        func() any { return &serve.Recommendation{} },
	"serve.RecommendRequest":      func() any { return &serve.RecommendRequest{} },
	"serve.BatchAnswer":           func() any { return &serve.BatchAnswer{} },
	"serve.FoldInAnswer":          func() any { return &serve.FoldInAnswer{} },
	"serve.SimilarAnswer":         func() any { return &serve.SimilarAnswer{} },
	"serve.SimilarUsersAnswer":    func() any { return &serve.SimilarUsersAnswer{} },
	"checkpoint.Manifest":         func() any { return &checkpoint.Manifest{} },
	"dataset.Manifest":            func() any { return &dataset.Manifest{} },
	"coordinator.ScheduleStatus":  func() any { return &coordinator.ScheduleStatus{} },
	"coordinator.WorkerStatus":    func() any { return &coordinator.WorkerStatus{} },
	"coordinator.ServerStatus":    func() any { return &coordinator.ServerStatus{} },
	"coordinator.JobSummary":      func() any { return &coordinator.JobSummary{} },
	"checkpoint.FileInfo":         func() any { return &checkpoint.FileInfo{} },
	"serve.ScoredItem":            func() any { return &serve.ScoredItem{} },
	"serve.RatingRequest":         func() any { return &serve.RatingRequest{} },
	"job.Spec":                    func() any { return &job.Spec{} },
	"job.Iteration":               func() any { return &job.Iteration{} },
	"job.Progress":                func() any { return &job.Progress{} },
	"job.CheckpointRef":           func() any { return &job.CheckpointRef{} },
	"coordinator.Event":           func() any { return &coordinator.Event{} },
	"coordinator.Schedule":        func() any { return &coordinator.Schedule{} },
}

// TestJSONExamples: every ```json block of the README and the docs says
// what it shows (`<!-- json: TYPE -->` on the line before it) and decodes
// into that type with no unknown field; a manifest passes the reader's
// checks.
func TestJSONExamples(t *testing.T) {
	root := repoRoot(t)
	marker := regexp.MustCompile(`^<!-- json: (.+?) -->$`)
	n := 0
	for _, doc := range documents(t) {
		data, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for _, b := range markdownBlocks(t, filepath.Join(root, doc), doc) {
			if b.info != "json" {
				continue
			}
			where := doc + ":" + strconv.Itoa(b.line)
			var typ string
			if b.line >= 2 {
				if m := marker.FindStringSubmatch(strings.TrimSpace(lines[b.line-2])); m != nil {
					typ = m[1]
				}
			}
			if typ == "" {
				t.Errorf("%s: a json block without a <!-- json: TYPE --> marker on the line before it", where)
				continue
			}
			mk, ok := jsonTypes[typ]
			if !ok {
				t.Errorf("%s: unknown type %q in the marker", where, typ)
				continue
			}
			n++
			v := mk()
			dec := json.NewDecoder(bytes.NewReader([]byte(b.body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil {
				t.Errorf("%s: the example is not a %s: %v", where, typ, err)
				continue
			}
			if dec.More() {
				t.Errorf("%s: more than one JSON value", where)
			}
			if m, ok := v.(*checkpoint.Manifest); ok {
				if err := m.Check(); err != nil {
					t.Errorf("%s: the example manifest fails the reader's checks: %v", where, err)
				}
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d JSON examples checked", n)
	}
}

// TestMetricsDocumented: every Prometheus series the coordinator, the
// workers and serve export is described in docs/api.md or
// docs/runbook.md, and the docs name no series that does not exist.
func TestMetricsDocumented(t *testing.T) {
	root := repoRoot(t)
	src := exportedMetrics(t)
	var docs strings.Builder
	for _, d := range []string{"api.md", "runbook.md"} {
		data, err := os.ReadFile(filepath.Join(root, "docs", d))
		if err != nil {
			t.Fatal(err)
		}
		docs.Write(data)
	}
	mentioned := regexp.MustCompile("cofactor_[a-z0-9_]+").FindAllString(docs.String(), -1)
	for _, name := range src {
		if !slices.Contains(mentioned, name) {
			t.Errorf("metric %s is in neither docs/api.md nor docs/runbook.md", name)
		}
	}
	for _, name := range mentioned {
		if !exported(src, name) {
			t.Errorf("the docs name metric %s, which nothing exports", name)
		}
	}
}

// exportedMetrics returns the names of the Prometheus series the
// coordinator, the workers and serve register, read from their sources
// (tests left out).
func exportedMetrics(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	var src []string
	re := regexp.MustCompile(`(?:Name:\s*|desc\()"(cofactor_[a-z0-9_]+)"`)
	for _, dir := range []string{"coordinator", "worker", "serve"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(f string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(f, ".go") || strings.HasSuffix(f, "_test.go") {
				return err
			}
			data, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllStringSubmatch(string(data), -1) {
				src = append(src, m[1])
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(src) < 10 {
		t.Fatalf("found only %d metric names in the sources", len(src))
	}
	return src
}

// exported reports whether name is one of src, or a histogram's series
// (_bucket, _sum, _count) of one.
func exported(src []string, name string) bool {
	for _, suf := range []string{"", "_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, suf); ok && slices.Contains(src, b) {
			return true
		}
	}
	return false
}
