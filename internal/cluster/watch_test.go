package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
)

// awaitOnly hides the in-memory coordinator's optional interfaces: the
// dispatcher awaits each result with AwaitResult.
type awaitOnly struct{ distributed.Coordinator }

// failingWatch is a coordinator whose WatchResults fails to start (err) or
// delivers deliverErr for every module.
type failingWatch struct {
	*distributed.InMemory
	err, deliverErr error
	calls           atomic.Int32
}

func (f *failingWatch) WatchResults(ctx context.Context, modules []string, deliver func(string, distributed.Result, error)) error {
	f.calls.Add(1)
	if f.err != nil {
		return f.err
	}
	go func() {
		for _, m := range modules {
			deliver(m, distributed.Result{}, f.deliverErr)
		}
	}()
	return nil
}

// runRemotely dispatches a module, has instance 1 claim and publish it,
// and returns its outcome.
func runRemotely(t *testing.T, m *master, name string) engine.Outcome {
	t.Helper()
	m.dispatch(name)
	cl := m.claim(1, "linux")
	if err := m.coord.Publish(context.Background(), distributed.Result{Module: name, Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: []byte(`"v"`), Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	return m.outcome()
}

// The results of queued modules arrive through the coordinator's
// ResultWatcher when it has one, with AwaitResult otherwise: the outcome
// is the same, and only the latter runs a goroutine per module.
func TestResultsArriveWithAndWithoutAWatcher(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(*distributed.InMemory) distributed.Coordinator
	}{
		{"watcher", nil},
		{"await", func(c *distributed.InMemory) distributed.Coordinator { return awaitOnly{c} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMasterOver(t, tc.wrap, 2, 3, NodeInfo{Name: "remote", Requires: []string{"linux"}})
			m.join(0, distributed.MasterCapability)
			m.join(1, "linux")
			if (m.d.watcher != nil) != (tc.wrap == nil) {
				t.Fatalf("dispatcher watcher %v with coordinator %T", m.d.watcher, m.d.cfg.Coord)
			}
			if o := runRemotely(t, m, "remote"); o.Status != engine.Succeeded || o.Instance != 1 {
				t.Errorf("outcome %s on %d, %v; want succeeded on instance 1", o.Status, o.Instance, o.Err)
			}
		})
	}
}

// A watch that could not start falls back to awaiting each module.
func TestWatchThatCannotStartFallsBackToAwait(t *testing.T) {
	var fw *failingWatch
	m := newMasterOver(t, func(c *distributed.InMemory) distributed.Coordinator {
		fw = &failingWatch{InMemory: c, err: errors.New("no subscription")}
		return fw
	}, 2, 3, NodeInfo{Name: "remote", Requires: []string{"linux"}})
	m.join(0, distributed.MasterCapability)
	m.join(1, "linux")
	if o := runRemotely(t, m, "remote"); o.Status != engine.Succeeded || o.Instance != 1 {
		t.Errorf("outcome %s on %d, %v; want succeeded on instance 1", o.Status, o.Instance, o.Err)
	}
	if fw.calls.Load() == 0 {
		t.Error("the dispatcher never tried to watch")
	}
}

// An error that ends a watch fails the node as the await did: a fatal one
// as it is, another one saying the master could not obtain the result.
func TestWatchErrorsFailTheNode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("key x: %w", distributed.ErrCorrupt), "key x"},
		{fmt.Errorf("bad result: %w", distributed.ErrInvalid), "the master could not obtain the result of remote from the coordinator: bad result"},
	} {
		m := newMasterOver(t, func(c *distributed.InMemory) distributed.Coordinator {
			return &failingWatch{InMemory: c, deliverErr: tc.err}
		}, 2, 3, NodeInfo{Name: "remote", Requires: []string{"linux"}})
		m.join(0, distributed.MasterCapability)
		m.join(1, "linux")
		m.dispatch("remote")
		o := m.outcome()
		if o.Status != engine.Failed || !errors.Is(o.Err, tc.err) || !strings.Contains(o.Err.Error(), tc.want) {
			t.Errorf("outcome after the watch delivered %v: %s, %v; want failed saying %q", tc.err, o.Status, o.Err, tc.want)
		}
	}
}

// A module parked until a capable instance registered is watched once
// it is queued, and its result arrives.
func TestParkedModuleWatchedOnceQueued(t *testing.T) {
	m := newMaster(t, 2, 3, NodeInfo{Name: "late", Requires: []string{"gpu"}})
	m.join(0, distributed.MasterCapability)
	m.dispatch("late")
	i, _ := m.host.Lookup("late")
	m.d.mu.Lock()
	parked, awaited := m.d.flights[i].parked, m.d.flights[i].awaited
	m.d.mu.Unlock()
	if !parked || awaited {
		t.Fatalf("parked %v, awaited %v; want parked and not yet awaited", parked, awaited)
	}
	m.join(1, "gpu")
	m.d.RecheckParked()
	cl := m.claim(1, "gpu")
	if err := m.coord.Publish(context.Background(), distributed.Result{Module: "late", Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: []byte(`1`), Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-m.outs:
		if o.Status != engine.Succeeded || o.Instance != 1 {
			t.Errorf("outcome %s on %d, %v", o.Status, o.Instance, o.Err)
		}
	case <-time.After(waitFor):
		t.Fatal("the result of a module queued after parking never arrived")
	}
}
