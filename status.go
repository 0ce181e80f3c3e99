package modpipe

import (
	"fmt"

	"github.com/modpipe/modpipe/internal/engine"
)

// Status is what became of a module in a run.
type Status uint8

// Module statuses. Pending and Running are only seen while a run is in
// progress; every module of a finished run has one of the others.
const (
	// Pending: the module has not started; it waits for its dependencies,
	// a free slot or an instance that can run it.
	Pending = Status(engine.Pending)
	// Running: the module is executing.
	Running = Status(engine.Running)
	// Succeeded: the module returned without error, possibly after retries.
	Succeeded = Status(engine.Succeeded)
	// Failed: the module's last attempt returned an error or panicked (see
	// ModuleResult.ErrorKind), or it could not be run at all. Fails the run.
	Failed = Status(engine.Failed)
	// Skipped: the module did not run because of SkipIf, RunIf, OnOS, a
	// matrix target of another OS, or a skipped dependency; the reason is in
	// ModuleResult.Reason. Does not fail the run.
	Skipped = Status(engine.Skipped)
	// TimedOut: the module's last attempt outlived its Timeout. Fails the
	// run.
	TimedOut = Status(engine.TimedOut)
	// Cancelled: the run was cancelled (its context, an interrupt, another
	// instance) or stopped after a failure, before or while the module ran.
	// Fails the run.
	Cancelled = Status(engine.Cancelled)
	// DependencyFailed: the module did not run because a dependency failed
	// (DependsOn; see AlwaysRun and DependsOnOptional). Fails the run.
	DependencyFailed = Status(engine.DependencyFailed)
	// IgnoredFailure: a module marked IgnoreFailure failed or timed out; it
	// is reported but does not fail the run, and its dependents still run.
	IgnoredFailure = Status(engine.IgnoredFailure)
	// Cached: the module's result was restored from the cache (see Cache)
	// and its body did not run. Counts as a success: dependents run.
	Cached = Status(engine.Cached)
)

// String returns the status name used in summaries and reports, such as
// "succeeded" or "dependency-failed".
func (s Status) String() string { return engine.Status(s).String() }

// Failed reports whether the status fails the run.
func (s Status) Failed() bool { return engine.Status(s).Bad() }

// MarshalText encodes the status as its name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a status name.
func (s *Status) UnmarshalText(b []byte) error {
	for v := Pending; v <= Cached; v++ {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("modpipe: unknown status %q", b)
}

// ErrorKind classifies a module's error (ModuleResult.ErrorKind). Its value
// is the name used in summaries and in the JSON report's "error_kind".
type ErrorKind string

// Error kinds. A module without error has the kind "".
const (
	// KindError: the module returned an error, or could not be run.
	KindError ErrorKind = "error"
	// KindTimeout: an attempt outlived the module's Timeout.
	KindTimeout ErrorKind = "timeout"
	// KindCancel: the run was cancelled while the module ran or waited.
	KindCancel ErrorKind = "cancel"
	// KindPanic: the module panicked; the error holds the panic value and
	// the module's log the stack trace.
	KindPanic ErrorKind = "panic"
)

// errorKind maps the engine's kind of an error that is present: an error
// without a recorded kind counts as KindError.
func errorKind(k engine.Kind) ErrorKind {
	switch k {
	case engine.KindTimeout:
		return KindTimeout
	case engine.KindCancel:
		return KindCancel
	case engine.KindPanic:
		return KindPanic
	}
	return KindError
}
