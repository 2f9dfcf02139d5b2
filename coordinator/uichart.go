package coordinator

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// chart is a line chart of the web UI, drawn as inline SVG on the server.
type chart struct {
	ID             string  // the svg element's id
	Width, Height  float64 // pixels
	XLabel, YLabel string  // axis titles, with the unit: "iteration", "RMSE", "seconds"
	Series         []chartSeries
}

// chartSeries is one line; NaN values are gaps.
type chartSeries struct {
	Name, Color string
	X, Y        []float64
}

// niceStep returns a step of 1, 2 or 5 × 10ⁿ that cuts span into about n
// intervals.
func niceStep(span float64, n int) float64 {
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// ticks returns the multiples of a nice step covering [lo, hi], widened
// to whole steps.
func ticks(lo, hi float64, n int) []float64 {
	step := niceStep(hi-lo, n)
	start := math.Floor(lo/step) * step
	var out []float64
	for v := start; v <= hi+step*0.5 && len(out) < 4*n; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	if len(out) < 2 {
		out = append(out, start+step)
	}
	return out
}

// tickLabel formats a tick with no more digits than its step needs.
func tickLabel(v, step float64) string {
	digits := 0
	if step < 1 {
		digits = int(math.Ceil(-math.Log10(step)))
	}
	return strconv.FormatFloat(v, 'f', digits, 64)
}

// SVG draws the chart: a frame, ticks and grid lines with values on both
// axes, the axis titles, a legend, and one polyline (with a dot per point)
// for each series. With no point at all it says so.
func (c chart) SVG() template.HTML {
	const left, right, top, bottom = 56.0, 12.0, 26.0, 40.0
	w, h := c.Width, c.Height
	pw, ph := w-left-right, h-top-bottom
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" id="%s" class="chart" width="%g" height="%g" viewBox="0 0 %g %g" role="img" aria-label="%s">`,
		template.HTMLEscapeString(c.ID), w, h, w, h, template.HTMLEscapeString(c.YLabel+" by "+c.XLabel))
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="#fcfcfc" stroke="#ccc"/>`, left, top, pw, ph)
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for i, y := range s.Y {
			if !math.IsNaN(y) && i < len(s.X) {
				xlo, xhi = min(xlo, s.X[i]), max(xhi, s.X[i])
				ylo, yhi = min(ylo, y), max(yhi, y)
			}
		}
	}
	axisTitles := func() {
		fmt.Fprintf(&b, `<text class="x-label" x="%g" y="%g" font-size="11" text-anchor="middle" fill="#333">%s</text>`,
			left+pw/2, h-6, template.HTMLEscapeString(c.XLabel))
		fmt.Fprintf(&b, `<text class="y-label" x="%g" y="%g" font-size="11" text-anchor="middle" fill="#333" transform="rotate(-90 %g %g)">%s</text>`,
			12.0, top+ph/2, 12.0, top+ph/2, template.HTMLEscapeString(c.YLabel))
	}
	if math.IsInf(xlo, 0) {
		fmt.Fprintf(&b, `<text class="empty" x="%g" y="%g" font-size="12" text-anchor="middle" fill="#888">no iterations yet</text>`, left+pw/2, top+ph/2)
		axisTitles()
		b.WriteString(`</svg>`)
		return template.HTML(b.String())
	}
	if xhi == xlo {
		xlo, xhi = xlo-1, xhi+1
	}
	if yhi == ylo {
		ylo, yhi = ylo-math.Max(math.Abs(ylo)*0.1, 0.5), yhi+math.Max(math.Abs(yhi)*0.1, 0.5)
	}
	yt := ticks(ylo, yhi, 4)
	ylo, yhi = min(ylo, yt[0]), max(yhi, yt[len(yt)-1])
	xt := ticks(xlo, xhi, 6)
	if xhi-xlo >= 2 {
		// Iterations are whole numbers: no tick between two.
		var whole []float64
		for _, v := range xt {
			if v == math.Trunc(v) && v >= xlo && v <= xhi {
				whole = append(whole, v)
			}
		}
		xt = whole
	}
	px := func(x float64) float64 { return left + pw*(x-xlo)/(xhi-xlo) }
	py := func(y float64) float64 { return top + ph - ph*(y-ylo)/(yhi-ylo) }
	ystep, xstep := niceStep(yhi-ylo, 4), niceStep(xhi-xlo, 6)
	if xhi-xlo >= 2 {
		xstep = max(xstep, 1) // whole iterations: no decimals
	}
	for _, v := range yt {
		y := py(v)
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#eee"/>`, left, y, left+pw, y)
		fmt.Fprintf(&b, `<text class="y-tick" x="%g" y="%.1f" font-size="10" text-anchor="end" fill="#555">%s</text>`, left-4, y+3, tickLabel(v, ystep))
	}
	for _, v := range xt {
		x := px(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#999"/>`, x, top+ph, x, top+ph+4)
		fmt.Fprintf(&b, `<text class="x-tick" x="%.1f" y="%g" font-size="10" text-anchor="middle" fill="#555">%s</text>`, x, top+ph+15, tickLabel(v, xstep))
	}
	axisTitles()
	lx := left
	for _, s := range c.Series {
		var pts []string
		for i, y := range s.Y {
			if math.IsNaN(y) || i >= len(s.X) {
				continue
			}
			x, yy := px(s.X[i]), py(y)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, yy))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2" fill="%s"><title>%s: %s %g, %s %.4g</title></circle>`,
				x, yy, s.Color, template.HTMLEscapeString(s.Name), template.HTMLEscapeString(c.XLabel), s.X[i], template.HTMLEscapeString(c.YLabel), y)
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline class="series" data-name="%s" fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`,
				template.HTMLEscapeString(s.Name), s.Color, strings.Join(pts, " "))
		}
		fmt.Fprintf(&b, `<rect x="%g" y="9" width="10" height="3" fill="%s"/><text class="legend" x="%g" y="14" font-size="11" fill="#333">%s</text>`,
			lx, s.Color, lx+14, template.HTMLEscapeString(s.Name))
		lx += 24 + 6.5*float64(len(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
