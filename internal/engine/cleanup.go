package engine

import (
	"context"
	"fmt"
	"time"
)

// Cleanups after a cancellation: with CleanupGrace set, AlwaysRun nodes
// still start once the run's context is cancelled, like `if: always()` in
// GitHub Actions. They run in this process (never through Dispatch: the
// instances that would take dispatched work are stopping too) under a
// context that is not cancelled with the run but ends CleanupGrace after
// the cancellation. A cleanup still running Grace after that is abandoned.
// AlwaysRun nodes that were already running when the run was cancelled are
// cancelled like any other.

// cleanupState is the scheduler's cleanup phase; its zero value is "none
// started". Guarded by the scheduler's mutex.
type cleanupState struct {
	ctx   context.Context
	stop  context.CancelFunc
	timer *time.Timer
	nodes []bool // nodes started as cleanups
}

// startCleanup begins the cleanup phase when the run is found cancelled.
// Called once, with s.mu held.
func (s *Scheduler) startCleanup() {
	if s.CleanupGrace <= 0 {
		return
	}
	cause := fmt.Errorf("the cleanup grace of %s after the run was cancelled ended", s.CleanupGrace)
	s.cleanup.ctx, s.cleanup.stop = context.WithTimeoutCause(context.WithoutCancel(s.ctx), s.CleanupGrace, cause)
	s.cleanup.nodes = make([]bool, len(s.Nodes))
	s.cleanup.timer = time.AfterFunc(s.CleanupGrace+s.Grace, s.abandonCleanups)
}

// stopped returns why node i may not start now ("not started: ..."), or ""
// when it may. Called with s.mu held.
func (s *Scheduler) stopped(i int) string {
	nd := &s.Nodes[i]
	switch {
	case s.stopCause == "":
		return ""
	case !nd.AlwaysRun:
		return "not started: " + s.stopCause
	case !s.cancelled:
		return "" // stopping after a failure: AlwaysRun nodes still run
	case s.CleanupGrace <= 0:
		return "not started: " + s.stopCause
	case s.cleanup.ctx.Err() != nil:
		return fmt.Sprintf("not started: %s, and the cleanup grace of %s has ended", s.stopCause, s.CleanupGrace)
	}
	if s.CleanupHere != nil {
		if ok, why := s.CleanupHere(i); !ok {
			return fmt.Sprintf("not started: %s; %s", s.stopCause, why)
		}
	}
	return ""
}

// requeueCleanup queues again, to start here as a cleanup, an AlwaysRun
// node that was dispatched before the run was found cancelled and then
// withdrawn without having started; it reports whether it did. Called with
// s.mu held, from finish. When it cannot run here, o's reason says why.
func (s *Scheduler) requeueCleanup(i int, o *Outcome) bool {
	s.noteCancel()
	if !s.Nodes[i].AlwaysRun || !s.cancelled {
		return false
	}
	if why := s.stopped(i); why != "" {
		o.Reason = why
		return false
	}
	s.comps[i] = Completion{} // its outcome is yet to come
	s.out[i].Status, s.out[i].Start = Pending, time.Time{}
	s.ready.push(i)
	return true
}

// abandonCleanups ends, as Cancelled, the cleanups still running Grace
// after the cleanup grace ended.
func (s *Scheduler) abandonCleanups() {
	s.mu.Lock()
	var late []*Completion
	for i, started := range s.cleanup.nodes {
		if started && s.out[i].Status == Running {
			late = append(late, &s.comps[i])
		}
	}
	s.mu.Unlock()
	for _, c := range late {
		c.Finish(Outcome{Status: Cancelled, Kind: KindCancel, End: time.Now(),
			Err: fmt.Errorf("cleanup after the cancellation did not return within the cleanup grace (%s) and Grace (%s); abandoned", s.CleanupGrace, s.Grace)})
	}
}

// mark records that node i starts now, as a cleanup when the run is
// cancelled. Called with s.mu held.
func (c *cleanupState) mark(i int, cancelled bool) {
	if cancelled && c.nodes != nil {
		c.nodes[i] = true
	}
}

// started reports whether node i was started as a cleanup. Called with
// s.mu held.
func (c *cleanupState) started(i int) bool { return c.nodes != nil && c.nodes[i] }

// end releases the cleanup phase's timer and context. Called with s.mu held.
func (c *cleanupState) end() {
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.stop != nil {
		c.stop()
	}
}
