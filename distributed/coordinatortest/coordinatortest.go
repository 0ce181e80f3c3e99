// Package coordinatortest is the conformance suite for
// distributed.Coordinator implementations, the way testing/fstest checks an
// fs.FS. A coordinator that passes Run gives modpipe everything it relies on:
// registration rules (the master's fingerprint and total are the run's, a
// live instance's index is taken, only live registered instances claim),
// atomic claims, fenced results and reclaims, idempotent enqueues and
// completion, blocking waits without lost wake-ups, run-wide cancellation
// and completion, ages measured on a real clock, and validation of input.
//
//	func TestConformance(t *testing.T) {
//		coordinatortest.Run(t, func(t *testing.T) distributed.Coordinator {
//			return mycoord.New(...) // a fresh, empty run for every call
//		})
//	}
package coordinatortest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// waitLimit bounds every blocking call the suite makes, so that a broken
// coordinator fails the suite instead of hanging it.
const waitLimit = 10 * time.Second

// liveLease is the LeaseTimeout of the instances the suite registers: no
// test lasts that long, so they never get lost unless a test wants it.
const liveLease = time.Hour

// shortLease is the LeaseTimeout of instances a test lets get lost.
const shortLease = 100 * time.Millisecond

// clockGrain is the rounding a coordinator may apply to the ages it reports
// (Redis counts milliseconds).
const clockGrain = 2 * time.Millisecond

// Run checks the coordinator returned by newCoordinator. Each subtest calls
// newCoordinator once and needs a fresh run (no instances, no queue, no
// results, not cancelled); the suite closes it at the end of the subtest.
func Run(t *testing.T, newCoordinator func(t *testing.T) distributed.Coordinator) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c distributed.Coordinator)
	}{
		{"Registration", testRegistration},
		{"FingerprintMismatchRefused", testFingerprintMismatch},
		{"MasterFingerprintIsTheRuns", testMasterFingerprint},
		{"IndexTakenWhileAlive", testIndexTaken},
		{"LostInstanceReplaced", testLostReplaced},
		{"ClaimsNeedALiveRegistration", testClaimsNeedRegistration},
		{"RegistrationWakesStateWatchers", testRegistrationWakesStateWatchers},
		{"Heartbeats", testHeartbeats},
		{"FIFOWithinPriority", testFIFO},
		{"PriorityOrdering", testPriority},
		{"CapabilitySubsetMatching", testCapabilities},
		{"NoDoubleClaimUnderConcurrency", testNoDoubleClaim},
		{"ReclaimRequeuesNextAttempt", testReclaim},
		{"ReclaimAfterPublishIsStale", testReclaimAfterPublish},
		{"DuplicateEnqueueIgnored", testDuplicateEnqueue},
		{"StaleResultsRejected", testStaleResults},
		{"AwaitResultBeforeAndAfterPublish", testAwaitResult},
		{"NoLostWakeUps", testNoLostWakeUps},
		{"CancellationObservedByAll", testCancellation},
		{"AwaitResultOutlastsCancel", testAwaitAfterCancel},
		{"CompletionWakesEveryone", testCompletion},
		{"CompleteKeepsFirstVerdict", testCompleteIdempotent},
		{"MalformedAndOversizedRejected", testInvalid},
		{"ContextCancellationHonoured", testContexts},
		{"ResultRoundTrip", testRoundTrip},
		{"BatchClaims", testBatchClaims},
		{"BatchEnqueueAndPublish", testBatchEnqueuePublish},
		{"WatchResults", testWatchResults},
	}
	tests = append(tests, publishClaimerTests...) // publishclaim.go
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCoordinator(t)
			t.Cleanup(func() {
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, c)
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// registration is a valid registration of instance in the suite's runs
// (fingerprint fp-1, 4 instances), with a fresh session.
func registration(instance int, caps ...string) distributed.Registration {
	return distributed.Registration{Instance: instance, Total: 4, Capabilities: caps, Fingerprint: "fp-1",
		Session: fmt.Sprintf("s%d-%d", instance, time.Now().UnixNano()), LeaseTimeout: liveLease}
}

// state reads the run's state the way modpipe does, with AwaitState from
// the zero state: every run the suite reads it from has a registration, so
// its state differs from the zero value and the call returns at once.
func state(t *testing.T, c distributed.Coordinator) (distributed.RunState, error) {
	return c.AwaitState(ctxFor(t), distributed.RunState{})
}

// register registers instance and returns its session.
func register(t *testing.T, c distributed.Coordinator, instance int, caps ...string) string {
	t.Helper()
	reg := registration(instance, caps...)
	must(t, c.Register(ctxFor(t), reg), fmt.Sprintf("Register(%d)", instance))
	return reg.Session
}

// join registers the instances a test claims for, without capabilities.
func join(t *testing.T, c distributed.Coordinator, instances ...int) {
	t.Helper()
	for _, i := range instances {
		register(t, c, i)
	}
}

func enqueue(t *testing.T, c distributed.Coordinator, module string, prio int64, requires ...string) {
	t.Helper()
	must(t, c.Enqueue(ctxFor(t), distributed.Assignment{Module: module, Attempt: 1, Priority: prio, Requires: requires}), "Enqueue("+module+")")
}

func claim(t *testing.T, c distributed.Coordinator, instance int, caps ...string) distributed.Claim {
	t.Helper()
	cl, err := c.Claim(ctxFor(t), instance, caps)
	must(t, err, "Claim")
	return cl
}

// noClaim checks that a claim by instance (registered) with caps gets
// nothing within a short wait.
func noClaim(t *testing.T, c distributed.Coordinator, instance int, caps ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	cl, err := c.Claim(ctx, instance, caps)
	if err == nil {
		t.Fatalf("claim with %v took %s, which requires %v", caps, cl.Assignment.Module, cl.Assignment.Requires)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked claim returned %v, want context.DeadlineExceeded", err)
	}
}

func success(cl distributed.Claim, value string) distributed.Result {
	return distributed.Result{Module: cl.Assignment.Module, Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: []byte(value), Attempts: 1}
}

func testRegistration(t *testing.T, c distributed.Coordinator) {
	register(t, c, 1, "Docker", "linux")
	register(t, c, 0, "linux", distributed.MasterCapability)
	ins, err := c.Instances(ctxFor(t))
	must(t, err, "Instances")
	if len(ins) != 2 || ins[0].Instance != 0 || ins[1].Instance != 1 {
		t.Fatalf("Instances = %+v, want instances 0 and 1 in order", ins)
	}
	if ins[1].Session == "" || ins[1].Session == ins[0].Session {
		t.Errorf("sessions %q and %q: want them recorded", ins[0].Session, ins[1].Session)
	}
	if !slices.Contains(ins[1].Capabilities, "docker") {
		t.Errorf("capabilities %v: want them lower-cased", ins[1].Capabilities)
	}
	if ins[0].Age < 0 || ins[0].Age > waitLimit {
		t.Errorf("age of a fresh registration: %s", ins[0].Age)
	}
	// A claim records the holder's session.
	enqueue(t, c, "m", 1)
	cl := claim(t, c, 1, "docker")
	if cl.Lease.Session != ins[1].Session {
		t.Errorf("lease session %q, want the holder's %q", cl.Lease.Session, ins[1].Session)
	}
	if ins[1].Fingerprint != "fp-1" || ins[1].Total != 4 {
		t.Errorf("instance 1 listed with fingerprint %q and total %d, want the registration's fp-1 and 4", ins[1].Fingerprint, ins[1].Total)
	}
	// Registering again with the same session (a retry) replaces the entry.
	again := registration(1, "windows")
	again.Session = ins[1].Session
	must(t, c.Register(ctxFor(t), again), "Register with the same session")
	ins, _ = c.Instances(ctxFor(t))
	if len(ins) != 2 || !slices.Equal(ins[1].Capabilities, []string{"windows"}) || ins[1].Session != again.Session {
		t.Errorf("after re-registration: %+v", ins)
	}
}

func testRegistrationWakesStateWatchers(t *testing.T, c distributed.Coordinator) {
	register(t, c, 0)
	known, err := state(t, c)
	must(t, err, "reading the state")
	if known.Registered != 1 {
		t.Fatalf("State after one registration: %+v, want Registered 1", known)
	}
	got := make(chan distributed.RunState, 1)
	go func() {
		s, err := c.AwaitState(ctxFor(t), known)
		if err != nil {
			t.Errorf("AwaitState: %v", err)
		}
		got <- s
	}()
	register(t, c, 2, "windows")
	if s := <-got; s.Registered != 2 || s.Cancelled || s.Completed {
		t.Errorf("AwaitState after a second registration: %+v, want Registered 2", s)
	}
}

// testFingerprintMismatch: a worker joining after the master must present
// the master's fingerprint and total.
func testFingerprintMismatch(t *testing.T, c distributed.Coordinator) {
	register(t, c, 0, "linux")
	odd := registration(2, "linux")
	odd.Fingerprint = "fp-other"
	err := c.Register(ctxFor(t), odd)
	if !errors.Is(err, distributed.ErrFingerprintMismatch) || !strings.Contains(fmt.Sprint(err), "fp-other") || !strings.Contains(fmt.Sprint(err), "fp-1") {
		t.Fatalf("Register with another fingerprint: %v, want ErrFingerprintMismatch naming fp-other and fp-1", err)
	}
	wrongTotal := registration(3, "linux")
	wrongTotal.Total = 9
	err = c.Register(ctxFor(t), wrongTotal)
	if !errors.Is(err, distributed.ErrFingerprintMismatch) || !strings.Contains(fmt.Sprint(err), "9") {
		t.Fatalf("Register with --total 9 in a run of 4: %v, want ErrFingerprintMismatch naming both totals", err)
	}
	ins, _ := c.Instances(ctxFor(t))
	if len(ins) != 1 {
		t.Errorf("refused instances were recorded: %+v", ins)
	}
	if _, err := c.Heartbeat(ctxFor(t), 2); !errors.Is(err, distributed.ErrNotRegistered) {
		t.Errorf("heartbeat of the refused instance: %v, want ErrNotRegistered", err)
	}
}

// testMasterFingerprint: workers that registered before the master with
// another fingerprint or total are refused when it arrives; the master and
// the matching workers run on.
func testMasterFingerprint(t *testing.T, c distributed.Coordinator) {
	good := register(t, c, 1, "linux")
	odd := registration(2, "linux")
	odd.Fingerprint = "fp-odd"
	must(t, c.Register(ctxFor(t), odd), "Register(odd worker before the master)")
	wrongTotal := registration(3, "linux")
	wrongTotal.Total = 5
	must(t, c.Register(ctxFor(t), wrongTotal), "Register(worker with --total 5 before the master)")
	// The odd worker waits for work before the master arrives.
	waiting := make(chan error, 1)
	go func() {
		cl, err := c.Claim(ctxFor(t), 2, []string{"linux"})
		if err == nil {
			err = fmt.Errorf("claimed %s", cl.Assignment.Module)
		}
		waiting <- err
	}()
	known, err := state(t, c)
	must(t, err, "reading the state")
	if known.Registered != 3 {
		t.Fatalf("State before the master: %+v, want 3 registered", known)
	}

	must(t, c.Register(ctxFor(t), registration(0, "linux", distributed.MasterCapability)), "Register(master after an odd worker)")
	ins, err := c.Instances(ctxFor(t))
	must(t, err, "Instances")
	if len(ins) != 2 || ins[0].Instance != 0 || ins[1].Instance != 1 || ins[1].Session != good {
		t.Errorf("Instances after the master registered: %+v, want the master and the matching worker 1 only", ins)
	}
	if s, _ := state(t, c); s.Registered != 2 {
		t.Errorf("State after the master registered: %+v, want Registered 2 (refused workers do not count)", s)
	}
	_, err = c.Heartbeat(ctxFor(t), 2)
	if !errors.Is(err, distributed.ErrFingerprintMismatch) || !errors.Is(err, distributed.ErrNotRegistered) ||
		!strings.Contains(fmt.Sprint(err), "fp-odd") || !strings.Contains(fmt.Sprint(err), "fp-1") {
		t.Errorf("heartbeat of the refused worker: %v, want ErrFingerprintMismatch and ErrNotRegistered naming fp-odd and fp-1", err)
	}
	_, err = c.Heartbeat(ctxFor(t), 3)
	if !errors.Is(err, distributed.ErrFingerprintMismatch) || !strings.Contains(fmt.Sprint(err), "5") || !strings.Contains(fmt.Sprint(err), "4") {
		t.Errorf("heartbeat of the worker with another total: %v, want ErrFingerprintMismatch naming 5 and 4", err)
	}
	enqueue(t, c, "build", 1, "linux")
	if err := <-waiting; !errors.Is(err, distributed.ErrNotRegistered) || !errors.Is(err, distributed.ErrFingerprintMismatch) {
		t.Errorf("the refused worker's waiting claim: %v, want ErrNotRegistered and ErrFingerprintMismatch", err)
	}
	if _, err := c.Claim(ctxFor(t), 3, []string{"linux"}); !errors.Is(err, distributed.ErrNotRegistered) {
		t.Errorf("claim by the worker with another total: %v, want ErrNotRegistered", err)
	}
	pulse, err := c.Heartbeat(ctxFor(t), 1)
	must(t, err, "Heartbeat of the matching worker")
	if !pulse.MasterRegistered {
		t.Errorf("pulse %+v, want the master registered", pulse)
	}
	if cl := claim(t, c, 1, "linux"); cl.Assignment.Module != "build" || cl.Lease.Session != good {
		t.Errorf("the matching worker claimed %+v, want build with its session", cl)
	}
}

// testIndexTaken: a live instance's index cannot be registered by another
// session; a retry by the same session can.
func testIndexTaken(t *testing.T, c distributed.Coordinator) {
	first := register(t, c, 1, "linux")
	master := register(t, c, 0)
	for _, i := range []int{1, 0} {
		err := c.Register(ctxFor(t), registration(i, "macos"))
		if !errors.Is(err, distributed.ErrIndexTaken) {
			t.Errorf("second registration of live instance %d: %v, want ErrIndexTaken", i, err)
		}
	}
	ins, err := c.Instances(ctxFor(t))
	must(t, err, "Instances")
	if len(ins) != 2 || ins[0].Session != master || ins[1].Session != first || !slices.Equal(ins[1].Capabilities, []string{"linux"}) {
		t.Errorf("Instances after refused duplicates: %+v, want the first registrations", ins)
	}
	enqueue(t, c, "m", 1)
	if cl := claim(t, c, 1); cl.Lease.Session != first {
		t.Errorf("lease session %q, want the first registration's %q", cl.Lease.Session, first)
	}
}

// testLostReplaced: once an instance is lost (no heartbeat for its
// LeaseTimeout), another session may take its index; the lost one's
// leases stay listed for modpipe to reclaim.
func testLostReplaced(t *testing.T, c distributed.Coordinator) {
	old := registration(1)
	must(t, c.Register(ctxFor(t), old), "Register(1)")
	enqueue(t, c, "m", 1)
	held := claim(t, c, 1)
	// The same session registers again (as a retry would), now with a short
	// lease timeout, and then stays silent.
	old.LeaseTimeout = shortLease
	start := time.Now()
	must(t, c.Register(ctxFor(t), old), "Register(1, short lease)")
	repl := registration(1, "windows")
	for {
		err := c.Register(ctxFor(t), repl)
		if err == nil {
			break
		}
		if !errors.Is(err, distributed.ErrIndexTaken) {
			t.Fatalf("replacing instance 1: %v, want ErrIndexTaken until it is lost, then success", err)
		}
		if time.Since(start) > waitLimit {
			t.Fatalf("instance 1 silent for %s (lease timeout %s) still cannot be replaced: %v", time.Since(start), shortLease, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(start); d < shortLease {
		t.Errorf("instance 1 was replaced %s after registering, before its lease timeout %s", d, shortLease)
	}
	leases, err := c.Leases(ctxFor(t))
	must(t, err, "Leases")
	if len(leases) != 1 || leases[0].Session != old.Session || leases[0].Token != held.Lease.Token {
		t.Fatalf("Leases after the replacement: %+v, want the lost instance's lease on m", leases)
	}
	next := distributed.Assignment{Module: "m", Attempt: 2, Priority: 1}
	must(t, c.Reclaim(ctxFor(t), leases[0], &next), "Reclaim of the lost instance's lease")
	cl := claim(t, c, 1, "windows")
	if cl.Assignment.Module != "m" || cl.Lease.Attempt != 2 || cl.Lease.Session != repl.Session {
		t.Errorf("the replacement claimed %+v, want m attempt 2 under its session", cl)
	}
}

// testClaimsNeedRegistration: an instance that never registered, or is lost,
// takes nothing, even with a claim that was waiting before it got lost.
func testClaimsNeedRegistration(t *testing.T, c distributed.Coordinator) {
	join(t, c, 1)
	enqueue(t, c, "first", 1)
	if cl, err := c.Claim(ctxFor(t), 5, nil); !errors.Is(err, distributed.ErrNotRegistered) {
		t.Fatalf("claim by an unregistered instance: %+v, %v; want ErrNotRegistered", cl.Assignment, err)
	}
	if bc, ok := c.(distributed.BatchClaimer); ok {
		if _, err := bc.ClaimBatch(ctxFor(t), 5, nil, 4); !errors.Is(err, distributed.ErrNotRegistered) {
			t.Fatalf("batch claim by an unregistered instance: %v, want ErrNotRegistered", err)
		}
	}
	if _, err := c.Heartbeat(ctxFor(t), 5); !errors.Is(err, distributed.ErrNotRegistered) {
		t.Errorf("heartbeat of an unregistered instance: %v, want ErrNotRegistered", err)
	}
	if cl := claim(t, c, 1); cl.Assignment.Module != "first" {
		t.Fatalf("registered instance claimed %s, want first", cl.Assignment.Module)
	}

	lost := registration(6, "linux")
	lost.LeaseTimeout = shortLease
	start := time.Now()
	must(t, c.Register(ctxFor(t), lost), "Register(6, short lease)")
	waiting := make(chan error, 1)
	go func() {
		cl, err := c.Claim(ctxFor(t), 6, []string{"linux"})
		if err == nil {
			err = fmt.Errorf("claimed %s", cl.Assignment.Module)
		}
		waiting <- err
	}()
	time.Sleep(2 * shortLease) // instance 6 sends no heartbeat: it gets lost
	if d := time.Since(start); d <= shortLease {
		t.Fatalf("slept %s, not longer than %s", d, shortLease)
	}
	enqueue(t, c, "requeued", 1, "linux")
	if err := <-waiting; !errors.Is(err, distributed.ErrNotRegistered) {
		t.Fatalf("waiting claim of an instance lost %s ago: %v, want ErrNotRegistered", time.Since(start)-shortLease, err)
	}
	if bc, ok := c.(distributed.BatchClaimer); ok {
		if _, err := bc.ClaimBatch(ctxFor(t), 6, []string{"linux"}, 4); !errors.Is(err, distributed.ErrNotRegistered) {
			t.Fatalf("batch claim by a lost instance: %v, want ErrNotRegistered", err)
		}
	}
	if cl := claim(t, c, 1, "linux"); cl.Assignment.Module != "requeued" {
		t.Fatalf("live instance claimed %s, want requeued", cl.Assignment.Module)
	}
	// A lost instance that beats again is alive again (while its beat is
	// younger than its lease timeout: a slow machine may need another).
	enqueue(t, c, "later", 1, "linux")
	for {
		beat := time.Now()
		_, err := c.Heartbeat(ctxFor(t), 6)
		must(t, err, "Heartbeat of a lost instance")
		cl, err := c.Claim(ctxFor(t), 6, []string{"linux"})
		if errors.Is(err, distributed.ErrNotRegistered) && time.Since(beat) > shortLease && time.Since(start) < waitLimit {
			continue
		}
		must(t, err, "Claim by a revived instance")
		if cl.Assignment.Module != "later" || cl.Lease.Session != lost.Session {
			t.Errorf("revived instance claimed %+v, want later under its session", cl)
		}
		break
	}
}

// testHeartbeats checks heartbeat ages against the real time elapsed
// around the calls.
func testHeartbeats(t *testing.T, c distributed.Coordinator) {
	start := time.Now()
	register(t, c, 1, "linux")
	registered := time.Now()
	time.Sleep(60 * time.Millisecond) // let the heartbeat age grow
	ins, _ := c.Instances(ctxFor(t))
	before := ins[0].Age
	if lo, hi := time.Since(registered)-clockGrain, time.Since(start)+clockGrain; before < 60*time.Millisecond-clockGrain || before > hi {
		t.Fatalf("age %s after a silence that lasted between %s and %s", before, lo, hi)
	}
	beat := time.Now() // the heartbeat happens after this
	pulse, err := c.Heartbeat(ctxFor(t), 1)
	must(t, err, "Heartbeat")
	if pulse.MasterRegistered {
		t.Errorf("pulse %+v reports a master before instance 0 registered", pulse)
	}
	ins, _ = c.Instances(ctxFor(t))
	if hi := time.Since(beat) + clockGrain; ins[0].Age > hi {
		t.Errorf("age %s just after a heartbeat, want at most %s", ins[0].Age, hi)
	}
	if _, err := c.Heartbeat(ctxFor(t), 7); !errors.Is(err, distributed.ErrNotRegistered) {
		t.Errorf("heartbeat of an unregistered instance: %v, want ErrNotRegistered", err)
	}
	masterStart := time.Now()
	register(t, c, 0, distributed.MasterCapability)
	must(t, c.Cancel(ctxFor(t), 1, "stop"), "Cancel")
	pulse, err = c.Heartbeat(ctxFor(t), 1)
	must(t, err, "Heartbeat")
	if hi := time.Since(masterStart) + clockGrain; !pulse.MasterRegistered || pulse.MasterAge < 0 || pulse.MasterAge > hi || !pulse.State.Cancelled {
		t.Errorf("pulse %+v, want a registered master younger than %s and a cancelled run", pulse, hi)
	}
}

func testFIFO(t *testing.T, c distributed.Coordinator) {
	join(t, c, 1)
	for i := range 6 {
		enqueue(t, c, fmt.Sprintf("m%d", i), 5)
	}
	for i := range 6 {
		if got := claim(t, c, 1, "linux").Assignment.Module; got != fmt.Sprintf("m%d", i) {
			t.Fatalf("claim %d got %s, want m%d (FIFO within a priority)", i, got, i)
		}
	}
}

func testPriority(t *testing.T, c distributed.Coordinator) {
	join(t, c, 1)
	enqueue(t, c, "low", 1)
	enqueue(t, c, "high", 10)
	enqueue(t, c, "mid", 5)
	enqueue(t, c, "high2", 10)
	var got []string
	for range 4 {
		got = append(got, claim(t, c, 1).Assignment.Module)
	}
	if !slices.Equal(got, []string{"high", "high2", "mid", "low"}) {
		t.Fatalf("claim order %v, want [high high2 mid low]", got)
	}
}

func testCapabilities(t *testing.T, c distributed.Coordinator) {
	join(t, c, 1, 2, 3)
	enqueue(t, c, "either", 20, "windows|macos")
	enqueue(t, c, "image", 9, "docker", "linux")
	enqueue(t, c, "any", 1)
	// A claimer lacking docker skips the image but gets the later "any".
	if got := claim(t, c, 1, "Linux").Assignment.Module; got != "any" {
		t.Fatalf("claimer without docker got %s, want any", got)
	}
	noClaim(t, c, 3, "linux")
	cl := claim(t, c, 2, "DOCKER", "linux", "gpu")
	if cl.Assignment.Module != "image" || cl.Lease.Holder != 2 {
		t.Fatalf("claimer with docker+linux got %+v", cl)
	}
	if got := claim(t, c, 3, "macOS").Assignment.Module; got != "either" {
		t.Fatalf("claimer with macos got %s, want either (windows|macos)", got)
	}
}

func testNoDoubleClaim(t *testing.T, c distributed.Coordinator) {
	const n, claimers = 300, 12
	for k := range claimers {
		join(t, c, k)
	}
	for i := range n {
		enqueue(t, c, fmt.Sprintf("m%03d", i), int64(i%7))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	tokens := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var wg sync.WaitGroup
	for k := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				cl, err := c.Claim(ctx, k, []string{"linux"})
				if err != nil {
					return
				}
				mu.Lock()
				seen[cl.Assignment.Module]++
				tokens[cl.Lease.Token] = true
				done := len(seen) == n
				mu.Unlock()
				if done {
					cancel() // releases the claimers blocked on an empty queue
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d of %d assignments claimed before the wait limit", len(seen), n)
	}
	for m, k := range seen {
		if k != 1 {
			t.Errorf("%s claimed %d times", m, k)
		}
	}
	if len(tokens) != n {
		t.Errorf("%d distinct lease tokens for %d claims", len(tokens), n)
	}
	leases, err := c.Leases(ctxFor(t))
	must(t, err, "Leases")
	if len(leases) != n {
		t.Errorf("Leases lists %d, want %d", len(leases), n)
	}
}

func testReclaim(t *testing.T, c distributed.Coordinator) {
	join(t, c, 1, 2, 3)
	enqueue(t, c, "build", 1)
	start := time.Now()
	first := claim(t, c, 1)
	claimed := time.Now()
	time.Sleep(50 * time.Millisecond) // let the lease age grow
	leases, _ := c.Leases(ctxFor(t))
	if len(leases) != 1 || leases[0].Holder != 1 || leases[0].Token != first.Lease.Token || leases[0].Attempt != 1 {
		t.Fatalf("Leases = %+v, want build held by 1", leases)
	}
	if lo, hi := time.Since(claimed)-clockGrain, time.Since(start)+clockGrain; leases[0].Age < 50*time.Millisecond-clockGrain || leases[0].Age > hi {
		t.Errorf("lease age %s, want between %s and %s (the time since the claim)", leases[0].Age, lo, hi)
	}
	next := distributed.Assignment{Module: "build", Attempt: 2, Priority: 1}
	must(t, c.Reclaim(ctxFor(t), first.Lease, &next), "Reclaim")
	if err := c.Reclaim(ctxFor(t), first.Lease, &next); !errors.Is(err, distributed.ErrStaleLease) {
		t.Fatalf("second Reclaim of the same lease: %v, want ErrStaleLease", err)
	}
	second := claim(t, c, 2)
	if second.Assignment.Attempt != 2 || second.Lease.Attempt != 2 || second.Lease.Token == first.Lease.Token {
		t.Fatalf("re-queued claim %+v", second)
	}
	// The presumed-dead first holder reports late: ignored.
	if err := c.Publish(ctxFor(t), success(first, `"late"`)); !errors.Is(err, distributed.ErrStaleLease) {
		t.Fatalf("late result from the old lease: %v, want ErrStaleLease", err)
	}
	must(t, c.Publish(ctxFor(t), success(second, `"fresh"`)), "Publish")
	r, err := c.AwaitResult(ctxFor(t), "build")
	must(t, err, "AwaitResult")
	if string(r.Value) != `"fresh"` || r.Lease.Attempt != 2 || r.Lease.Holder != 2 {
		t.Errorf("accepted result %+v", r)
	}
	if leases, _ := c.Leases(ctxFor(t)); len(leases) != 0 {
		t.Errorf("leases after publish: %+v", leases)
	}
	// Reclaim without a next assignment only revokes.
	enqueue(t, c, "publish", 1)
	cl := claim(t, c, 1)
	must(t, c.Reclaim(ctxFor(t), cl.Lease, nil), "Reclaim(nil)")
	noClaim(t, c, 3)
	if leases, _ := c.Leases(ctxFor(t)); len(leases) != 0 {
		t.Errorf("revoked lease still listed: %+v", leases)
	}
}

func testStaleResults(t *testing.T, c distributed.Coordinator) {
	join(t, c, 1)
	enqueue(t, c, "test", 1)
	cl := claim(t, c, 1)
	must(t, c.Publish(ctxFor(t), success(cl, `1`)), "Publish")
	if err := c.Publish(ctxFor(t), success(cl, `2`)); !errors.Is(err, distributed.ErrStaleLease) {
		t.Fatalf("second result for one lease: %v, want ErrStaleLease", err)
	}
	forged := success(cl, `3`)
	forged.Lease.Token = "forged"
	if err := c.Publish(ctxFor(t), forged); !errors.Is(err, distributed.ErrStaleLease) {
		t.Fatalf("result with a forged token: %v, want ErrStaleLease", err)
	}
	r, _ := c.AwaitResult(ctxFor(t), "test")
	if string(r.Value) != "1" {
		t.Errorf("accepted value %s, want the first result", r.Value)
	}
}

func testAwaitResult(t *testing.T, c distributed.Coordinator) {
	join(t, c, 1)
	enqueue(t, c, "early", 1)
	enqueue(t, c, "late", 1)
	got := make(chan distributed.Result, 1)
	errc := make(chan error, 1)
	go func() {
		r, err := c.AwaitResult(ctxFor(t), "late")
		got <- r
		errc <- err
	}()
	e := claim(t, c, 1)
	must(t, c.Publish(ctxFor(t), success(e, `"e"`)), "Publish early")
	r, err := c.AwaitResult(ctxFor(t), "early")
	must(t, err, "AwaitResult after publish")
	if string(r.Value) != `"e"` {
		t.Errorf("early = %s", r.Value)
	}
	l := claim(t, c, 1)
	must(t, c.Publish(ctxFor(t), success(l, `"l"`)), "Publish late")
	if err := <-errc; err != nil {
		t.Fatalf("AwaitResult before publish: %v", err)
	}
	if r := <-got; string(r.Value) != `"l"` {
		t.Errorf("late = %s", r.Value)
	}
}

func testNoLostWakeUps(t *testing.T, c distributed.Coordinator) {
	// Publication races with the await and the claim with the enqueue, many
	// times: a lost wake-up shows as a wait that runs into the limit.
	const rounds = 60
	join(t, c, 1)
	var wg sync.WaitGroup
	errs := make(chan error, 3*rounds)
	for i := range rounds {
		m := fmt.Sprintf("race%d", i)
		wg.Add(3)
		go func() {
			defer wg.Done()
			if _, err := c.AwaitResult(ctxFor(t), m); err != nil {
				errs <- fmt.Errorf("await %s: %w", m, err)
			}
		}()
		go func() {
			defer wg.Done()
			cl, err := c.Claim(ctxFor(t), 1, nil)
			if err != nil {
				errs <- fmt.Errorf("claim: %w", err)
				return
			}
			if err := c.Publish(ctxFor(t), success(cl, `0`)); err != nil {
				errs <- fmt.Errorf("publish %s: %w", cl.Assignment.Module, err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := c.Enqueue(ctxFor(t), distributed.Assignment{Module: m, Attempt: 1}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testCancellation(t *testing.T, c distributed.Coordinator) {
	const watchers, claimers = 5, 3
	join(t, c, 0, 1, 2)
	known, err := state(t, c)
	must(t, err, "reading the state")
	var wg sync.WaitGroup
	states := make(chan distributed.RunState, watchers)
	claimErrs := make(chan error, claimers)
	for range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.AwaitState(ctxFor(t), known)
			if err != nil {
				t.Errorf("AwaitState: %v", err)
			}
			states <- s
		}()
	}
	for k := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Claim(ctxFor(t), k, nil)
			claimErrs <- err
		}()
	}
	must(t, c.Cancel(ctxFor(t), 2, "interrupted on instance 2"), "Cancel")
	must(t, c.Cancel(ctxFor(t), 0, "second reason"), "second Cancel")
	wg.Wait()
	close(states)
	close(claimErrs)
	for s := range states {
		if !s.Cancelled || s.CancelledBy != 2 || s.CancelReason != "interrupted on instance 2" {
			t.Errorf("watcher saw %+v", s)
		}
	}
	for err := range claimErrs {
		if !errors.Is(err, distributed.ErrRunEnded) {
			t.Errorf("blocked claim after cancel: %v, want ErrRunEnded", err)
		}
	}
	// A claim after the cancellation returns at once, even with work queued.
	enqueue(t, c, "after", 1)
	if _, err := c.Claim(ctxFor(t), 1, nil); !errors.Is(err, distributed.ErrRunEnded) {
		t.Errorf("claim on a cancelled run: %v", err)
	}
	s, err := state(t, c)
	must(t, err, "reading the state")
	if !s.Cancelled || s.CancelReason != "interrupted on instance 2" || s.Completed {
		t.Errorf("State = %+v", s)
	}
}

func testCompletion(t *testing.T, c distributed.Coordinator) {
	join(t, c, 0, 1)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); _, err := c.Claim(ctxFor(t), 1, nil); errs <- err }()
	go func() { defer wg.Done(); _, err := c.AwaitResult(ctxFor(t), "never"); errs <- err }()
	known, _ := state(t, c)
	must(t, c.Complete(ctxFor(t), true), "Complete")
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, distributed.ErrRunEnded) {
			t.Errorf("blocked call after completion: %v, want ErrRunEnded", err)
		}
	}
	s, err := c.AwaitState(ctxFor(t), known)
	must(t, err, "AwaitState")
	if !s.Completed || !s.Failed {
		t.Errorf("state %+v, want completed and failed", s)
	}
	err = c.Register(ctxFor(t), distributed.Registration{Instance: 1, Total: 2, Fingerprint: "fp-1"})
	if !errors.Is(err, distributed.ErrRunEnded) {
		t.Errorf("registration into a completed run: %v, want ErrRunEnded", err)
	}
}

func testInvalid(t *testing.T, c distributed.Coordinator) {
	for _, a := range []distributed.Assignment{
		{Module: "", Attempt: 1},
		{Module: "m", Attempt: 0},
		{Module: "m", Attempt: 1, Requires: []string{"Docker"}},
		{Module: string(bytes.Repeat([]byte("x"), distributed.MaxNameSize+1)), Attempt: 1},
	} {
		if err := c.Enqueue(ctxFor(t), a); !errors.Is(err, distributed.ErrInvalid) {
			t.Errorf("Enqueue(%.40q, attempt %d, %v): %v, want ErrInvalid", a.Module, a.Attempt, a.Requires, err)
		}
	}
	join(t, c, 1)
	enqueue(t, c, "big", 1)
	cl := claim(t, c, 1)
	huge := success(cl, "")
	huge.Value = bytes.Repeat([]byte("1"), distributed.MaxValueSize+1)
	bad := []distributed.Result{huge}
	r := success(cl, "1")
	r.Status = "exploded"
	bad = append(bad, r)
	r = success(cl, "1")
	r.Lease = distributed.Lease{}
	bad = append(bad, r)
	r = success(cl, "1")
	r.Log = bytes.Repeat([]byte("l"), distributed.MaxLogSize+1)
	bad = append(bad, r)
	for _, r := range bad {
		if err := c.Publish(ctxFor(t), r); !errors.Is(err, distributed.ErrInvalid) {
			t.Errorf("Publish(status %q, %d value bytes, %d log bytes): %v, want ErrInvalid", r.Status, len(r.Value), len(r.Log), err)
		}
	}
	// Nothing was lost: the lease is intact and a valid result is accepted.
	must(t, c.Publish(ctxFor(t), success(cl, `"ok"`)), "valid Publish after rejected ones")
}

func testContexts(t *testing.T, c distributed.Coordinator) {
	join(t, c, 1)
	known, err := state(t, c)
	must(t, err, "reading the state")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if _, err := c.Claim(ctx, 1, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Claim with a cancelled context: %v", err)
	}
	if _, err := c.AwaitResult(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("AwaitResult with a cancelled context: %v", err)
	}
	if _, err := c.AwaitState(ctx, known); !errors.Is(err, context.Canceled) {
		t.Errorf("AwaitState with a cancelled context: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("calls with a cancelled context took %s", d)
	}
	// A blocked claim returns when its context is cancelled later.
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.Claim(ctx, 1, nil); errc <- err }()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("blocked Claim after cancel: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("blocked Claim ignored its context")
	}
}

func testRoundTrip(t *testing.T, c distributed.Coordinator) {
	join(t, c, 2)
	enqueue(t, c, "report", 3, "linux")
	cl := claim(t, c, 2, "linux")
	want := distributed.Result{
		Module: "report", Lease: cl.Lease, Status: distributed.StatusFailed,
		Error:    &distributed.ErrorInfo{Message: "exit 3\nwith détails", Kind: "timeout", Instance: 2},
		Attempts: 3, Duration: 1500 * time.Millisecond, QueueWait: cl.QueueWait,
		Log: []byte("line 1\nline 2 ✓\n"),
	}
	must(t, c.Publish(ctxFor(t), want), "Publish")
	got, err := c.AwaitResult(ctxFor(t), "report")
	must(t, err, "AwaitResult")
	if got.Status != want.Status || got.Attempts != 3 || got.Duration != want.Duration || !bytes.Equal(got.Log, want.Log) ||
		got.Error == nil || *got.Error != *want.Error || got.Lease.Token != cl.Lease.Token || got.Lease.Holder != 2 {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if cl.Assignment.Priority != 3 || !slices.Equal(cl.Assignment.Requires, []string{"linux"}) || cl.QueueWait < 0 {
		t.Errorf("claimed assignment %+v wait %s", cl.Assignment, cl.QueueWait)
	}
}

// testBatchClaims checks ClaimBatch for coordinators that offer it: best
// first, capability matching, a lease per claim, never more than asked.
func testBatchClaims(t *testing.T, c distributed.Coordinator) {
	bc, ok := c.(distributed.BatchClaimer)
	if !ok {
		t.Skip("the coordinator does not implement distributed.BatchClaimer (optional: Claim alone is enough)")
	}
	join(t, c, 1, 2)
	for i := range 5 {
		enqueue(t, c, fmt.Sprintf("b%d", i), int64(i))
	}
	enqueue(t, c, "gpu-only", 100, "gpu")
	got, err := bc.ClaimBatch(ctxFor(t), 1, []string{"linux"}, 3)
	must(t, err, "ClaimBatch")
	var names []string
	tokens := map[string]bool{}
	for _, cl := range got {
		names = append(names, cl.Assignment.Module)
		tokens[cl.Lease.Token] = true
		if cl.Lease.Holder != 1 || cl.Lease.Module != cl.Assignment.Module {
			t.Errorf("lease %+v", cl.Lease)
		}
	}
	if !slices.Equal(names, []string{"b4", "b3", "b2"}) || len(tokens) != 3 {
		t.Fatalf("first batch %v (%d tokens), want [b4 b3 b2] with a token each", names, len(tokens))
	}
	got, err = bc.ClaimBatch(ctxFor(t), 1, []string{"linux"}, 10)
	must(t, err, "ClaimBatch")
	if len(got) != 2 {
		t.Fatalf("second batch has %d claims, want the 2 left that linux can take", len(got))
	}
	for _, cl := range got {
		must(t, c.Publish(ctxFor(t), success(cl, "1")), "Publish "+cl.Assignment.Module)
	}
	leases, err := c.Leases(ctxFor(t))
	must(t, err, "Leases")
	if len(leases) != 3 {
		t.Errorf("%d leases, want the first batch's 3", len(leases))
	}
	if cl := claim(t, c, 2, "gpu"); cl.Assignment.Module != "gpu-only" {
		t.Errorf("gpu claimer got %s", cl.Assignment.Module)
	}
}

// testBatchEnqueuePublish checks EnqueueBatch and PublishBatch for
// coordinators that offer them: order kept, fencing per result.
func testBatchEnqueuePublish(t *testing.T, c distributed.Coordinator) {
	be, okE := c.(distributed.BatchEnqueuer)
	bp, okP := c.(distributed.BatchPublisher)
	if !okE && !okP {
		t.Skip("the coordinator implements neither distributed.BatchEnqueuer nor distributed.BatchPublisher (both optional)")
	}
	join(t, c, 1)
	if okE {
		must(t, be.EnqueueBatch(ctxFor(t), []distributed.Assignment{
			{Module: "e1", Attempt: 1, Priority: 1}, {Module: "e2", Attempt: 1, Priority: 1}, {Module: "e3", Attempt: 1, Priority: 2},
		}), "EnqueueBatch")
		if err := be.EnqueueBatch(ctxFor(t), []distributed.Assignment{{Module: "", Attempt: 1}}); !errors.Is(err, distributed.ErrInvalid) {
			t.Errorf("EnqueueBatch with an empty name: %v, want ErrInvalid", err)
		}
	} else {
		for _, m := range []string{"e3", "e1", "e2"} {
			enqueue(t, c, m, map[string]int64{"e1": 1, "e2": 1, "e3": 2}[m])
		}
	}
	var cls []distributed.Claim
	for _, want := range []string{"e3", "e1", "e2"} {
		cl := claim(t, c, 1)
		if cl.Assignment.Module != want {
			t.Fatalf("claimed %s, want %s", cl.Assignment.Module, want)
		}
		cls = append(cls, cl)
	}
	if !okP {
		t.Skip("EnqueueBatch checked; the coordinator does not implement distributed.BatchPublisher (optional)")
	}
	stale := success(cls[2], "3")
	stale.Lease.Token = "forged"
	errs := bp.PublishBatch(ctxFor(t), []distributed.Result{success(cls[0], "1"), success(cls[1], "2"), stale})
	if len(errs) != 3 || errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], distributed.ErrStaleLease) {
		t.Fatalf("PublishBatch errors %v, want nil, nil, ErrStaleLease", errs)
	}
	for i, m := range []string{"e3", "e1"} {
		r, err := c.AwaitResult(ctxFor(t), m)
		must(t, err, "AwaitResult")
		if string(r.Value) != fmt.Sprint(i+1) {
			t.Errorf("%s = %s", m, r.Value)
		}
	}
	if leases, _ := c.Leases(ctxFor(t)); len(leases) != 1 || leases[0].Module != "e2" {
		t.Errorf("leases %+v, want only e2's", leases)
	}
}

// testReclaimAfterPublish: once a result is accepted its lease is over, so a
// reclaim fails and enqueues nothing.
func testReclaimAfterPublish(t *testing.T, c distributed.Coordinator) {
	join(t, c, 1)
	enqueue(t, c, "lint", 1)
	cl := claim(t, c, 1)
	must(t, c.Publish(ctxFor(t), success(cl, `"done"`)), "Publish")
	next := distributed.Assignment{Module: "lint", Attempt: 2, Priority: 1}
	if err := c.Reclaim(ctxFor(t), cl.Lease, &next); !errors.Is(err, distributed.ErrStaleLease) {
		t.Fatalf("Reclaim after the result was accepted: %v, want ErrStaleLease", err)
	}
	noClaim(t, c, 1)
	r, err := c.AwaitResult(ctxFor(t), "lint")
	must(t, err, "AwaitResult")
	if string(r.Value) != `"done"` {
		t.Errorf("accepted result %s, want the published one", r.Value)
	}
}

// testDuplicateEnqueue: enqueueing a module and attempt a second time
// (queued, claimed or finished) is ignored; a higher attempt is queued.
func testDuplicateEnqueue(t *testing.T, c distributed.Coordinator) {
	join(t, c, 1)
	enqueue(t, c, "pkg", 1)
	enqueue(t, c, "pkg", 7) // same module and attempt, another priority
	enqueue(t, c, "other", 3)
	if cl := claim(t, c, 1); cl.Assignment.Module != "other" {
		t.Fatalf("claimed %s first, want other: the duplicate of pkg must not raise its priority", cl.Assignment.Module)
	}
	cl := claim(t, c, 1)
	if cl.Assignment.Module != "pkg" || cl.Assignment.Priority != 1 {
		t.Fatalf("claimed %+v, want the first pkg", cl.Assignment)
	}
	noClaim(t, c, 1)
	enqueue(t, c, "pkg", 1) // while claimed
	noClaim(t, c, 1)
	must(t, c.Publish(ctxFor(t), success(cl, "1")), "Publish")
	enqueue(t, c, "pkg", 1) // after its result
	noClaim(t, c, 1)
	if be, ok := c.(distributed.BatchEnqueuer); ok {
		must(t, be.EnqueueBatch(ctxFor(t), []distributed.Assignment{{Module: "pkg", Attempt: 1}}), "EnqueueBatch of a duplicate")
		noClaim(t, c, 1)
	}
	must(t, c.Enqueue(ctxFor(t), distributed.Assignment{Module: "pkg", Attempt: 2}), "Enqueue(pkg, attempt 2)")
	if cl := claim(t, c, 1); cl.Assignment.Module != "pkg" || cl.Assignment.Attempt != 2 {
		t.Errorf("claimed %+v, want pkg attempt 2", cl.Assignment)
	}
}

// testAwaitAfterCancel: a cancelled run still delivers the results of
// modules that were running; awaits end on completion.
func testAwaitAfterCancel(t *testing.T, c distributed.Coordinator) {
	join(t, c, 0, 1)
	enqueue(t, c, "running", 1)
	cl := claim(t, c, 1)
	type answer struct {
		r   distributed.Result
		err error
	}
	await := func(module string) chan answer {
		ch := make(chan answer, 1)
		go func() {
			r, err := c.AwaitResult(ctxFor(t), module)
			ch <- answer{r, err}
		}()
		return ch
	}
	before := await("running")
	must(t, c.Cancel(ctxFor(t), 0, "stop"), "Cancel")
	after := await("running")
	never := await("never")
	must(t, c.Publish(ctxFor(t), success(cl, `"late"`)), "Publish after Cancel")
	for _, ch := range []chan answer{before, after} {
		if a := <-ch; a.err != nil || string(a.r.Value) != `"late"` {
			t.Errorf("AwaitResult across a cancellation: %s, %v; want the result published after it", a.r.Value, a.err)
		}
	}
	must(t, c.Complete(ctxFor(t), true), "Complete")
	if a := <-never; !errors.Is(a.err, distributed.ErrRunEnded) {
		t.Errorf("AwaitResult of a module without result, after Cancel then Complete: %v, want ErrRunEnded", a.err)
	}
}

// testCompleteIdempotent: completing twice keeps the first verdict.
func testCompleteIdempotent(t *testing.T, c distributed.Coordinator) {
	join(t, c, 0)
	must(t, c.Complete(ctxFor(t), true), "Complete(failed)")
	must(t, c.Complete(ctxFor(t), false), "second Complete(succeeded)")
	s, err := c.AwaitState(ctxFor(t), distributed.RunState{})
	must(t, err, "AwaitState")
	if !s.Completed || !s.Failed {
		t.Errorf("AwaitState after two completions: %+v, want completed and failed", s)
	}
}
