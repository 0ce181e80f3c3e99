package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modpipe/modpipe/internal/graph"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tg builds a scheduler from "name: dep dep?" lines ("?" marks optional,
// "~" soft). Every node succeeds unless given a run function.
type tg struct {
	t     *testing.T
	specs []graph.Spec
	nodes []Node
	idx   map[string]int
}

func newTG(t *testing.T, lines ...string) *tg {
	g := &tg{t: t, idx: map[string]int{}}
	for _, l := range lines {
		name, deps, _ := strings.Cut(l, ":")
		s := graph.Spec{Name: strings.TrimSpace(name)}
		for _, d := range strings.Fields(deps) {
			ds := graph.DepSpec{Name: strings.TrimRight(d, "?~"), Optional: strings.HasSuffix(d, "?"), Soft: strings.HasSuffix(d, "~")}
			s.Deps = append(s.Deps, ds)
		}
		g.idx[s.Name] = len(g.specs)
		g.specs = append(g.specs, s)
		g.nodes = append(g.nodes, Node{ID: len(g.nodes), Name: s.Name, Run: func(context.Context, int, int) (any, error) { return s.Name, nil }})
	}
	return g
}

func (g *tg) node(name string) *Node { return &g.nodes[g.idx[name]] }

func (g *tg) run(ctx context.Context, setup func(s *Scheduler)) map[string]Outcome {
	g.t.Helper()
	gr, err := graph.Build(g.specs)
	if err != nil {
		g.t.Fatal(err)
	}
	for i := range g.nodes {
		g.nodes[i].Deps = gr.Deps[i]
	}
	s := &Scheduler{Graph: gr, Nodes: g.nodes, Grace: time.Second}
	if setup != nil {
		setup(s)
	}
	outs := s.Run(ctx)
	res := map[string]Outcome{}
	for i, o := range outs {
		res[g.nodes[i].Name] = o
	}
	return res
}

func expectStatus(t *testing.T, res map[string]Outcome, want map[string]Status) {
	t.Helper()
	for name, st := range want {
		if got := res[name].Status; got != st {
			t.Errorf("%s: status %s (reason %q, err %v), want %s", name, got, res[name].Reason, res[name].Err, st)
		}
	}
}

func failWith(msg string) func(context.Context, int, int) (any, error) {
	return func(context.Context, int, int) (any, error) { return nil, errors.New(msg) }
}

func TestDependenciesRunFirstAndIndependentNodesOverlap(t *testing.T) {
	g := newTG(t, "a:", "b:", "c: a b")
	var aStarted, bStarted = make(chan struct{}), make(chan struct{})
	var order []string
	var mu sync.Mutex
	record := func(name string) { mu.Lock(); order = append(order, name); mu.Unlock() }
	// a and b each wait until the other has started: this only finishes if
	// they run at the same time.
	g.node("a").Run = func(context.Context, int, int) (any, error) {
		close(aStarted)
		select {
		case <-bStarted:
		case <-time.After(10 * time.Second):
			return nil, errors.New("b never ran alongside a")
		}
		record("a")
		return 1, nil
	}
	g.node("b").Run = func(context.Context, int, int) (any, error) {
		close(bStarted)
		select {
		case <-aStarted:
		case <-time.After(10 * time.Second):
			return nil, errors.New("a never ran alongside b")
		}
		record("b")
		return 2, nil
	}
	g.node("c").Run = func(context.Context, int, int) (any, error) { record("c"); return 3, nil }
	res := g.run(context.Background(), nil)
	expectStatus(t, res, map[string]Status{"a": Succeeded, "b": Succeeded, "c": Succeeded})
	if len(order) != 3 || order[2] != "c" {
		t.Errorf("order %v: c must run last", order)
	}
	if res["c"].Value != 3 || res["c"].Attempts != 1 {
		t.Errorf("c outcome %+v", res["c"])
	}
}

// recordPeak raises peak to cur if cur is higher, atomically.
func recordPeak(peak *atomic.Int32, cur int32) {
	for {
		p := peak.Load()
		if cur <= p || peak.CompareAndSwap(p, cur) {
			return
		}
	}
}

// sleeper is a node that counts itself in inflight while it works and
// records the most nodes seen in flight at once in peak.
func sleeper(inflight, peak *atomic.Int32) func(context.Context, int, int) (any, error) {
	return func(context.Context, int, int) (any, error) {
		recordPeak(peak, inflight.Add(1))
		time.Sleep(3 * time.Millisecond) // simulated work, so that nodes can overlap
		inflight.Add(-1)
		return nil, nil
	}
}

func TestMaxParallelBoundsConcurrency(t *testing.T) {
	lines := []string{}
	for _, n := range "abcdefghij" {
		lines = append(lines, string(n)+":")
	}
	g := newTG(t, lines...)
	var inflight, peak atomic.Int32
	for i := range g.nodes {
		g.nodes[i].Run = sleeper(&inflight, &peak)
	}
	// a and b start together (the first two slots) and each waits for the
	// other, so the bound is reached however slow the machine is; the
	// sleepers check it is never passed.
	aIn, bIn := make(chan struct{}), make(chan struct{})
	pair := func(mine, other chan struct{}) func(context.Context, int, int) (any, error) {
		return func(ctx context.Context, id, attempt int) (any, error) {
			cur := inflight.Add(1)
			recordPeak(&peak, cur)
			close(mine)
			defer inflight.Add(-1)
			select {
			case <-other:
				return nil, nil
			case <-time.After(10 * time.Second):
				return nil, errors.New("the other of the first two nodes never started alongside")
			}
		}
	}
	g.node("a").Run, g.node("b").Run = pair(aIn, bIn), pair(bIn, aIn)
	res := g.run(context.Background(), func(s *Scheduler) { s.MaxParallel = 2 })
	for name, o := range res {
		if o.Status != Succeeded {
			t.Errorf("%s: %s", name, o.Status)
		}
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d, want 2", p)
	}
}

func TestNotInParallelKeysAndExclusive(t *testing.T) {
	g := newTG(t, "db1:", "db2:", "db3:", "free1:", "free2:")
	var dbIn, dbPeak atomic.Int32
	for _, n := range []string{"db1", "db2", "db3"} {
		g.node(n).Mutex = []string{"db"}
		g.node(n).Run = sleeper(&dbIn, &dbPeak)
	}
	res := g.run(context.Background(), nil)
	expectStatus(t, res, map[string]Status{"db1": Succeeded, "db2": Succeeded, "db3": Succeeded, "free1": Succeeded, "free2": Succeeded})
	if p := dbPeak.Load(); p != 1 {
		t.Errorf("nodes sharing key db overlapped: peak %d", p)
	}

	// An exclusive node sees nothing else running. x and y start before it
	// (declaration order) and each waits for the other, so they overlap
	// for certain; z waits behind alone.
	g = newTG(t, "x:", "y:", "alone:", "z:")
	var in atomic.Int32
	var sawOthers atomic.Bool
	xIn, yIn := make(chan struct{}), make(chan struct{})
	pair := func(mine, other chan struct{}) func(context.Context, int, int) (any, error) {
		return func(context.Context, int, int) (any, error) {
			in.Add(1)
			defer in.Add(-1)
			close(mine)
			select {
			case <-other:
				return nil, nil
			case <-time.After(10 * time.Second):
				return nil, errors.New("x and y never ran at the same time")
			}
		}
	}
	g.node("x").Run, g.node("y").Run = pair(xIn, yIn), pair(yIn, xIn)
	var zPeak atomic.Int32
	g.node("z").Run = sleeper(&in, &zPeak)
	g.node("alone").Exclusive = true
	g.node("alone").Run = func(context.Context, int, int) (any, error) {
		if in.Load() != 0 {
			sawOthers.Store(true)
		}
		in.Add(1)
		time.Sleep(3 * time.Millisecond) // room for an overlap to be seen, if the scheduler allowed one
		in.Add(-1)
		return nil, nil
	}
	res = g.run(context.Background(), nil)
	expectStatus(t, res, map[string]Status{"x": Succeeded, "y": Succeeded, "z": Succeeded, "alone": Succeeded})
	if sawOthers.Load() {
		t.Error("exclusive node ran while others were running")
	}
	alone := res["alone"]
	if alone.Start.Before(res["x"].End) || alone.Start.Before(res["y"].End) || res["z"].Start.Before(alone.End) {
		t.Errorf("alone did not run by itself: x ended %v, y ended %v, alone ran %v..%v, z started %v",
			res["x"].End, res["y"].End, alone.Start, alone.End, res["z"].Start)
	}
}

func TestFailurePropagation(t *testing.T) {
	g := newTG(t, "bad:", "ok:", "dep: bad", "opt: bad?", "ign:", "after-ign: ign", "always: bad", "skipme:", "skipdep: skipme", "softdep: skipme~")
	g.node("bad").Run = failWith("boom")
	g.node("ign").Run = failWith("ignored")
	g.node("ign").IgnoreFailure = true
	g.node("always").AlwaysRun = true
	g.node("skipme").SkipReason = "filtered"
	res := g.run(context.Background(), func(s *Scheduler) { s.ContinueOnFailure = true })
	expectStatus(t, res, map[string]Status{
		"bad": Failed, "ok": Succeeded, "dep": DependencyFailed, "opt": Succeeded,
		"ign": IgnoredFailure, "after-ign": Succeeded, "always": Succeeded,
		"skipme": Skipped, "skipdep": Skipped, "softdep": Succeeded,
	})
	if !strings.Contains(res["dep"].Reason, "bad failed") {
		t.Errorf("dep reason %q does not name the failed dependency", res["dep"].Reason)
	}
	if res["skipdep"].Reason != "dependency skipme is skipped" {
		t.Errorf("skipdep reason %q", res["skipdep"].Reason)
	}
	if res["bad"].Err == nil || res["bad"].Err.Error() != "boom" || res["bad"].Kind != KindError {
		t.Errorf("bad outcome %+v", res["bad"])
	}
}

func TestStopOnFirstFailure(t *testing.T) {
	for _, cont := range []bool{false, true} {
		g := newTG(t, "bad:", "slow:", "later: slow", "cleanup: slow", "dependent: bad")
		g.node("cleanup").AlwaysRun = true
		badDone := make(chan struct{})
		g.node("bad").Run = failWith("boom")
		// slow finishes only after bad's failure is recorded, so that
		// "later" becomes ready while the run is stopping.
		g.node("slow").Run = func(context.Context, int, int) (any, error) {
			select {
			case <-badDone:
				return nil, nil
			case <-time.After(10 * time.Second):
				return nil, errors.New("bad never finished")
			}
		}
		res := g.run(context.Background(), func(s *Scheduler) {
			s.ContinueOnFailure = cont
			s.OnFinish = func(i int, o *Outcome) {
				if s.Nodes[i].Name == "bad" {
					close(badDone)
				}
			}
		})
		if cont {
			expectStatus(t, res, map[string]Status{"bad": Failed, "slow": Succeeded, "later": Succeeded, "cleanup": Succeeded, "dependent": DependencyFailed})
			continue
		}
		// A dependent of the failed node is settled after the run started
		// stopping: it is Cancelled, always (not sometimes DependencyFailed).
		expectStatus(t, res, map[string]Status{"bad": Failed, "slow": Succeeded, "later": Cancelled, "cleanup": Succeeded, "dependent": Cancelled})
		if !strings.Contains(res["later"].Reason, "stopping after bad failed") {
			t.Errorf("later reason %q", res["later"].Reason)
		}
	}
}

func TestRetries(t *testing.T) {
	g := newTG(t, "flaky:", "hopeless:", "permanent:")
	var flakyCalls, permCalls atomic.Int32
	g.node("flaky").Retry = Retry{Count: 2}
	g.node("flaky").Run = func(_ context.Context, _ int, attempt int) (any, error) {
		flakyCalls.Add(1)
		if attempt < 3 {
			return nil, errors.New("transient")
		}
		return "ok", nil
	}
	var notes []string
	var mu sync.Mutex
	g.node("flaky").Log = func(_ int, msg string) { mu.Lock(); notes = append(notes, msg); mu.Unlock() }
	g.node("hopeless").Retry = Retry{Count: 2, Initial: time.Millisecond, Max: 2 * time.Millisecond}
	g.node("hopeless").Run = failWith("always")
	g.node("permanent").Retry = Retry{Count: 5, If: func(err error) bool { return err.Error() != "fatal" }}
	g.node("permanent").Run = func(context.Context, int, int) (any, error) { permCalls.Add(1); return nil, errors.New("fatal") }
	res := g.run(context.Background(), func(s *Scheduler) { s.ContinueOnFailure = true })
	expectStatus(t, res, map[string]Status{"flaky": Succeeded, "hopeless": Failed, "permanent": Failed})
	if res["flaky"].Attempts != 3 || flakyCalls.Load() != 3 {
		t.Errorf("flaky: %d attempts, %d calls, want 3", res["flaky"].Attempts, flakyCalls.Load())
	}
	if res["flaky"].Err != nil || res["flaky"].Kind != KindNone || res["flaky"].Value != "ok" {
		t.Errorf("flaky succeeded on its last attempt but its outcome carries err %v, kind %q, value %v", res["flaky"].Err, res["flaky"].Kind, res["flaky"].Value)
	}
	if res["hopeless"].Attempts != 3 {
		t.Errorf("hopeless: %d attempts, want 3", res["hopeless"].Attempts)
	}
	if permCalls.Load() != 1 {
		t.Errorf("non-retryable error was tried %d times", permCalls.Load())
	}
	if len(notes) != 2 || !strings.Contains(notes[0], "attempt 1 of 3 failed: transient") {
		t.Errorf("retry notes %q", notes)
	}
}

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	r := Retry{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond}
	for attempt, full := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 6: 400 * time.Millisecond} {
		for range 50 {
			d := backoff(r, attempt)
			if d < full/2 || d > full {
				t.Fatalf("attempt %d: wait %s outside [%s, %s]", attempt, d, full/2, full)
			}
		}
	}
	if d := backoff(Retry{}, 3); d != 0 {
		t.Errorf("no backoff configured, got %s", d)
	}
}

func TestTimeoutCountsExecutionOnly(t *testing.T) {
	g := newTG(t, "slowdep:", "quick: slowdep", "hang:")
	g.node("slowdep").Run = func(context.Context, int, int) (any, error) {
		time.Sleep(60 * time.Millisecond) // longer than quick's timeout
		return nil, nil
	}
	g.node("quick").Timeout = 30 * time.Millisecond
	g.node("hang").Timeout = 20 * time.Millisecond
	g.node("hang").Run = func(ctx context.Context, _, _ int) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	res := g.run(context.Background(), func(s *Scheduler) { s.ContinueOnFailure = true })
	expectStatus(t, res, map[string]Status{"slowdep": Succeeded, "quick": Succeeded, "hang": TimedOut})
	if res["hang"].Kind != KindTimeout || !strings.Contains(res["hang"].Err.Error(), "timed out after 20ms") {
		t.Errorf("hang: kind %s err %v", res["hang"].Kind, res["hang"].Err)
	}
}

func TestModuleIgnoringItsTimeoutIsAbandoned(t *testing.T) {
	g := newTG(t, "stubborn:", "after: stubborn")
	g.node("after").AlwaysRun = true
	release := make(chan struct{})
	returned := make(chan struct{})
	g.node("stubborn").Timeout = 10 * time.Millisecond
	g.node("stubborn").Run = func(context.Context, int, int) (any, error) {
		defer close(returned)
		<-release // ignores its context
		return "late", nil
	}
	res := g.run(context.Background(), func(s *Scheduler) { s.Grace = 20 * time.Millisecond })
	close(release)
	<-returned
	expectStatus(t, res, map[string]Status{"stubborn": TimedOut, "after": Succeeded})
	if !strings.Contains(res["stubborn"].Err.Error(), "abandoned") {
		t.Errorf("error %q does not say abandoned", res["stubborn"].Err)
	}
}

func TestCancellation(t *testing.T) {
	g := newTG(t, "running:", "waiting: running", "cleanup: running")
	g.node("cleanup").AlwaysRun = true
	ctx, cancel := context.WithCancelCause(context.Background())
	g.node("running").Run = func(c context.Context, _, _ int) (any, error) {
		cancel(errors.New("interrupt"))
		<-c.Done()
		return nil, c.Err()
	}
	res := g.run(ctx, nil)
	expectStatus(t, res, map[string]Status{"running": Cancelled, "waiting": Cancelled, "cleanup": Cancelled})
	if !strings.Contains(res["waiting"].Reason, "run cancelled (interrupt)") {
		t.Errorf("waiting reason %q", res["waiting"].Reason)
	}
}

func TestCancelledRunAbandonsModulesIgnoringIt(t *testing.T) {
	g := newTG(t, "stubborn:")
	ctx, cancel := context.WithCancel(context.Background())
	release, returned := make(chan struct{}), make(chan struct{})
	g.node("stubborn").Run = func(context.Context, int, int) (any, error) {
		defer close(returned)
		cancel()
		<-release
		return nil, nil
	}
	res := g.run(ctx, func(s *Scheduler) { s.Grace = 20 * time.Millisecond })
	close(release)
	<-returned
	expectStatus(t, res, map[string]Status{"stubborn": Cancelled})
	if res["stubborn"].Err == nil || !strings.Contains(res["stubborn"].Err.Error(), "abandoned") {
		t.Errorf("stubborn err %v", res["stubborn"].Err)
	}
}

func TestPanicIsAFailureWithStack(t *testing.T) {
	g := newTG(t, "p:")
	var logged string
	g.node("p").Run = func(context.Context, int, int) (any, error) { panic("kaboom") }
	g.node("p").Log = func(_ int, msg string) { logged += msg }
	res := g.run(context.Background(), nil)
	expectStatus(t, res, map[string]Status{"p": Failed})
	var pe *PanicError
	if !errors.As(res["p"].Err, &pe) || res["p"].Kind != KindPanic || pe.Value != "kaboom" {
		t.Fatalf("outcome %+v", res["p"])
	}
	if !strings.Contains(logged, "engine_test.go") {
		t.Errorf("stack trace not logged: %q", logged)
	}
}

func TestChecksSkipOrFail(t *testing.T) {
	g := newTG(t, "skipped:", "broken:", "runs:")
	g.node("skipped").Check = func(context.Context, int) (bool, string, error) { return true, "not today", nil }
	g.node("broken").Check = func(context.Context, int) (bool, string, error) { panic("bad condition") }
	g.node("runs").Check = func(context.Context, int) (bool, string, error) { return false, "", nil }
	res := g.run(context.Background(), func(s *Scheduler) { s.ContinueOnFailure = true })
	expectStatus(t, res, map[string]Status{"skipped": Skipped, "broken": Failed, "runs": Succeeded})
	if res["skipped"].Reason != "not today" || res["skipped"].Attempts != 0 {
		t.Errorf("skipped outcome %+v", res["skipped"])
	}
}

func TestCriticalPathFirst(t *testing.T) {
	// With one slot, the root of the long chain must start before the lone node.
	g := newTG(t, "lone:", "head:", "m1: head", "m2: m1")
	var order []string
	for i := range g.nodes {
		name := g.nodes[i].Name
		g.nodes[i].Run = func(context.Context, int, int) (any, error) { order = append(order, name); return nil, nil }
	}
	gr, err := graph.Build(g.specs)
	if err != nil {
		t.Fatal(err)
	}
	prio := gr.CriticalPath(func(int) int64 { return 1 })
	res := g.run(context.Background(), func(s *Scheduler) { s.MaxParallel = 1; s.Priority = prio })
	expectStatus(t, res, map[string]Status{"lone": Succeeded, "head": Succeeded, "m1": Succeeded, "m2": Succeeded})
	if len(order) != 4 || order[0] != "head" {
		t.Errorf("order %v: head (critical path 3) should start before lone", order)
	}
}

func TestEmptyGraph(t *testing.T) {
	g := newTG(t)
	if res := g.run(context.Background(), nil); len(res) != 0 {
		t.Fatalf("%v", res)
	}
}
