package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/redistest"
)

// watchLog records a ResultWatcher's deliveries.
type watchLog struct {
	mu      sync.Mutex
	got     map[string][]error
	values  map[string]string
	changed chan struct{}
}

func newWatchLog() *watchLog {
	return &watchLog{got: map[string][]error{}, values: map[string]string{}, changed: make(chan struct{})}
}

func (w *watchLog) deliver(module string, r distributed.Result, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got[module] = append(w.got[module], err)
	w.values[module] = string(r.Value)
	close(w.changed)
	w.changed = make(chan struct{})
}

// wait returns module's first delivery (its value and error), failing the
// test after 20 s.
func (w *watchLog) wait(t *testing.T, module string) (string, error) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		errs, v, ch := w.got[module], w.values[module], w.changed
		w.mu.Unlock()
		if len(errs) > 0 {
			return v, errs[0]
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("nothing delivered for %s within 20s", module)
		}
	}
}

func (w *watchLog) count(module string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.got[module])
}

// watchPair registers a master (which queues and watches) and a worker
// (which claims and publishes) in a fresh run of srv.
func watchPair(t *testing.T, srv *redistest.Server) (master, worker *Coordinator) {
	t.Helper()
	runID := fmt.Sprintf("watch-%d", time.Now().UnixNano())
	master = NewCoordinator(Options{URL: srv.URL(), RunID: runID})
	worker = NewCoordinator(Options{URL: srv.URL(), RunID: runID})
	t.Cleanup(func() { _ = master.Close(); _ = worker.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, c := range []*Coordinator{master, worker} {
		caps := []string{"w"}
		if i == 0 {
			caps = []string{distributed.MasterCapability}
		}
		reg := distributed.Registration{Instance: i, Total: 2, Capabilities: caps, Fingerprint: "fp", Session: fmt.Sprintf("s%d", i), LeaseTimeout: time.Minute}
		if err := c.Register(ctx, reg); err != nil {
			t.Fatalf("registering instance %d: %v", i, err)
		}
	}
	return master, worker
}

// TestWatchReadsResultsMissedWhileUnsubscribed: a result published while
// the master's subscription is down (its connection killed) is delivered
// all the same, read back after the resubscription.
func TestWatchReadsResultsMissedWhileUnsubscribed(t *testing.T) {
	srv := redistest.Start(t)
	master, worker := watchPair(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer raw.Close()
	log := newWatchLog()
	missed := 0
	// The subscriber reconnects within tens of milliseconds: a result
	// published right after the kill is almost always missed. Try until
	// one was (its announcement never reached the master).
	for try := 0; try < 20 && missed == 0; try++ {
		mod := fmt.Sprintf("m%d", try)
		if err := master.EnqueueBatch(ctx, []distributed.Assignment{{Module: mod, Attempt: 1, Requires: []string{"w"}}}); err != nil {
			t.Fatal(err)
		}
		if err := master.WatchResults(ctx, []string{mod}, log.deliver); err != nil {
			t.Fatal(err)
		}
		cl, err := worker.Claim(ctx, 1, []string{"w"})
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
			t.Fatalf("killing the subscriptions: %v", err)
		}
		if err := worker.Publish(ctx, distributed.Result{Module: mod, Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: []byte(`"` + mod + `"`), Attempts: 1}); err != nil {
			t.Fatal(err)
		}
		v, err := log.wait(t, mod)
		if err != nil || v != `"`+mod+`"` {
			t.Fatalf("watch of %s: %s, %v; want its value", mod, v, err)
		}
		if _, _, announced := master.events.announcement(mod); !announced {
			missed++
		}
	}
	if missed == 0 {
		t.Fatal("no result was published while the master's subscription was down in 20 tries: the test did not exercise the re-read")
	}
	for try := range 20 {
		if n := log.count(fmt.Sprintf("m%d", try)); n > 1 {
			t.Errorf("m%d delivered %d times, want once", try, n)
		}
	}
}

// TestWatchDeliversMalformedStoredResult: a result in Redis that is not
// modpipe's is delivered as an error wrapping ErrCorrupt that names its key,
// and the coordinator fails from then on (every other watch ends too).
func TestWatchDeliversMalformedStoredResult(t *testing.T) {
	srv := redistest.Start(t)
	master, _ := watchPair(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer raw.Close()
	if err := raw.HSet(ctx, master.keys.res(), "forged", `{"module":"forged","status":"exploded"}`).Err(); err != nil {
		t.Fatal(err)
	}
	log := newWatchLog()
	if err := master.WatchResults(ctx, []string{"other"}, log.deliver); err != nil {
		t.Fatal(err)
	}
	if err := master.WatchResults(ctx, []string{"forged"}, log.deliver); err != nil {
		t.Fatal(err)
	}
	_, err := log.wait(t, "forged")
	if !errors.Is(err, distributed.ErrCorrupt) || !strings.Contains(err.Error(), master.keys.res()+" field forged") {
		t.Errorf("watch of a malformed stored result: %v; want ErrCorrupt naming %s field forged", err, master.keys.res())
	}
	if _, err := log.wait(t, "other"); !errors.Is(err, distributed.ErrCorrupt) {
		t.Errorf("another watch after the coordinator met corrupt data: %v; want the same fatal error", err)
	}
	if err := master.WatchResults(ctx, []string{"later"}, log.deliver); !errors.Is(err, distributed.ErrCorrupt) {
		t.Errorf("WatchResults after the coordinator met corrupt data: %v; want the fatal error", err)
	}
}

// TestWatchEndsWithItsContext: the goroutines of a watch end with its ctx
// and with Close (the package's TestMain checks for leaks), and nothing
// is delivered once ctx is done.
func TestWatchEndsWithItsContext(t *testing.T) {
	srv := redistest.Start(t)
	master, worker := watchPair(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := master.EnqueueBatch(ctx, []distributed.Assignment{{Module: "x", Attempt: 1, Requires: []string{"w"}}}); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	dropped, live := newWatchLog(), newWatchLog()
	if err := master.WatchResults(wctx, []string{"x"}, dropped.deliver); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := master.WatchResults(ctx, []string{"x"}, live.deliver); err != nil {
		t.Fatal(err)
	}
	cl, err := worker.Claim(ctx, 1, []string{"w"})
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.Publish(ctx, distributed.Result{Module: "x", Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: []byte(`1`), Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	if v, err := live.wait(t, "x"); err != nil || v != "1" {
		t.Fatalf("live watch: %s, %v", v, err)
	}
	// The live and the dropped watch of x are handed over together: by
	// now the dropped one was passed over.
	if n := dropped.count("x"); n != 0 {
		t.Errorf("a watch whose ctx was done got %d deliveries", n)
	}
	master.events.hub.mu.Lock()
	left := len(master.events.hub.byModule)
	master.events.hub.mu.Unlock()
	if left != 0 {
		t.Errorf("%d modules still watched after every watch ended", left)
	}
}

// TestWatchDeliversAnAnnouncementHeardBeforeIt: a result whose
// announcement the master heard before it started watching (a module it
// queued while subscribed, so not read back) is delivered from what the
// subscriber kept.
func TestWatchDeliversAnAnnouncementHeardBeforeIt(t *testing.T) {
	srv := redistest.Start(t)
	master, worker := watchPair(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := master.EnqueueBatch(ctx, []distributed.Assignment{{Module: "early", Attempt: 1, Requires: []string{"w"}}}); err != nil {
		t.Fatal(err)
	}
	cl, err := worker.Claim(ctx, 1, []string{"w"})
	if err != nil {
		t.Fatal(err)
	}
	// Follow the announcement: wait for it with AwaitResult's wake-up.
	_, _, _, next, _ := master.events.snapshot("early")
	if err := worker.Publish(ctx, distributed.Result{Module: "early", Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: []byte(`"e"`), Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-next:
	case <-ctx.Done():
		t.Fatal("the master never heard the announcement")
	}
	if _, has, _ := master.events.announcement("early"); !has {
		t.Fatal("the announcement came without its result")
	}
	log := newWatchLog()
	if err := master.WatchResults(ctx, []string{"early"}, log.deliver); err != nil {
		t.Fatal(err)
	}
	if v, err := log.wait(t, "early"); err != nil || v != `"e"` {
		t.Errorf("watch started after the announcement: %s, %v; want \"e\"", v, err)
	}
}

// TestWatchesSharingAModuleEachGetTheirOwn: watches of one module each
// get its result once, whether they started before its announcement
// (handed over together) or after it; and a result decoded on arrival (a
// module queued here, not watched yet) is not decoded again for the later
// watches: they get that very decoding.
func TestWatchesSharingAModuleEachGetTheirOwn(t *testing.T) {
	srv := redistest.Start(t)
	master, worker := watchPair(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := master.EnqueueBatch(ctx, []distributed.Assignment{{Module: "early", Attempt: 1, Requires: []string{"w"}}, {Module: "late", Attempt: 1, Requires: []string{"w"}}}); err != nil {
		t.Fatal(err)
	}
	type got struct {
		module string
		value  []byte
		err    error
	}
	var mu sync.Mutex
	gots := map[int][]got{}
	changed := make(chan struct{}, 16)
	watch := func(id int, modules ...string) {
		t.Helper()
		err := master.WatchResults(ctx, modules, func(m string, r distributed.Result, err error) {
			mu.Lock()
			gots[id] = append(gots[id], got{m, r.Value, err})
			mu.Unlock()
			changed <- struct{}{}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	publish := func(module string, cls []distributed.Claim) {
		t.Helper()
		for _, cl := range cls {
			if cl.Assignment.Module == module {
				err := worker.Publish(ctx, distributed.Result{Module: module, Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: []byte(`"` + module + `"`), Attempts: 1})
				if err != nil {
					t.Fatal(err)
				}
				return
			}
		}
		t.Fatalf("%s not claimed", module)
	}
	cls, err := worker.ClaimBatch(ctx, 1, []string{"w"}, 2)
	if err != nil || len(cls) != 2 {
		t.Fatalf("claims: %v, %v", cls, err)
	}
	watch(0, "late")
	watch(1, "late")
	_, _, _, next, _ := master.events.snapshot("early")
	publish("early", cls)
	select {
	case <-next:
	case <-ctx.Done():
		t.Fatal("the master never heard the announcement")
	}
	arrival, ok := master.events.result("early")
	if !ok || arrival.err != nil {
		t.Fatalf("the result of a module queued here was not decoded on arrival: %+v, %v", arrival, ok)
	}
	watch(2, "early", "late")
	watch(3, "early")
	publish("late", cls)
	want := map[int][]string{0: {"late"}, 1: {"late"}, 2: {"early", "late"}, 3: {"early"}}
	for n := 0; n < 5; n++ {
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("deliveries: %+v", gots)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id, mods := range want {
		var ms []string
		for _, g := range gots[id] {
			ms = append(ms, g.module)
			if g.err != nil || string(g.value) != `"`+g.module+`"` {
				t.Errorf("watch %d, %s: %s, %v", id, g.module, g.value, g.err)
			}
			if g.module == "early" && len(g.value) > 0 && &g.value[0] != &arrival.res.Value[0] {
				t.Errorf("watch %d got early decoded anew, not as decoded on arrival", id)
			}
		}
		slices.Sort(ms)
		if !slices.Equal(ms, mods) {
			t.Errorf("watch %d got %v, want %v once each", id, ms, mods)
		}
	}
}

// TestDecodeAnnouncedSaysWhereOnlyOnError: decoding an announced result
// allocates nothing for the error's "where" unless it fails, and then
// names the channel and the module.
func TestDecodeAnnouncedSaysWhereOnlyOnError(t *testing.T) {
	c := &Coordinator{keys: newKeys("", "run")}
	w := toWireResult(distributed.Result{Module: "m", Status: distributed.StatusSucceeded, Value: []byte(`{}`), Attempts: 1,
		Lease: distributed.Lease{Module: "m", Attempt: 1, Holder: 1, Session: "s", Token: "t.1"}})
	raw, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.decodeAnnounced("m", string(raw)); err != nil {
		t.Fatal(err)
	}
	bare := testing.AllocsPerRun(100, func() { _, _ = decodeWireResult("", "m", string(raw)) })
	announced := testing.AllocsPerRun(100, func() { _, _ = c.decodeAnnounced("m", string(raw)) })
	if announced != bare {
		t.Errorf("decodeAnnounced: %v allocations, decoding alone %v", announced, bare)
	}
	_, err = c.decodeAnnounced("other", string(raw))
	if want := "announcement on channel " + c.keys.events() + " for other"; !errors.Is(err, distributed.ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Errorf("misfiled result: %v; want ErrCorrupt saying %q", err, want)
	}
}
