package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/redistest"
)

// TestResultsReachOnlyTheProcessThatQueued: a published result travels to
// the process that queued the module (the master), decoded on arrival; a
// worker hears nothing of it, and reads it back when it awaits it.
func TestResultsReachOnlyTheProcessThatQueued(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runID := "results-channel"
	master := NewCoordinator(Options{URL: srv.URL(), RunID: runID})
	worker := NewCoordinator(Options{URL: srv.URL(), RunID: runID})
	t.Cleanup(func() { _ = master.Close(); _ = worker.Close() })
	for _, r := range []struct {
		c    *Coordinator
		reg  distributed.Registration
		name string
	}{
		{master, distributed.Registration{Instance: 0, Total: 2, Capabilities: []string{distributed.MasterCapability}, Fingerprint: "fp", Session: "s0", LeaseTimeout: time.Minute}, "master"},
		{worker, distributed.Registration{Instance: 1, Total: 2, Capabilities: []string{"w"}, Fingerprint: "fp", Session: "s1", LeaseTimeout: time.Minute}, "worker"},
	} {
		if err := r.c.Register(ctx, r.reg); err != nil {
			t.Fatalf("registering the %s: %v", r.name, err)
		}
	}
	if err := master.EnqueueBatch(ctx, []distributed.Assignment{{Module: "a", Attempt: 1, Requires: []string{"w"}}, {Module: "b", Attempt: 1, Requires: []string{"w"}}}); err != nil {
		t.Fatal(err)
	}
	var claims []distributed.Claim
	for len(claims) < 2 {
		cls, err := worker.ClaimBatch(ctx, 1, []string{"w"}, 2)
		if err != nil {
			t.Fatal(err)
		}
		claims = append(claims, cls...)
	}
	var rs []distributed.Result
	for _, cl := range claims {
		rs = append(rs, distributed.Result{Module: cl.Assignment.Module, Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: []byte(`"v-` + cl.Assignment.Module + `"`), Attempts: 1})
	}
	for i, err := range worker.PublishBatch(ctx, rs) {
		if err != nil {
			t.Fatalf("publishing %s: %v", rs[i].Module, err)
		}
	}
	for _, mod := range []string{"a", "b"} {
		got, err := master.AwaitResult(ctx, mod)
		if err != nil || string(got.Value) != `"v-`+mod+`"` {
			t.Fatalf("master awaiting %s: %+v, %v", mod, got, err)
		}
		if !decodedOnArrival(master, mod) {
			t.Errorf("the master did not receive the result of %s with its announcement", mod)
		}
		// The worker, which awaits nothing yet, hears nothing.
		if _, announced, _, _, _ := worker.events.snapshot(mod); announced {
			t.Errorf("the worker heard of the result of %s, which it neither queued nor awaited", mod)
		}
		if _, ok := worker.events.payload(mod); ok {
			t.Errorf("the worker received the result of %s, which it did not queue", mod)
		}
		got, err = worker.AwaitResult(ctx, mod)
		if err != nil || string(got.Value) != `"v-`+mod+`"` {
			t.Errorf("worker awaiting %s: %+v, %v", mod, got, err)
		}
	}
}

// TestAwaitingWorkerHearsNames: a worker awaiting a result it did not
// queue follows the names channel and is woken by the announcement.
func TestAwaitingWorkerHearsNames(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runID := "names-channel"
	master := NewCoordinator(Options{URL: srv.URL(), RunID: runID})
	worker := NewCoordinator(Options{URL: srv.URL(), RunID: runID})
	t.Cleanup(func() { _ = master.Close(); _ = worker.Close() })
	for i, c := range []*Coordinator{master, worker} {
		caps := []string{"w"}
		if i == 0 {
			caps = []string{distributed.MasterCapability}
		}
		if err := c.Register(ctx, distributed.Registration{Instance: i, Total: 2, Capabilities: caps, Fingerprint: "fp", Session: fmt.Sprint("s", i), LeaseTimeout: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	if err := master.EnqueueBatch(ctx, []distributed.Assignment{{Module: "dep", Attempt: 1, Requires: []string{"w"}}}); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := worker.AwaitResult(ctx, "dep")
		if err == nil && string(r.Value) != `"v"` {
			err = fmt.Errorf("got %+v", r)
		}
		got <- err
	}()
	// Publish only once the worker follows the names channel.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		worker.events.mu.Lock()
		ch, ok := worker.events.followed[worker.keys.names()]
		worker.events.mu.Unlock()
		if ok {
			<-ch
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the awaiting worker never followed the names channel")
		}
	}
	cls, err := worker.ClaimBatch(ctx, 1, []string{"w"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	res := distributed.Result{Module: "dep", Lease: cls[0].Lease, Status: distributed.StatusSucceeded, Value: []byte(`"v"`), Attempts: 1}
	if err := worker.Publish(ctx, res); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("worker awaiting dep: %v", err)
	}
	if _, announced, _, _, _ := worker.events.snapshot("dep"); !announced {
		t.Error("the worker's result came without the announcement waking it")
	}
}

// TestOwnResultsAreNotDecodedAgain: a process that queued a module and
// published its result itself (the master running it) does not decode the
// announcement of it: its executor handed the result over already.
func TestOwnResultsAreNotDecodedAgain(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	master := NewCoordinator(Options{URL: srv.URL(), RunID: "own-results"})
	t.Cleanup(func() { _ = master.Close() })
	if err := master.Register(ctx, distributed.Registration{Instance: 0, Total: 1, Capabilities: []string{distributed.MasterCapability, "w"}, Fingerprint: "fp", Session: "s0", LeaseTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := master.EnqueueBatch(ctx, []distributed.Assignment{{Module: "own", Attempt: 1, Requires: []string{"w"}}, {Module: "other", Attempt: 1, Requires: []string{"w"}}}); err != nil {
		t.Fatal(err)
	}
	cls, err := master.ClaimBatch(ctx, 0, []string{distributed.MasterCapability, "w"}, 2)
	if err != nil || len(cls) != 2 {
		t.Fatalf("claimed %d: %v", len(cls), err)
	}
	// "own" is published by this coordinator; "other" by another process
	// of the run holding the same lease (as a worker would).
	other := NewCoordinator(Options{URL: srv.URL(), RunID: "own-results"})
	t.Cleanup(func() { _ = other.Close() })
	for _, cl := range cls {
		pub := master
		if cl.Assignment.Module == "other" {
			pub = other
		}
		r := distributed.Result{Module: cl.Assignment.Module, Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: []byte(`1`), Attempts: 1}
		if err := pub.Publish(ctx, r); err != nil {
			t.Fatalf("publishing %s: %v", r.Module, err)
		}
	}
	for _, mod := range []string{"own", "other"} {
		if r, err := master.AwaitResult(ctx, mod); err != nil || string(r.Value) != "1" {
			t.Fatalf("awaiting %s: %+v, %v", mod, r, err)
		}
	}
	if _, ok := master.events.result("own"); ok {
		t.Error("the announcement of a result this process published was decoded")
	}
	if !decodedOnArrival(master, "other") {
		t.Error("the announcement of a result another process published was not decoded on arrival")
	}
}

// TestRetriedClaimGetsTheSameAnswer: a claim script run again with the same
// request id (its reply was lost) answers what it answered the first time,
// rebuilt from its compact record, and takes nothing more.
func TestRetriedClaimGetsTheSameAnswer(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := NewCoordinator(Options{URL: srv.URL(), RunID: "claim-retry"})
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Register(ctx, distributed.Registration{Instance: 0, Total: 1, Capabilities: []string{distributed.MasterCapability, "w"}, Fingerprint: "fp", Session: "s0", LeaseTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := c.EnqueueBatch(ctx, []distributed.Assignment{{Module: "a", Attempt: 1, Requires: []string{"w"}}, {Module: "b", Attempt: 1, Requires: []string{"w"}}, {Module: "c", Attempt: 1, Requires: []string{"w"}}}); err != nil {
		t.Fatal(err)
	}
	claim := func() []any {
		v, err := c.run(ctx, scriptClaim, c.keys.with([]string{"w"}, c.keys.ctl("req")), 0, "req", 0, "0", 2, "s0", 1)
		if err != nil {
			t.Fatal(err)
		}
		return v.([]any)
	}
	first, again := claim(), claim()
	if len(first) != 6 || first[0] != "ok" {
		t.Fatalf("first claim: %v", first)
	}
	if fmt.Sprint(first) != fmt.Sprint(again) {
		t.Errorf("retried claim answered %v, first %v", again, first)
	}
	cls, err := c.parseClaims(again, 0, "s0", "req")
	if err != nil || len(cls) != 2 || cls[0].Assignment.Module != "a" || cls[1].Assignment.Module != "b" {
		t.Fatalf("retried claim parsed as %+v, %v", cls, err)
	}
	// The third assignment is still queued.
	left, err := c.ClaimBatch(ctx, 0, []string{distributed.MasterCapability, "w"}, 5)
	if err != nil || len(left) != 1 || left[0].Assignment.Module != "c" {
		t.Fatalf("left in the queue: %+v, %v", left, err)
	}
}

// decodedOnArrival reports whether the subscriber of c decoded module's
// announced result, waiting up to 5s: the subscriber stores its decoded
// copy after recording the announcement, and an AwaitResult that comes in
// between decodes the payload itself and may return first.
func decodedOnArrival(c *Coordinator, module string) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, ok := c.events.result(module); ok || time.Now().After(deadline) {
			return ok
		}
	}
}
