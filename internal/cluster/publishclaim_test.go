package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// tripCounter is the in-memory coordinator with every round trip of the
// executor's path counted, each PublishAndClaim recorded, and a hook to
// make the combined trip fail.
type tripCounter struct {
	*distributed.InMemory
	claimBatches atomic.Int64
	claimEntered chan struct{} // a ClaimBatch began (non-blocking send)
	tripped      chan struct{} // a PublishAndClaim was recorded (non-blocking send)
	publishes    atomic.Int64  // Publish and PublishBatch calls
	enqueued     atomic.Int64
	taken        atomic.Int64 // assignments claimed, by either path

	mu       sync.Mutex
	trips    []pacTrip
	claimErr error // ClaimBatch fails with it when set
	// fail, when set, decides the outcome of a combined trip instead of
	// the coordinator (handled false: the coordinator decides).
	fail func(rs []distributed.Result, limit int) (errs []error, claims []distributed.Claim, claimErr error, handled bool)
}

// pacTrip is one PublishAndClaim call.
type pacTrip struct {
	results, limit, claims int
	queuedBefore           int // assignments queued when the trip began
	claimErr               error
}

func newTripCounter() *tripCounter {
	return &tripCounter{InMemory: distributed.NewInMemory(), claimEntered: make(chan struct{}, 1), tripped: make(chan struct{}, 1024)}
}

func (c *tripCounter) ClaimBatch(ctx context.Context, instance int, caps []string, limit int) ([]distributed.Claim, error) {
	c.claimBatches.Add(1)
	select {
	case c.claimEntered <- struct{}{}:
	default:
	}
	c.mu.Lock()
	failErr := c.claimErr
	c.mu.Unlock()
	if failErr != nil {
		return nil, failErr
	}
	cls, err := c.InMemory.ClaimBatch(ctx, instance, caps, limit)
	c.taken.Add(int64(len(cls)))
	return cls, err
}

// failClaims makes ClaimBatch fail with err from now on (nil: stop).
func (c *tripCounter) failClaims(err error) {
	c.mu.Lock()
	c.claimErr = err
	c.mu.Unlock()
}

func (c *tripCounter) Publish(ctx context.Context, r distributed.Result) error {
	c.publishes.Add(1)
	return c.InMemory.Publish(ctx, r)
}

func (c *tripCounter) PublishAndClaim(ctx context.Context, rs []distributed.Result, instance int, caps []string, limit int) ([]error, []distributed.Claim, error) {
	c.mu.Lock()
	fail := c.fail
	c.mu.Unlock()
	queued := c.queued()
	var errs []error
	var claims []distributed.Claim
	var err error
	handled := false
	if fail != nil {
		errs, claims, err, handled = fail(rs, limit)
	}
	if !handled {
		errs, claims, err = c.InMemory.PublishAndClaim(ctx, rs, instance, caps, limit)
	}
	c.taken.Add(int64(len(claims)))
	c.mu.Lock()
	c.trips = append(c.trips, pacTrip{results: len(rs), limit: limit, claims: len(claims), queuedBefore: queued, claimErr: err})
	c.mu.Unlock()
	select {
	case c.tripped <- struct{}{}:
	default:
	}
	return errs, claims, err
}

// queued counts the assignments enqueued through c and not yet claimed.
func (c *tripCounter) queued() int { return int(c.enqueued.Load() - c.taken.Load()) }

func (c *tripCounter) Enqueue(ctx context.Context, a distributed.Assignment) error {
	err := c.InMemory.Enqueue(ctx, a)
	if err == nil {
		c.enqueued.Add(1)
	}
	return err
}

func (c *tripCounter) recorded() []pacTrip {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]pacTrip(nil), c.trips...)
}

// setFail installs the combined trip's failure hook.
func (c *tripCounter) setFail(fail func(rs []distributed.Result, limit int) ([]error, []distributed.Claim, error, bool)) {
	c.mu.Lock()
	c.fail = fail
	c.mu.Unlock()
}

// noOps is a pipeline of n modules m0..m(n-1) that return at once (or
// after wait, when it is set, on their first run), tracking how many run
// at the same time.
type noOps struct {
	*fakeHost
	index         map[string]int
	running, most atomic.Int64
}

// Lookup finds a module by its name in a map (fakeHost's search is linear).
func (h *noOps) Lookup(module string) (int, bool) {
	i, ok := h.index[module]
	return i, ok
}

func newNoOps(n int, wait func(module string)) *noOps {
	h := &noOps{}
	runs := map[string]func(context.Context) (any, error){}
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		runs[name] = func(context.Context) (any, error) {
			now := h.running.Add(1)
			for {
				most := h.most.Load()
				if now <= most || h.most.CompareAndSwap(most, now) {
					break
				}
			}
			if wait != nil {
				wait(name)
			}
			h.running.Add(-1)
			return i, nil
		}
	}
	h.fakeHost = newHost(runs)
	h.index = map[string]int{}
	for i, name := range h.names {
		h.index[name] = i
	}
	return h
}

func enqueueAll(t testing.TB, coord distributed.Coordinator, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := coord.Enqueue(context.Background(), distributed.Assignment{Module: n, Attempt: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

func moduleNames(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("m%d", i))
	}
	return out
}

// awaitResults waits (bounded) for the accepted result of each module.
func awaitResults(t testing.TB, coord distributed.Coordinator, names ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for _, n := range names {
		r, err := coord.AwaitResult(ctx, n)
		if err != nil {
			t.Fatalf("no result for %s: %v", n, err)
		}
		if r.Status != distributed.StatusSucceeded {
			t.Fatalf("%s: %s %v", n, r.Status, r.Error)
		}
	}
}

// awaitSignal waits (bounded) for one signal on ch.
func awaitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatalf("%s did not happen within %s", what, waitFor)
	}
}

// A busy instance makes one trip per batch: every result is published in
// a trip that also claims work for its slot, as much as is queued; no
// separate publish, and the blocking claim only when there is no work.
func TestPublishClaimOneTripPerBatchWhenBusy(t *testing.T) {
	const n, slots = 48, 4
	coord := newTripCounter()
	register(t, coord, 1, "linux")
	host := newNoOps(n, nil)
	enqueueAll(t, coord, moduleNames(0, n)...)
	cfg := testConfig(coord, 1)
	cfg.Parallelism = slots
	cfg.Live = NewLiveness(func(err error) { t.Errorf("lost: %v", err) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := StartExecutor(ctx, cfg, host, NewValues(coord), nil)
	awaitResults(t, coord, moduleNames(0, n)...)
	cancel()
	waitExecutor(t, e)

	if p := coord.publishes.Load(); p != 0 {
		t.Errorf("%d separate publish trips, want none: every result goes in a combined trip", p)
	}
	published, claimedByTrips := 0, 0
	for i, tr := range coord.recorded() {
		published += tr.results
		claimedByTrips += tr.claims
		if tr.limit != tr.results {
			t.Errorf("trip %d published %d results and asked for %d assignments, want as many as the slots it freed", i, tr.results, tr.limit)
		}
		if want := min(tr.limit, tr.queuedBefore); tr.claims != want {
			t.Errorf("trip %d claimed %d with %d queued and %d slots, want %d", i, tr.claims, tr.queuedBefore, tr.limit, want)
		}
	}
	if published != n {
		t.Errorf("%d results published in combined trips, want all %d", published, n)
	}
	// One blocking claim started the run, one waits for work at the end.
	if cb := coord.claimBatches.Load(); cb > 2 || int(cb) < 1 || claimedByTrips != n-slots {
		t.Errorf("%d ClaimBatch calls and %d modules claimed by combined trips; want at most 2 and %d (all but the first batch)", cb, claimedByTrips, n-slots)
	}
	if most := host.most.Load(); most > slots {
		t.Errorf("%d modules ran at once with %d slots", most, slots)
	}
	for _, m := range moduleNames(0, n) {
		if c := host.count(m); c != 1 {
			t.Errorf("%s ran %d times", m, c)
		}
	}
	trips := len(coord.recorded()) + int(coord.claimBatches.Load())
	t.Logf("%d trips for %d modules (%.2f a module) with %d slots", trips, n, float64(trips)/n, slots)
	if len(e.slots) != 0 {
		t.Errorf("%d slots still held after the executor ended", len(e.slots))
	}
}

// Work arriving in waves, modules of different lengths: the claim loop
// and the combined trips both take work, and the slots in use never
// exceed Parallelism; none is lost.
func TestPublishClaimSlotsNeverExceedParallelism(t *testing.T) {
	const n, slots, wave = 90, 3, 10
	coord := newTripCounter()
	register(t, coord, 1, "linux")
	host := newNoOps(n, func(module string) {
		var i int
		_, _ = fmt.Sscanf(module, "m%d", &i)
		time.Sleep(time.Duration(i%4) * time.Millisecond)
	})
	cfg := testConfig(coord, 1)
	cfg.Parallelism = slots
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := StartExecutor(ctx, cfg, host, NewValues(coord), nil)
	for from := 0; from < n; from += wave {
		enqueueAll(t, coord, moduleNames(from, from+wave)...)
		awaitResults(t, coord, moduleNames(from, from+wave/2)...)
	}
	awaitResults(t, coord, moduleNames(0, n)...)
	cancel()
	waitExecutor(t, e)
	if most := host.most.Load(); most > slots || most < 2 {
		t.Errorf("%d modules ran at once with %d slots, want at most %d (and more than one)", most, slots, slots)
	}
	claimedByTrips := 0
	for _, tr := range coord.recorded() {
		claimedByTrips += tr.claims
	}
	if claimedByTrips == 0 || coord.claimBatches.Load() < 2 {
		t.Errorf("%d modules claimed by combined trips and %d ClaimBatch calls: want both paths used", claimedByTrips, coord.claimBatches.Load())
	}
	for _, m := range moduleNames(0, n) {
		if c := host.count(m); c != 1 {
			t.Errorf("%s ran %d times", m, c)
		}
	}
	if len(e.slots) != 0 {
		t.Errorf("%d slots still held after the executor ended", len(e.slots))
	}
}

// An idle instance waits in the claim loop's blocking claim, and new
// work wakes it; the combined trip only happens when a result is there.
func TestPublishClaimIdleInstanceBlocksAndWakes(t *testing.T) {
	coord := newTripCounter()
	register(t, coord, 1, "linux")
	host := newNoOps(2, nil)
	cfg := testConfig(coord, 1)
	cfg.Parallelism = 4
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := StartExecutor(ctx, cfg, host, NewValues(coord), nil)
	awaitSignal(t, coord.claimEntered, "the first claim")
	enqueueAll(t, coord, "m0")
	awaitResults(t, coord, "m0")
	// Its trip found nothing to claim: the slot went back to the claim
	// loop, which claims again, blocking.
	awaitSignal(t, coord.claimEntered, "the claim after the first result")
	enqueueAll(t, coord, "m1")
	awaitResults(t, coord, "m1")
	awaitSignal(t, coord.claimEntered, "the claim after the second result")
	cancel()
	waitExecutor(t, e)
	trips := coord.recorded()
	if len(trips) != 2 || trips[0].claims+trips[1].claims != 0 {
		t.Errorf("combined trips %+v, want one per result, claiming nothing (the claim loop took both)", trips)
	}
	if host.count("m0") != 1 || host.count("m1") != 1 {
		t.Errorf("m0 ran %d times, m1 %d, want once each", host.count("m0"), host.count("m1"))
	}
}

// gate holds module m0 until released.
func gate() (wait func(string), started, release chan struct{}) {
	started, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	return func(module string) {
		if module == "m0" {
			once.Do(func() { close(started) })
			<-release
		}
	}, started, release
}

// A claim the combined trip's coordinator refuses (the instance does not
// count as live) is handled like the claim loop's: its results stand, the
// instance waits for the heartbeat loop's verdict, and claims again after
// a successful beat.
func TestPublishClaimRefusedClaimKeepsResultsAndPauses(t *testing.T) {
	coord := newTripCounter()
	register(t, coord, 1, "linux")
	wait, started, release := gate()
	host := newNoOps(2, wait)
	enqueueAll(t, coord, "m0")
	cfg := testConfig(coord, 1)
	cfg.Parallelism = 1
	cfg.Live = NewLiveness(func(err error) { t.Errorf("lost: %v", err) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := StartExecutor(ctx, cfg, host, NewValues(coord), nil)
	<-started
	enqueueAll(t, coord, "m1")
	coord.setFail(func(rs []distributed.Result, limit int) ([]error, []distributed.Claim, error, bool) {
		errs, _, _ := coord.InMemory.PublishAndClaim(context.Background(), rs, 1, nil, 0)
		return errs, nil, wrapNotRegistered{}, limit > 0
	})
	close(release)
	awaitResults(t, coord, "m0") // the result stands
	// The refusal reaches the publisher after the publication: wait
	// (bounded) until it has marked the instance cut off.
	awaitCutOff(t, cfg.Live)
	if host.count("m1") != 0 {
		t.Fatal("m1 ran while the instance was cut off")
	}
	coord.setFail(nil)
	cfg.Live.Beat(true)
	awaitResults(t, coord, "m1")
	cancel()
	waitExecutor(t, e)
}

// The run ending shows in the combined trip's claim: the results of that
// trip stand, nothing more is claimed, and the executor ends by itself.
func TestPublishClaimRunEndedStopsClaiming(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(c *tripCounter)
	}{
		{"cancelled", func(c *tripCounter) {
			if err := c.Cancel(context.Background(), 0, "test"); err != nil {
				t.Fatal(err)
			}
		}},
		{"corrupt", func(c *tripCounter) {
			corrupt := fmt.Errorf("%w: key x", distributed.ErrCorrupt)
			c.failClaims(corrupt)
			c.setFail(func(rs []distributed.Result, limit int) ([]error, []distributed.Claim, error, bool) {
				errs, _, _ := c.InMemory.PublishAndClaim(context.Background(), rs, 1, nil, 0)
				return errs, nil, corrupt, limit > 0
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			coord := newTripCounter()
			register(t, coord, 1, "linux")
			wait, started, release := gate()
			host := newNoOps(2, wait)
			enqueueAll(t, coord, "m0")
			cfg := testConfig(coord, 1)
			cfg.Parallelism = 1
			e := StartExecutor(context.Background(), cfg, host, NewValues(coord), nil)
			<-started
			enqueueAll(t, coord, "m1")
			tc.end(coord)
			close(release)
			awaitResults(t, coord, "m0")
			waitExecutor(t, e) // ends without its context being cancelled
			trips := coord.recorded()
			if len(trips) != 1 || trips[0].results != 1 || trips[0].limit != 1 || trips[0].claims != 0 || trips[0].claimErr == nil {
				t.Errorf("trips %+v, want one publishing m0 whose claim failed", trips)
			}
			if host.count("m1") != 0 {
				t.Error("m1 ran after the run ended")
			}
		})
	}
}

// A transport error fails the whole trip: the results are published
// again (without claiming) and the slots go back to the claim loop, which
// takes the queued work.
func TestPublishClaimTransportErrorRetriesResults(t *testing.T) {
	coord := newTripCounter()
	register(t, coord, 1, "linux")
	wait, started, release := gate()
	host := newNoOps(2, wait)
	enqueueAll(t, coord, "m0")
	cfg := testConfig(coord, 1)
	cfg.Parallelism = 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := StartExecutor(ctx, cfg, host, NewValues(coord), nil)
	<-started
	enqueueAll(t, coord, "m1")
	errDown := errors.New("connection refused")
	var failed atomic.Bool
	coord.setFail(func(rs []distributed.Result, limit int) ([]error, []distributed.Claim, error, bool) {
		if failed.Swap(true) {
			return nil, nil, nil, false
		}
		errs := make([]error, len(rs))
		for i := range errs {
			errs[i] = errDown
		}
		return errs, nil, errDown, true
	})
	close(release)
	awaitResults(t, coord, "m0", "m1")
	cancel()
	waitExecutor(t, e)
	trips := coord.recorded()
	if len(trips) < 2 || trips[0].claimErr == nil || trips[1].results != 1 || trips[1].limit != 0 {
		t.Errorf("trips %+v; want the failed trip, then m0 published again without claiming", trips)
	}
	if host.count("m1") != 1 {
		t.Errorf("m1 ran %d times, want once (claimed by the claim loop)", host.count("m1"))
	}
}

// Work a combined trip claims while the instance gets lost is not run.
func TestPublishClaimRunsNothingClaimedWhileLost(t *testing.T) {
	coord := newTripCounter()
	register(t, coord, 1, "linux")
	wait, started, release := gate()
	host := newNoOps(2, wait)
	enqueueAll(t, coord, "m0")
	cfg := testConfig(coord, 1)
	cfg.Parallelism = 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Live = NewLiveness(func(error) { cancel() })
	e := StartExecutor(ctx, cfg, host, NewValues(coord), nil)
	<-started
	enqueueAll(t, coord, "m1")
	coord.setFail(func(rs []distributed.Result, limit int) ([]error, []distributed.Claim, error, bool) {
		errs, claims, err := coord.InMemory.PublishAndClaim(context.Background(), rs, 1, nil, limit)
		cfg.Live.Lose(errors.New("heartbeats failed for longer than the lease timeout"))
		return errs, claims, err, true
	})
	close(release)
	awaitResults(t, coord, "m0")
	waitExecutor(t, e)
	trips := coord.recorded()
	if len(trips) != 1 || trips[0].claims != 1 {
		t.Fatalf("trips %+v, want one that claimed m1", trips)
	}
	if host.count("m1") != 0 {
		t.Error("the lost instance ran m1, which it claimed while getting lost")
	}
}

// While the instance is cut off (its latest heartbeat failed), the
// combined trip publishes but claims nothing: the master may be handing
// the instance's work to others. Claiming resumes after a good beat.
func TestPublishClaimCutOffInstanceClaimsNothing(t *testing.T) {
	coord := newTripCounter()
	register(t, coord, 1, "linux")
	wait, started, release := gate()
	host := newNoOps(2, wait)
	enqueueAll(t, coord, "m0")
	cfg := testConfig(coord, 1)
	cfg.Parallelism = 1
	cfg.Live = NewLiveness(func(err error) { t.Errorf("lost: %v", err) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := StartExecutor(ctx, cfg, host, NewValues(coord), nil)
	<-started
	enqueueAll(t, coord, "m1")
	cfg.Live.Beat(false)
	close(release)
	awaitSignal(t, coord.tripped, "the trip publishing m0")
	if trips := coord.recorded(); len(trips) != 1 || trips[0].limit != 0 {
		t.Fatalf("trips %+v, want one publishing m0 and claiming nothing while cut off", trips)
	}
	if host.count("m1") != 0 {
		t.Fatal("m1 ran while the instance was cut off")
	}
	cfg.Live.Beat(true)
	awaitResults(t, coord, "m1")
	cancel()
	waitExecutor(t, e)
}

// separateTrips is the in-memory coordinator without PublishClaimer, with
// ClaimBatch and PublishBatch (as the Redis coordinator had before), its
// trips counted: the executor's path before the combined trip.
type separateTrips struct {
	distributed.Coordinator
	mem          *distributed.InMemory
	claims, pubs atomic.Int64
}

func (s *separateTrips) ClaimBatch(ctx context.Context, instance int, caps []string, limit int) ([]distributed.Claim, error) {
	s.claims.Add(1)
	return s.mem.ClaimBatch(ctx, instance, caps, limit)
}

func (s *separateTrips) PublishBatch(ctx context.Context, rs []distributed.Result) []error {
	s.pubs.Add(1)
	errs := make([]error, len(rs))
	for i, r := range rs {
		errs[i] = s.mem.Publish(ctx, r)
	}
	return errs
}

// BenchmarkExecutorTrips runs b.N no-op modules, all queued, on one
// executor with 8 slots and reports the coordinator trips per module: with
// the combined publish-and-claim trip, and with separate claim and publish
// trips.
func BenchmarkExecutorTrips(b *testing.B) {
	run := func(b *testing.B, coord distributed.Coordinator, trips func() int64) {
		register(b, coord, 1, "linux")
		host := newNoOps(b.N, nil)
		names := moduleNames(0, b.N)
		enqueueAll(b, coord, names...)
		cfg := testConfig(coord, 1)
		cfg.Parallelism = 8
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		b.ResetTimer()
		e := StartExecutor(ctx, cfg, host, NewValues(coord), nil)
		awaitResults(b, coord, names...)
		b.StopTimer()
		cancel()
		e.Wait()
		b.ReportMetric(float64(trips())/float64(b.N), "trips/module")
	}
	b.Run("combined", func(b *testing.B) {
		c := newTripCounter()
		run(b, c, func() int64 { return int64(len(c.recorded())) + c.claimBatches.Load() + c.publishes.Load() })
	})
	b.Run("separate", func(b *testing.B) {
		mem := distributed.NewInMemory()
		c := &separateTrips{Coordinator: mem, mem: mem}
		run(b, c, func() int64 { return c.claims.Load() + c.pubs.Load() })
	})
}

// awaitCutOff waits (bounded) until live counts as cut off: AwaitConnected
// keeps waiting.
func awaitCutOff(t *testing.T, live *Liveness) {
	t.Helper()
	for deadline := time.Now().Add(waitFor); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := live.AwaitConnected(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("the instance is not cut off (AwaitConnected: %v)", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// A coordinator that breaks the contract — more claims than asked for,
// or not one error per result — does not make the instance exceed its
// slots or lose a result: the extra claims end failed without running,
// and results without an outcome are published again.
func TestPublishClaimContractBreachesAreContained(t *testing.T) {
	coord := newTripCounter()
	register(t, coord, 1, "linux")
	wait, started, release := gate()
	host := newNoOps(3, wait)
	enqueueAll(t, coord, "m0")
	cfg := testConfig(coord, 1)
	cfg.Parallelism = 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := StartExecutor(ctx, cfg, host, NewValues(coord), nil)
	<-started
	enqueueAll(t, coord, "m1", "m2")
	var breached atomic.Bool
	coord.setFail(func(rs []distributed.Result, limit int) ([]error, []distributed.Claim, error, bool) {
		if limit == 0 || breached.Swap(true) {
			return nil, nil, nil, false
		}
		// Claims one more than asked, and answers for no result.
		_, claims, err := coord.InMemory.PublishAndClaim(context.Background(), nil, 1, nil, limit+1)
		return nil, claims, err, true
	})
	close(release)
	awaitResults(t, coord, "m0", "m1")
	r, err := coord.AwaitResult(ctx, "m2")
	if err != nil || r.Status != distributed.StatusFailed || r.Error == nil || !strings.Contains(r.Error.Message, "beyond") {
		t.Errorf("m2, claimed beyond the limit: %s %+v, %v; want failed, saying it was handed beyond the limit", r.Status, r.Error, err)
	}
	cancel()
	waitExecutor(t, e)
	if host.count("m2") != 0 || host.most.Load() > 1 {
		t.Errorf("m2 ran %d times, %d modules at once with 1 slot; want m2 not run, at most 1", host.count("m2"), host.most.Load())
	}
}
