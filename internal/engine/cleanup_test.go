package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// With CleanupGrace, an AlwaysRun node still runs after the run is
// cancelled, under a context that is not cancelled with the run; other
// nodes do not start.
func TestCleanupRunsAfterCancellation(t *testing.T) {
	g := newTG(t, "running:", "waiting: running", "cleanup: running", "after-cleanup: cleanup")
	g.node("cleanup").AlwaysRun = true
	ctx, cancel := context.WithCancelCause(context.Background())
	g.node("running").Run = func(c context.Context, _, _ int) (any, error) {
		cancel(errors.New("interrupt"))
		<-c.Done()
		return nil, c.Err()
	}
	var cleanupCtxErr atomic.Value
	g.node("cleanup").Run = func(c context.Context, _, _ int) (any, error) {
		cleanupCtxErr.Store(fmt.Sprint(c.Err()))
		return "cleaned", nil
	}
	res := g.run(ctx, func(s *Scheduler) { s.CleanupGrace = time.Minute })
	expectStatus(t, res, map[string]Status{"running": Cancelled, "waiting": Cancelled, "cleanup": Succeeded, "after-cleanup": Cancelled})
	if got := cleanupCtxErr.Load(); got != "<nil>" {
		t.Errorf("the cleanup ran with a context already done: %v", got)
	}
	if res["cleanup"].Value != "cleaned" {
		t.Errorf("cleanup value %v", res["cleanup"].Value)
	}
}

// An AlwaysRun node queued (not running) at the cancellation starts as a
// cleanup too, also when the cancellation comes from outside the nodes.
func TestQueuedCleanupStartsAfterCancellation(t *testing.T) {
	g := newTG(t, "busy:", "cleanup:")
	g.node("cleanup").AlwaysRun = true
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	g.node("busy").Run = func(c context.Context, _, _ int) (any, error) {
		close(started)
		<-c.Done()
		return nil, c.Err()
	}
	go func() { <-started; cancel() }()
	res := g.run(ctx, func(s *Scheduler) {
		s.CleanupGrace = time.Minute
		s.MaxParallel = 1          // cleanup waits in the queue behind busy
		s.Priority = []int64{2, 1} // busy first
	})
	expectStatus(t, res, map[string]Status{"busy": Cancelled, "cleanup": Succeeded})
}

// The cleanup's context ends CleanupGrace after the cancellation: a
// cleanup waiting on it ends Cancelled, saying the grace ended.
func TestCleanupEndsWithItsGrace(t *testing.T) {
	g := newTG(t, "first:", "cleanup: first")
	g.node("cleanup").AlwaysRun = true
	ctx, cancel := context.WithCancel(context.Background())
	g.node("first").Run = func(context.Context, int, int) (any, error) { cancel(); return nil, nil }
	var cause atomic.Value
	g.node("cleanup").Run = func(c context.Context, _, _ int) (any, error) {
		<-c.Done()
		cause.Store(context.Cause(c).Error())
		return nil, c.Err()
	}
	res := g.run(ctx, func(s *Scheduler) { s.CleanupGrace = 20 * time.Millisecond })
	expectStatus(t, res, map[string]Status{"cleanup": Cancelled})
	if got, _ := cause.Load().(string); !strings.Contains(got, "cleanup grace of 20ms") {
		t.Errorf("the cleanup's context ended with %q, want the cleanup grace", got)
	}
}

// A cleanup that ignores its context is abandoned after CleanupGrace and
// Grace: the run still ends.
func TestCleanupIgnoringItsContextIsAbandoned(t *testing.T) {
	g := newTG(t, "first:", "cleanup: first")
	g.node("cleanup").AlwaysRun = true
	ctx, cancel := context.WithCancel(context.Background())
	g.node("first").Run = func(context.Context, int, int) (any, error) { cancel(); return nil, nil }
	release, returned := make(chan struct{}), make(chan struct{})
	var started atomic.Bool
	g.node("cleanup").Run = func(context.Context, int, int) (any, error) {
		started.Store(true)
		defer close(returned)
		<-release
		return nil, nil
	}
	res := g.run(ctx, func(s *Scheduler) { s.CleanupGrace, s.Grace = 10*time.Millisecond, 10*time.Millisecond })
	close(release)
	if !started.Load() {
		t.Fatal("the cleanup did not start after the cancellation")
	}
	<-returned
	expectStatus(t, res, map[string]Status{"cleanup": Cancelled})
	if res["cleanup"].Err == nil || !strings.Contains(res["cleanup"].Err.Error(), "cleanup after the cancellation did not return") {
		t.Errorf("cleanup err %v", res["cleanup"].Err)
	}
}

// CleanupHere keeps a cleanup that cannot run here from starting, saying why.
func TestCleanupThatCannotRunHereIsCancelled(t *testing.T) {
	g := newTG(t, "first:", "cleanup: first")
	g.node("cleanup").AlwaysRun = true
	ctx, cancel := context.WithCancel(context.Background())
	g.node("first").Run = func(context.Context, int, int) (any, error) { cancel(); return nil, nil }
	g.node("cleanup").Run = failWith("must not run")
	res := g.run(ctx, func(s *Scheduler) {
		s.CleanupGrace = time.Minute
		s.CleanupHere = func(int) (bool, string) { return false, "it needs docker" }
	})
	expectStatus(t, res, map[string]Status{"cleanup": Cancelled})
	if !strings.Contains(res["cleanup"].Reason, "it needs docker") {
		t.Errorf("reason %q", res["cleanup"].Reason)
	}
}

// An AlwaysRun node dispatched before the run was found cancelled, then
// withdrawn unstarted (a distributed master's queued work), runs here as a
// cleanup; a withdrawn node that is not AlwaysRun stays cancelled.
func TestWithdrawnCleanupRunsHere(t *testing.T) {
	g := newTG(t, "cleanup:", "other:")
	g.node("cleanup").AlwaysRun = true
	ctx, cancel := context.WithCancel(context.Background())
	var ranHere atomic.Int32
	g.node("cleanup").Run = func(context.Context, int, int) (any, error) { ranHere.Add(1); return "local", nil }
	g.node("other").Run = failWith("must not run here")
	dispatched := make(chan *Completion, 2)
	go func() {
		a, b := <-dispatched, <-dispatched
		cancel() // the run is cancelled while both wait in the queue
		for _, c := range []*Completion{a, b} {
			c.Finish(Outcome{Status: Cancelled, Kind: KindCancel, Reason: "not started: run cancelled", Withdrawn: true})
		}
	}()
	res := g.run(ctx, func(s *Scheduler) {
		s.CleanupGrace = time.Minute
		s.Dispatch = func(_ context.Context, _ int, c *Completion) { dispatched <- c }
	})
	expectStatus(t, res, map[string]Status{"cleanup": Succeeded, "other": Cancelled})
	if ranHere.Load() != 1 || res["cleanup"].Value != "local" {
		t.Errorf("the withdrawn cleanup ran here %d times (value %v), want once", ranHere.Load(), res["cleanup"].Value)
	}
}
