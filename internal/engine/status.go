// Package engine runs a validated module graph: the scheduler decides what
// may run and records statuses, Exec runs one module with its conditions,
// retries, timeout and panic recovery.
package engine

// Status is the state of one node. The public modpipe.Status mirrors it.
type Status uint8

// Node statuses, in the order of the public modpipe constants.
const (
	Pending Status = iota
	Running
	Succeeded
	Failed
	Skipped
	TimedOut
	Cancelled
	DependencyFailed
	IgnoredFailure
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
	KindNone Kind = iota
	KindError
	KindTimeout
	KindCancel
	KindPanic
)

var kindNames = [...]string{"", "error", "timeout", "cancel", "panic"}

// String returns the kind's name ("" for KindNone).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}
