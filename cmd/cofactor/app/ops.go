package app

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/httpauth"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// EnvCoordinator supplies --coordinator when the flag is not given.
const EnvCoordinator = "COFACTOR_COORDINATOR"

// DefaultTimeout is --timeout: enough for an election, short enough that
// a wrong URL is reported while the user still waits.
const DefaultTimeout = 5 * time.Second

// opsOptions are the flags every operator command shares.
type opsOptions struct {
	coordinators string
	// tokenFile and caFile: the client's bearer token (default
	// $COFACTOR_TOKEN) and the CA of https coordinators.
	tokenFile, caFile string
	// timeout is how long a call keeps trying while no coordinator
	// answers or none knows a leader.
	timeout time.Duration
	// nats secures the NATS connections of the commands that open the
	// cluster's snapshot store.
	nats cli.NATSFlags
}

func (o *opsOptions) client() (*coordinator.Client, error) {
	urls := o.coordinators
	if urls == "" {
		urls = os.Getenv(EnvCoordinator)
	}
	if urls == "" {
		return nil, cli.Usagef("no coordinator: pass --coordinator URL[,URL...] or set %s", EnvCoordinator)
	}
	c := coordinator.NewClient(urls)
	tok, err := httpauth.ClientToken(o.tokenFile)
	if err != nil {
		return nil, cli.Usage(fmt.Errorf("--token-file: %w", err))
	}
	c.Token = tok
	tcfg, err := httpauth.ClientTLS(o.caFile)
	if err != nil {
		return nil, cli.Usage(fmt.Errorf("--ca-file: %w", err))
	}
	c.UseTLS(tcfg)
	if o.timeout <= 0 {
		return nil, cli.Usagef("--timeout %v must be positive", o.timeout)
	}
	c.Patience = o.timeout
	c.SetConnectTimeout(o.timeout)
	return c, nil
}

// jobFailed is a finished job that did not succeed: exit 2 when its input
// was at fault, 1 otherwise.
type jobFailed struct{ res *job.Result }

func (e jobFailed) Error() string {
	msg := e.res.Error
	if msg == "" {
		msg = e.res.State.String()
	}
	return fmt.Sprintf("job %s %s: %s", e.res.JobID, e.res.State, msg)
}

func finalErr(res *job.Result) error {
	switch {
	case res.State == job.StateSucceeded:
		return nil
	case res.ErrorKind == job.KindInput:
		return cli.Usage(jobFailed{res})
	}
	return jobFailed{res}
}

func newClusterCmd(s streams, o *opsOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Inspect the cluster"}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Coordinators (with the leader) and workers",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			st, err := c.Cluster(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(s.out, st)
			}
			fmt.Fprintf(s.out, "leader: %s (answered by %s)\n\n", orNone(st.Leader), st.AnsweredBy)
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "COORDINATOR\tRAFT ADDRESS\tHTTP ADDRESS\tSTATE")
			for _, sv := range st.Servers {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", sv.ID, sv.Address, sv.HTTPAddress, sv.State)
			}
			tw.Flush()
			fmt.Fprintln(s.out)
			tw = tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WORKER\tSTATE\tBLOCKS\tCPUS\tLAST SEEN")
			for _, w := range st.Workers {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", w.ID, w.State, w.Blocks, w.CPUs, w.LastSeen.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.AddCommand(status)
	addMembershipCmds(cmd, s, o)
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func newJobCmd(s streams, o *opsOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "job", Short: "Submit, follow and manage training jobs"}

	to := newTrainOptions()
	var jobID string
	submit := &cobra.Command{
		Use:   "submit --input FILE|--dataset NAME [training flags]",
		Short: "Submit a training job (relative paths are made absolute here: the workers read and write them)",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			id, err := c.Submit(cmd.Context(), coordinator.SubmitRequest{Spec: spec, JobID: jobID})
			if err != nil {
				return apiErr(err)
			}
			if to.json {
				return cli.WriteJSON(s.out, coordinator.SubmitResponse{JobID: id})
			}
			fmt.Fprintln(s.out, id)
			return nil
		},
	}
	to.addFlags(submit)
	to.addDatasetFlags(submit)
	submit.Flags().StringVar(&jobID, "job-id", "", "name the job (default: chosen by the leader)")
	cmd.AddCommand(submit)

	resultCmd := func(use, short string, fetch func(cmd *cobra.Command, c *coordinator.Client, id string) (*job.Result, error), final bool) *cobra.Command {
		var asJSON bool
		sub := &cobra.Command{
			Use:   use + " JOB_ID",
			Short: short,
			Args:  cli.ExactlyOneArg("JOB_ID"),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := o.client()
				if err != nil {
					return err
				}
				res, err := fetch(cmd, c, args[0])
				if err != nil {
					return apiErr(err)
				}
				if asJSON {
					if err := cli.WriteJSON(s.out, res); err != nil {
						return err
					}
				} else {
					printJob(s.out, res)
				}
				if final {
					return finalErr(res)
				}
				return nil
			},
		}
		sub.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
		return sub
	}
	cmd.AddCommand(
		resultCmd("wait", "Wait for a job to finish; exit 0 if it succeeded, 1 if it failed, 2 if its input was bad",
			func(cmd *cobra.Command, c *coordinator.Client, id string) (*job.Result, error) {
				return c.Wait(cmd.Context(), id, nil)
			}, true),
		resultCmd("status", "Show a job",
			func(cmd *cobra.Command, c *coordinator.Client, id string) (*job.Result, error) {
				return c.Job(cmd.Context(), id)
			}, false),
		resultCmd("cancel", "Cancel a job",
			func(cmd *cobra.Command, c *coordinator.Client, id string) (*job.Result, error) {
				return c.Cancel(cmd.Context(), id)
			}, false),
	)

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List jobs",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			l, err := c.Jobs(cmd.Context())
			if err != nil {
				return apiErr(err)
			}
			if listJSON {
				return cli.WriteJSON(s.out, l)
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tSTATE\tSCHEDULE\tCREATED\tFINISHED")
			for _, j := range l.Jobs {
				fin := "-"
				if j.Finished != nil {
					fin = j.Finished.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.JobID, j.State, orDash(j.Schedule), j.Created.Format(time.RFC3339), fin)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print one JSON object")
	cmd.AddCommand(list)
	addJobViewCmds(cmd, s, o)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// apiErr makes the API's 4xx answers usage errors (exit 2), except a
// refused token (401, 403): that is the cluster saying no, not bad input,
// so it stays a runtime failure (exit 1) for every command, as for
// `cluster status` (which does not come through here) and as
// docs/security.md says.
func apiErr(err error) error {
	ae, ok := err.(*coordinator.APIError)
	if !ok || ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden {
		return err
	}
	if ae.Status >= 400 && ae.Status < 500 {
		return cli.Usage(err)
	}
	return err
}

// absolutePaths makes the paths of a spec sent to a cluster absolute:
// the workers and coordinators that read and write them run elsewhere,
// in other directories, and would otherwise resolve them against their
// own. A path in the spec is the client's, as a shell user expects.
func absolutePaths(sp *job.Spec) error {
	for _, p := range []*string{&sp.Input, &sp.Test, &sp.Out} {
		if *p == "" || filepath.IsAbs(*p) {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return cli.Usagef("%s: %v", *p, err)
		}
		*p = abs
	}
	if u, err := checkpoint.ParseStoreURI(sp.Store); err == nil && u.Kind == checkpoint.StoreDir && !filepath.IsAbs(u.Dir) {
		abs, err := filepath.Abs(u.Dir)
		if err != nil {
			return cli.Usagef("--store %s: %v", sp.Store, err)
		}
		sp.Store = "dir:" + abs
	}
	return nil
}

// printJob is the human form of a job.
func printJob(w io.Writer, r *job.Result) {
	fmt.Fprintf(w, "job %s: %s", r.JobID, r.State)
	if p := r.Progress; p != nil && r.Users == 0 {
		// Before the partition is known; later printResult tells it.
		fmt.Fprintf(w, " (%s, %.0f%% done, %.2f s elapsed, %s)", progressPhase(p, r.Iterations), 100*p.Done, p.ElapsedSeconds, timeLeft(p, r.SecondsPerIteration))
	}
	fmt.Fprintln(w)
	if r.Error != "" {
		fmt.Fprintf(w, "error: %s\n", r.Error)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Users > 0 {
		printResult(w, r)
	}
	if r.BytesExchanged > 0 {
		fmt.Fprintf(w, "factor bytes exchanged: %d (lower bound %d)\n", r.BytesExchanged, r.BytesLowerBound)
	}
}
