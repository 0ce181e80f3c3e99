package cluster

import (
	"testing"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
)

// A node parks while the master's view of the instances is stale; by the
// time checkUnroutable looks, the view has been refreshed (by the reaper or
// a registration) and shows every expected instance, one of which can take
// the node. It must be left parked for the reaper's recheck to queue, not
// failed with "no instance can run" (commit efbc01b). The interleaving is
// made deterministic by refreshing the view and then calling
// checkUnroutable directly, as Dispatch does right after parking.
func TestParkedNodeRoutableByCheckTimeIsLeftToRecheck(t *testing.T) {
	m := newMaster(t, 2, 3, NodeInfo{Name: "gpu-job", Requires: []string{"gpu"}})
	m.join(0, "linux", distributed.MasterCapability)
	m.dispatch("gpu-job") // instance 1 has not registered: the node parks
	i, _ := m.host.Lookup("gpu-job")
	m.d.mu.Lock()
	parked := m.d.flights[i] != nil && m.d.flights[i].parked
	m.d.mu.Unlock()
	if !parked {
		t.Fatal("work no registered instance can take was not parked")
	}

	// Instance 1 registers, offering the capability, and the master's view
	// catches up: now every expected instance has registered.
	m.join(1, "gpu")
	m.d.refreshInstances(m.d.life)
	m.d.checkUnroutable(i)

	select {
	case o := <-m.outs:
		t.Fatalf("a node instance 1 can take ended %s: %v", o.Status, o.Err)
	default:
	}
	m.d.mu.Lock()
	parked = m.d.flights[i] != nil && m.d.flights[i].parked
	m.d.mu.Unlock()
	if !parked {
		t.Fatal("the node is no longer parked: it should wait for the recheck")
	}

	// The recheck queues it, and instance 1 runs it.
	m.d.RecheckParked()
	cl := m.claim(1, "gpu")
	if cl.Assignment.Module != "gpu-job" || cl.Assignment.Attempt != 1 {
		t.Errorf("claimed %+v", cl.Assignment)
	}
	if err := m.publish(cl); err != nil {
		t.Fatal(err)
	}
	if o := m.outcome(); o.Status != engine.Succeeded || o.Instance != 1 {
		t.Errorf("outcome %s on %d: %v", o.Status, o.Instance, o.Err)
	}
}
