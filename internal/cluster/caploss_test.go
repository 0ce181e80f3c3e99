package cluster

import (
	"context"
	"strings"
	"testing"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
)

// beat renews the registrations of instances, so that only the others
// look lost.
func (m *master) beat(instances ...int) {
	m.t.Helper()
	for _, i := range instances {
		if _, err := m.coord.Heartbeat(context.Background(), i); err != nil {
			m.t.Fatal(err)
		}
	}
}

// When the only instance able to run a module is lost while running it,
// the module fails at the reaper's next look, naming the lost instance,
// instead of waiting out CapabilityTimeout; the outcome records where it
// was last dispatched.
func TestModuleFailsWhenItsOnlyCapableInstanceIsLost(t *testing.T) {
	m := newMaster(t, 3, 3, NodeInfo{Name: "race", Requires: []string{"cgo"}})
	m.d.cfg.CapabilityTimeout = waitFor * 10 // the old verdict would come far too late
	m.join(0, "linux", distributed.MasterCapability)
	m.join(1, "linux")
	m.join(2, "linux", "cgo")
	m.dispatch("race")
	m.claim(2, "linux", "cgo")
	m.awaitLost(2)
	m.beat(0, 1)
	m.d.reap(context.Background()) // the lease of the lost instance ends
	m.beat(0, 1)
	m.d.reap(context.Background()) // still no capable instance: settled
	o := m.outcome()
	if o.Status != engine.Failed || o.Err == nil {
		t.Fatalf("outcome %s: %v", o.Status, o.Err)
	}
	for _, want := range []string{"no instance able to run race is left", "instance 2 (offers linux, cgo) sent no heartbeat", "lease timeout 200ms",
		"no other instance offers cgo", "instance 1 offers linux", "it was last dispatched to instance 2"} {
		if !strings.Contains(o.Err.Error(), want) {
			t.Errorf("%q does not say %q", o.Err, want)
		}
	}
	if o.LostHolder != 2 {
		t.Errorf("LostHolder %d, want 2", o.LostHolder)
	}
}

// A queued module whose only capable instance is lost before claiming it
// fails too, saying no instance had claimed it.
func TestQueuedModuleFailsWhenItsOnlyCapableInstanceIsLost(t *testing.T) {
	m := newMaster(t, 3, 3, NodeInfo{Name: "race", Requires: []string{"cgo"}})
	m.d.cfg.CapabilityTimeout = waitFor * 10
	m.join(0, "linux", distributed.MasterCapability)
	m.join(1, "linux")
	m.join(2, "linux", "cgo")
	m.dispatch("race")
	m.awaitQueued("race")
	m.awaitLost(2)
	for range 2 {
		m.beat(0, 1)
		m.d.reap(context.Background())
	}
	o := m.outcome()
	if o.Err == nil || !strings.Contains(o.Err.Error(), "instance 2 (offers linux, cgo) sent no heartbeat") || !strings.Contains(o.Err.Error(), "no instance had claimed it") {
		t.Errorf("outcome %s: %v", o.Status, o.Err)
	}
	if o.LostHolder != 0 {
		t.Errorf("LostHolder %d, want 0: no instance held it", o.LostHolder)
	}
}

// Not settled by a loss: another capable instance is live (the work is
// re-queued for it), or the master's own registration is stale too (a
// coordinator outage looks like every instance lost).
func TestCapabilityLossNeedsEveryCapableInstanceLostAndALiveMaster(t *testing.T) {
	m := newMaster(t, 3, 3, NodeInfo{Name: "race", Requires: []string{"cgo"}})
	m.d.cfg.CapabilityTimeout = waitFor * 10
	m.join(0, "linux", distributed.MasterCapability)
	m.join(1, "linux", "cgo")
	m.join(2, "linux", "cgo")
	m.dispatch("race")
	m.claim(2, "linux", "cgo")
	m.awaitLost(2)
	m.beat(0, 1)
	m.d.reap(context.Background())
	m.beat(0, 1)
	m.d.reap(context.Background())
	if cl := m.claim(1, "linux", "cgo"); cl.Assignment.Module != "race" || cl.Assignment.Attempt != 2 {
		t.Errorf("the live cgo instance claimed %+v, want race attempt 2", cl.Assignment)
	}

	outage := newMaster(t, 2, 3, NodeInfo{Name: "race", Requires: []string{"cgo"}})
	outage.d.cfg.CapabilityTimeout = waitFor * 10
	outage.join(0, "linux", distributed.MasterCapability)
	outage.join(1, "linux", "cgo")
	outage.dispatch("race")
	outage.awaitQueued("race")
	outage.awaitLost(1)
	outage.awaitLost(0)
	for range 3 {
		outage.d.reap(context.Background())
	}
	i, _ := outage.host.Lookup("race")
	outage.d.mu.Lock()
	waiting := outage.d.flights[i] != nil
	outage.d.mu.Unlock()
	if !waiting {
		t.Error("the module failed while the master's own registration was stale too (an outage, not a loss)")
	}
}
