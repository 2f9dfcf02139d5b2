// Package cli builds the cofactor command tree. Each command is built from
// an options struct so that flag parsing can be tested without running the
// command; Main maps errors to the exit codes of CONTRACT.md.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/httpauth"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/synth"
	"github.com/cofactor-ml/cofactor/partition"
)

// Exit codes (CONTRACT.md).
const (
	ExitOK      = 0
	ExitFailure = 1 // the command ran and failed
	ExitUsage   = 2 // bad flags, arguments or input
)

// usageError marks an error as the caller's: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// streams are where a command reads and writes.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// Main runs the CLI with args and returns the exit code. Errors are printed
// as one line "error: ..." on stderr.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(streams{stdin, stdout, stderr})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintf(stderr, "error: %s\n", msg)
	return exitCode(err)
}

// exitCode classifies an error: input and usage errors are 2, the rest 1.
func exitCode(err error) int {
	var ue usageError
	for _, target := range []error{
		partition.ErrBadLine, partition.ErrEmpty, partition.ErrFormat,
		job.ErrSpec, als.ErrConfig, synth.ErrConfig,
		checkpoint.ErrExists, fs.ErrNotExist,
	} {
		if errors.Is(err, target) {
			return ExitUsage
		}
	}
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitFailure
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
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	ops := &opsOptions{}
	root.PersistentFlags().StringVar(&ops.coordinators, "coordinator", "", "coordinator HTTP URL(s), comma-separated, tried in turn (default $"+EnvCoordinator+")")
	root.PersistentFlags().StringVar(&ops.tokenFile, "token-file", "", "file holding the bearer token sent to coordinators (default $"+httpauth.EnvToken+")")
	root.PersistentFlags().StringVar(&ops.caFile, "ca-file", "", "PEM file of the CA that signed https coordinators' certificates (default: system roots)")
	root.AddCommand(newGenCmd(s), newTrainCmd(s), newQuickstartCmd(s), newClusterCmd(s, ops), newJobCmd(s, ops), newScheduleCmd(s, ops), newRecommendCmd(s, ops), newSimilarCmd(s, ops), newServeCmd(s, ops), newSnapshotCmd(s), newNATSConfigCmd(s))
	return root
}

// noArgs is cobra.NoArgs with a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}
