package docs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The monitoring files under deploy/. test/prometheus parses the same
// files with Prometheus' own rule and PromQL parsers.
const (
	promConfigFile = "deploy/prometheus/prometheus.yml"
	alertRulesFile = "deploy/prometheus/cofactor-alerts.yaml"
	dashboardFile  = "deploy/grafana/cofactor-dashboard.json"
)

// alertingMetrics are the series CONTRACT.md names for alerting: each must
// be used by an alert rule and a dashboard panel.
var alertingMetrics = []string{
	"cofactor_job_progress_ratio",
	"cofactor_job_last_success_timestamp_seconds",
	"cofactor_snapshot_last_published_timestamp_seconds",
	"cofactor_serve_fallback_total",
	"cofactor_raft_last_index",
}

var (
	metricToken = regexp.MustCompile(`\bcofactor_[a-z0-9_]+\b`)
	upJob       = regexp.MustCompile(`\bup\{job="([^"]+)"\}`)
)

// checkExpr checks that a PromQL expression names only series that are
// exported and jobs that prometheus.yml scrapes, and returns the series.
func checkExpr(t *testing.T, where, expr string, exportedNames, jobs []string) []string {
	t.Helper()
	names := metricToken.FindAllString(expr, -1)
	for _, name := range names {
		if !exported(exportedNames, name) {
			t.Errorf("%s: %s names metric %s, which nothing exports", where, expr, name)
		}
	}
	for _, m := range upJob.FindAllStringSubmatch(expr, -1) {
		if !slices.Contains(jobs, m[1]) {
			t.Errorf("%s: job %q is not scraped by %s (jobs: %v)", where, m[1], promConfigFile, jobs)
		}
	}
	if len(names) == 0 && len(upJob.FindAllString(expr, -1)) == 0 {
		t.Errorf("%s: %s names no cofactor series", where, expr)
	}
	return names
}

// scrapeJobs reads the job names of prometheus.yml and checks that its
// rule files exist.
func scrapeJobs(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, promConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%s: %v", promConfigFile, err)
	}
	for _, f := range cfg.RuleFiles {
		if _, err := os.Stat(filepath.Join(root, filepath.Dir(promConfigFile), f)); err != nil {
			t.Errorf("%s: rule file %s: %v", promConfigFile, f, err)
		}
	}
	var jobs []string
	for _, sc := range cfg.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
	}
	if len(jobs) != 3 {
		t.Errorf("%s scrapes %v, want the coordinators, workers and serve", promConfigFile, jobs)
	}
	return jobs
}

// TestAlertRules: every alert rule names exported series and scraped
// jobs, has a severity, a summary and a description, and a valid `for`;
// together they use every series CONTRACT.md names for alerting.
func TestAlertRules(t *testing.T) {
	src := exportedMetrics(t)
	jobs := scrapeJobs(t)
	data, err := os.ReadFile(filepath.Join(repoRoot(t), alertRulesFile))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("%s: %v", alertRulesFile, err)
	}
	seen := map[string]bool{}
	used := map[string]bool{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			where := alertRulesFile + ": " + g.Name + "/" + r.Alert
			if !regexp.MustCompile(`^Cofactor[A-Z][A-Za-z]+$`).MatchString(r.Alert) || seen[r.Alert] {
				t.Errorf("%s: the alert's name must be CofactorSomething and unique", where)
			}
			seen[r.Alert] = true
			for _, name := range checkExpr(t, where, r.Expr, src, jobs) {
				used[name] = true
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", where, r.For, err)
				}
			}
			if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", where, sev)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", where, a)
				}
			}
		}
	}
	if len(seen) < 10 {
		t.Errorf("only %d alerts", len(seen))
	}
	for _, name := range alertingMetrics {
		if !used[name] {
			t.Errorf("no alert rule uses %s", name)
		}
	}
}

// TestGrafanaDashboard: the dashboard's panels have unique IDs, a title, a
// description and a unit, labelled axes, the datasource variable, and
// queries of exported series only; they tile the 24-column grid without
// overlapping and show every series CONTRACT.md names for alerting.
func TestGrafanaDashboard(t *testing.T) {
	src := exportedMetrics(t)
	jobs := scrapeJobs(t)
	data, err := os.ReadFile(filepath.Join(repoRoot(t), dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	}
	type panel struct {
		ID          int    `json:"id"`
		Type        string `json:"type"`
		Title       string `json:"title"`
		Description string `json:"description"`
		Datasource  struct {
			Type, UID string
		} `json:"datasource"`
		GridPos struct {
			H, W, X, Y int
		} `json:"gridPos"`
		FieldConfig struct {
			Defaults struct {
				Unit   string `json:"unit"`
				Custom struct {
					AxisLabel string `json:"axisLabel"`
				} `json:"custom"`
			} `json:"defaults"`
		} `json:"fieldConfig"`
		Targets []target `json:"targets"`
	}
	var dash struct {
		UID        string  `json:"uid"`
		Title      string  `json:"title"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct{ Name, Type, Query string } `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("%s: no uid or title", dashboardFile)
	}
	if len(dash.Templating.List) != 1 || dash.Templating.List[0].Name != "datasource" || dash.Templating.List[0].Query != "prometheus" {
		t.Errorf("%s: want one templating variable, datasource (prometheus): %+v", dashboardFile, dash.Templating.List)
	}
	ids := map[int]bool{}
	cells := map[[2]int]string{}
	used := map[string]bool{}
	charts := 0
	for _, p := range dash.Panels {
		where := dashboardFile + ": panel " + p.Title
		if p.ID == 0 || ids[p.ID] {
			t.Errorf("%s: id %d is zero or taken", where, p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("%s: gridPos %+v is off the 24-column grid", where, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := cells[[2]int{x, y}]; ok {
					t.Errorf("%s overlaps %s at column %d, row %d", where, other, x, y)
				}
				cells[[2]int{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		charts++
		if p.Title == "" || p.Description == "" || p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("%s: a panel needs a title, a description and a unit", where)
		}
		if p.Type == "timeseries" && p.FieldConfig.Defaults.Custom.AxisLabel == "" {
			t.Errorf("%s: no axis label", where)
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("%s: datasource %q, want ${datasource}", where, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no query", where)
		}
		for _, tg := range p.Targets {
			if tg.LegendFormat == "" {
				t.Errorf("%s: query %s has no legend", where, tg.RefID)
			}
			for _, name := range checkExpr(t, where, tg.Expr, src, jobs) {
				used[name] = true
			}
		}
	}
	if charts < 20 {
		t.Errorf("only %d panels", charts)
	}
	for _, name := range alertingMetrics {
		if !used[name] {
			t.Errorf("no dashboard panel shows %s", name)
		}
	}
}
