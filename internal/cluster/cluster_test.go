package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/logbuf"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor is the bound on waits that must end; reaching it fails the test.
const waitFor = 20 * time.Second

// fakeHost is a pipeline of named modules whose functions the test gives.
type fakeHost struct {
	names []string
	runs  map[string]func(ctx context.Context) (any, error)

	mu       sync.Mutex
	executed map[string]int
	outcomes map[string]engine.Outcome
	notes    map[string][]string
}

func newHost(runs map[string]func(ctx context.Context) (any, error)) *fakeHost {
	h := &fakeHost{runs: runs, executed: map[string]int{}, outcomes: map[string]engine.Outcome{}, notes: map[string][]string{}}
	for name := range runs {
		h.names = append(h.names, name)
	}
	return h
}

func (h *fakeHost) Lookup(module string) (int, bool) {
	for i, n := range h.names {
		if n == module {
			return i, true
		}
	}
	return 0, false
}

func (h *fakeHost) ExecNode(id int, _ *logbuf.Buffer) *engine.Node {
	name := h.names[id]
	return &engine.Node{ID: id, Name: name, Run: func(ctx context.Context, _, _ int) (any, error) {
		h.mu.Lock()
		h.executed[name]++
		h.mu.Unlock()
		return h.runs[name](ctx)
	}, Log: func(int, string) {}}
}

func (h *fakeHost) Executed(id int, o *engine.Outcome, _ []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.outcomes[h.names[id]] = *o
}

func (h *fakeHost) Note(id int, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.notes[h.names[id]] = append(h.notes[h.names[id]], msg)
}

func (h *fakeHost) AppendLog(int, []byte) {}
func (h *fakeHost) Claimed(int, int)      {}

func (h *fakeHost) count(module string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.executed[module]
}

// claimSignal reports each Claim or ClaimBatch call as it starts waiting in
// the coordinator, and lets a test refuse claims.
type claimSignal struct {
	*distributed.InMemory
	entered chan struct{}
	refuse  error
}

func (c *claimSignal) ClaimBatch(ctx context.Context, instance int, caps []string, max int) ([]distributed.Claim, error) {
	select {
	case c.entered <- struct{}{}:
	default:
	}
	if c.refuse != nil {
		return nil, c.refuse
	}
	return c.InMemory.ClaimBatch(ctx, instance, caps, max)
}

func testConfig(coord distributed.Coordinator, instance int) Config {
	return Config{
		Coord: coord, Instance: instance, Total: 2, Caps: []string{"linux"}, Session: "s",
		Heartbeat: 20 * time.Millisecond, LeaseTimeout: 200 * time.Millisecond, CapabilityTimeout: 5 * time.Second,
		MasterTimeout: 5 * time.Second, Grace: time.Second, MaxAttempts: 3, Parallelism: 2,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func register(t testing.TB, coord distributed.Coordinator, instance int, caps ...string) {
	t.Helper()
	err := coord.Register(context.Background(), distributed.Registration{Instance: instance, Total: 2, Capabilities: caps,
		Fingerprint: "f", Session: "s", LeaseTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
}

// awaitClaimed waits until module is claimed: it holds a lease, or it has
// already run on host.
func awaitClaimed(t *testing.T, coord distributed.Coordinator, host *fakeHost, module string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		ls, err := coord.Leases(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Module == module {
				return
			}
		}
		if host.count(module) > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s was never claimed", module)
}

func waitExecutor(t *testing.T, e *Executor) {
	t.Helper()
	done := make(chan struct{})
	go func() { e.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("the executor did not end")
	}
}

// A claim that was already waiting in the coordinator when the instance's
// heartbeats began to fail hands it the module the master re-queued: the
// instance must not run it (issue 8, defect 2).
func TestExecutorRunsNothingClaimedWhileCutOff(t *testing.T) {
	mem := distributed.NewInMemory()
	coord := &claimSignal{InMemory: mem, entered: make(chan struct{}, 1)}
	register(t, coord, 1, "linux")
	host := newHost(map[string]func(context.Context) (any, error){"long": func(context.Context) (any, error) { return "x", nil }})
	var lostErr error
	var lostOnce sync.WaitGroup
	lostOnce.Add(1)
	cfg := testConfig(coord, 1)
	cfg.Live = NewLiveness(func(err error) { lostErr = err; lostOnce.Done() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := StartExecutor(ctx, cfg, host, NewValues(coord), nil)

	<-coord.entered      // the claim waits in the coordinator
	cfg.Live.Beat(false) // then the heartbeats fail
	if err := coord.Enqueue(context.Background(), distributed.Assignment{Module: "long", Attempt: 2}); err != nil {
		t.Fatal(err)
	}
	awaitClaimed(t, coord, host, "long") // the waiting claim took it
	cfg.Live.Lose(errors.New("could not reach the coordinator"))
	lostOnce.Wait()
	waitExecutor(t, e)
	if n := host.count("long"); n != 0 {
		t.Errorf("the cut-off instance ran the module it claimed %d times; want 0", n)
	}
	if lostErr == nil {
		t.Error("the instance was not reported lost")
	}
}

// A heartbeat that fails once and then succeeds again is an outage the
// instance survives: the claim it held meanwhile runs.
func TestExecutorRunsClaimAfterHeartbeatsRecover(t *testing.T) {
	mem := distributed.NewInMemory()
	coord := &claimSignal{InMemory: mem, entered: make(chan struct{}, 1)}
	register(t, coord, 1, "linux")
	ran := make(chan struct{})
	host := newHost(map[string]func(context.Context) (any, error){"m": func(context.Context) (any, error) { close(ran); return 1, nil }})
	cfg := testConfig(coord, 1)
	cfg.Live = NewLiveness(func(error) { t.Error("lost") })
	ctx, cancel := context.WithCancel(context.Background())
	e := StartExecutor(ctx, cfg, host, NewValues(coord), nil)
	<-coord.entered
	cfg.Live.Beat(false)
	if err := coord.Enqueue(context.Background(), distributed.Assignment{Module: "m", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	awaitClaimed(t, coord, host, "m")
	if host.count("m") != 0 {
		t.Error("ran while cut off")
	}
	cfg.Live.Beat(true)
	select {
	case <-ran:
	case <-time.After(waitFor):
		t.Fatal("the claim did not run once the heartbeats recovered")
	}
	res, err := coord.AwaitResult(ctx, "m")
	if err != nil || res.Status != distributed.StatusSucceeded {
		t.Errorf("result %+v, %v", res, err)
	}
	cancel()
	waitExecutor(t, e)
}

// A claim the coordinator refuses because it does not count the instance
// as live (a late heartbeat on a loaded machine looks like a lost one)
// pauses the executor until the heartbeat loop decides: a beat that
// succeeds resumes claiming, a final refusal ends the executor.
func TestExecutorPausesWhenAClaimIsRefused(t *testing.T) {
	mem := distributed.NewInMemory()
	coord := &refusingClaims{InMemory: mem, claims: make(chan struct{}, 16)}
	coord.refuse.Store(true)
	register(t, coord, 1, "linux")
	ran := make(chan struct{})
	host := newHost(map[string]func(context.Context) (any, error){"m": func(context.Context) (any, error) { close(ran); return 1, nil }})
	lost := make(chan error, 1)
	cfg := testConfig(coord, 1)
	// As in a run: losing the instance cancels its executions.
	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	cfg.Live = NewLiveness(func(err error) { lost <- err; cancelRun() })
	e := StartExecutor(runCtx, cfg, host, NewValues(coord), nil)
	select {
	case <-coord.claims:
	case <-time.After(waitFor):
		t.Fatal("the executor never claimed")
	}
	// Refused: the instance counts as cut off (not lost), so it waits.
	// The claim signals on entry, before the refusal reaches the executor:
	// wait (bounded) until it has marked the instance cut off.
	for deadline := time.Now().Add(waitFor); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := cfg.Live.AwaitConnected(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("after a refused claim the instance is not cut off (AwaitConnected: %v)", err)
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-lost:
		t.Fatalf("a refused claim made the instance lost: %v", err)
	default:
	}
	// A successful heartbeat: claiming resumes and the work runs.
	coord.refuse.Store(false)
	if err := coord.Enqueue(context.Background(), distributed.Assignment{Module: "m", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	cfg.Live.Beat(true)
	select {
	case <-ran:
	case <-time.After(waitFor):
		t.Fatal("the executor did not claim again once a heartbeat succeeded")
	}
	// A final verdict from the heartbeat loop ends the executor.
	cfg.Live.Lose(cutOff(1, wrapNotRegistered{}))
	if err := <-lost; !errors.Is(err, distributed.ErrNotRegistered) || !containsAll(err.Error(), "instance 1 was cut off", "re-run this job") {
		t.Errorf("lost with %v", err)
	}
	waitExecutor(t, e)
}

// refusingClaims refuses claims as a coordinator refuses an instance it
// does not count as live, while refuse is set.
type refusingClaims struct {
	*distributed.InMemory
	refuse atomic.Bool
	claims chan struct{}
}

func (c *refusingClaims) ClaimBatch(ctx context.Context, instance int, caps []string, limit int) ([]distributed.Claim, error) {
	select {
	case c.claims <- struct{}{}:
	default:
	}
	if c.refuse.Load() {
		return nil, wrapNotRegistered{}
	}
	return c.InMemory.ClaimBatch(ctx, instance, caps, limit)
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

type wrapNotRegistered struct{}

func (wrapNotRegistered) Error() string { return "instance 1 is not registered (lost)" }
func (wrapNotRegistered) Unwrap() error { return distributed.ErrNotRegistered }

// The executor hands a result to its deliver function only once the
// coordinator accepted it: a result published under a lease the master
// re-queued meanwhile (stale) never reaches the master's scheduler.
func TestExecutorDeliversOnlyAcceptedResults(t *testing.T) {
	coord := distributed.NewInMemory()
	register(t, coord, 0, "linux")
	release := make(chan struct{})
	calls := 0
	var mu sync.Mutex
	host := newHost(map[string]func(context.Context) (any, error){"m": func(context.Context) (any, error) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			<-release // attempt 1 returns only once it was re-queued
		}
		return 7, nil
	}})
	delivered := make(chan distributed.Result, 4)
	cfg := testConfig(coord, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := StartExecutor(ctx, cfg, host, NewValues(coord), func(r distributed.Result) { delivered <- r })
	if err := coord.Enqueue(context.Background(), distributed.Assignment{Module: "m", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	awaitClaimed(t, coord, host, "m")
	ls, err := coord.Leases(context.Background())
	if err != nil || len(ls) != 1 {
		t.Fatalf("leases %v, %v", ls, err)
	}
	if err := coord.Reclaim(context.Background(), ls[0], &distributed.Assignment{Module: "m", Attempt: 2}); err != nil {
		t.Fatal(err)
	}
	close(release)
	select {
	case r := <-delivered:
		if r.Lease.Attempt != 2 || r.Status != distributed.StatusSucceeded {
			t.Errorf("delivered %s attempt %d (%s); want attempt 2, succeeded", r.Module, r.Lease.Attempt, r.Status)
		}
	case <-time.After(waitFor):
		t.Fatal("the accepted result of attempt 2 was not delivered")
	}
	cancel()
	waitExecutor(t, e)
	if len(delivered) != 0 {
		t.Errorf("%d more results delivered; the stale attempt 1 must not be", len(delivered))
	}
}
