package cmdutil

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// Exit codes shared by every verb. Verbs document their own codes above 2.
const (
	// ExitOK means the command did what was asked and found nothing wrong.
	ExitOK = 0
	// ExitFindings means the command ran and found a problem it reports
	// (a Deny violation for check).
	ExitFindings = 1
	// ExitUsage means bad input or usage: a flag, a file, a policy.
	ExitUsage = 2
)

// ExitError carries an exit code out of a command's RunE. A nil Err means
// the command already reported everything and only the code remains.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// UsageError marks err as bad input or usage (exit 2).
func UsageError(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// Execute runs cmd, prints a failure once to ErrOut, and returns the process
// exit code. Mains call it; commands never call os.Exit.
func Execute(cmd *cobra.Command, streams genericiooptions.IOStreams) int {
	ran, err := cmd.ExecuteC()
	if err == nil {
		return ExitOK
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		if exit.Err != nil {
			fmt.Fprintf(streams.ErrOut, "error: %v\n", exit.Err)
		}
		return exit.Code
	}
	fmt.Fprintf(streams.ErrOut, "error: %v\n", err)
	// Verbs set SilenceUsage once Validate passes: an error before that (an
	// unknown flag, a bad argument count, a failed Validate) is usage, and
	// gets one line that points to the help, as kubectl does, instead of
	// the whole usage text burying the error.
	if ran == nil || !ran.SilenceUsage {
		name := cmd.CommandPath()
		if ran != nil {
			name = ran.CommandPath()
		}
		fmt.Fprintf(streams.ErrOut, "See '%s --help' for usage.\n", name)
		return ExitUsage
	}
	return ExitFindings
}
