package cluster

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
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

// burstWatch is the in-memory coordinator with a ResultWatcher that only
// records the watches: the test delivers.
type burstWatch struct {
	*distributed.InMemory
	mu      sync.Mutex
	deliver func(string, distributed.Result, error)
	modules []string
}

func (b *burstWatch) WatchResults(_ context.Context, modules []string, deliver func(string, distributed.Result, error)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deliver = deliver
	b.modules = append(b.modules, modules...)
	return nil
}

// A burst of watched results, delivered from several goroutines at once
// (as a batch announcement is), all settle, each once; so do results
// delivered after the burst, when the finisher is idle again.
func TestBurstOfWatchedArrivalsAllSettle(t *testing.T) {
	const n = 400
	var bw *burstWatch
	nodes := make([]NodeInfo, n)
	for k := range nodes {
		nodes[k] = NodeInfo{Name: fmt.Sprintf("m%03d", k), Requires: []string{"linux"}}
	}
	m := newMasterOver(t, func(c *distributed.InMemory) distributed.Coordinator {
		bw = &burstWatch{InMemory: c}
		return bw
	}, 2, 3, nodes...)
	m.outs = make(chan engine.Outcome, n)
	m.join(0, distributed.MasterCapability)
	m.join(1, "linux")
	for _, nd := range nodes {
		m.dispatch(nd.Name)
	}
	deadline := time.Now().Add(waitFor)
	for {
		bw.mu.Lock()
		watched := len(bw.modules)
		bw.mu.Unlock()
		if watched == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d modules watched", watched, n)
		}
		time.Sleep(time.Millisecond)
	}
	result := func(module string) distributed.Result {
		return distributed.Result{Module: module, Status: distributed.StatusSucceeded, Value: []byte(`1`), Attempts: 1,
			Lease: distributed.Lease{Module: module, Attempt: 1, Holder: 1, Session: "s1", Token: "t"}}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for k := g; k < n-10; k += 4 {
				bw.deliver(nodes[k].Name, result(nodes[k].Name), nil)
			}
		})
	}
	wg.Wait()
	collect := func(count int) {
		t.Helper()
		for range count {
			o := m.outcome()
			if o.Status != engine.Succeeded || o.Instance != 1 {
				t.Errorf("outcome %s on %d, %v", o.Status, o.Instance, o.Err)
			}
		}
	}
	collect(n - 10)
	for k := n - 10; k < n; k++ { // one at a time, the finisher idle
		bw.deliver(nodes[k].Name, result(nodes[k].Name), nil)
		collect(1)
	}
	// Delivered again: settled already, nothing more comes.
	bw.deliver(nodes[0].Name, result(nodes[0].Name), nil)
	m.d.Close()
	if len(m.outs) != 0 {
		t.Errorf("%d outcomes more than the %d modules", len(m.outs), n)
	}
	m.d.mu.Lock()
	left := len(m.d.flights)
	m.d.mu.Unlock()
	if left != 0 {
		t.Errorf("%d flights left", left)
	}
}

// An arrival kicks the finisher only when the inbox was empty: with
// arrivals waiting, the finisher is due already and takes them all.
func TestOnlyTheFirstArrivalOfABatchKicksTheFinisher(t *testing.T) {
	d := &Dispatcher{index: map[string]int{"a": 0, "b": 1, "c": 2}, inKick: make(chan struct{}, 1)}
	kicked := func() bool {
		select {
		case <-d.inKick:
			return true
		default:
			return false
		}
	}
	d.watched("a", distributed.Result{}, nil)
	if !kicked() {
		t.Fatal("the first arrival did not kick the finisher")
	}
	// The finisher took the kick and has yet to take the inbox.
	d.watched("b", distributed.Result{}, nil)
	d.watched("c", distributed.Result{}, nil)
	if kicked() {
		t.Error("an arrival into a waiting inbox kicked the finisher again")
	}
	d.inMu.Lock()
	inbox := len(d.inbox)
	d.inbox = d.inbox[:0] // the finisher takes the inbox
	d.inMu.Unlock()
	if inbox != 3 {
		t.Errorf("inbox of %d arrivals, want 3", inbox)
	}
	d.watched("a", distributed.Result{}, nil)
	if !kicked() {
		t.Error("the first arrival after the finisher took the inbox did not kick it")
	}
	d.watched("unknown", distributed.Result{}, nil)
	d.watched("b", distributed.Result{}, fmt.Errorf("over: %w", distributed.ErrRunEnded))
	if len(d.inbox) != 1 {
		t.Errorf("inbox of %d arrivals; an unknown module and a run that ended post nothing", len(d.inbox))
	}
}

// The dispatcher's maps are sized for the plan: putting every node in
// flight (a flat plan) does not grow the map (a few allocations elsewhere
// in the process are tolerated).
func TestDispatcherFlightsSizedForThePlan(t *testing.T) {
	const n = 2000
	nodes := make([]NodeInfo, n)
	for k := range nodes {
		nodes[k] = NodeInfo{Name: fmt.Sprintf("m%d", k)}
	}
	d := NewDispatcher(testConfig(distributed.NewInMemory(), 0), newHost(nil), nodes)
	defer d.Close()
	f := &flight{}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d.mu.Lock()
	for i := range n {
		d.flights[i] = f
	}
	d.mu.Unlock()
	runtime.ReadMemStats(&after)
	if grew := after.Mallocs - before.Mallocs; grew >= 10 { // unsized: about 30
		t.Errorf("putting %d nodes in flight made %d allocations", n, grew)
	}
}
