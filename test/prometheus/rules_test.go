package prometheus

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const (
	alertRulesFile = "../../deploy/prometheus/cofactor-alerts.yaml"
	dashboardFile  = "../../deploy/grafana/cofactor-dashboard.json"
)

var promql = parser.NewParser(parser.Options{})

// selectors returns the metric names an expression selects, from its
// syntax tree.
func selectors(t *testing.T, expr parser.Expr) []string {
	t.Helper()
	var out []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				t.Errorf("%s: a selector without a metric name", expr)
			}
			out = append(out, vs.Name)
		}
		return nil
	})
	return out
}

// textualNames is how test/docs finds the series of an expression: its
// words cofactor_… and up{job=…}. The syntax tree must name no other.
var textualNames = regexp.MustCompile(`\bcofactor_[a-z0-9_]+\b|\bup\{`)

func checkSelectorsFound(t *testing.T, where, text string, expr parser.Expr) {
	t.Helper()
	var found []string
	for _, w := range textualNames.FindAllString(text, -1) {
		found = append(found, strings.TrimSuffix(w, "{"))
	}
	for _, name := range selectors(t, expr) {
		if !slices.Contains(found, name) {
			t.Errorf("%s: selects %s, which test/docs would not check", where, name)
		}
	}
}

// TestAlertRulesParse reads the alert rules as Prometheus does.
func TestAlertRulesParse(t *testing.T) {
	groups, errs := rulefmt.ParseFile(alertRulesFile, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	n := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			n++
			expr, err := promql.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", r.Alert, err)
				continue
			}
			if expr.Type() != parser.ValueTypeVector {
				t.Errorf("%s: %s is a %s, an alert needs an instant vector", r.Alert, r.Expr, expr.Type())
			}
			checkSelectorsFound(t, r.Alert, r.Expr, expr)
		}
	}
	if n == 0 {
		t.Fatal("no rules")
	}
	t.Logf("%d rules in %d groups", n, len(groups.Groups))
}

// grafanaVars are Grafana's interval variables, replaced by a duration
// before parsing.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// TestDashboardQueriesParse parses every query of the Grafana dashboard.
func TestDashboardQueriesParse(t *testing.T) {
	data, err := os.ReadFile(filepath.FromSlash(dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			n++
			text := grafanaVars.Replace(tg.Expr)
			if strings.Contains(text, "$") {
				t.Errorf("%s: %s uses a variable the dashboard does not define", p.Title, tg.Expr)
				continue
			}
			expr, err := promql.ParseExpr(text)
			if err != nil {
				t.Errorf("%s: %v", p.Title, err)
				continue
			}
			checkSelectorsFound(t, p.Title, text, expr)
		}
	}
	if n == 0 {
		t.Fatal("no queries")
	}
	t.Logf("%d queries", n)
}
