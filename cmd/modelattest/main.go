// Command modelattest packages ML models as OCI artifacts, moves them
// between registries and OCI layouts, and (with its referrers) attests
// and verifies them. All logic lives in the library packages; this is
// flags, output and exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes: what a script can branch on.
const (
	exitOK = 0
	// exitError: the command could not run (bad flags, network, registry,
	// file system).
	exitError = 1
	// exitUsage: the command line is wrong.
	exitUsage = 2
	// exitVerify: the command ran and the content failed a check (digest
	// mismatch, unsafe path, signature or policy).
	exitVerify = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err))
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "Error:", err)
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case isVerificationFailure(err):
		return exitVerify
	}
	return exitError
}

type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }
