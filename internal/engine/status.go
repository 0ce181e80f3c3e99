// Package engine runs a validated module graph: the scheduler decides what
// may run and records statuses, Exec runs one module with its conditions,
// retries, timeout and panic recovery.
package engine

// Status is the state of one node. The public modpipe.Status mirrors it.
type Status uint8

// Node statuses, in the order of the public modpipe constants.
const (
	Pending          Status = iota // not started
	Running                        // executing
	Succeeded                      // returned without error
	Failed                         // returned an error, panicked, or could not run
	Skipped                        // not run: a condition, OS or skipped dependency
	TimedOut                       // the last attempt outlived its timeout
	Cancelled                      // the run was cancelled or stopped
	DependencyFailed               // not run: a dependency failed
	IgnoredFailure                 // failed, but marked IgnoreFailure
	// Cached is reported for a succeeded node whose result came from the
	// cache; the scheduler itself records such nodes as Succeeded.
	Cached
)

var statusNames = [...]string{"pending", "running", "succeeded", "failed", "skipped", "timed-out", "cancelled", "dependency-failed", "ignored-failure", "cached"}

// String returns the lower-case name used in summaries and reports.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// Bad reports whether the status fails the run: Failed, TimedOut, Cancelled
// and DependencyFailed do; IgnoredFailure does not.
func (s Status) Bad() bool {
	switch s {
	case Failed, TimedOut, Cancelled, DependencyFailed:
		return true
	}
	return false
}

// Kind classifies an error for people and for other instances.
type Kind uint8

// Error kinds.
const (
	KindNone    Kind = iota // no error
	KindError               // the module returned an error
	KindTimeout             // an attempt outlived its timeout
	KindCancel              // the run was cancelled
	KindPanic               // the module panicked
)

var kindNames = [...]string{"", "error", "timeout", "cancel", "panic"}

// String returns the kind's name ("" for KindNone).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}
