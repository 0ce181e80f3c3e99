package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Completion delivers a node's outcome exactly once. Exec and the
// scheduler's abandonment timers race to claim it; the loser is ignored.
type Completion struct {
	state atomic.Int32 // completionOpen, then how the outcome was delivered
	fn    func(Outcome)
	r     Receiver
	// The scheduler's own completions call s.finish without a closure, so
	// that starting a node allocates nothing.
	s   *Scheduler
	ctx context.Context
	i   int
}

// NewCompletion returns a Completion that calls fn with the first outcome.
func NewCompletion(fn func(Outcome)) *Completion { return &Completion{fn: fn} }

// Receiver receives the outcome a Completion delivers.
type Receiver interface{ Receive(Outcome) }

// InitTo makes c, which must not be in use, a fresh Completion that
// delivers its first outcome to r. Unlike NewCompletion it allocates
// nothing: c can live in the receiver itself.
func (c *Completion) InitTo(r Receiver) {
	c.state.Store(completionOpen)
	c.fn, c.r, c.s, c.ctx, c.i = nil, r, nil, nil, 0
}

// The states of a Completion.
const (
	completionOpen int32 = iota
	completionFinished
	completionAbandoned
)

// Finish delivers o unless an outcome was delivered already, and reports
// whether o was the one delivered.
func (c *Completion) Finish(o Outcome) bool { return c.deliver(o, completionFinished) }

// Abandon is Finish for an outcome delivered in place of an execution
// that has not returned (a timer gave up on it): Abandoned then tells the
// caller that the goroutine running the execution is still held by it.
func (c *Completion) Abandon(o Outcome) bool { return c.deliver(o, completionAbandoned) }

func (c *Completion) deliver(o Outcome, how int32) bool {
	if !c.state.CompareAndSwap(completionOpen, how) {
		return false
	}
	switch {
	case c.r != nil:
		c.r.Receive(o)
	case c.fn != nil:
		c.fn(o)
	default:
		c.s.finish(c.ctx, c.i, o)
	}
	return true
}

// Done reports whether an outcome was delivered.
func (c *Completion) Done() bool { return c.state.Load() != completionOpen }

// Abandoned reports whether the outcome was delivered by Abandon.
func (c *Completion) Abandoned() bool { return c.state.Load() == completionAbandoned }

// PanicError is the error of an attempt that panicked.
type PanicError struct {
	Value any
	Stack []byte
}

// Error names the panic's value (the stack is in Stack).
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Exec runs node n in the calling goroutine: its Check, then attempts with
// retries and per-attempt timeouts, recovering panics. It delivers the
// outcome through c. ctx is the run's context; when it is cancelled the node
// ends Cancelled. grace bounds how long a timed-out attempt that ignores its
// context is awaited before the node is abandoned as TimedOut.
func Exec(ctx context.Context, n *Node, c *Completion, grace time.Duration) {
	o := Outcome{Start: time.Now()}
	if n.Check != nil {
		skip, reason, err := check(ctx, n)
		switch {
		case err != nil:
			o.Status, o.Err, o.Kind = Failed, fmt.Errorf("evaluating run condition: %w", err), KindError
			finishExec(n, c, o)
			return
		case skip:
			o.Status, o.Reason = Skipped, reason
			finishExec(n, c, o)
			return
		}
	}
	for attempt := 1; ; attempt++ {
		o.Attempts = attempt
		v, kind, err := runAttempt(ctx, n, attempt, c, grace)
		if c.Done() {
			return // abandoned while the attempt ignored its context
		}
		if err == nil {
			// A retry that succeeds leaves nothing of the failed attempts
			// but their notes in the log: a succeeded node has no error.
			o.Status, o.Value, o.Err, o.Kind = Succeeded, v, nil, KindNone
			break
		}
		o.Err, o.Kind = err, kind
		switch kind {
		case KindCancel:
			o.Status = Cancelled
		case KindTimeout:
			o.Status = TimedOut
		default:
			o.Status = Failed
		}
		if kind == KindCancel || attempt > n.Retry.Count || (n.Retry.If != nil && !n.Retry.If(err)) {
			break
		}
		wait := backoff(n.Retry, attempt)
		if n.Log != nil {
			n.log(fmt.Sprintf("attempt %d of %d failed: %v; retrying in %s", attempt, n.Retry.Count+1, err, wait.Round(time.Millisecond)))
		}
		if !sleep(ctx, wait) {
			o.Status, o.Kind = Cancelled, KindCancel
			o.Err = fmt.Errorf("run cancelled while waiting to retry: %w", err)
			break
		}
	}
	finishExec(n, c, o)
}

func finishExec(n *Node, c *Completion, o Outcome) {
	o.End = time.Now()
	c.Finish(o)
}

func check(ctx context.Context, n *Node) (skip bool, reason string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	if n.Funcs != nil {
		return n.Funcs.Check(ctx, n.ID)
	}
	return n.Check(ctx, n.ID)
}

// runAttempt runs one attempt and classifies its error.
func runAttempt(ctx context.Context, n *Node, attempt int, c *Completion, grace time.Duration) (v any, kind Kind, err error) {
	actx := ctx
	if n.Timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, n.Timeout)
		defer cancel()
		stop := watchTimeout(actx, ctx, n, c, attempt, grace)
		defer stop()
	}
	v, err = call(actx, n, attempt)
	if err == nil {
		return v, KindNone, nil
	}
	var pe *PanicError
	switch {
	case ctx.Err() != nil:
		return nil, KindCancel, err
	case actx.Err() != nil && errors.Is(actx.Err(), context.DeadlineExceeded):
		return nil, KindTimeout, fmt.Errorf("timed out after %s: %w", n.Timeout, err)
	case errors.As(err, &pe):
		if n.Log != nil {
			n.log(fmt.Sprintf("%v\n%s", pe.Value, pe.Stack))
		}
		return nil, KindPanic, err
	}
	return nil, KindError, err
}

func call(ctx context.Context, n *Node, attempt int) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	if n.Funcs != nil {
		return n.Funcs.Run(ctx, n.ID, attempt)
	}
	return n.Run(ctx, n.ID, attempt)
}

// watchTimeout abandons the node when an attempt's deadline has passed and
// the attempt has not returned within grace: a module that ignores its
// context must not hold the run forever.
func watchTimeout(actx, runCtx context.Context, n *Node, c *Completion, attempt int, grace time.Duration) (stop func()) {
	var mu sync.Mutex
	var timer *time.Timer
	stopped := false
	stopWatch := context.AfterFunc(actx, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		timer = time.AfterFunc(grace, func() {
			o := Outcome{Status: TimedOut, Kind: KindTimeout, Attempts: attempt, End: time.Now()}
			o.Err = fmt.Errorf("timed out after %s and did not return within %s; abandoned (make the module honour its context)", n.Timeout, grace)
			if runCtx.Err() != nil {
				o.Status, o.Kind = Cancelled, KindCancel
				o.Err = fmt.Errorf("run cancelled and the module did not return within %s; abandoned", grace)
			}
			c.Abandon(o)
		})
	})
	return func() {
		stopWatch()
		mu.Lock()
		stopped = true
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
	}
}

func backoff(r Retry, attempt int) time.Duration {
	if r.Initial <= 0 {
		return 0
	}
	d := r.Initial
	for i := 1; i < attempt && (r.Max <= 0 || d < r.Max); i++ {
		d *= 2
	}
	if r.Max > 0 && d > r.Max {
		d = r.Max
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep waits d or until ctx is done, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
