package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/modpipe/modpipe/internal/engine"
)

// The executor runs its claims on long-lived goroutines, one per slot:
// each takes claims from e.jobs and runs them one after the other, and
// watches the run's cancellation once for all of them, so that an
// execution costs no goroutine and no context.AfterFunc of its own.
//
// An execution abandoned while its module has not returned (its timeout
// or the run's cancellation passed, plus Grace) keeps its goroutine: the
// goroutine ends when the module returns, and a replacement started at
// the abandonment takes its place, so that the slot the abandoned
// execution gave back does not wait for it.

// runSlot is a slot goroutine: it runs claims until e.jobs is closed or
// its execution is abandoned.
func (e *Executor) runSlot(ctx context.Context) {
	w := &slotWatch{grace: e.cfg.Grace}
	stop := context.AfterFunc(ctx, w.runCancelled)
	defer stop()
	for cl := range e.jobs {
		if e.execute(ctx, w, cl) {
			return // a replacement took over the slot
		}
	}
}

// slotWatch is a slot goroutine's one watch on the run's cancellation: it
// starts the grace period of the execution running when the run is
// cancelled, and of each one the goroutine starts afterwards. An
// execution that outlives its grace period is abandoned.
type slotWatch struct {
	grace time.Duration

	mu        sync.Mutex
	cancelled bool               // the run was cancelled
	cur       *engine.Completion // of the execution running, if any
	timer     *time.Timer        // cur's grace period, once started
}

// runCancelled starts the grace period of the execution running, if any.
func (w *slotWatch) runCancelled() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancelled = true
	if w.cur != nil && w.timer == nil {
		w.startGrace()
	}
}

// begin watches the execution completing through c, which starts now.
func (w *slotWatch) begin(c *engine.Completion) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cur = c
	if w.cancelled {
		w.startGrace()
	}
}

// end stops watching the execution: it returned.
func (w *slotWatch) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.cur = nil
}

// startGrace starts cur's grace period. Called with w.mu held. A timer
// that fires as the execution returns is harmless: the completion takes
// one outcome only, and each execution has its own.
func (w *slotWatch) startGrace() {
	c, grace := w.cur, w.grace
	w.timer = time.AfterFunc(grace, func() {
		now := time.Now()
		c.Abandon(engine.Outcome{Status: engine.Cancelled, Kind: engine.KindCancel, Start: now, End: now,
			Err: fmt.Errorf("run cancelled and the module did not return within %s; abandoned", grace)})
	})
}
