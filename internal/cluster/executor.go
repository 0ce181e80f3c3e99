package cluster

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/logbuf"
)

// Executor claims assignments this instance can run and executes up to
// Config.Parallelism of them at once. Master and workers both run one.
type Executor struct {
	cfg    Config
	host   Host
	values *Values

	stop chan struct{}
	done chan struct{}
	// ran counts the executions started; with a PublishClaimer, each
	// counts until the publisher has handled its result.
	ran sync.WaitGroup
	// slots holds a token per execution slot in use (claimed or running).
	slots chan struct{}
	// pc, when the coordinator offers it, publishes results and claims
	// work for the slots they free in one trip (publishclaim.go).
	pc distributed.PublishClaimer

	results   chan distributed.Result // to the publisher
	published chan struct{}
	// deliver, when set, receives every result the coordinator accepted
	// (the master's dispatcher: its own results need no round trip).
	deliver func(distributed.Result)
	// jobs carries the claims to execute to the slot goroutines
	// (runner.go). It never blocks: each claim in it holds a slot.
	jobs chan distributed.Claim
}

// StartExecutor starts claiming. Modules run with ctx, which the caller
// cancels when the run is cancelled. deliver, when not nil, receives each
// result once the coordinator accepted it.
func StartExecutor(ctx context.Context, cfg Config, host Host, values *Values, deliver func(distributed.Result)) *Executor {
	slots := max(1, cfg.Parallelism)
	e := &Executor{cfg: cfg, host: host, values: values, stop: make(chan struct{}), done: make(chan struct{}),
		slots:   make(chan struct{}, slots),
		results: make(chan distributed.Result, 256), published: make(chan struct{}), deliver: deliver,
		jobs: make(chan distributed.Claim, slots)}
	e.pc, _ = cfg.Coord.(distributed.PublishClaimer)
	for range slots {
		go e.runSlot(ctx)
	}
	go e.loop(ctx)
	if e.pc != nil {
		go e.publishClaimer(ctx)
	} else {
		go e.publisher()
	}
	return e
}

// Wait blocks until the claim loop has ended (the run ended or the context
// was cancelled) and every execution it started has published. The slot
// goroutines end then too, but for those held by abandoned executions,
// which end when their module returns.
func (e *Executor) Wait() {
	<-e.done
	e.ran.Wait()
	close(e.results)
	<-e.published
	close(e.jobs) // nothing starts executions any more
}

func (e *Executor) loop(ctx context.Context) {
	defer close(e.done)
	slots := e.slots
	batcher, _ := e.cfg.Coord.(distributed.BatchClaimer)
	failures := 0
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		// No claim while cut off from the coordinator: the master may be
		// re-queueing this instance's work for others.
		if err := e.cfg.Live.AwaitConnected(ctx); err != nil {
			<-slots
			return
		}
		// Take every free slot, to claim as many assignments in one trip;
		// executions finishing now free theirs first.
		free := 1
		if batcher != nil && e.pc == nil {
			runtime.Gosched()
		}
		for batcher != nil && free < cap(slots) {
			select {
			case slots <- struct{}{}:
				free++
				continue
			default:
			}
			break
		}
		var claims []distributed.Claim
		var err error
		if batcher != nil {
			claims, err = batcher.ClaimBatch(ctx, e.cfg.Instance, e.cfg.Caps, free)
		} else {
			var cl distributed.Claim
			cl, err = e.cfg.Coord.Claim(ctx, e.cfg.Instance, e.cfg.Caps)
			claims = []distributed.Claim{cl}
		}
		if err != nil {
			for range free {
				<-slots
			}
			if ctx.Err() != nil || errors.Is(err, distributed.ErrRunEnded) || Fatal(err) {
				return // a fatal error ends the run through the heartbeat loop
			}
			if cutOff(e.cfg.Instance, err) != nil {
				// The coordinator does not count this instance as live right
				// now (a late heartbeat on a loaded machine looks the same as
				// a lost one). Claim nothing until the heartbeat loop, the one
				// judge, says whether it is back (a beat revives it) or gone
				// for good (replaced or refused: the run ends).
				e.cfg.Log.Warn("the coordinator refused a claim; waiting for the next heartbeat", "instance", e.cfg.Instance, "err", err)
				e.cfg.Live.Beat(false)
				continue
			}
			// A transport error: back off and try again; the heartbeat loop
			// decides when the coordinator is lost for good.
			failures++
			e.cfg.Log.Warn("claiming work failed", "instance", e.cfg.Instance, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Duration(failures)*100*time.Millisecond, e.cfg.Heartbeat)):
			}
			continue
		}
		failures = 0
		for range free - len(claims) {
			<-slots // slots the coordinator had no work for
		}
		// A claim that was waiting when this instance was cut off may hand
		// it work the master re-queued away from it: check after every
		// claim, and run nothing once the instance is lost.
		if e.cfg.Live.AwaitConnected(ctx) != nil && e.cfg.Live.Lost() != nil {
			for _, cl := range claims {
				e.cfg.Log.Warn("not running a module claimed while this instance was cut off from the coordinator; the master hands it to another instance",
					"module", cl.Assignment.Module, "attempt", cl.Lease.Attempt, "err", e.cfg.Live.Lost())
				<-slots
			}
			return
		}
		for _, cl := range claims {
			e.start(ctx, cl)
		}
	}
}

// start executes cl in a slot the caller holds for it. The result goes to
// the publisher, and with it, when the coordinator is a PublishClaimer,
// the slot and the execution's count in e.ran: the publisher claims new
// work for the slot in the trip that publishes the result. Otherwise the
// slot is given back to the claim loop.
func (e *Executor) start(_ context.Context, cl distributed.Claim) {
	e.ran.Add(1)
	e.cfg.Local.add(cl.Assignment.Module, 1)
	e.jobs <- cl // to a slot goroutine (runner.go)
}

// execute runs one claimed module in slot goroutine w's and hands its
// result on (see finished). It reports whether the execution was
// abandoned: the calling goroutine must then end, as a replacement took
// over its slot.
func (e *Executor) execute(ctx context.Context, w *slotWatch, cl distributed.Claim) (abandoned bool) {
	// One allocation holds all the execution's state: its log, its
	// completion and the outcome the completion receives.
	x := &execution{e: e, ctx: ctx, cl: cl}
	x.id, x.ok = e.host.Lookup(cl.Assignment.Module)
	x.c.InitTo(x)
	if err := e.cfg.Signer.VerifyAssignment(cl.Assignment, e.cfg.Instance); err != nil {
		// Not from the master: never run it, and say so in its result.
		e.cfg.Log.Error("refused an assignment", "module", cl.Assignment.Module, "err", err)
		now := time.Now()
		x.c.Finish(engine.Outcome{Status: engine.Failed, Kind: engine.KindError, Start: now, End: now, Err: err})
	} else if !x.ok {
		now := time.Now()
		x.c.Finish(engine.Outcome{Status: engine.Failed, Kind: engine.KindError, Start: now, End: now,
			Err: fmt.Errorf("instance %d has no module named %s; all instances must run the same pipeline", e.cfg.Instance, cl.Assignment.Module)})
	} else {
		w.begin(&x.c)
		engine.Exec(ctx, e.host.ExecNode(x.id, &x.buf), &x.c, e.cfg.Grace)
		w.end()
	}
	return x.c.Abandoned()
}

// execution is one claimed module being executed.
type execution struct {
	e   *Executor
	ctx context.Context
	cl  distributed.Claim
	id  int
	ok  bool // the host has the module: id is its node
	buf logbuf.Buffer
	c   engine.Completion
	o   engine.Outcome // the one c delivered
}

// Receive implements engine.Receiver: x's outcome arrived. When it comes
// from a timer that abandoned x (x's goroutine stays with its module), a
// replacement goroutine takes over x's slot.
func (x *execution) Receive(o engine.Outcome) {
	if x.c.Abandoned() {
		go x.e.runSlot(x.ctx)
	}
	x.o = o
	x.e.finished(x.cl, x.id, x.ok, &x.o, &x.buf)
}

// finished turns an execution's outcome into its result and hands it to
// the publisher, with, when the coordinator is a PublishClaimer, the slot
// and the execution's count in e.ran: the publisher claims new work for
// the slot in the trip that publishes the result. Otherwise the slot goes
// back to the claim loop.
func (e *Executor) finished(cl distributed.Claim, id int, ok bool, o *engine.Outcome, buf *logbuf.Buffer) {
	log := buf.Bytes()
	res, raw := resultOf(cl, o, e.mask(log), e.cfg.Instance)
	e.maskResult(&res)
	if res.Status == distributed.StatusSucceeded {
		e.values.Put(cl.Assignment.Module, o.Value, raw)
	}
	if res.Error != nil && o.Err == nil { // the value could not travel
		o.Status, o.Err, o.Kind, o.Value = engine.Failed, res.Error, engine.KindError, nil
	}
	if ok {
		o.Instance, o.QueueWait = e.cfg.Instance, cl.QueueWait
		e.host.Executed(id, o, log)
	}
	e.cfg.Signer.SignResult(&res)
	e.cfg.Local.add(cl.Assignment.Module, -1)
	e.results <- res
	if e.pc == nil {
		<-e.slots
		e.ran.Done()
	}
}

// mask hides this instance's secrets in log.
func (e *Executor) mask(log []byte) []byte {
	if e.cfg.Mask == nil {
		return log
	}
	return []byte(e.cfg.Mask(string(log)))
}

// maskResult hides this instance's secrets in the text of res before it
// leaves the instance. The value is not masked: it is data the dependent
// modules need, and a module that returns a secret as its result means to
// hand it on.
func (e *Executor) maskResult(res *distributed.Result) {
	if e.cfg.Mask == nil {
		return
	}
	res.Reason = e.cfg.Mask(res.Reason)
	if res.Error != nil {
		masked := *res.Error // may be shared with the outcome
		masked.Message = e.cfg.Mask(masked.Message)
		res.Error = &masked
	}
}

// publisher publishes results as they come; results that finish together
// go in one round trip when the coordinator supports it.
func (e *Executor) publisher() {
	defer close(e.published)
	batcher, _ := e.cfg.Coord.(distributed.BatchPublisher)
	for res := range e.results {
		if batcher == nil {
			e.publish(res)
			continue
		}
		batch := e.gather(res)
		e.publishBatch(batcher, batch)
	}
}

// publishBatch is publish for several results.
func (e *Executor) publishBatch(b distributed.BatchPublisher, rs []distributed.Result) {
	deadline := time.Now().Add(e.cfg.LeaseTimeout)
	for wait := 50 * time.Millisecond; len(rs) > 0; wait = min(2*wait, 2*time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Heartbeat)
		errs := b.PublishBatch(ctx, rs)
		cancel()
		var again []distributed.Result
		for i, err := range errs {
			switch {
			case err == nil:
				e.accepted(rs[i])
			case !e.settled(rs[i], err, time.Now().After(deadline)):
				again = append(again, rs[i])
			}
		}
		if rs = again; len(rs) > 0 {
			time.Sleep(wait)
		}
	}
}

// accepted hands a result the coordinator accepted to deliver.
func (e *Executor) accepted(res distributed.Result) {
	if e.deliver != nil {
		e.deliver(res)
	}
}

// settled reports whether a failed publication is final, logging why.
func (e *Executor) settled(res distributed.Result, err error, late bool) bool {
	switch {
	case errors.Is(err, distributed.ErrStaleLease):
		e.cfg.Log.Warn("result discarded: this instance no longer holds the lease (the module was re-queued after missed heartbeats)",
			"module", res.Module, "attempt", res.Lease.Attempt)
	case errors.Is(err, distributed.ErrInvalid) || Fatal(err):
		e.cfg.Log.Error("result rejected by the coordinator", "module", res.Module, "err", err)
	case late:
		e.cfg.Log.Error("could not publish a result; the master will re-queue the module", "module", res.Module, "err", err)
	default:
		return false
	}
	return true
}

// publish delivers a result, retrying transport errors for up to the lease
// timeout: after that the master has re-queued the module anyway.
func (e *Executor) publish(res distributed.Result) {
	deadline := time.Now().Add(e.cfg.LeaseTimeout)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Heartbeat)
		err := e.cfg.Coord.Publish(ctx, res)
		cancel()
		if err == nil {
			e.accepted(res)
			return
		}
		if e.settled(res, err, time.Now().After(deadline)) {
			return
		}
		time.Sleep(wait)
	}
}

// gather returns first and the results already waiting behind it (up to
// MaxBatch), after yielding once so that executions finishing now join
// the same trip.
func (e *Executor) gather(first distributed.Result) []distributed.Result {
	runtime.Gosched()
	// Sized for the results waiting now: one allocation, not append's.
	batch := make([]distributed.Result, 1, min(distributed.MaxBatch, 1+len(e.results)))
	batch[0] = first
	for len(batch) < distributed.MaxBatch {
		select {
		case r, ok := <-e.results:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}
