package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

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
// the module fails a lease timeout later, naming the lost instance,
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
	o := m.reapUntilOutcome(0, 1)
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
	o := m.reapUntilOutcome(0, 1)
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
	// Reap for two lease timeouts, more than a loss would need.
	for end := time.Now().Add(2 * outage.d.cfg.LeaseTimeout); time.Now().Before(end); time.Sleep(outage.d.cfg.Heartbeat) {
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

// reapUntilOutcome applies the lease policy every heartbeat interval, the
// live instances beating meanwhile, until the module has an outcome.
func (m *master) reapUntilOutcome(live ...int) engine.Outcome {
	m.t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		m.beat(live...)
		m.d.reap(context.Background())
		select {
		case o := <-m.outs:
			return o
		case <-time.After(m.d.cfg.Heartbeat):
		}
	}
	m.t.Fatal("no outcome")
	return engine.Outcome{}
}

// A capable instance that registers again within the lease timeout after
// the loss (a restarted runner with the same index) gets the module.
func TestCapableInstanceBackInTimeGetsTheModule(t *testing.T) {
	m := newMaster(t, 2, 3, NodeInfo{Name: "race", Requires: []string{"cgo"}})
	m.d.cfg.CapabilityTimeout = waitFor * 10
	m.join(0, "linux", distributed.MasterCapability)
	m.join(1, "linux", "cgo")
	m.dispatch("race")
	m.claim(1, "linux", "cgo")
	m.awaitLost(1)
	m.beat(0)
	m.d.reap(context.Background()) // re-queued; no capable instance is live
	m.join(1, "linux", "cgo")      // back
	for range 3 {
		m.beat(0, 1)
		m.d.reap(context.Background())
	}
	cl := m.claim(1, "linux", "cgo")
	if cl.Assignment.Module != "race" || cl.Assignment.Attempt != 2 {
		t.Errorf("the instance back claimed %+v, want race attempt 2", cl.Assignment)
	}
	if err := m.publish(cl); err != nil {
		t.Fatal(err)
	}
	if o := m.outcome(); o.Status != engine.Succeeded || o.LostHolder != 0 {
		t.Errorf("outcome %s, lost holder %d", o.Status, o.LostHolder)
	}
}
