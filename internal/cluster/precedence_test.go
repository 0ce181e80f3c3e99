package cluster

import (
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// The only instance with cgo claims the race run before general work of a
// higher critical path: any instance can take that, only it can take the
// race run.
func TestScarceWorkComesFirstOnTheInstanceThatHasIt(t *testing.T) {
	m := newMaster(t, 3, 3,
		NodeInfo{Name: "test-a", Priority: 5},
		NodeInfo{Name: "test-b", Priority: 5},
		NodeInfo{Name: "race", Requires: []string{"cgo"}, Priority: 1},
	)
	m.join(0, "linux", distributed.MasterCapability)
	m.join(1, "linux")
	m.join(2, "linux", "cgo")
	for _, name := range []string{"test-a", "test-b", "race"} {
		m.dispatch(name)
	}
	m.awaitQueued("test-a", "test-b", "race")
	if cl := m.claim(2, "linux", "cgo"); cl.Assignment.Module != "race" {
		t.Errorf("the cgo worker claimed %s first, want race", cl.Assignment.Module)
	}
	// Instances that cannot run it keep the critical-path order.
	if cl := m.claim(1, "linux"); cl.Assignment.Module != "test-a" {
		t.Errorf("worker 1 claimed %s, want test-a", cl.Assignment.Module)
	}
}

// A requirement every instance of the run meets is not scarce: the
// critical path decides. Until every instance has registered, a module
// with a requirement counts as scarce.
func TestRequirementEveryInstanceMeetsGetsNoPrecedence(t *testing.T) {
	nodes := []NodeInfo{{Name: "general", Priority: 5}, {Name: "on-linux", Requires: []string{"linux"}, Priority: 1}}
	m := newMaster(t, 2, 3, nodes...)
	m.join(0, "linux", distributed.MasterCapability)
	m.join(1, "linux")
	m.d.refreshInstances(m.d.life)
	i, _ := m.host.Lookup("on-linux")
	if got := m.d.assignment(i, 1).Priority; got != 1 {
		t.Errorf("on-linux queued with priority %d on an all-Linux fleet, want its critical path 1", got)
	}

	early := newMaster(t, 2, 3, nodes...)
	early.join(0, "linux", distributed.MasterCapability)
	early.d.refreshInstances(early.d.life)
	i, _ = early.host.Lookup("on-linux")
	if got := early.d.assignment(i, 1).Priority; got <= 5 {
		t.Errorf("on-linux queued with priority %d while instance 1 is unknown, want above general's 5", got)
	}
	early.d.cfg.NoPrecedence = true
	if got := early.d.assignment(i, 1).Priority; got != 1 {
		t.Errorf("with NoPrecedence: priority %d, want 1", got)
	}
}

// awaitQueued waits until the dispatcher has queued the named modules (it
// queues in the background) and awaits their results.
func (m *master) awaitQueued(names ...string) {
	m.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		queued := true
		m.d.mu.Lock()
		for _, name := range names {
			i, _ := m.host.Lookup(name)
			if f := m.d.flights[i]; f == nil || !f.awaited {
				queued = false
			}
		}
		m.d.mu.Unlock()
		if queued {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("%v not queued within %s", names, waitFor)
		}
		time.Sleep(time.Millisecond)
	}
}
