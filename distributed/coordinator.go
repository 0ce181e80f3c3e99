// Package distributed defines how the instances of a distributed modpipe
// run coordinate: the Coordinator interface, its message types, an
// in-memory implementation (NewInMemory) and, in coordinatortest, the
// conformance suite every implementation must pass.
//
// A Coordinator is a transport with atomic primitives. The policy — when a
// lease is dead, what is re-queued and how often, which result is accepted,
// when the run fails — lives in modpipe itself, so a coordinator written for
// another backend gets the same guarantees by passing coordinatortest.Run.
//
// One Coordinator value serves one instance of one run. Every method must be
// safe for concurrent use, must honour its context, and must return
// ErrRunEnded-wrapping errors only as documented.
package distributed

import (
	"context"
	"errors"
	"time"
)

// Coordinator is the transport between the instances of one run. Its
// methods are exactly the ones modpipe calls; the interfaces below
// (BatchClaimer, BatchEnqueuer, BatchPublisher, PublishClaimer,
// ResultWatcher) are optional shortcuts for fewer round trips.
//
// What an implementation must guarantee (coordinatortest.Run checks each):
//
//   - Atomic claims: an assignment goes to one claimer, with a fresh lease,
//     and only to a live registered instance, checked in the same step.
//   - Fencing: Publish and Reclaim act only on the module's current lease
//     (same attempt and token); anything else fails with ErrStaleLease and
//     changes nothing.
//   - Blocking waits (Claim, AwaitResult, AwaitState) block without busy
//     loops, lose no wake-up, and return when ctx is done.
//   - Validation: malformed or oversized input is refused with ErrInvalid,
//     and data read back from the backend is validated again
//     (ValidateAssignment, ValidateResult), never trusted.
//   - Registration: the master's fingerprint and total are the run's; a
//     live index is not taken over; a completed run takes no one.
//   - Errors wrap the sentinels below (errors.Is), with details.
//
// Times the coordinator reports (heartbeat ages, queue waits) are measured
// on one clock — the coordinator's or its server's — so that clock skew
// between machines does not matter.
type Coordinator interface {
	// Register joins the run. The master's (instance 0) Fingerprint and
	// Total are the run's:
	//
	//   - A worker registering while the master is registered must present
	//     the master's Fingerprint and Total, else Register fails with an
	//     error wrapping ErrFingerprintMismatch that names both fingerprints
	//     (or both totals), and nothing is recorded.
	//   - A worker registering before the master is recorded. When the
	//     master registers, every worker whose Fingerprint or Total differs
	//     is refused: it leaves Instances and RunState.Registered, and its
	//     next Heartbeat, Claim and ClaimBatch fail with an error wrapping
	//     both ErrNotRegistered and ErrFingerprintMismatch, naming both
	//     fingerprints (or totals). The master itself is never refused by a
	//     worker.
	//   - An index whose current registration belongs to another Session
	//     and is alive (its last heartbeat is no older than its
	//     LeaseTimeout) is taken: Register fails with an error wrapping
	//     ErrIndexTaken and changes nothing. A lost registration may be
	//     replaced (a re-run job); the leases it held stay listed by Leases
	//     for modpipe to reclaim. Registering again with the same Session
	//     (a retry) succeeds and replaces the entry.
	//   - Registering into a run that has completed fails with an error
	//     wrapping ErrRunEnded.
	//
	// Registration counts as a heartbeat. One Coordinator value serves one
	// instance and remembers the Session it registered with; Heartbeat and
	// Claim act for that registration.
	Register(ctx context.Context, r Registration) error

	// Heartbeat records that the instance is alive and reports what every
	// instance needs to know each beat: whether the master is alive, and the
	// run's state. Leases are renewed through it: a lease lives as long as
	// its holder's heartbeats. A lost instance (silent for longer than its
	// LeaseTimeout) that beats again is alive again, so an outage shorter
	// than the run survives; the leases taken from it meanwhile stay
	// fenced. Heartbeat fails with an error wrapping ErrNotRegistered when
	// the instance never registered or was replaced by another session,
	// and additionally wrapping ErrFingerprintMismatch when the master
	// refused it. Both are final for the instance.
	Heartbeat(ctx context.Context, instance int) (Pulse, error)

	// Instances returns every registered, not refused instance with the age
	// of its last heartbeat, ordered by index.
	Instances(ctx context.Context) ([]InstanceInfo, error)

	// Enqueue adds an assignment to the queue. Claims take assignments with
	// the highest Priority first and, within a priority, in enqueue order.
	// Enqueueing a module and attempt that this run has already enqueued
	// (whether still queued, claimed or finished, and whatever its other
	// fields) is ignored and returns nil: retries are safe, and a new
	// dispatch of a module uses a higher Attempt.
	Enqueue(ctx context.Context, a Assignment) error

	// Claim takes the next assignment whose Requires are all among caps
	// (see Satisfies) and records the claiming instance, with its current
	// registration session, as the holder of a new lease, atomically: an
	// assignment is never handed to two claimers. It blocks until such an
	// assignment exists, the run ends (an error wrapping ErrRunEnded;
	// cancellation ends the run for claimers) or ctx is done. It must not
	// busy-loop while waiting.
	//
	// Only a live registered instance takes work. When the instance is not
	// registered with this Coordinator's session (never registered, or
	// replaced), was refused by the master, or is lost (its last heartbeat
	// is older than its LeaseTimeout), Claim fails with an error wrapping
	// ErrNotRegistered and takes nothing. The check is made atomically with
	// taking the assignment — also for a claim that was already waiting —
	// so an instance cut off from the run cannot take back the work
	// re-queued away from it.
	Claim(ctx context.Context, instance int, caps []string) (Claim, error)

	// Leases returns every lease currently held: claimed assignments whose
	// result has not been accepted and that were not reclaimed.
	Leases(ctx context.Context) ([]Lease, error)

	// Reclaim ends a lease that is still current (same module, attempt and
	// token) and, when next is not nil, enqueues next in the same atomic
	// step (with Enqueue's rule for duplicates). It fails with an error
	// wrapping ErrStaleLease, and enqueues nothing, when the lease is no
	// longer current (its result was accepted, or it was reclaimed).
	Reclaim(ctx context.Context, l Lease, next *Assignment) error

	// Publish stores a module's result, fenced by its lease: it is accepted
	// only while r.Lease is the module's current lease, and then ends the
	// lease. Otherwise it fails with an error wrapping ErrStaleLease and
	// stores nothing. Results failing ValidateResult are rejected with an
	// error wrapping ErrInvalid.
	Publish(ctx context.Context, r Result) error

	// AwaitResult returns the accepted result of module, blocking until one
	// is published, the run completes (ErrRunEnded) or ctx is done. A
	// result published before the call is returned at once. Cancel does not
	// end the wait (results of modules that were running may still
	// arrive); Complete does.
	AwaitResult(ctx context.Context, module string) (Result, error)

	// Cancel marks the run cancelled with a reason. Claimers return
	// ErrRunEnded; AwaitState callers wake up. Cancelling twice keeps the
	// first reason.
	Cancel(ctx context.Context, by int, reason string) error

	// Complete marks the run completed, with its outcome. Claimers and
	// awaiters return ErrRunEnded, AwaitState callers wake up, and later
	// registrations are refused. Completing again changes nothing and
	// returns nil: the first outcome stays.
	Complete(ctx context.Context, failed bool) error

	// AwaitState blocks until the run's state differs from known (or ctx is
	// done) and returns the new state. A change that happened before the
	// call is returned at once, so AwaitState(ctx, RunState{}) reads the
	// current state of a run that has a registration.
	AwaitState(ctx context.Context, known RunState) (RunState, error)

	// Close releases the coordinator's resources. It does not end the run.
	// modpipe calls it when a distributed Run returns; calling it again
	// must be harmless.
	Close() error
}

// Errors a Coordinator returns, wrapped with details.
var (
	// ErrRunEnded: the run was cancelled or has completed.
	ErrRunEnded = errors.New("run ended")
	// ErrStaleLease: the lease is not the module's current lease.
	ErrStaleLease = errors.New("stale lease")
	// ErrFingerprintMismatch: the instance runs a different pipeline.
	ErrFingerprintMismatch = errors.New("pipeline fingerprint mismatch")
	// ErrInvalid: a message is malformed or too large.
	ErrInvalid = errors.New("invalid message")
	// ErrNotConfigured: a RunBinder has no backend to talk to (no URL), as
	// in a pull request from a fork, where CI secrets are withheld.
	ErrNotConfigured = errors.New("coordinator not configured")
	// ErrIndexTaken: another live instance (another session) is registered
	// with the same index.
	ErrIndexTaken = errors.New("instance index taken")
	// ErrNotRegistered: the caller is not (or no longer) a registered,
	// accepted and live instance of the run: it was replaced by another
	// session, refused, or declared lost after its heartbeats stopped.
	ErrNotRegistered = errors.New("instance not registered")
)

// Errors that end a run at once: retrying cannot fix them, so the engine's
// loops treat them as fatal instead of riding them out as outages. A
// coordinator that met one keeps returning it from every later call except
// Cancel and Complete (which still try to tell the other instances).
var (
	// ErrCorrupt: data read back from the coordinator's store is malformed
	// (written by something other than modpipe, another version, or
	// damaged). The error names the key; the run cannot continue: start a
	// new run id.
	ErrCorrupt = errors.New("the run's data in the coordinator is corrupt")
	// ErrRefused: the coordinator's server refused an operation for a
	// reason that lasts (out of memory, read-only replica, missing ACL
	// permission, wrong or missing password, scripting disabled). The
	// error quotes the server and says what to change.
	ErrRefused = errors.New("the coordinator's server refused the operation")
)

// Registration is what an instance presents when it joins a run.
type Registration struct {
	Instance int
	// Total is the number of instances the run expects.
	Total int
	// Capabilities are lower-case; they include the instance's OS and, for
	// the master, the reserved MasterCapability.
	Capabilities []string
	// Fingerprint identifies the module graph (names, dependencies,
	// requirements, result types); every instance must present the same.
	Fingerprint string
	// Session is unique per process: a restarted instance registers with a
	// new one, so leases held by its previous life can be told apart.
	Session string
	// LeaseTimeout is how long the instance stays alive without a
	// heartbeat; after it, the instance is lost: its claims fail and its
	// index may be taken over. Zero means it is never lost by age (and its
	// index can then never be taken over while it is registered).
	LeaseTimeout time.Duration
	// MAC authenticates the registration when the run has a shared
	// secret; coordinators store and return it verbatim.
	MAC []byte
}

// Pulse is what a heartbeat returns.
type Pulse struct {
	// MasterRegistered is false until instance 0 has registered.
	MasterRegistered bool
	// MasterAge is the time since the master's last heartbeat.
	MasterAge time.Duration
	// State is the run's state at the beat.
	State RunState
}

// MasterCapability is advertised by instance 0 only; PinToMaster modules
// require it.
const MasterCapability = "@master"

// InstanceInfo is a registered instance as the coordinator sees it.
type InstanceInfo struct {
	Instance     int
	Capabilities []string
	Session      string
	// Age is the time since its last heartbeat (or registration).
	Age time.Duration
	// Fingerprint, Total and MAC are the registration's.
	Fingerprint string
	Total       int
	MAC         []byte
}

// Assignment is a module handed to the queue.
type Assignment struct {
	Module string
	// Attempt numbers dispatches of the module, from 1; a re-queue after a
	// lost lease increments it.
	Attempt int
	// Requires are the capabilities a claimer must all have (lower-case);
	// an entry "a|b" is satisfied by either a or b.
	Requires []string
	// Priority orders the queue: higher first (the critical path).
	Priority int64
	// MAC authenticates the assignment when the run has a shared secret;
	// coordinators store and return it verbatim.
	MAC []byte
}

// Lease is a claim on an assignment by one instance.
type Lease struct {
	Module  string
	Attempt int
	Holder  int
	// Session is the holder's registration session at the time of the claim.
	Session string
	// Token is unique per claim; it fences results and reclaims.
	Token string
	// Age is the time since the claim.
	Age time.Duration
}

// Claim is what Claim hands to an instance.
type Claim struct {
	Assignment Assignment
	Lease      Lease
	// QueueWait is the time between enqueue and claim.
	QueueWait time.Duration
}

// Status is the outcome of one execution, as published.
type Status string

// Statuses an executing instance publishes.
const (
	StatusSucceeded Status = "succeeded" // returned without error; the Result carries a Value
	StatusFailed    Status = "failed"    // returned an error or panicked
	StatusSkipped   Status = "skipped"   // a condition decided at run time skipped it
	StatusTimedOut  Status = "timed-out" // its last attempt outlived its Timeout
	StatusCancelled Status = "cancelled" // the run was cancelled or stopped while it ran
)

// Result is a module's outcome, published by the instance that ran it.
type Result struct {
	Module string
	Lease  Lease
	Status Status
	// Value is the module's result encoded as JSON (Succeeded only).
	Value []byte
	// Error describes a failure; nil on success and skip.
	Error *ErrorInfo
	// Reason explains a skip.
	Reason string
	// Attempts counts executions on the holder (retries included).
	Attempts int
	// Duration is the execution time on the holder.
	Duration time.Duration
	// QueueWait is copied from the claim.
	QueueWait time.Duration
	// Log is the module's log (its last MaxLogSize bytes).
	Log []byte
	// MAC authenticates the result when the run has a shared secret;
	// coordinators store and return it verbatim.
	MAC []byte
}

// ErrorInfo is an error that crossed instances. It is itself an error, so
// that a module's failure on a worker reaches the master's summary with its
// message, kind and origin intact.
type ErrorInfo struct {
	Message string
	// Kind is "error", "timeout", "cancel" or "panic".
	Kind     string
	Instance int
}

// Error returns the original message.
func (e *ErrorInfo) Error() string { return e.Message }

// RunState is the run-wide state every instance watches.
type RunState struct {
	// Registered counts the instances registered so far, so that a
	// registration wakes AwaitState: the master then routes work that was
	// waiting for a capable instance at once.
	Registered   int
	Cancelled    bool
	CancelledBy  int
	CancelReason string
	Completed    bool
	Failed       bool
}

// Limits on messages, enforced by every Coordinator (see ValidateResult).
const (
	// MaxValueSize bounds a result's JSON value.
	MaxValueSize = 16 << 20
	// MaxLogSize bounds a result's log; longer logs are cut to their tail
	// before publishing.
	MaxLogSize = 4 << 20
	// MaxNameSize bounds module names and error messages' length.
	MaxNameSize = 1024
)

// RunBinder is implemented by coordinators that take settings from
// modpipe's command line and environment: modpipe calls BindRun once,
// before Register, with the run id and coordinator URL it resolved
// (--run-id, MODPIPE_RUN_ID, GitHub's run id; --redis-url,
// MODPIPE_REDIS_URL, REDIS_URL). Settings made in code take precedence.
type RunBinder interface {
	BindRun(RunBinding) error
}

// RunBinding is what modpipe passes to a RunBinder.
type RunBinding struct {
	RunID string
	URL   string
}

// CommandCounter is implemented by coordinators that can say how many
// commands they sent to their backend (hosted Redis tiers bill per
// command); the count appears in the run summary and report.
type CommandCounter interface {
	Commands() uint64
}

// BatchClaimer is implemented by coordinators that can claim several
// assignments in one round trip. ClaimBatch behaves like Claim — blocking
// until at least one assignment is available, atomic, best first — but
// returns up to limit (at most MaxBatch) claims, each with its own lease. An
// instance asks for as many as it has free execution slots.
// Its rules for unregistered, refused and lost instances are Claim's.
type BatchClaimer interface {
	ClaimBatch(ctx context.Context, instance int, caps []string, limit int) ([]Claim, error)
}

// BatchEnqueuer is implemented by coordinators that queue several
// assignments in one round trip, with Enqueue's semantics for each.
type BatchEnqueuer interface {
	EnqueueBatch(ctx context.Context, as []Assignment) error
}

// BatchPublisher is implemented by coordinators that publish several
// results in one round trip, with Publish's semantics (fencing, validation)
// for each; the returned slice holds each result's error (nil: accepted).
type BatchPublisher interface {
	PublishBatch(ctx context.Context, rs []Result) []error
}

// PublishClaimer is implemented by coordinators that publish results and
// claim new work in one round trip: an instance whose modules finished
// hands over their results and takes work for the execution slots they
// freed, so that a busy instance pays one trip per batch, not two.
//
// PublishAndClaim publishes rs with PublishBatch's semantics (errs[i] is
// rs[i]'s error; nil: accepted) and then, when limit > 0, claims up to
// limit (at most MaxBatch) assignments with ClaimBatch's semantics
// (atomic, best first, a fresh lease each, the same rules for
// unregistered, refused and lost instances), except that it never blocks:
// with nothing to claim it returns no claims and a nil claimErr. claimErr
// is the claim's error (ErrRunEnded, ErrNotRegistered...); the
// publications stand whatever it is. A transport error fails both: every
// errs[i] and claimErr wrap it, and nothing is known to have been taken.
type PublishClaimer interface {
	PublishAndClaim(ctx context.Context, rs []Result, instance int, caps []string, limit int) (errs []error, claims []Claim, claimErr error)
}

// ResultWatcher is implemented by coordinators that can deliver the
// results of many modules through one subscription, where AwaitResult
// needs a blocked call per module.
//
// WatchResults starts watching modules and returns at once (an error
// only when the watch could not start: nothing will be delivered for
// them). For each module it later calls deliver exactly once, from a
// goroutine of the coordinator's, with the accepted result, or with the
// error that ended that module's wait: an error wrapping ErrRunEnded when
// the run completed without a result for it, or a fatal one (ErrCorrupt,
// ErrRefused, ErrInvalid for a malformed stored result). Cancel does not
// end the watch (results of modules that were running may still arrive);
// Complete does. Transport errors are not delivered: the coordinator
// retries until its connection is back and reads again, so that no
// result published meanwhile is missed. When ctx is done the watch of
// these modules ends: deliver is not called for them any more, and every
// goroutine the watch started ends. deliver must not block for long.
// Watching a module again (a new attempt) while it is watched is allowed;
// each watch delivers once.
type ResultWatcher interface {
	WatchResults(ctx context.Context, modules []string, deliver func(module string, r Result, err error)) error
}

// MaxBatch bounds ClaimBatch.
const MaxBatch = 64
