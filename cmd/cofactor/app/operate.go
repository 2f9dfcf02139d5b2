package app

import (
	"context"
	"fmt"
	"image/color"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// addMembershipCmds adds the membership commands to `cluster`.
func addMembershipCmds(cmd *cobra.Command, s streams, o *opsOptions) {
	var raftAddr, httpAddr string
	var addJSON bool
	add := &cobra.Command{
		Use:   "add-coordinator ID --raft-addr HOST:PORT --http-addr HOST:PORT",
		Short: "Add a coordinator (already running with that ID and addresses) as a voter",
		Long: `add-coordinator asks the leader to add a voter. The new coordinator is usually
started with --join, which does this itself; add-coordinator is for one started
without it (or to re-add a removed member).`,
		Args: cli.ExactlyOneArg("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if raftAddr == "" || httpAddr == "" {
				return cli.Usagef("--raft-addr and --http-addr are required")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			if err := c.Join(cmd.Context(), coordinator.ServerInfo{ID: args[0], RaftAddr: raftAddr, HTTPAddr: httpAddr}); err != nil {
				return apiErr(err)
			}
			return done(s.out, addJSON, map[string]string{"added": args[0]}, "coordinator %s added\n", args[0])
		},
	}
	add.Flags().StringVar(&raftAddr, "raft-addr", "", "the coordinator's raft address")
	add.Flags().StringVar(&httpAddr, "http-addr", "", "the coordinator's HTTP address")
	add.Flags().BoolVar(&addJSON, "json", false, "print one JSON object")

	var rmJSON bool
	rm := &cobra.Command{
		Use:   "remove-coordinator ID",
		Short: "Remove a coordinator from the raft group (stop its process afterwards)",
		Long: `remove-coordinator removes a voter. Keep a majority: removing members of a
three-member group leaves two, which still tolerate no further loss; add a
replacement first when replacing a machine.`,
		Args: cli.ExactlyOneArg("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if err := c.RemoveServer(cmd.Context(), args[0]); err != nil {
				return apiErr(err)
			}
			return done(s.out, rmJSON, map[string]string{"removed": args[0]}, "coordinator %s removed\n", args[0])
		},
	}
	rm.Flags().BoolVar(&rmJSON, "json", false, "print one JSON object")

	drain := func(action, short string) *cobra.Command {
		var asJSON bool
		c := &cobra.Command{
			Use:   action + "-worker ID",
			Short: short,
			Args:  cli.ExactlyOneArg("ID"),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := o.client()
				if err != nil {
					return err
				}
				if err := c.DrainWorker(cmd.Context(), args[0], action); err != nil {
					return apiErr(err)
				}
				return done(s.out, asJSON, map[string]string{"worker": args[0], "done": action}, "worker %s: %s done\n", args[0], action)
			},
		}
		c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
		return c
	}
	cmd.AddCommand(add, rm,
		drain("drain", "Give a worker no blocks: a running job moves its blocks to the others, resuming from its newest checkpoint"),
		drain("undrain", "Let a drained worker take blocks again"))
}

// done prints a command's outcome: v as JSON, or a line.
func done(w io.Writer, asJSON bool, v any, format string, a ...any) error {
	if asJSON {
		return cli.WriteJSON(w, v)
	}
	_, err := fmt.Fprintf(w, format, a...)
	return err
}

// addJobViewCmds adds logs, watch and plot to `job`.
func addJobViewCmds(cmd *cobra.Command, s streams, o *opsOptions) {
	var logsJSON bool
	logs := &cobra.Command{
		Use:   "logs JOB_ID",
		Short: "A job's log: every committed step, with times",
		Args:  cli.ExactlyOneArg("JOB_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			l, err := c.Logs(cmd.Context(), args[0])
			if err != nil {
				return apiErr(err)
			}
			if logsJSON {
				return cli.WriteJSON(s.out, l)
			}
			for _, e := range l.Events {
				fmt.Fprintf(s.out, "%s  %s\n", e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Text)
			}
			return nil
		},
	}
	logs.Flags().BoolVar(&logsJSON, "json", false, "print one JSON object")

	var watchJSON bool
	watch := &cobra.Command{
		Use:   "watch JOB_ID",
		Short: "Follow a job until it ends: a live progress bar on a terminal, a line per change otherwise",
		Long: `watch follows a job. On a terminal it draws a progress bar (iteration, phase,
rows/s, ETA, RMSE); otherwise it prints one line whenever the job's progress
changes. It exits like job wait: 0 succeeded, 1 failed, 2 bad input. With --json
the final result is printed as one JSON object and progress goes to stderr.`,
		Args: cli.ExactlyOneArg("JOB_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			progress := s.out
			if watchJSON {
				progress = s.err
			}
			res, err := watchJob(cmd.Context(), c, args[0], progress)
			if err != nil {
				return apiErr(err)
			}
			if watchJSON {
				if err := cli.WriteJSON(s.out, res); err != nil {
					return err
				}
			} else {
				printJob(s.out, res)
			}
			return finalErr(res)
		},
	}
	watch.Flags().BoolVar(&watchJSON, "json", false, "print the final result as one JSON object")

	var out string
	var width, height int
	var plotJSON bool
	plotCmd := &cobra.Command{
		Use:   "plot JOB_ID --out curve.png",
		Short: "Draw a job's train and test RMSE per iteration (or, implicit, its seconds per iteration) as a PNG",
		Args:  cli.ExactlyOneArg("JOB_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return cli.Usagef("--out is required")
			}
			if width < 100 || height < 100 || width > 10000 || height > 10000 {
				return cli.Usagef("--width and --height must be 100..10000 pixels")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			res, err := c.Job(cmd.Context(), args[0])
			if err != nil {
				return apiErr(err)
			}
			if err := plotJob(res, out, width, height); err != nil {
				return err
			}
			return done(s.out, plotJSON, map[string]any{"out": out, "width": width, "height": height, "iterations": len(res.History)},
				"wrote %s (%d×%d, %d iterations)\n", out, width, height, len(res.History))
		},
	}
	plotCmd.Flags().StringVar(&out, "out", "", "PNG file to write")
	plotCmd.Flags().IntVar(&width, "width", 800, "width in pixels")
	plotCmd.Flags().IntVar(&height, "height", 500, "height in pixels")
	plotCmd.Flags().BoolVar(&plotJSON, "json", false, "print one JSON object")
	cmd.AddCommand(logs, watch, plotCmd)
}

// watchJob polls a job until it ends, drawing its progress on w.
func watchJob(ctx context.Context, c *coordinator.Client, id string, w io.Writer) (*job.Result, error) {
	var bar *progressbar.ProgressBar
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions(1, progressbar.OptionSetWriter(w), progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
	}
	last := ""
	for {
		r, err := c.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		total, step, line := progressOf(r)
		if bar != nil {
			bar.ChangeMax(total)
			bar.Describe(line)
			bar.Set(step)
		} else if line != last {
			fmt.Fprintln(w, line)
		}
		last = line
		if job.Finished(r.State) {
			if bar != nil {
				bar.Finish()
			}
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// progressOf turns a job into progress-bar terms: phases in all, phases
// done, and a line describing where it is.
func progressOf(r *job.Result) (total, step int, line string) {
	total = max(2*r.Iterations, 1)
	step = 2 * len(r.History)
	line = fmt.Sprintf("job %s %s", r.JobID, r.State)
	if p := r.Progress; p != nil {
		if p.Iteration > 0 {
			line += fmt.Sprintf(", iteration %d/%d %s", p.Iteration, r.Iterations, p.Phase)
			if p.Phase == "items" {
				step++
			}
		} else {
			line += ", " + p.Phase
		}
	}
	if r.SecondsPerIteration > 0 && r.Users+r.Items > 0 {
		line += fmt.Sprintf(", %.0f rows/s", float64(r.Users+r.Items)/r.SecondsPerIteration)
		if left := r.Iterations - len(r.History); left > 0 && !job.Finished(r.State) {
			line += fmt.Sprintf(", ETA %s", (time.Duration(float64(left)*r.SecondsPerIteration*1e9) * time.Nanosecond).Round(time.Second))
		}
	}
	if n := len(r.History); n > 0 {
		if v := r.History[n-1].TrainRMSE; v != nil {
			line += fmt.Sprintf(", train RMSE %.4f", *v)
		}
		if v := r.History[n-1].TestRMSE; v != nil {
			line += fmt.Sprintf(", test RMSE %.4f", *v)
		}
	}
	if job.Finished(r.State) {
		step = total
	}
	return total, min(step, total), line
}

// plotJob draws a job's curves into a PNG of exactly width×height pixels.
func plotJob(r *job.Result, out string, width, height int) error {
	p := plot.New()
	p.Title.Text = "job " + r.JobID
	p.X.Label.Text = "iteration"
	type curve struct {
		name string
		pts  plotter.XYs
		c    color.RGBA
	}
	var curves []curve
	if r.Implicit {
		p.Y.Label.Text = "seconds"
		cv := curve{name: "seconds per iteration", c: color.RGBA{85, 85, 85, 255}}
		for _, it := range r.History {
			cv.pts = append(cv.pts, plotter.XY{X: float64(it.Iteration), Y: it.Seconds})
		}
		curves = append(curves, cv)
		if r.PrecisionAt10 != nil {
			p.Title.Text += fmt.Sprintf(" (precision@10 %.4f, NDCG@10 %.4f)", *r.PrecisionAt10, *r.NDCGAt10)
		}
	} else {
		p.Y.Label.Text = "RMSE"
		train := curve{name: "train RMSE", c: color.RGBA{31, 119, 180, 255}}
		test := curve{name: "test RMSE", c: color.RGBA{255, 127, 14, 255}}
		for _, it := range r.History {
			if it.TrainRMSE != nil {
				train.pts = append(train.pts, plotter.XY{X: float64(it.Iteration), Y: *it.TrainRMSE})
			}
			if it.TestRMSE != nil {
				test.pts = append(test.pts, plotter.XY{X: float64(it.Iteration), Y: *it.TestRMSE})
			}
		}
		curves = append(curves, train, test)
	}
	for _, cv := range curves {
		if len(cv.pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(cv.pts)
		if err != nil {
			return err
		}
		l.Color = cv.c
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(cv.name, l)
	}
	p.Add(plotter.NewGrid())
	const dpi = 96
	canvas := vgimg.NewWith(vgimg.UseWH(vg.Length(width)*vg.Inch/dpi, vg.Length(height)*vg.Inch/dpi), vgimg.UseDPI(dpi))
	p.Draw(draw.New(canvas))
	return cli.WriteFileAtomic(out, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: canvas}.WriteTo(w)
		return err
	})
}
