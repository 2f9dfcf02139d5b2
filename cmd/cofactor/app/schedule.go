package app

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/cli"
)

func newScheduleCmd(s streams, o *opsOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "schedule", Short: "Retrain on a schedule"}

	to := newTrainOptions()
	var cronExpr, missed string
	var warm bool
	add := &cobra.Command{
		Use:   `add NAME --cron "EXPR" [--missed run|skip] [--warm-start] <training flags>`,
		Short: "Add a schedule: a training job at every slot of a cron expression",
		Long: `add creates a schedule. EXPR is a cron expression: five fields (minute hour
day-of-month month day-of-week), an optional leading seconds field, or a
descriptor such as @daily, @hourly or "@every 20s". Only the raft leader fires
slots; a slot's job is named NAME-<slot time>, so a slot never starts two jobs,
even across a leader change. Slots that pass while no leader exists: --missed
run (default) starts one job for them, --missed skip starts none.
--warm-start starts every job from the newest published snapshot of its --model
(rows it knows keep their factors): a daily refresh needs fewer iterations.`,
		Args: cli.ExactlyOneArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cronExpr == "" {
				return cli.Usagef("--cron is required")
			}
			spec, err := to.resolve(cmd)
			if err != nil {
				return err
			}
			if err := absolutePaths(&spec); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			req := coordinator.ScheduleRequest{Name: args[0], Cron: cronExpr, Missed: missed, WarmStart: warm, Spec: spec}
			if err := c.AddSchedule(cmd.Context(), req); err != nil {
				return apiErr(err)
			}
			if to.json {
				return cli.WriteJSON(s.out, map[string]string{"schedule": args[0]})
			}
			fmt.Fprintf(s.out, "schedule %s added\n", args[0])
			return nil
		},
	}
	to.addFlags(add)
	to.addDatasetFlags(add)
	add.Flags().StringVar(&cronExpr, "cron", "", `cron expression, e.g. "0 3 * * *", @daily or "@every 20s"`)
	add.Flags().StringVar(&missed, "missed", coordinator.MissedRun, "slots missed while no leader existed: run (one job) or skip")
	add.Flags().BoolVar(&warm, "warm-start", false, "start each job from the model's newest published snapshot")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List schedules with their next slot",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			l, err := c.Schedules(cmd.Context())
			if err != nil {
				return apiErr(err)
			}
			if listJSON {
				return cli.WriteJSON(s.out, l)
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SCHEDULE\tCRON\tSTATE\tMISSED\tWARM\tJOBS\tLAST SLOT\tNEXT")
			for _, sc := range l.Schedules {
				state, next := "active", "-"
				if sc.Paused {
					state = "paused"
				} else if !sc.Next.IsZero() {
					next = sc.Next.Format(time.RFC3339)
				}
				last := "-"
				if !sc.LastSlot.IsZero() {
					last = sc.LastSlot.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%d\t%s\t%s\n", sc.Name, sc.Cron, state, sc.Missed, sc.WarmStart, sc.Jobs, last, next)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print one JSON object")

	action := func(name, short string) *cobra.Command {
		var asJSON bool
		c := &cobra.Command{
			Use:   name + " NAME",
			Short: short,
			Args:  cli.ExactlyOneArg("NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := o.client()
				if err != nil {
					return err
				}
				if err := c.ScheduleAction(cmd.Context(), args[0], name); err != nil {
					return apiErr(err)
				}
				if asJSON {
					return cli.WriteJSON(s.out, map[string]string{"schedule": args[0], "done": name})
				}
				fmt.Fprintf(s.out, "schedule %s: %s done\n", args[0], name)
				return nil
			},
		}
		c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
		return c
	}
	cmd.AddCommand(add, list,
		action("rm", "Remove a schedule (its jobs stay)"),
		action("pause", "Pause a schedule: its slots are skipped until resumed"),
		action("resume", "Resume a paused schedule from now on"))
	return cmd
}
