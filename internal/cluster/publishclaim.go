package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
)

// The executor's publisher for coordinators that implement
// distributed.PublishClaimer: a finished execution hands its result and
// its slot to the publisher, which publishes the results gathered so far
// and, in the same trip, claims work for the slots they freed. It starts
// what it claimed and gives the slots it could not fill back to the claim
// loop (executor.go), which claims, blocking, for the slots it holds: a
// busy instance makes one trip per batch, an idle one waits in the claim
// loop for new work.
//
// The publisher claims under the claim loop's rules: only while the
// instance is connected (its latest heartbeat succeeded), never once the
// run ended, the coordinator failed for good or the instance is lost; a
// claim the coordinator refuses marks the instance cut off until the
// heartbeat loop decides; work claimed while the instance got lost is
// not run. Publication is the publisher's: retried until the lease
// timeout, stale and invalid results settled, accepted ones delivered.

// publishClaimer is the publisher with a PublishClaimer. Every result on
// e.results carries its execution's slot and its count in e.ran.
func (e *Executor) publishClaimer(ctx context.Context) {
	defer close(e.published)
	claiming := true // false once the run ended or the coordinator failed for good
	for res := range e.results {
		batch := e.gather(res)
		claiming = e.publishAndClaim(ctx, batch, claiming)
		for range batch {
			e.ran.Done()
		}
	}
}

// publishAndClaim publishes rs, whose executions' slots the caller holds,
// and claims work for those slots when claiming is allowed (claiming, and
// see canClaim). It reports whether later trips may still claim.
func (e *Executor) publishAndClaim(ctx context.Context, rs []distributed.Result, claiming bool) bool {
	deadline := time.Now().Add(e.cfg.LeaseTimeout)
	held := len(rs)
	limit := 0
	if claiming && e.canClaim(ctx) {
		limit = held
	}
	tctx, cancel := context.WithTimeout(context.Background(), e.cfg.Heartbeat)
	errs, claims, claimErr := e.pc.PublishAndClaim(tctx, rs, e.cfg.Instance, e.cfg.Caps, limit)
	cancel()
	errs = errsFor(rs, errs)
	if limit > 0 {
		claims, claiming = e.claimed(ctx, claims, claimErr)
	} else {
		claims = nil
	}
	run := claims[:min(len(claims), held)]
	for _, cl := range run {
		e.start(ctx, cl) // takes one of the slots held
	}
	for range held - len(run) {
		<-e.slots // back to the claim loop
	}
	var again []distributed.Result
	for i, err := range errs {
		switch {
		case err == nil:
			e.accepted(rs[i])
		case !e.settled(rs[i], err, time.Now().After(deadline)):
			again = append(again, rs[i])
		}
	}
	if len(claims) > len(run) {
		// The coordinator broke its contract: running more than asked for
		// would exceed Parallelism. Fail them openly instead, so that the
		// master does not wait for them.
		again = append(again, e.refuseExtra(claims[len(run):], held)...)
	}
	if len(again) > 0 {
		time.Sleep(50 * time.Millisecond)
		e.publishOnly(again, deadline)
	}
	return claiming
}

// canClaim reports whether the publisher may claim now: the claim loop
// has not ended, the run goes on, and the instance is connected. It
// never waits: a cut-off instance's slots go back to the claim loop,
// which waits.
func (e *Executor) canClaim(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	select {
	case <-e.done:
		return false
	default:
	}
	return e.cfg.Live.connected()
}

// claimed handles the claim part of a trip as the claim loop handles a
// claim: it returns the claims to run and whether to go on claiming.
func (e *Executor) claimed(ctx context.Context, claims []distributed.Claim, err error) ([]distributed.Claim, bool) {
	if err != nil {
		switch {
		case ctx.Err() != nil || errors.Is(err, distributed.ErrRunEnded) || Fatal(err):
			return nil, false // a fatal error ends the run through the heartbeat loop
		case cutOff(e.cfg.Instance, err) != nil:
			// As in the claim loop: claim nothing until the heartbeat loop
			// says whether the instance is back or gone for good.
			e.cfg.Log.Warn("the coordinator refused a claim; waiting for the next heartbeat", "instance", e.cfg.Instance, "err", err)
			e.cfg.Live.Beat(false)
		default:
			// A transport error: the slots go back to the claim loop, which
			// backs off while claiming keeps failing.
			e.cfg.Log.Warn("claiming work failed", "instance", e.cfg.Instance, "err", err)
		}
		return nil, true
	}
	if len(claims) > 0 && e.cfg.Live.AwaitConnected(ctx) != nil && e.cfg.Live.Lost() != nil {
		for _, cl := range claims {
			e.cfg.Log.Warn("not running a module claimed while this instance was cut off from the coordinator; the master hands it to another instance",
				"module", cl.Assignment.Module, "attempt", cl.Lease.Attempt, "err", e.cfg.Live.Lost())
		}
		return nil, false
	}
	return claims, true
}

// publishOnly publishes rs (limit 0: claiming nothing), retrying
// transport errors until each result is accepted or settled (see settled;
// after deadline every failure is final).
func (e *Executor) publishOnly(rs []distributed.Result, deadline time.Time) {
	for wait := 50 * time.Millisecond; len(rs) > 0; wait = min(2*wait, 2*time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Heartbeat)
		errs, _, _ := e.pc.PublishAndClaim(ctx, rs, e.cfg.Instance, e.cfg.Caps, 0)
		cancel()
		errs = errsFor(rs, errs)
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

// errsFor returns errs when it holds one error per result, as
// PublishClaimer promises; otherwise an error for each result, so that
// they are published again.
func errsFor(rs []distributed.Result, errs []error) []error {
	if len(errs) == len(rs) {
		return errs
	}
	err := fmt.Errorf("the coordinator answered the publication of %d results with %d outcomes; publishing them again", len(rs), len(errs))
	errs = make([]error, len(rs))
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// refuseExtra returns failed results for claims beyond the asked limit.
func (e *Executor) refuseExtra(extra []distributed.Claim, asked int) []distributed.Result {
	e.cfg.Log.Error("the coordinator handed out more work than asked for; failing the rest", "asked", asked, "got", asked+len(extra))
	out := make([]distributed.Result, 0, len(extra))
	for _, cl := range extra {
		now := time.Now()
		o := engine.Outcome{Status: engine.Failed, Kind: engine.KindError, Start: now, End: now,
			Err: fmt.Errorf("instance %d was handed %s beyond the %d modules it asked the coordinator for, and did not run it: the coordinator breaks distributed.PublishClaimer's limit", e.cfg.Instance, cl.Assignment.Module, asked)}
		res, _ := resultOf(cl, &o, nil, e.cfg.Instance)
		e.cfg.Signer.SignResult(&res)
		out = append(out, res)
	}
	return out
}

// connected reports, without waiting, whether the instance is connected:
// its latest heartbeat succeeded and it is not lost.
func (l *Liveness) connected() bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost == nil && !l.cut
}
