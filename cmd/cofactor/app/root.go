// Package app is the cofactor binary's command tree: training on an
// in-process cluster (train, quickstart, gen), operating a cluster through
// the coordinators' API (cluster, job, schedule), snapshots (snapshot,
// recommend, similar, serve) and NATS set-up (nats-config). Each command
// is built from an options struct so that flag parsing can be tested
// without running the command; Main maps errors to the exit codes of
// CONTRACT.md (internal/cli).
//
// A new subcommand goes in a file of its own here and is added to the
// root in newRoot.
package app

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/httpauth"
)

// streams are where a command reads and writes.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// Main runs the cofactor command line with args and returns the exit
// code. Errors are printed as one line "error: ..." on stderr.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return cli.Run(newRoot(streams{stdin, stdout, stderr}), args, stderr)
}

// NewCommand returns the cofactor command tree that Main runs, for the
// configuration reference and the checks of documented command lines.
// Executing it directly skips Main's exit-code mapping.
func NewCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	return newRoot(streams{stdin, stdout, stderr})
}

func newRoot(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "cofactor",
		Short: "Train recommendation models by alternating least squares",
		Long: `cofactor trains user and item factor matrices by alternating least squares
(explicit ALS-WR or implicit Hu–Koren–Volinsky) and writes them as snapshots
that serving layers load.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.SetIn(s.in)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cli.Usage(err) })
	ops := &opsOptions{}
	root.PersistentFlags().StringVar(&ops.coordinators, "coordinator", "", "coordinator HTTP URL(s), comma-separated, tried in turn (default $"+EnvCoordinator+")")
	root.PersistentFlags().StringVar(&ops.tokenFile, "token-file", "", "file holding the bearer token sent to coordinators (default $"+httpauth.EnvToken+")")
	root.PersistentFlags().DurationVar(&ops.timeout, "timeout", DefaultTimeout, "how long to keep trying while no coordinator answers (or none knows a leader) before failing with the URLs tried")
	root.PersistentFlags().StringVar(&ops.caFile, "ca-file", "", "PEM file of the CA that signed https coordinators' certificates (default: system roots)")
	root.AddCommand(newGenCmd(s), newTrainCmd(s), newQuickstartCmd(s), newClusterCmd(s, ops), newJobCmd(s, ops), newScheduleCmd(s, ops), newRecommendCmd(s, ops), newSimilarCmd(s, ops), newSimilarUsersCmd(s, ops), newEvaluateCmd(s, ops), newTuneCmd(s, ops), newServeCmd(s, ops), newSnapshotCmd(s, ops), newDatasetCmd(s), newNATSConfigCmd(s), newSecurityCmd(s))
	return cli.Finish(root)
}
