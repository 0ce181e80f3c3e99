// Package coordinatortest is the conformance suite for
// distributed.Coordinator implementations, the way testing/fstest checks an
// fs.FS. A coordinator that passes Run gives modpipe everything it relies on:
// atomic claims, fenced results and reclaims, blocking waits without lost
// wake-ups, run-wide cancellation and completion, and validation of input.
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
	"sync"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// waitLimit bounds every blocking call the suite makes, so that a broken
// coordinator fails the suite instead of hanging it.
const waitLimit = 10 * time.Second

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
		{"RegistrationWakesStateWatchers", testRegistrationWakesStateWatchers},
		{"Heartbeats", testHeartbeats},
		{"FIFOWithinPriority", testFIFO},
		{"PriorityOrdering", testPriority},
		{"CapabilitySubsetMatching", testCapabilities},
		{"NoDoubleClaimUnderConcurrency", testNoDoubleClaim},
		{"ReclaimRequeuesNextAttempt", testReclaim},
		{"StaleResultsRejected", testStaleResults},
		{"AwaitResultBeforeAndAfterPublish", testAwaitResult},
		{"NoLostWakeUps", testNoLostWakeUps},
		{"CancellationObservedByAll", testCancellation},
		{"CompletionWakesEveryone", testCompletion},
		{"MalformedAndOversizedRejected", testInvalid},
		{"ContextCancellationHonoured", testContexts},
		{"ResultRoundTrip", testRoundTrip},
		{"BatchClaims", testBatchClaims},
		{"BatchEnqueueAndPublish", testBatchEnqueuePublish},
	}
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

func register(t *testing.T, c distributed.Coordinator, instance int, caps ...string) {
	t.Helper()
	reg := distributed.Registration{Instance: instance, Total: 4, Capabilities: caps, Fingerprint: "fp-1", Session: fmt.Sprintf("s%d-%d", instance, time.Now().UnixNano())}
	must(t, c.Register(ctxFor(t), reg), fmt.Sprintf("Register(%d)", instance))
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

// noClaim checks that a claim with caps gets nothing within a short wait.
func noClaim(t *testing.T, c distributed.Coordinator, caps ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	cl, err := c.Claim(ctx, 3, caps)
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
	// A restarted instance registers again and replaces its entry.
	old := ins[1].Session
	register(t, c, 1, "windows")
	ins, _ = c.Instances(ctxFor(t))
	if len(ins) != 2 || !slices.Equal(ins[1].Capabilities, []string{"windows"}) || ins[1].Session == old {
		t.Errorf("after re-registration: %+v", ins)
	}
}

func testRegistrationWakesStateWatchers(t *testing.T, c distributed.Coordinator) {
	register(t, c, 0)
	known, err := c.State(ctxFor(t))
	must(t, err, "State")
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

func testFingerprintMismatch(t *testing.T, c distributed.Coordinator) {
	register(t, c, 0, "linux")
	err := c.Register(ctxFor(t), distributed.Registration{Instance: 2, Total: 4, Capabilities: []string{"linux"}, Fingerprint: "fp-other"})
	if !errors.Is(err, distributed.ErrFingerprintMismatch) {
		t.Fatalf("Register with another fingerprint: %v, want ErrFingerprintMismatch", err)
	}
	ins, _ := c.Instances(ctxFor(t))
	if len(ins) != 1 {
		t.Errorf("refused instance was recorded: %+v", ins)
	}
}

func testHeartbeats(t *testing.T, c distributed.Coordinator) {
	register(t, c, 1, "linux")
	time.Sleep(60 * time.Millisecond) // let the heartbeat age grow
	ins, _ := c.Instances(ctxFor(t))
	before := ins[0].Age
	if before < 50*time.Millisecond {
		t.Fatalf("age %s after 60ms without heartbeat", before)
	}
	pulse, err := c.Heartbeat(ctxFor(t), 1)
	must(t, err, "Heartbeat")
	if pulse.MasterRegistered {
		t.Errorf("pulse %+v reports a master before instance 0 registered", pulse)
	}
	ins, _ = c.Instances(ctxFor(t))
	if ins[0].Age >= before {
		t.Errorf("heartbeat did not reset the age: %s, before %s", ins[0].Age, before)
	}
	if _, err := c.Heartbeat(ctxFor(t), 7); err == nil {
		t.Error("heartbeat of an unregistered instance accepted")
	}
	register(t, c, 0, distributed.MasterCapability)
	must(t, c.Cancel(ctxFor(t), 1, "stop"), "Cancel")
	pulse, err = c.Heartbeat(ctxFor(t), 1)
	must(t, err, "Heartbeat")
	if !pulse.MasterRegistered || pulse.MasterAge < 0 || pulse.MasterAge > waitLimit || !pulse.State.Cancelled {
		t.Errorf("pulse %+v, want a registered master and a cancelled run", pulse)
	}
}

func testFIFO(t *testing.T, c distributed.Coordinator) {
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
	enqueue(t, c, "either", 20, "windows|macos")
	enqueue(t, c, "image", 9, "docker", "linux")
	enqueue(t, c, "any", 1)
	// A claimer lacking docker skips the image but gets the later "any".
	if got := claim(t, c, 1, "Linux").Assignment.Module; got != "any" {
		t.Fatalf("claimer without docker got %s, want any", got)
	}
	noClaim(t, c, "linux")
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
	enqueue(t, c, "build", 1)
	first := claim(t, c, 1)
	leases, _ := c.Leases(ctxFor(t))
	if len(leases) != 1 || leases[0].Holder != 1 || leases[0].Token != first.Lease.Token || leases[0].Attempt != 1 {
		t.Fatalf("Leases = %+v, want build held by 1", leases)
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
	noClaim(t, c)
	if leases, _ := c.Leases(ctxFor(t)); len(leases) != 0 {
		t.Errorf("revoked lease still listed: %+v", leases)
	}
}

func testStaleResults(t *testing.T, c distributed.Coordinator) {
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
	var wg sync.WaitGroup
	states := make(chan distributed.RunState, watchers)
	claimErrs := make(chan error, claimers)
	for range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.AwaitState(ctxFor(t), distributed.RunState{})
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
	s, err := c.State(ctxFor(t))
	must(t, err, "State")
	if !s.Cancelled || s.CancelReason != "interrupted on instance 2" || s.Completed {
		t.Errorf("State = %+v", s)
	}
}

func testCompletion(t *testing.T, c distributed.Coordinator) {
	register(t, c, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); _, err := c.Claim(ctxFor(t), 1, nil); errs <- err }()
	go func() { defer wg.Done(); _, err := c.AwaitResult(ctxFor(t), "never"); errs <- err }()
	known, _ := c.State(ctxFor(t))
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
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if _, err := c.Claim(ctx, 1, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Claim with a cancelled context: %v", err)
	}
	if _, err := c.AwaitResult(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("AwaitResult with a cancelled context: %v", err)
	}
	if _, err := c.AwaitState(ctx, distributed.RunState{}); !errors.Is(err, context.Canceled) {
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
		return // optional: Claim alone is enough
	}
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
		return // optional
	}
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
		return
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
