// Package cli holds what the command lines of cofactor's three binaries
// share: the exit codes and error line of CONTRACT.md, usage errors, the
// logging, NATS and HTTP-server flags, opening a snapshot store named on
// the command line, and small output helpers. Each binary's commands live
// beside its main: cmd/cofactor/app, cmd/coordinator/app, cmd/worker/app.
//
// It is a leaf: it imports no package that wires processes together
// (coordinator, worker, allinone), so that each binary links only what
// its own commands use.
package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/als"
	"github.com/cofactor-ml/cofactor/checkpoint"
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

// Usage marks err as a usage error (exit code 2).
func Usage(err error) error { return usageError{err} }

// Usagef is a usage error made with fmt.Errorf.
func Usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// Run executes cmd (made ready by Finish) with args under a context
// cancelled by SIGINT and SIGTERM, prints an error as one line
// "error: ..." on stderr and returns the exit code. Flag errors and
// unknown commands are usage errors.
func Run(cmd *cobra.Command, args []string, stderr io.Writer) int {
	Finish(cmd)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetFlagErrorFunc(flagError)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return ExitCode(err)
	}
	return ExitOK
}

// ExitCode classifies an error: input and usage errors are 2, the rest 1.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
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

// NoArgs is cobra.NoArgs with a usage error.
func NoArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return Usagef("unexpected argument %q", args[0])
	}
	return nil
}

// ExactlyOneArg wants one argument, called name in the error.
func ExactlyOneArg(name string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return Usagef("want exactly one argument, %s; got %d", name, len(args))
		}
		return nil
	}
}

// WriteJSON writes v as one line of JSON.
func WriteJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// WriteFileAtomic writes path through a temporary file in the same
// directory that is synced and renamed into place: after a failure nothing
// is left at path.
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
