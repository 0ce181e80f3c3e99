package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// The dispatcher's lease policy: what becomes of work whose holder was lost
// (re-queued as the next attempt, or failed for NotIdempotent modules and
// after MaxAttempts, fenced by the attempt number), of parked work once an
// instance can take it, and of queued work no live instance will take. The
// reaper applies it once per heartbeat interval.

// reap applies the lease policy once.
func (d *Dispatcher) reap(ctx context.Context) {
	// Nothing to ask the coordinator about when every module in flight is
	// one this instance runs itself: an idle master costs no commands.
	d.mu.Lock()
	remote := false
	for i, f := range d.flights {
		if f.parked || !d.cfg.Local.has(d.nodes[i].Name) {
			remote = true
			break
		}
	}
	d.mu.Unlock()
	if !remote {
		return
	}
	ins := d.recheckParked(ctx)

	lctx, cancel := context.WithTimeout(ctx, d.cfg.LeaseTimeout)
	leases, err := d.cfg.Coord.Leases(lctx)
	cancel()
	if err != nil {
		if !Fatal(err) { // a fatal error ends the run through the heartbeat loop
			d.cfg.Log.Warn("listing leases failed", "err", err)
		}
		return
	}
	byIndex := map[int]distributed.InstanceInfo{}
	for _, in := range ins {
		byIndex[in.Instance] = in
	}
	held := map[int]bool{}
	for _, l := range leases {
		i, ok := d.index[l.Module]
		if ok {
			held[i] = true
			d.host.Claimed(i, l.Holder)
			d.mu.Lock()
			if f := d.flights[i]; f != nil && f.attempt == l.Attempt {
				f.holder = l.Holder
			}
			d.mu.Unlock()
		}
		holder, registered := byIndex[l.Holder]
		var why string
		switch {
		case !registered:
			why = fmt.Sprintf("instance %d is no longer registered", l.Holder)
		case holder.Session != l.Session:
			why = fmt.Sprintf("instance %d restarted", l.Holder)
		case holder.Age > d.cfg.LeaseTimeout:
			why = fmt.Sprintf("instance %d sent no heartbeat for %s (lease timeout %s)", l.Holder, holder.Age.Round(time.Second), d.cfg.LeaseTimeout)
		default:
			continue
		}
		if ok {
			d.lost(ctx, i, l, why)
		}
	}
	d.checkQueued(held)
}

// RecheckParked queues parked modules an instance can now take, and fails
// those no instance will take. The master calls it when an instance
// registers, so late workers get their work at once.
func (d *Dispatcher) RecheckParked() {
	d.recheckParked(d.life)
}

func (d *Dispatcher) recheckParked(ctx context.Context) []distributed.InstanceInfo {
	ins := d.refreshInstances(ctx)
	d.mu.Lock()
	var parked []int
	if d.maybeParked {
		for i, f := range d.flights {
			if f.parked {
				parked = append(parked, i)
			}
		}
		d.maybeParked = len(parked) > 0
	}
	d.mu.Unlock()
	for _, i := range parked {
		d.mu.Lock()
		f := d.flights[i]
		ready := f != nil && f.parked && d.routableLocked(i, false)
		if ready {
			f.parked = false
			if f.enqueued.IsZero() {
				f.enqueued = time.Now()
			}
		}
		d.mu.Unlock()
		if !ready {
			d.checkUnroutable(i)
			continue
		}
		if err := d.enqueue(i, f.attempt); err != nil {
			d.fail(i, fmt.Errorf("could not queue %s: %w", d.nodes[i].Name, err), -1)
			continue
		}
		if d.watcher != nil {
			d.awaitResults([]int{i}) // an await goroutine has waited since Dispatch
		}
	}

	return ins
}

// lost applies the policy for node i whose lease l died.
func (d *Dispatcher) lost(ctx context.Context, i int, l distributed.Lease, why string) {
	n := d.nodes[i]
	d.mu.Lock()
	f := d.flights[i]
	current := f != nil && f.attempt == l.Attempt
	d.mu.Unlock()
	var next *distributed.Assignment
	var failure error
	switch {
	case !current:
		// Already settled, or an older lease: just end it.
	case n.NotIdempotent:
		failure = fmt.Errorf("%s while running %s; the module is NotIdempotent, so it is not run again", why, n.Name)
	case l.Attempt >= d.cfg.MaxAttempts:
		failure = fmt.Errorf("%s while running %s; it was dispatched %d times (MaxAttempts %d)", why, n.Name, l.Attempt, d.cfg.MaxAttempts)
	default:
		a := d.assignment(i, l.Attempt+1)
		next = &a
	}
	rctx, cancel := context.WithTimeout(ctx, d.cfg.LeaseTimeout)
	err := d.cfg.Coord.Reclaim(rctx, l, next)
	cancel()
	if errors.Is(err, distributed.ErrStaleLease) {
		return // the result arrived meanwhile
	}
	if err != nil {
		d.cfg.Log.Warn("reclaiming a lost lease failed; will retry", "module", n.Name, "err", err)
		return
	}
	if !current {
		return
	}
	if failure != nil {
		d.host.Note(i, failure.Error())
		d.failLost(i, failure, l.Holder, l.Holder)
		return
	}
	d.mu.Lock()
	f.attempt = next.Attempt
	f.holder = l.Holder
	if !d.routableLocked(i, true) && f.waitingFrom.IsZero() {
		// No live instance can take it: a lease timeout from now it
		// may fail for that (caploss.go), or after CapabilityTimeout.
		f.waitingFrom = time.Now()
		d.someWaiting = true
	}
	d.mu.Unlock()
	d.host.Note(i, fmt.Sprintf("%s while running this module (attempt %d); re-queued as attempt %d of %d", why, l.Attempt, next.Attempt, d.cfg.MaxAttempts))
	d.cfg.Log.Warn("re-queued the work of a lost instance", "module", n.Name, "reason", why, "attempt", next.Attempt)
}

// checkQueued fails queued work that no live instance can take: at once
// when every instance able to take it is lost (caploss.go), otherwise
// after CapabilityTimeout.
func (d *Dispatcher) checkQueued(held map[int]bool) {
	var stuck []int
	var lost []func()
	d.mu.Lock()
	routable := d.liveRoutableLocked()
	if !d.someWaiting && routable.all {
		// Every flight can be taken by a live instance and none has
		// been waiting: nothing to look at.
		d.mu.Unlock()
		return
	}
	waiting := false
	for i, f := range d.flights {
		switch {
		case f.parked || held[i]:
		case routable.node(d, i):
			f.waitingFrom = time.Time{}
		case f.waitingFrom.IsZero():
			f.waitingFrom = time.Now()
		default:
			if who := d.capableLostLocked(i); who != "" {
				lost = append(lost, d.capabilityLostLocked(i, who))
			} else if time.Since(f.waitingFrom) > d.cfg.CapabilityTimeout {
				stuck = append(stuck, i)
			}
		}
		waiting = waiting || !f.waitingFrom.IsZero()
	}
	d.someWaiting = waiting
	d.mu.Unlock()
	for _, fail := range lost {
		fail()
	}
	for _, i := range stuck {
		d.mu.Lock()
		err := fmt.Errorf("%s waited in the queue for %s with no live instance able to take it (requires %s); %s",
			d.nodes[i].Name, d.cfg.CapabilityTimeout, describeReqs(d.nodes[i].Requires), d.offersLocked())
		d.mu.Unlock()
		d.fail(i, err, -1)
	}
}

// distinctRequirements lists the distinct requirements of nodes, and the
// master's own (a cache hit is pinned to the master, cachelookup.go).
func distinctRequirements(nodes []NodeInfo) [][]string {
	seen := map[string]bool{}
	var out [][]string
	for _, reqs := range append([][]string{{distributed.MasterCapability}}, nodeRequirements(nodes)...) {
		k := strings.Join(reqs, "\x00")
		if !seen[k] {
			seen[k] = true
			out = append(out, reqs)
		}
	}
	return out
}

func nodeRequirements(nodes []NodeInfo) [][]string {
	out := make([][]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Requires
	}
	return out
}

// liveRouting tells which requirements a live instance can meet.
type liveRouting struct {
	all bool // every node's requirements
	by  map[string]bool
}

// liveRoutableLocked works out which of the nodes' requirements a live
// instance can meet, once per requirement, not once per flight.
func (d *Dispatcher) liveRoutableLocked() liveRouting {
	r := liveRouting{all: true, by: make(map[string]bool, len(d.reqSets))}
	for _, reqs := range d.reqSets {
		ok := false
		for _, in := range d.instances {
			if in.Age <= d.cfg.LeaseTimeout && distributed.Satisfies(in.Capabilities, reqs) {
				ok = true
				break
			}
		}
		r.by[strings.Join(reqs, "\x00")] = ok
		r.all = r.all && ok
	}
	return r
}

// node reports whether a live instance can take node i (as
// routableLocked(i, true) does).
func (r liveRouting) node(d *Dispatcher, i int) bool {
	if r.all {
		return true
	}
	if ok, known := r.by[strings.Join(d.nodes[i].Requires, "\x00")]; known {
		return ok
	}
	return d.routableLocked(i, true)
}
