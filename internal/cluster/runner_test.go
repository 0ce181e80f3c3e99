package cluster

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/logbuf"
)

// goroutineID is the id of the calling goroutine, as runtime.Stack names it.
func goroutineID(t *testing.T) int64 {
	var buf [64]byte
	b := bytes.TrimPrefix(buf[:runtime.Stack(buf[:], false)], []byte("goroutine "))
	id, err := strconv.ParseInt(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	if err != nil {
		t.Error(err)
	}
	return id
}

// goroutines records which goroutine ran each module.
type goroutines struct {
	t  *testing.T
	mu sync.Mutex
	by map[string]int64
}

func (g *goroutines) record(name string) {
	id := goroutineID(g.t)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.by[name] = id
}

func (g *goroutines) of(name string) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.by[name]
}

func awaitResult(t *testing.T, coord distributed.Coordinator, module string) distributed.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	r, err := coord.AwaitResult(ctx, module)
	if err != nil {
		t.Fatalf("no result for %s: %v", module, err)
	}
	return r
}

// Executions run on Parallelism long-lived goroutines, not one goroutine
// each.
func TestExecutorReusesExecutionGoroutines(t *testing.T) {
	for _, combined := range []bool{true, false} {
		name := map[bool]string{true: "publish-and-claim", false: "separate-trips"}[combined]
		t.Run(name, func(t *testing.T) {
			mem := distributed.NewInMemory()
			var coord distributed.Coordinator = mem
			if !combined {
				coord = &separateTrips{Coordinator: mem, mem: mem}
			}
			register(t, coord, 1, "linux")
			g := &goroutines{t: t, by: map[string]int64{}}
			names := moduleNames(0, 30)
			runs := map[string]func(context.Context) (any, error){}
			for _, n := range names {
				runs[n] = func(context.Context) (any, error) { g.record(n); return 1, nil }
			}
			host := newHost(runs)
			enqueueAll(t, coord, names...)
			cfg := testConfig(coord, 1) // Parallelism 2
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			e := StartExecutor(ctx, cfg, host, NewValues(coord), nil)
			for _, n := range names {
				if r := awaitResult(t, coord, n); r.Status != distributed.StatusSucceeded {
					t.Fatalf("%s: %s %+v", n, r.Status, r.Error)
				}
			}
			cancel()
			waitExecutor(t, e)
			ids := map[int64]bool{}
			for _, n := range names {
				ids[g.of(n)] = true
			}
			if len(ids) > cfg.Parallelism {
				t.Errorf("%d modules ran on %d goroutines, want at most Parallelism (%d)", len(names), len(ids), cfg.Parallelism)
			}
		})
	}
}

// timeoutHost is a fakeHost whose nodes have timeouts.
type timeoutHost struct {
	*fakeHost
	timeouts map[string]time.Duration
}

func (h *timeoutHost) ExecNode(id int, log *logbuf.Buffer) *engine.Node {
	n := h.fakeHost.ExecNode(id, log)
	n.Timeout = h.timeouts[n.Name]
	return n
}

// A timed-out execution that does not return keeps its goroutine, and
// does not hold its slot: a replacement goroutine runs the next claims,
// one after the other.
func TestExecutorAbandonedExecutionKeepsItsGoroutine(t *testing.T) {
	mem := distributed.NewInMemory()
	register(t, mem, 1, "linux")
	g := &goroutines{t: t, by: map[string]int64{}}
	started, stuck := make(chan struct{}), make(chan struct{})
	returned := make(chan struct{})
	host := &timeoutHost{fakeHost: newHost(map[string]func(context.Context) (any, error){
		"stuck": func(context.Context) (any, error) {
			g.record("stuck")
			close(started)
			<-stuck
			defer close(returned)
			return nil, nil
		},
		"next1": func(context.Context) (any, error) { g.record("next1"); return 1, nil },
		"next2": func(context.Context) (any, error) { g.record("next2"); return 1, nil },
	}), timeouts: map[string]time.Duration{"stuck": time.Millisecond}}
	cfg := testConfig(mem, 1)
	cfg.Parallelism, cfg.Grace = 1, time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	enqueueAll(t, mem, "stuck")
	e := StartExecutor(ctx, cfg, host, NewValues(mem), nil)
	<-started
	if r := awaitResult(t, mem, "stuck"); r.Status != distributed.StatusTimedOut || r.Error == nil || !strings.Contains(r.Error.Message, "abandoned") {
		t.Fatalf("stuck: %s %+v, want timed out and abandoned", r.Status, r.Error)
	}
	enqueueAll(t, mem, "next1")
	awaitResult(t, mem, "next1")
	enqueueAll(t, mem, "next2")
	awaitResult(t, mem, "next2")
	if g.of("next1") == g.of("stuck") {
		t.Error("next1 ran on the goroutine of the abandoned execution")
	}
	if g.of("next1") != g.of("next2") {
		t.Error("next1 and next2 ran on different goroutines: the replacement was not reused")
	}
	cancel()
	waitExecutor(t, e)
	close(stuck)
	<-returned // its goroutine ends now: goleak checks
}

// A slot goroutine's watch starts the grace period of the execution it
// runs when the run is cancelled, and of each execution it starts after.
func TestRunWatchStartsGracePeriods(t *testing.T) {
	abandoned := func() (*engine.Completion, chan engine.Outcome) {
		ch := make(chan engine.Outcome, 1)
		return engine.NewCompletion(func(o engine.Outcome) { ch <- o }), ch
	}
	await := func(t *testing.T, c *engine.Completion, ch chan engine.Outcome) {
		t.Helper()
		select {
		case o := <-ch:
			if o.Status != engine.Cancelled || !c.Abandoned() || !strings.Contains(o.Err.Error(), "abandoned") {
				t.Errorf("got %s %v (abandoned %v), want an abandoned cancellation", o.Status, o.Err, c.Abandoned())
			}
		case <-time.After(waitFor):
			t.Fatal("the execution was never abandoned")
		}
	}
	t.Run("cancelled while running", func(t *testing.T) {
		w := &slotWatch{grace: time.Millisecond}
		c, ch := abandoned()
		w.begin(c)
		w.runCancelled()
		await(t, c, ch)
		w.end()
	})
	t.Run("started after the cancellation", func(t *testing.T) {
		w := &slotWatch{grace: time.Millisecond}
		w.runCancelled()
		for range 2 {
			c, ch := abandoned()
			w.begin(c)
			await(t, c, ch)
			w.end()
		}
	})
	t.Run("returned in time", func(t *testing.T) {
		w := &slotWatch{grace: time.Hour}
		c, _ := abandoned()
		w.begin(c)
		w.runCancelled()
		if w.timer == nil {
			t.Fatal("no grace period started")
		}
		w.end()
		if w.timer != nil || w.cur != nil {
			t.Error("end left the grace period running")
		}
		w.runCancelled() // nothing runs: starts nothing
		if w.timer != nil || c.Done() {
			t.Error("a cancellation between executions started a grace period")
		}
	})
}

// An execution allocates its state at once: its log, completion and
// outcome live in one execution struct, not in closures and separate
// allocations (a no-op module's whole execution, through finished, is
// counted; the bound is what it takes today).
func TestExecutionAllocations(t *testing.T) {
	mem := distributed.NewInMemory()
	cfg := testConfig(mem, 1)
	e := &Executor{cfg: cfg, host: newBenchHost([]string{"m"}), values: NewValues(mem), pc: mem,
		results: make(chan distributed.Result, 1)}
	cl := distributed.Claim{Assignment: distributed.Assignment{Module: "m", Attempt: 1}, Lease: distributed.Lease{Module: "m", Attempt: 1, Holder: 1}}
	w := &slotWatch{grace: time.Second}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		e.ran.Add(1) // as start does
		if e.execute(ctx, w, cl) {
			t.Fatal("abandoned")
		}
		if r := <-e.results; r.Status != distributed.StatusSucceeded {
			t.Fatalf("%s %+v", r.Status, r.Error)
		}
		e.ran.Done() // as the publisher does
	})
	const want = 3
	if allocs > want {
		t.Errorf("an execution allocates %v times, want at most %d", allocs, want)
	}
}

// gather sizes its batch for the results waiting: one allocation, however
// many join the first.
func TestGatherAllocatesOnce(t *testing.T) {
	e := &Executor{results: make(chan distributed.Result, 8)}
	allocs := testing.AllocsPerRun(100, func() {
		for range 4 {
			e.results <- distributed.Result{Module: "m"}
		}
		if got := len(e.gather(distributed.Result{Module: "first"})); got != 5 {
			t.Fatalf("gathered %d results, want 5", got)
		}
	})
	if allocs > 1 {
		t.Errorf("gather allocates %v times, want 1", allocs)
	}
}
