package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
)

// StopAfterFailure withdraws queued work (see Withdraw) in the
// background; modules dispatched from now on that are not AlwaysRun are
// not queued at all. Call it before the scheduler's Run returns.
func (d *Dispatcher) StopAfterFailure(reason string) {
	d.pendingMu.Lock()
	first := d.stopping == ""
	if first {
		d.stopping = reason
	}
	d.pendingMu.Unlock()
	if !first {
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.Withdraw(reason)
	}()
}

// Withdraw takes back, when the run stops after a failure, the work that
// is queued but that no instance has claimed yet, so that it does not
// start seconds after the failure on some worker: each such module ends
// Cancelled with reason ("not started: stopping after …"), as it would in
// one process. AlwaysRun modules stay queued, and modules already claimed
// run to the end. It returns once the queue has been drained (bounded by
// the lease timeout).
//
// The coordinator has no "dequeue" primitive: the master claims the
// withdrawn assignments itself and ends their leases without running them.
func (d *Dispatcher) Withdraw(reason string) {
	if d.life.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(d.life, d.cfg.LeaseTimeout)
	defer cancel()
	leases, err := d.cfg.Coord.Leases(ctx)
	if err != nil {
		d.cfg.Log.Warn("listing leases to withdraw queued work failed; queued modules may still start", "err", err)
		return
	}
	held := map[string]bool{}
	for _, l := range leases {
		held[l.Module] = true
	}
	queued := map[string]int{} // module -> node, for queued withdrawable work
	var parked []int
	var caps []string
	d.mu.Lock()
	for i, f := range d.flights {
		n := d.nodes[i]
		if n.AlwaysRun || held[n.Name] {
			continue
		}
		if f.parked {
			parked = append(parked, i)
			continue
		}
		queued[n.Name] = i
		for _, r := range n.Requires {
			caps = append(caps, strings.Split(r, "|")...)
		}
	}
	d.mu.Unlock()
	for _, i := range parked {
		d.cancelFlight(i, reason)
	}
	if len(queued) == 0 {
		return
	}
	slices.Sort(caps)
	caps = slices.Compact(caps)

	// Claim what is still queued; a claim that comes back empty means the
	// rest was claimed by instances meanwhile: it runs, its result comes.
	left := len(queued)
	for left > 0 && ctx.Err() == nil {
		cctx, ccancel := context.WithTimeout(ctx, max(d.cfg.Heartbeat, 100*time.Millisecond))
		claims, err := d.claim(cctx, caps, left)
		ccancel()
		if err != nil {
			break
		}
		for _, cl := range claims {
			if _, ok := queued[cl.Assignment.Module]; ok {
				left--
			}
			d.withdrawn(ctx, cl, queued, reason)
		}
	}
	// A claim whose reply was lost (its deadline passed on the way back)
	// leaves a lease held by this instance that nothing here runs: end it.
	if leases, err = d.cfg.Coord.Leases(ctx); err == nil {
		for _, l := range leases {
			if _, ok := queued[l.Module]; ok && l.Holder == d.cfg.Instance && !d.cfg.Local.has(l.Module) {
				d.withdrawn(ctx, distributed.Claim{Assignment: distributed.Assignment{Module: l.Module, Attempt: l.Attempt}, Lease: l}, queued, reason)
			}
		}
	}
}

func (d *Dispatcher) claim(ctx context.Context, caps []string, n int) ([]distributed.Claim, error) {
	if b, ok := d.cfg.Coord.(distributed.BatchClaimer); ok {
		return b.ClaimBatch(ctx, d.cfg.Instance, caps, min(n, distributed.MaxBatch))
	}
	cl, err := d.cfg.Coord.Claim(ctx, d.cfg.Instance, caps)
	return []distributed.Claim{cl}, err
}

// withdrawn ends a lease the master took to withdraw work: a withdrawn
// module ends Cancelled; anything else it took along (work that must still
// run) goes back to the queue as its next attempt.
func (d *Dispatcher) withdrawn(ctx context.Context, cl distributed.Claim, queued map[string]int, reason string) {
	i, withdraw := queued[cl.Assignment.Module]
	var next *distributed.Assignment
	if !withdraw {
		k, ok := d.index[cl.Assignment.Module]
		if !ok {
			return
		}
		a := d.assignment(k, cl.Lease.Attempt+1) // signed, queued as the first attempt was
		next = &a
		d.mu.Lock()
		if f := d.flights[k]; f != nil {
			f.attempt = next.Attempt
		}
		d.mu.Unlock()
	}
	if err := d.cfg.Coord.Reclaim(ctx, cl.Lease, next); err != nil {
		d.cfg.Log.Warn("ending a withdrawn module's lease failed", "module", cl.Assignment.Module, "err", err)
	}
	if withdraw {
		d.cancelFlight(i, reason)
	}
}

// cancelFlight ends node i as Cancelled without running it.
func (d *Dispatcher) cancelFlight(i int, reason string) {
	d.mu.Lock()
	f := d.flights[i]
	delete(d.flights, i)
	d.mu.Unlock()
	if f == nil {
		return
	}
	f.comp.Finish(engine.Outcome{Status: engine.Cancelled, Kind: engine.KindCancel, Reason: reason, Attempts: f.attempt - 1, Dispatches: f.attempt - 1})
}

// StopReason returns the reason a module that never started gets when the
// run stops after module failed with status, as the scheduler words it.
func StopReason(module string, status engine.Status) string {
	return fmt.Sprintf("not started: stopping after %s %s (use --continue-on-failure to run everything possible)", module, status)
}
