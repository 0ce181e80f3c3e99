package engine

import (
	"context"
	"time"

	"github.com/modpipe/modpipe/internal/graph"
)

// Node is one schedulable unit, already resolved from the user's module.
type Node struct {
	// ID is passed to Check, Run and Log, so that one function can serve
	// every node.
	ID   int
	Name string
	Deps []graph.Dep
	// Timeout bounds each attempt's execution (not queue time); 0 means none.
	Timeout time.Duration
	Retry   Retry
	// IgnoreFailure turns Failed and TimedOut into IgnoredFailure.
	IgnoreFailure bool
	// AlwaysRun nodes run even when dependencies failed or the run is stopping.
	AlwaysRun bool
	// Mutex lists NotInParallel keys: two nodes sharing a key never overlap.
	Mutex []string
	// Exclusive nodes run alone: nothing else runs while they do.
	Exclusive bool
	// SkipReason, when set, skips the node without running anything
	// (filters, OS conditions decided before the run).
	SkipReason string
	// Check runs once the node is ready, before the first attempt; skip=true
	// skips the node with reason. SkipIf/RunIf conditions live here.
	Check func(ctx context.Context, id int) (skip bool, reason string, err error)
	// Run executes one attempt (numbered from 1).
	Run func(ctx context.Context, id, attempt int) (any, error)
	// Log writes an engine note (retry, panic stack) into the node's log.
	Log func(id int, msg string)
	// Funcs, when set, is called in place of Check, Run and Log, whose
	// being set (non-nil) still says whether the node has a check and a
	// log: one value serving all three lets a host build the node of an
	// execution without allocating a closure for each.
	Funcs NodeFuncs
}

// NodeFuncs is a node's Check, Run and Log in one value (Node.Funcs).
type NodeFuncs interface {
	Check(ctx context.Context, id int) (skip bool, reason string, err error)
	Run(ctx context.Context, id, attempt int) (any, error)
	Log(id int, msg string)
}

// log writes an engine note into the node's log, if it has one.
func (n *Node) log(msg string) {
	switch {
	case n.Log == nil:
	case n.Funcs != nil:
		n.Funcs.Log(n.ID, msg)
	default:
		n.Log(n.ID, msg)
	}
}

// Retry says how often and when a failed attempt is tried again.
type Retry struct {
	// Count is the number of extra attempts after the first.
	Count int
	// Initial is the first backoff; it doubles per attempt up to Max.
	// The actual wait is drawn from [d/2, d] (jitter).
	Initial, Max time.Duration
	// If decides whether an error is worth retrying; nil retries every error.
	If func(error) bool
}

// Outcome is what became of a node.
type Outcome struct {
	Status   Status
	Value    any
	Err      error
	Kind     Kind
	Reason   string
	Attempts int
	// Ready is when all dependencies had finished; Start and End bound execution.
	Ready, Start, End time.Time
	// Instance is the index of the instance that executed the node.
	Instance int
	// QueueWait, when set, is the queue time measured by a coordinator;
	// otherwise it is Start - Ready.
	QueueWait time.Duration
	// Dispatches counts how often the node was handed to an instance (more
	// than once after a lost instance); 0 for local runs.
	Dispatches int
	// LostHolder is the worker that last held the node when the node
	// failed because that worker was lost (where it was last dispatched);
	// 0 otherwise (the master never loses itself).
	LostHolder int
	// Withdrawn marks the outcome of a dispatched node that no instance
	// started and that was taken back after a cancellation: an AlwaysRun
	// node then runs here as a cleanup when CleanupGrace allows (cleanup.go).
	Withdrawn bool
}
