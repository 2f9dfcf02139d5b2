package als

import (
	"context"
	"math"
	"testing"
)

// TestExplainerSums checks, for every model variant, that the recomputed
// row is the one UpdateBlock computes from the same ratings and that each
// item's contributions plus base add up to its score from that row.
func TestExplainerSums(t *testing.T) {
	t.Parallel()
	const k, mean = 6, 3.5
	variants := []struct {
		name string
		cfg  func(*Config)
	}{
		{"explicit", func(c *Config) {}},
		{"biases", func(c *Config) { c.Biases = true }},
		{"nonnegative", func(c *Config) { c.NonNegative = true }},
		{"biases+nonnegative", func(c *Config) { c.Biases, c.NonNegative = true, true }},
		{"implicit", func(c *Config) { c.Implicit, c.Lambda, c.Solver = true, 2, SolverCholesky }},
		{"implicit+nonnegative", func(c *Config) { c.Implicit, c.Lambda, c.NonNegative = true, 2, true }},
	}
	for _, v := range variants {
		cfg := DefaultConfig()
		cfg.Rank, cfg.Lambda, cfg.Threads = k, 0.1, 1
		v.cfg(&cfg)
		width := cfg.Width()
		rows, items, _ := randomBlock(21, 12, 25, 7, width, cfg.Implicit)
		if cfg.Biases {
			for i := 0; i < len(items)/width; i++ {
				setBiasColumns(items[i*width:(i+1)*width], k, ItemSide, items[i*width+k])
			}
		}
		var yty []float64
		if cfg.Implicit {
			yty = make([]float64, k*k)
			Gram(items, k, 1, yty)
		}
		s, err := NewSolver(cfg)
		if err != nil {
			t.Fatal(v.name, err)
		}
		x := make([]float32, rows.Len()*width)
		if _, err := s.UpdateBlock(context.Background(), BlockUpdate{Rows: rows, Other: items, YtY: yty, X: x, Mean: mean}); err != nil {
			t.Fatal(v.name, err)
		}
		for r := 0; r < rows.Len(); r++ {
			lo, hi := rows.Ptr[r], rows.Ptr[r+1]
			var rated []float32
			for _, c := range rows.Col[lo:hi] {
				rated = append(rated, items[int(c)*width:int(c+1)*width]...)
			}
			e, err := NewExplainer(cfg, rated, rows.Val[lo:hi], yty, mean)
			if err != nil {
				t.Fatal(v.name, err)
			}
			for i, xv := range x[r*width : (r+1)*width] {
				if math.Abs(float64(xv-e.Row()[i])) > 1e-4 {
					t.Fatalf("%s row %d: explainer row %v, UpdateBlock's %v", v.name, r, e.Row(), x[r*width:(r+1)*width])
				}
			}
			contrib := make([]float64, hi-lo)
			for it := 0; it < len(items)/width; it++ {
				item := items[it*width : (it+1)*width]
				base := e.Contributions(item, contrib)
				sum := base
				for _, c := range contrib {
					sum += c
				}
				var score float64
				if cfg.Biases {
					score = mean
				}
				for i, a := range e.Row() {
					score += float64(a) * float64(item[i])
				}
				if math.Abs(sum-score) > 1e-4*(1+math.Abs(score)) {
					t.Fatalf("%s row %d item %d: contributions add to %g, score %g", v.name, r, it, sum, score)
				}
			}
		}
	}
}
