package modpipe

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// signalContext returns the context of Main's run: the first Ctrl-C
// (SIGINT) or SIGTERM cancels it, so that modules stop, cleanups and
// teardown hooks run and the summary is printed; a second one exits at
// once with 128 plus the signal's number (130 for Ctrl-C). The exit is
// explicit rather than left to the signal's default action, which a
// process started with SIGINT ignored (a background job of a script, some
// CI agents) would not take. stop releases the signals.
func signalContext(stderr io.Writer) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			cancel(fmt.Errorf("%v signal received", sig))
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "modpipe: second %v signal: exiting at once, without waiting for cleanups\n", sig)
			os.Exit(signalExitCode(sig))
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(context.Canceled)
	}
}

// signalExitCode is the shell's exit code for a process ended by sig.
func signalExitCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}
