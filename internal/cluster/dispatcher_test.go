package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
)

// master is a dispatcher over the in-memory coordinator, with its
// completions delivered to outcomes.
type master struct {
	t     *testing.T
	coord *distributed.InMemory
	host  *fakeHost
	d     *Dispatcher
	outs  chan engine.Outcome
}

func newMaster(t *testing.T, total, maxAttempts int, nodes ...NodeInfo) *master {
	return newMasterOver(t, nil, total, maxAttempts, nodes...)
}

// newMasterOver is newMaster with the dispatcher talking to wrap(the
// in-memory coordinator) (nil: to it directly).
func newMasterOver(t *testing.T, wrap func(*distributed.InMemory) distributed.Coordinator, total, maxAttempts int, nodes ...NodeInfo) *master {
	coord := distributed.NewInMemory()
	runs := map[string]func(context.Context) (any, error){}
	for _, n := range nodes {
		runs[n.Name] = func(context.Context) (any, error) { return nil, nil }
	}
	host := newHost(runs)
	// The dispatcher indexes nodes like the host does.
	ordered := make([]NodeInfo, len(nodes))
	for _, n := range nodes {
		i, _ := host.Lookup(n.Name)
		ordered[i] = n
	}
	cfg := testConfig(coord, 0)
	if wrap != nil {
		cfg.Coord = wrap(coord)
	}
	cfg.Total, cfg.MaxAttempts = total, maxAttempts
	m := &master{t: t, coord: coord, host: host, d: NewDispatcher(cfg, host, ordered), outs: make(chan engine.Outcome, 16)}
	t.Cleanup(m.d.Close)
	return m
}

func (m *master) dispatch(name string) {
	i, _ := m.host.Lookup(name)
	m.d.Dispatch(context.Background(), i, engine.NewCompletion(func(o engine.Outcome) { m.outs <- o }))
}

func (m *master) outcome() engine.Outcome {
	m.t.Helper()
	select {
	case o := <-m.outs:
		return o
	case <-time.After(waitFor):
		m.t.Fatal("no outcome")
		return engine.Outcome{}
	}
}

// join registers instance i with caps and a short lease timeout.
func (m *master) join(i int, caps ...string) {
	m.t.Helper()
	err := m.coord.Register(context.Background(), distributed.Registration{Instance: i, Total: m.d.cfg.Total, Capabilities: caps,
		Fingerprint: "f", Session: "s" + string(rune('0'+i)), LeaseTimeout: m.d.cfg.LeaseTimeout})
	if err != nil {
		m.t.Fatal(err)
	}
}

func (m *master) claim(i int, caps ...string) distributed.Claim {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	cl, err := m.coord.Claim(ctx, i, caps)
	if err != nil {
		m.t.Fatalf("instance %d claims: %v", i, err)
	}
	return cl
}

// awaitLost waits until instance i's last heartbeat is older than the
// lease timeout.
func (m *master) awaitLost(i int) {
	m.t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		ins, err := m.coord.Instances(context.Background())
		if err != nil {
			m.t.Fatal(err)
		}
		for _, in := range ins {
			if in.Instance == i && in.Age > m.d.cfg.LeaseTimeout {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.t.Fatalf("instance %d never went silent", i)
}

func (m *master) publish(cl distributed.Claim) error {
	return m.coord.Publish(context.Background(), distributed.Result{Module: cl.Assignment.Module, Lease: cl.Lease,
		Status: distributed.StatusSucceeded, Value: []byte(`"ok"`), Attempts: 1})
}

// The work of a lost instance is re-queued as the next attempt; the lost
// holder's late result is fenced off; the new holder's result counts.
func TestLostLeaseIsRequeuedAndFenced(t *testing.T) {
	m := newMaster(t, 3, 3, NodeInfo{Name: "a", Requires: []string{"linux"}})
	m.join(1, "linux")
	m.dispatch("a")
	first := m.claim(1, "linux")
	m.awaitLost(1)
	m.d.reap(context.Background())
	m.join(2, "linux")
	second := m.claim(2, "linux")
	if second.Assignment.Attempt != 2 {
		t.Fatalf("re-queued as attempt %d, want 2", second.Assignment.Attempt)
	}
	if err := m.publish(first); !errors.Is(err, distributed.ErrStaleLease) {
		t.Errorf("the lost holder's result: %v, want ErrStaleLease", err)
	}
	if err := m.publish(second); err != nil {
		t.Fatal(err)
	}
	o := m.outcome()
	if o.Status != engine.Succeeded || o.Instance != 2 || o.Dispatches != 2 {
		t.Errorf("outcome %s on %d after %d dispatches", o.Status, o.Instance, o.Dispatches)
	}
	if notes := strings.Join(m.host.notes["a"], "\n"); !strings.Contains(notes, "instance 1 sent no heartbeat") || !strings.Contains(notes, "re-queued as attempt 2 of 3") {
		t.Errorf("notes: %s", notes)
	}
}

// After MaxAttempts dispatches, a lost lease fails the module.
func TestLostLeaseAfterMaxAttemptsFails(t *testing.T) {
	m := newMaster(t, 2, 1, NodeInfo{Name: "a", Requires: []string{"linux"}})
	m.join(1, "linux")
	m.dispatch("a")
	m.claim(1, "linux")
	m.awaitLost(1)
	m.d.reap(context.Background())
	o := m.outcome()
	if o.Status != engine.Failed || o.Err == nil || !strings.Contains(o.Err.Error(), "dispatched 1 times (MaxAttempts 1)") || o.Instance != 1 {
		t.Errorf("outcome %s on %d: %v", o.Status, o.Instance, o.Err)
	}
}

// A NotIdempotent module whose holder is lost is not run again.
func TestLostLeaseOfNotIdempotentModuleFails(t *testing.T) {
	m := newMaster(t, 2, 3, NodeInfo{Name: "a", Requires: []string{"linux"}, NotIdempotent: true})
	m.join(1, "linux")
	m.dispatch("a")
	m.claim(1, "linux")
	m.awaitLost(1)
	m.d.reap(context.Background())
	o := m.outcome()
	if o.Status != engine.Failed || o.Err == nil || !strings.Contains(o.Err.Error(), "NotIdempotent, so it is not run again") {
		t.Errorf("outcome %s: %v", o.Status, o.Err)
	}
	if ls, _ := m.coord.Leases(context.Background()); len(ls) != 0 {
		t.Errorf("leases left: %+v", ls)
	}
}

// Work no registered instance can take is parked, not queued, and goes to
// the queue as soon as a capable instance registers.
func TestParkedWorkIsQueuedWhenACapableInstanceJoins(t *testing.T) {
	m := newMaster(t, 3, 3, NodeInfo{Name: "gpu-job", Requires: []string{"gpu"}})
	m.join(1, "linux")
	m.dispatch("gpu-job")
	i, _ := m.host.Lookup("gpu-job")
	m.d.mu.Lock()
	parked := m.d.flights[i] != nil && m.d.flights[i].parked
	m.d.mu.Unlock()
	if !parked {
		t.Fatal("work no instance can take was not parked")
	}
	m.join(2, "gpu")
	m.d.RecheckParked()
	cl := m.claim(2, "gpu")
	if cl.Assignment.Module != "gpu-job" || cl.Assignment.Attempt != 1 {
		t.Errorf("claimed %+v", cl.Assignment)
	}
	if err := m.publish(cl); err != nil {
		t.Fatal(err)
	}
	if o := m.outcome(); o.Status != engine.Succeeded || o.Instance != 2 {
		t.Errorf("outcome %s on %d", o.Status, o.Instance)
	}
}

// Once every expected instance has registered and none can take a module,
// it fails at once with what it requires and what each instance offers.
func TestUnroutableWorkFailsAtOnce(t *testing.T) {
	m := newMaster(t, 2, 3, NodeInfo{Name: "mac-job", Requires: []string{"darwin"}})
	m.join(0, "linux", distributed.MasterCapability)
	m.join(1, "windows")
	m.dispatch("mac-job")
	o := m.outcome()
	if o.Status != engine.Failed || o.Err == nil {
		t.Fatalf("outcome %s: %v", o.Status, o.Err)
	}
	for _, want := range []string{"no instance can run mac-job", "requires darwin", "instance 1 offers windows"} {
		if !strings.Contains(o.Err.Error(), want) {
			t.Errorf("%q does not say %q", o.Err, want)
		}
	}
}

// A result the master's own executor delivers ends the module at once, and
// ends the dispatcher's wait for it through the coordinator.
// (Awaited with AwaitResult: a coordinator without a ResultWatcher; a
// watch ends with the dispatcher.)
func TestDeliveredResultEndsTheAwait(t *testing.T) {
	m := newMasterOver(t, func(c *distributed.InMemory) distributed.Coordinator { return awaitOnly{c} }, 2, 3, NodeInfo{Name: "anywhere", Requires: []string{"linux"}})
	m.d.cfg.Local = &LocalWork{} // a master with its own executor
	m.join(0, "linux", distributed.MasterCapability)
	m.dispatch("anywhere")
	cl := m.claim(0, "linux", distributed.MasterCapability)
	i, _ := m.host.Lookup("anywhere")
	for deadline := time.Now().Add(waitFor); ; time.Sleep(time.Millisecond) {
		m.d.mu.Lock()
		awaited := m.d.flights[i] != nil && m.d.flights[i].awaited
		m.d.mu.Unlock()
		if awaited {
			break // the dispatcher awaits the result through the coordinator
		}
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher never began awaiting the module")
		}
	}
	m.d.Deliver(distributed.Result{Module: "anywhere", Lease: cl.Lease, Status: distributed.StatusSucceeded, Attempts: 1})
	if o := m.outcome(); o.Status != engine.Succeeded || o.Instance != 0 {
		t.Errorf("outcome %s on %d, want succeeded on the master", o.Status, o.Instance)
	}
	awaiting := make(chan struct{})
	go func() { m.d.wg.Wait(); close(awaiting) }()
	select {
	case <-awaiting:
	case <-time.After(waitFor):
		t.Fatal("the dispatcher still awaits the delivered module through the coordinator")
	}
}
