package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// point is one run of the sweep.
type point struct {
	Sweep        string  `json:"sweep"` // "ratings" or "rank"
	Dataset      string  `json:"dataset"`
	TrainRatings int64   `json:"train_ratings"`
	Rank         int     `json:"rank"`
	SecPerIter   float64 `json:"seconds_per_iteration"`
	// MinSecPerIter is the fastest iteration: on a shared machine the
	// least disturbed one (what the plot shows).
	MinSecPerIter float64 `json:"min_seconds_per_iteration"`
	LoadSeconds   float64 `json:"load_seconds"`
	PeakRSSMB     float64 `json:"peak_rss_mb"`
	TrainRMSE     float64 `json:"train_rmse"`
}

type scalingReport struct {
	Machine    string  `json:"machine"`
	Threads    int     `json:"threads"`
	LoadBefore string  `json:"load_average_before"`
	LoadAfter  string  `json:"load_average_after"`
	Iterations int     `json:"iterations"`
	Points     []point `json:"points"`
}

// runScaling times `cofactor train --workers 1` on all ratings (no
// hold-out) of Netflix-shaped sets of growing size at rank 64, and of the
// 20M-shaped set at several ranks.
func runScaling(ctx context.Context, c *config, e *env) error {
	iters := 3
	if c.iters > 0 {
		iters = c.iters
	}
	rep := scalingReport{Machine: machine(), Threads: c.threads, LoadBefore: loadAvg(), Iterations: iters}
	one := func(sweep string, d *dataset, rank int) error {
		d.Rank, d.Iterations, d.Holdout, d.Split, d.Test = rank, iters, 0, false, ""
		if err := prepare(ctx, e.cofactor(), c.data, d); err != nil {
			return err
		}
		args := append([]string{"train", "--json", "--workers", "1"}, trainFlags(d, false, iters, e.solver)...)
		r, res, err := trainOnce(ctx, e, fmt.Sprintf("scaling-%s-%s-k%d", sweep, d.Name, rank), args)
		if err != nil {
			return err
		}
		p := point{Sweep: sweep, Dataset: d.Name, TrainRatings: res.TrainRatings, Rank: rank,
			SecPerIter: res.SecondsPerIteration, LoadSeconds: res.LoadSeconds, PeakRSSMB: float64(r.PeakRSS) / 1e6}
		if res.TrainRMSE != nil {
			p.TrainRMSE = *res.TrainRMSE
		}
		for i, it := range res.History {
			if i == 0 || it.Seconds < p.MinSecPerIter {
				p.MinSecPerIter = it.Seconds
			}
		}
		logf("%s %s rank %d: %.3f s/it (fastest %.3f), load %.2f s, peak RSS %.0f MB", sweep, d.Name, rank, p.SecPerIter, p.MinSecPerIter, p.LoadSeconds, p.PeakRSSMB)
		rep.Points = append(rep.Points, p)
		return nil
	}
	for _, m := range c.ratings {
		if err := one("ratings", scalingSet(int64(m)*1_000_000), 64); err != nil {
			return err
		}
	}
	for _, k := range c.ranks {
		d := datasets()["20m"]
		if err := one("rank", d, k); err != nil {
			return err
		}
	}
	rep.LoadAfter = loadAvg()
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.out, "scaling.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Print(rep.markdown())
	return drawScaling(&rep, "../docs/scaling.png")
}

func (rep *scalingReport) markdown() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Machine: %s; %d threads; load average before %s, after %s; mean of %d iterations.\n\n",
		rep.Machine, rep.Threads, rep.LoadBefore, rep.LoadAfter, rep.Iterations)
	sb.WriteString("| sweep | set | training ratings | rank | s/iteration (mean) | fastest iteration (s) | load (s) | peak RSS (MB) |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, p := range rep.Points {
		fmt.Fprintf(&sb, "| %s | %s | %d | %d | %.3f | %.3f | %.2f | %.0f |\n", p.Sweep, p.Dataset, p.TrainRatings, p.Rank, p.SecPerIter, p.MinSecPerIter, p.LoadSeconds, p.PeakRSSMB)
	}
	return sb.String()
}

// drawScaling draws s/iteration against ratings (rank 64) and against rank
// (20M) side by side into a small PNG.
func drawScaling(rep *scalingReport, path string) error {
	mk := func(title, x string, sweep string, xOf func(point) float64) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = x
		p.Y.Label.Text = "seconds / iteration (fastest of the run)"
		p.Y.Min = 0
		p.X.Min = 0
		var xy plotter.XYs
		for _, q := range rep.Points {
			if q.Sweep == sweep {
				y := q.MinSecPerIter
				if y == 0 {
					y = q.SecPerIter
				}
				xy = append(xy, plotter.XY{X: xOf(q), Y: y})
			}
		}
		if len(xy) == 0 {
			return p, nil
		}
		l, s, err := plotter.NewLinePoints(xy)
		if err != nil {
			return nil, err
		}
		l.Color = color.RGBA{R: 31, G: 119, B: 180, A: 255}
		s.Color = l.Color
		s.Shape = draw.CircleGlyph{}
		p.Add(l, s, plotter.NewGrid())
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xy, Labels: func() []string {
			out := make([]string, len(xy))
			for i, v := range xy {
				out[i] = fmt.Sprintf(" %.2f", v.Y)
			}
			return out
		}()})
		if err == nil {
			p.Add(labels)
		}
		return p, nil
	}
	left, err := mk(fmt.Sprintf("Netflix-shaped, rank 64, %d threads", rep.Threads), "training ratings (millions)", "ratings",
		func(q point) float64 { return float64(q.TrainRatings) / 1e6 })
	if err != nil {
		return err
	}
	right, err := mk("20M-shaped, by rank", "rank", "rank", func(q point) float64 { return float64(q.Rank) })
	if err != nil {
		return err
	}
	const w, h = 9 * vg.Inch, 3.4 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
	dc := draw.New(img)
	t := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, t, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	logf("wrote %s", path)
	return f.Close()
}
