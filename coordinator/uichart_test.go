package coordinator

import (
	"encoding/xml"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct {
		span float64
		n    int
		want float64
	}{
		{10, 5, 2}, {1, 4, 0.5}, {0.37, 4, 0.1}, {7, 6, 2}, {100, 4, 50}, {0, 4, 1}, {math.NaN(), 4, 1},
	} {
		if got := niceStep(tc.span, tc.n); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("niceStep(%g, %d) = %g, want %g", tc.span, tc.n, got, tc.want)
		}
	}
}

// svgText collects the text of every element with the given class.
func svgText(t *testing.T, svg, class string) []string {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	var out []string
	in := false
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch e := tok.(type) {
		case xml.StartElement:
			in = false
			for _, a := range e.Attr {
				if a.Name.Local == "class" && a.Value == class {
					in = true
				}
			}
		case xml.CharData:
			if in {
				out = append(out, string(e))
			}
		case xml.EndElement:
			in = false
		}
	}
	return out
}

// TestChartSVG: a chart is well-formed SVG with both axes titled, values
// at the ticks, a legend, and a line per series; an empty one says so.
func TestChartSVG(t *testing.T) {
	c := chart{ID: "rmse", Width: 480, Height: 220, XLabel: "iteration", YLabel: "RMSE", Series: []chartSeries{
		{Name: "train RMSE", Color: "#1f77b4", X: []float64{1, 2, 3, 4, 5}, Y: []float64{1.2, 0.9, 0.8, 0.75, 0.74}},
		{Name: "test RMSE", Color: "#ff7f0e", X: []float64{1, 2, 3, 4, 5}, Y: []float64{1.3, 1.0, math.NaN(), 0.9, 0.88}},
	}}
	svg := string(c.SVG())
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	for class, want := range map[string][]string{
		"x-label": {"iteration"},
		"y-label": {"RMSE"},
		"legend":  {"train RMSE", "test RMSE"},
		"x-tick":  {"1", "2", "3", "4", "5"},
		"y-tick":  {"0.6", "0.8", "1.0", "1.2", "1.4"},
	} {
		if got := svgText(t, svg, class); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", class, got, want)
		}
	}
	if n := strings.Count(svg, "<circle"); n != 9 {
		t.Errorf("%d points, want 9 (one value is missing)", n)
	}
	if n := strings.Count(svg, `class="series"`); n != 2 {
		t.Errorf("%d lines, want 2", n)
	}

	four := string(chart{ID: "f", Width: 300, Height: 150, XLabel: "iteration", YLabel: "seconds", Series: []chartSeries{{Name: "s", X: []float64{1, 2, 3, 4}, Y: []float64{2, 3, 2, 1}}}}.SVG())
	if got := svgText(t, four, "x-tick"); !slices.Equal(got, []string{"1", "2", "3", "4"}) {
		t.Errorf("iterations 1–4: x ticks %q", got)
	}

	empty := string(chart{ID: "e", Width: 300, Height: 150, XLabel: "iteration", YLabel: "seconds"}.SVG())
	if got := svgText(t, empty, "empty"); !slices.Equal(got, []string{"no iterations yet"}) || len(svgText(t, empty, "y-label")) != 1 {
		t.Errorf("empty chart: %s", empty)
	}
	one := string(chart{ID: "o", Width: 300, Height: 150, XLabel: "iteration", YLabel: "seconds", Series: []chartSeries{{Name: "s", X: []float64{1}, Y: []float64{2}}}}.SVG())
	if xml.Unmarshal([]byte(one), new(struct{})) != nil || strings.Count(one, "<circle") != 1 || strings.Contains(one, "NaN") {
		t.Errorf("one point: %s", one)
	}
}
