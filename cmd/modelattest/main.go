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
	"sync/atomic"
	"syscall"

	"github.com/modelattest/modelattest/modelspec"
	"github.com/modelattest/modelattest/oras"
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

// Exit codes of a run ended by a signal, as shells report them (128+n).
const (
	exitSIGINT  = 130
	exitSIGTERM = 143
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var got atomic.Value // the first signal received
	go func() {
		s := <-sigs
		got.Store(s)
		cancel() // the command stops, cleans up and returns
		<-sigs   // a second signal: stop now
		os.Exit(signalExit(s))
	}()
	cmd, err := newRootCmd().ExecuteContextC(ctx)
	signal.Stop(sigs)
	if s, ok := got.Load().(os.Signal); ok {
		if err == nil && cmd != nil && cmd.Annotations[annotationStopsOnSignal] == "true" {
			os.Exit(exitOK) // a server shut down cleanly: how it is meant to stop
		}
		fmt.Fprintf(os.Stderr, "Error: interrupted (%s)\n", s)
		os.Exit(signalExit(s))
	}
	os.Exit(exitCode(err))
}

// annotationStopsOnSignal marks a command that runs until a signal (a
// server): stopped cleanly by one, it exits 0 rather than 130 or 143.
const annotationStopsOnSignal = "modelattest/stops-on-signal"

func signalExit(s os.Signal) int {
	if s == syscall.SIGTERM {
		return exitSIGTERM
	}
	return exitSIGINT
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "Error:", err)
	if h := oras.Hint(err); h != "" {
		fmt.Fprintln(os.Stderr, "Hint: "+h)
	}
	var ue usageError
	switch {
	case errors.As(err, &ue), errors.Is(err, modelspec.ErrFilter):
		return exitUsage
	case isVerificationFailure(err):
		return exitVerify
	}
	return exitError
}

type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }
