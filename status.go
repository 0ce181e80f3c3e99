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
	Pending          = Status(engine.Pending)
	Running          = Status(engine.Running)
	Succeeded        = Status(engine.Succeeded)
	Failed           = Status(engine.Failed)
	Skipped          = Status(engine.Skipped)
	TimedOut         = Status(engine.TimedOut)
	Cancelled        = Status(engine.Cancelled)
	DependencyFailed = Status(engine.DependencyFailed)
	// IgnoredFailure is a failure of a module marked IgnoreFailure: it is
	// reported but does not fail the run.
	IgnoredFailure = Status(engine.IgnoredFailure)
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
	for v := Pending; v <= IgnoredFailure; v++ {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("modpipe: unknown status %q", b)
}
