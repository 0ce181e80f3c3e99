package cluster

import (
	"fmt"
	"strings"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// Capability loss: when the only instances able to run a queued module are
// lost, nothing will take it, and waiting out CapabilityTimeout (minutes)
// only delays the verdict. Once every expected instance has registered,
// the capable ones are all lost and the master itself is live, the module
// fails when it has waited one more LeaseTimeout without a capable
// instance, naming the lost instances and where it was last dispatched.
// That wait is the time a lost instance has to come back (instances slow
// to beat again after a pause of the coordinator) or to be replaced (a
// runner restarted with the same index registers again, live and capable,
// and the module is its).

// capableLostLocked describes the lost instances that could run node i,
// or returns "" when node i's wait is not settled by a loss: it has waited
// for less than LeaseTimeout, not every instance has registered, no
// registered instance could ever run it, one that can is live, or the
// master's own registration is stale (the view is one of a coordinator
// outage, not of lost instances). Called with d.mu held.
func (d *Dispatcher) capableLostLocked(i int) string {
	if f := d.flights[i]; f == nil || f.waitingFrom.IsZero() || time.Since(f.waitingFrom) <= d.cfg.LeaseTimeout || !d.allRegisteredLocked() {
		return ""
	}
	var lost []string
	for _, in := range d.instances {
		if in.Instance == d.cfg.Instance && in.Age > d.cfg.LeaseTimeout {
			return ""
		}
		if !distributed.Satisfies(in.Capabilities, d.nodes[i].Requires) {
			continue
		}
		if in.Age <= d.cfg.LeaseTimeout {
			return ""
		}
		lost = append(lost, fmt.Sprintf("instance %d (offers %s) sent no heartbeat for %s (lease timeout %s)",
			in.Instance, strings.Join(offered(in.Capabilities), ", "), in.Age.Round(time.Millisecond), d.cfg.LeaseTimeout))
	}
	return strings.Join(lost, "; ")
}

// capabilityLost fails node i, whose capable instances (lost) are all
// lost. Called with d.mu held; the failure is delivered after unlocking
// through the returned function.
func (d *Dispatcher) capabilityLostLocked(i int, lost string) func() {
	f := d.flights[i]
	n := d.nodes[i]
	where := "no instance had claimed it"
	if f.holder > 0 {
		where = fmt.Sprintf("it was last dispatched to instance %d", f.holder)
	}
	err := fmt.Errorf("no instance able to run %s is left: %s, and no other instance offers %s (%s); %s. Give the run another instance with %s, or rerun it",
		n.Name, lost, describeReqs(n.Requires), d.offersLocked(), where, describeReqs(n.Requires))
	holder := f.holder
	return func() { d.failLost(i, err, holder, -1) }
}

// failLost ends node i without a result after the instance that last held
// it (holder; 0 when none did) was lost; instance is as for fail.
func (d *Dispatcher) failLost(i int, err error, holder, instance int) {
	d.mu.Lock()
	if f := d.flights[i]; f != nil && holder > 0 {
		f.lostHolder = holder
	}
	d.mu.Unlock()
	d.fail(i, err, instance)
}

// offered is caps without the master's internal capability.
func offered(caps []string) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		if c != distributed.MasterCapability {
			out = append(out, c)
		}
	}
	return out
}
