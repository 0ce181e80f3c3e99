package modpipe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modpipe/modpipe"
	artstore "github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/distributed/redis"
	"github.com/modpipe/modpipe/internal/redistest"
	"go.uber.org/goleak"
)

// cluster runs several instances of one pipeline in this process over one
// coordinator, with timings short enough for tests.
type cluster struct {
	t     *testing.T
	coord distributed.Coordinator
	total int
	mods  []modpipe.AnyModule
	tune  func(o *modpipe.DistributedOptions)
	// continueOnFailure sets the pipelines' ContinueOnFailure.
	continueOnFailure bool
	// artifacts, when set, is the artifact store every instance uses.
	artifacts artstore.Store
}

type instance struct {
	index   int
	out     *bytes.Buffer
	cancel  context.CancelFunc
	done    chan struct{}
	summary *modpipe.Summary
	err     error
}

func newCluster(t *testing.T, total int, mods ...modpipe.AnyModule) *cluster {
	return &cluster{t: t, coord: distributed.NewInMemory(), total: total, mods: mods}
}

func (c *cluster) options(index int, caps []string) modpipe.DistributedOptions {
	o := modpipe.DistributedOptions{
		InstanceIndex: index, TotalInstances: c.total, Capabilities: caps,
		HeartbeatInterval: 20 * time.Millisecond, LeaseTimeout: 200 * time.Millisecond,
		CapabilityTimeout: 5 * time.Second, MasterTimeout: 5 * time.Second, Parallelism: 4,
	}
	if c.tune != nil {
		c.tune(&o)
	}
	return o
}

// start runs instance index with caps (an OS name among them makes it pose
// as that OS) and returns at once.
func (c *cluster) start(index int, caps ...string) *instance {
	return c.startWith(c.coord, c.mods, index, caps...)
}

func (c *cluster) startWith(coord distributed.Coordinator, mods []modpipe.AnyModule, index int, caps ...string) *instance {
	p := modpipe.NewPipeline().Add(mods...)
	in := &instance{index: index, out: &bytes.Buffer{}, done: make(chan struct{})}
	p.Output = &lockedWriter{w: in.out}
	p.Grace = time.Second
	p.ContinueOnFailure = c.continueOnFailure
	p.UseDistributed(c.options(index, caps)).UseCoordinator(coord)
	if c.artifacts != nil {
		p.UseArtifactStore(c.artifacts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	go func() {
		defer close(in.done)
		in.summary, in.err = p.Run(ctx)
	}()
	c.t.Cleanup(func() { cancel(); in.wait(c.t) })
	return in
}

// wait waits for the instance's Run to return. The bound only matters
// when a run hangs: it is generous, because a loaded 2-core machine under
// the race detector is slow (20 MiB results, many instances).
func (in *instance) wait(t *testing.T) *instance {
	t.Helper()
	select {
	case <-in.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("instance %d did not finish", in.index)
	}
	return in
}

func (in *instance) module(t *testing.T, name string) modpipe.ModuleResult {
	t.Helper()
	if in.summary == nil {
		t.Fatalf("instance %d has no summary (err %v)", in.index, in.err)
	}
	m, ok := in.summary.Module(name)
	if !ok {
		t.Fatalf("module %s not in instance %d's summary", name, in.index)
	}
	return m
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ranOn records which instance ran each module, from inside the module.
type ranOn struct {
	mu sync.Mutex
	m  map[string][]int
}

func (r *ranOn) task(name string, opts ...modpipe.Option) *modpipe.Module[modpipe.None] {
	return modpipe.Task(name, func(c *modpipe.Context) error {
		r.mu.Lock()
		if r.m == nil {
			r.m = map[string][]int{}
		}
		r.m[c.Name()] = append(r.m[c.Name()], c.Instance().Index)
		r.mu.Unlock()
		return nil
	}, opts...)
}

func (r *ranOn) get(name string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[name]
}

func TestDistributedRouting(t *testing.T) {
	var ran ranOn
	pinned := ran.task("pinned", modpipe.PinToMaster())
	image := ran.task("image", modpipe.RequiresCapability("Docker"))
	cross := ran.task("cross", modpipe.MatrixTarget("linux", "windows", "macos"))
	win := ran.task("win-only", modpipe.OnOS("windows"))
	c := newCluster(t, 4, pinned, image, cross, win)
	master := c.start(0, "linux")
	w1 := c.start(1, "docker", "linux")
	w2 := c.start(2, "windows")
	w3 := c.start(3, "macos")
	master.wait(t)
	if master.err != nil || master.summary.Failed() {
		t.Fatalf("run failed: %v\n%s", master.err, master.out)
	}
	want := map[string]int{"pinned": 0, "image": 1, "cross[windows]": 2, "cross[macos]": 3, "win-only": 2}
	for name, inst := range want {
		if got := ran.get(name); len(got) != 1 || got[0] != inst {
			t.Errorf("%s ran on %v, want [%d]", name, got, inst)
		}
		if m := master.module(t, name); m.Instance != inst || m.Status != modpipe.Succeeded {
			t.Errorf("summary: %s on instance %d (%s), want %d", name, m.Instance, m.Status, inst)
		}
	}
	if got := ran.get("cross[linux]"); len(got) != 1 || (got[0] != 0 && got[0] != 1) {
		t.Errorf("cross[linux] ran on %v, want a linux instance (0 or 1)", got)
	}
	for _, w := range []*instance{w1, w2, w3} {
		w.wait(t)
		if w.err != nil || w.summary.Failed() || w.summary.Role != modpipe.RoleWorker {
			t.Errorf("worker %d: err %v, summary %+v", w.index, w.err, w.summary)
		}
	}
	// The master's output is the place to read the run.
	if !strings.Contains(master.out.String(), "image · succeeded") || !strings.Contains(master.out.String(), "instance 1") {
		t.Errorf("master output lacks the worker's module:\n%s", master.out)
	}
}

type artifact struct {
	Name   string
	Sizes  map[string]int
	Nested *struct{ OK bool }
}

func TestDistributedTypedResultsCrossInstances(t *testing.T) {
	src := modpipe.New("src", func(c *modpipe.Context) (artifact, error) {
		return artifact{Name: fmt.Sprintf("built-on-%d", c.Instance().Index), Sizes: map[string]int{"bin": 7}, Nested: &struct{ OK bool }{true}}, nil
	}, modpipe.OnOS("windows"))
	left := modpipe.New("left", func(c *modpipe.Context) (string, error) {
		a, err := modpipe.Result(c, src)
		return fmt.Sprintf("%s+left@%d", a.Name, c.Instance().Index), err
	}, modpipe.DependsOn(src), modpipe.RequiresCapability("docker"))
	right := modpipe.New("right", func(c *modpipe.Context) (int, error) {
		a, err := modpipe.Result(c, src)
		if err != nil {
			return 0, err
		}
		if a.Nested == nil || !a.Nested.OK {
			return 0, errors.New("nested value lost in transit")
		}
		return a.Sizes["bin"] * 6, nil
	}, modpipe.DependsOn(src), modpipe.OnOS("macos"))
	var joined atomic.Value
	join := modpipe.Task("join", func(c *modpipe.Context) error {
		l, err := modpipe.Result(c, left)
		if err != nil {
			return err
		}
		r, err := modpipe.Result(c, right)
		if err != nil {
			return err
		}
		joined.Store(fmt.Sprintf("%s/%d", l, r))
		return nil
	}, modpipe.DependsOn(left, right), modpipe.PinToMaster())
	c := newCluster(t, 4, src, left, right, join)
	master := c.start(0, "linux")
	c.start(1, "docker", "linux")
	c.start(2, "windows")
	c.start(3, "macos")
	master.wait(t)
	if master.err != nil || master.summary.Failed() {
		t.Fatalf("run failed: %v\n%s", master.err, master.out)
	}
	if got := joined.Load(); got != "built-on-2+left@1/42" {
		t.Errorf("join saw %v, want built-on-2+left@1/42", got)
	}
}

func TestDistributedFailureOnWorkerFailsTheRun(t *testing.T) {
	boom := modpipe.Task("boom", func(c *modpipe.Context) error {
		c.Logger().Info("about to fail on the worker")
		return errors.New("exit status 3: tests failed")
	}, modpipe.RequiresCapability("docker"))
	after := modpipe.Task("after", func(*modpipe.Context) error { return nil }, modpipe.DependsOn(boom))
	cleanup := modpipe.Task("cleanup", func(*modpipe.Context) error { return nil }, modpipe.DependsOn(boom), modpipe.AlwaysRun(), modpipe.PinToMaster())
	c := newCluster(t, 2, boom, after, cleanup)
	master := c.start(0)
	worker := c.start(1, "docker")
	master.wait(t)
	m := master.module(t, "boom")
	if m.Status != modpipe.Failed || m.Instance != 1 || m.ErrorKind != "error" || m.Error != "exit status 3: tests failed" {
		t.Errorf("boom: %+v", m)
	}
	var remote *distributed.ErrorInfo
	if !errors.As(m.Err, &remote) || remote.Instance != 1 {
		t.Errorf("Err %v does not say it came from instance 1", m.Err)
	}
	if st := master.module(t, "after").Status; st != modpipe.Cancelled { // the run stops after boom failed
		t.Errorf("after: %s, want cancelled", st)
	}
	if st := master.module(t, "cleanup").Status; st != modpipe.Succeeded {
		t.Errorf("AlwaysRun cleanup: %s", st)
	}
	if !master.summary.Failed() || master.summary.ExitCode() != 1 {
		t.Error("the master does not report the failure")
	}
	out := master.out.String()
	if !strings.Contains(out, "✗ boom · failed") || !strings.Contains(out, "about to fail on the worker") {
		t.Errorf("the worker's log is not in the master's output:\n%s", out)
	}
	worker.wait(t)
	if worker.err != nil || !worker.summary.Failed() || worker.summary.ExitCode() != 1 {
		t.Errorf("worker: err %v, failed %v", worker.err, worker.summary != nil && worker.summary.Failed())
	}
}

func TestDistributedSemanticsMatchOneProcess(t *testing.T) {
	var flakyCalls atomic.Int32
	flaky := modpipe.Task("flaky", func(c *modpipe.Context) error {
		if flakyCalls.Add(1) < 3 {
			return errors.New("transient")
		}
		return nil
	}, modpipe.RequiresCapability("docker"), modpipe.Retry(2, modpipe.Backoff(time.Millisecond, time.Millisecond)))
	ignored := modpipe.Task("ignored", func(*modpipe.Context) error { return errors.New("meh") }, modpipe.RequiresCapability("docker"), modpipe.IgnoreFailure())
	afterIgnored := modpipe.Task("after-ignored", func(*modpipe.Context) error { return nil }, modpipe.DependsOn(ignored))
	slow := modpipe.Task("slow", func(c *modpipe.Context) error { <-c.Done(); return c.Err() }, modpipe.RequiresCapability("docker"), modpipe.Timeout(50*time.Millisecond))
	skipped := modpipe.Task("skipped", func(*modpipe.Context) error { return errors.New("must not run") }, modpipe.RequiresCapability("docker"),
		modpipe.SkipIf("not wanted", func(*modpipe.Context) bool { return true }))
	// late can only run on instance 2, which starts late: queue time must
	// not count against its timeout.
	late := modpipe.Task("late", func(*modpipe.Context) error { return nil }, modpipe.RequiresCapability("late"), modpipe.Timeout(100*time.Millisecond))
	c := newCluster(t, 3, flaky, ignored, afterIgnored, slow, skipped, late)
	// slow's timeout would otherwise stop the run and withdraw late, which
	// still waits for its instance then (see TestStopOnFailureWithdrawsQueuedWork).
	c.continueOnFailure = true
	master := c.start(0)
	c.start(1, "docker")
	time.Sleep(300 * time.Millisecond) // late's instance joins after its timeout would have passed
	c.start(2, "late")
	master.wait(t)
	check := func(name string, st modpipe.Status) modpipe.ModuleResult {
		t.Helper()
		m := master.module(t, name)
		if m.Status != st {
			t.Errorf("%s: %s (%s %s), want %s", name, m.Status, m.Reason, m.Error, st)
		}
		return m
	}
	if m := check("flaky", modpipe.Succeeded); m.Attempts != 3 || m.Instance != 1 {
		t.Errorf("flaky: %d attempts on instance %d", m.Attempts, m.Instance)
	}
	check("ignored", modpipe.IgnoredFailure)
	check("after-ignored", modpipe.Succeeded)
	if m := check("slow", modpipe.TimedOut); m.ErrorKind != "timeout" || m.Instance != 1 {
		t.Errorf("slow: kind %q instance %d", m.ErrorKind, m.Instance)
	}
	if m := check("skipped", modpipe.Skipped); m.Reason != "not wanted" {
		t.Errorf("skipped reason %q", m.Reason)
	}
	if m := check("late", modpipe.Succeeded); m.QueueWait < 200*time.Millisecond {
		t.Errorf("late: queue wait %s, want the time it waited for instance 2", m.QueueWait)
	}
}

func TestDistributedFingerprintMismatchRefused(t *testing.T) {
	release := make(chan struct{})
	a := modpipe.Task("a", func(*modpipe.Context) error { <-release; return nil }, modpipe.PinToMaster())
	b := modpipe.Task("b", func(*modpipe.Context) error { return nil }, modpipe.DependsOn(a))
	c := newCluster(t, 2, a, b)
	master := c.start(0)
	// Wait until the master has registered (its module runs), then join
	// with a different pipeline.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ins, _ := c.coord.Instances(context.Background())
		if len(ins) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the master did not register within 10s (%d instances registered)", len(ins))
		}
	}
	stranger := c.startWith(c.coord, []modpipe.AnyModule{modpipe.Task("a", func(*modpipe.Context) error { return nil })}, 1)
	stranger.wait(t)
	close(release)
	if !errors.Is(stranger.err, modpipe.ErrInvalidPipeline) || !errors.Is(stranger.err, distributed.ErrFingerprintMismatch) {
		t.Errorf("worker with another pipeline: %v", stranger.err)
	}
	if !strings.Contains(fmt.Sprint(stranger.err), "runs a different pipeline") {
		t.Errorf("error does not say what to do: %v", stranger.err)
	}
	master.wait(t)
	if master.err != nil || master.summary.Failed() {
		t.Errorf("master: %v", master.err)
	}
}

func TestDistributedUnroutableFailsFast(t *testing.T) {
	gpu := modpipe.Task("train", func(*modpipe.Context) error { return nil }, modpipe.RequiresCapability("gpu"))
	ok := modpipe.Task("ok", func(*modpipe.Context) error { return nil })
	c := newCluster(t, 2, gpu, ok)
	c.tune = func(o *modpipe.DistributedOptions) { o.CapabilityTimeout = time.Hour }
	master := c.start(0, "linux")
	c.start(1, "docker", "linux")
	master.wait(t)
	m := master.module(t, "train")
	if m.Status != modpipe.Failed {
		t.Fatalf("train: %s", m.Status)
	}
	for _, want := range []string{"no instance can run train: it requires gpu", "instance 0 offers linux", "instance 1 offers docker, linux"} {
		if !strings.Contains(m.Error, want) {
			t.Errorf("error %q lacks %q", m.Error, want)
		}
	}
}

func TestDistributedCapabilityTimeout(t *testing.T) {
	gpu := modpipe.Task("train", func(*modpipe.Context) error { return nil }, modpipe.RequiresCapability("gpu"))
	c := newCluster(t, 3, gpu) // instance 2 never comes
	c.tune = func(o *modpipe.DistributedOptions) { o.CapabilityTimeout = 300 * time.Millisecond }
	master := c.start(0)
	c.start(1)
	master.wait(t)
	m := master.module(t, "train")
	if m.Status != modpipe.Failed || !strings.Contains(m.Error, "registered within 300ms") || !strings.Contains(m.Error, "2 of 3 instances registered") {
		t.Errorf("train: %s %q", m.Status, m.Error)
	}
}

func TestWorkerWithoutMasterExits(t *testing.T) {
	a := modpipe.Task("a", func(*modpipe.Context) error { return nil })
	c := newCluster(t, 2, a)
	c.tune = func(o *modpipe.DistributedOptions) { o.MasterTimeout = 300 * time.Millisecond }
	w := c.start(1).wait(t)
	if !errors.Is(w.err, modpipe.ErrMasterLost) || !strings.Contains(w.err.Error(), "instance 0 did not register within 300ms") {
		t.Errorf("worker without master: %v", w.err)
	}
}

func TestDistributedCancellationFromAWorker(t *testing.T) {
	started := make(chan string, 2)
	block := func(name string, opts ...modpipe.Option) *modpipe.Module[modpipe.None] {
		return modpipe.Task(name, func(c *modpipe.Context) error {
			started <- name
			<-c.Done()
			return c.Err()
		}, opts...)
	}
	onMaster := block("on-master", modpipe.PinToMaster())
	onWorker := block("on-worker", modpipe.RequiresCapability("docker"))
	next := modpipe.Task("next", func(*modpipe.Context) error { return nil }, modpipe.DependsOn(onMaster))
	c := newCluster(t, 3, onMaster, onWorker, next)
	master := c.start(0)
	w1 := c.start(1, "docker")
	w2 := c.start(2)
	<-started
	<-started
	// Ctrl-C on an idle worker that has joined: cancelled while still
	// registering, it would leave without a word (and the run go on).
	awaitRegistered(t, c.coord, 3)
	w2.cancel()
	master.wait(t)
	for _, name := range []string{"on-master", "on-worker", "next"} {
		if m := master.module(t, name); m.Status != modpipe.Cancelled {
			t.Errorf("%s: %s %q", name, m.Status, m.Error)
		}
	}
	if m := master.module(t, "next"); !strings.Contains(m.Reason, "cancelled by instance 2") {
		t.Errorf("next reason %q", m.Reason)
	}
	w1.wait(t)
	w2.wait(t)
}

func TestDistributedResultTypesMustBeJSON(t *testing.T) {
	bad := modpipe.New("bad", func(*modpipe.Context) (chan int, error) { return nil, nil })
	alsoBad := modpipe.New("also-bad", func(*modpipe.Context) (struct{ Any any }, error) { return struct{ Any any }{}, nil })
	c := newCluster(t, 2, bad, alsoBad)
	m := c.start(0).wait(t)
	if !errors.Is(m.err, modpipe.ErrInvalidPipeline) || !strings.Contains(m.err.Error(), `"bad": result type chan int`) || !strings.Contains(m.err.Error(), "field Any") {
		t.Errorf("err %v", m.err)
	}
}

// A library user may call Run again and again in one process, each time
// with a new coordinator (a coordinator serves one run): Run closes the
// coordinator when the run ends, so nothing is left behind — no pub/sub
// subscriber, no connection pool (issue 8, defect 8).
func TestRepeatedRunsLeakNothing(t *testing.T) {
	srv := redistest.Start(t)
	before := goleak.IgnoreCurrent()
	for i := range 3 {
		var ran atomic.Bool
		p := modpipe.NewPipeline().Add(modpipe.Task("only", func(*modpipe.Context) error { ran.Store(true); return nil }))
		p.Output = io.Discard
		p.UseDistributed(modpipe.DistributedOptions{InstanceIndex: 0, TotalInstances: 2,
			HeartbeatInterval: 20 * time.Millisecond, LeaseTimeout: time.Second, CapabilityTimeout: 5 * time.Second, MasterTimeout: 5 * time.Second})
		p.UseCoordinator(redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: fmt.Sprintf("repeated-%d", i)}))
		s, err := p.Run(context.Background())
		if err != nil || s.Failed() || !ran.Load() {
			t.Fatalf("run %d: %v (module ran: %v)", i, err, ran.Load())
		}
	}
	goleak.VerifyNone(t, before)
}

// reclaimSignal is the master's coordinator, closing withdrawn once it has
// ended n leases (the master withdraws queued work by claiming it and
// ending the leases).
type reclaimSignal struct {
	distributed.Coordinator
	mu        sync.Mutex
	n         int
	withdrawn chan struct{}
}

func (r *reclaimSignal) Reclaim(ctx context.Context, l distributed.Lease, next *distributed.Assignment) error {
	err := r.Coordinator.Reclaim(ctx, l, next)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n++; r.n == 2 {
		close(r.withdrawn)
	}
	return err
}

// When the run stops after a failure, modules queued for a worker that
// has not claimed them yet do not start: the master withdraws them, and
// they end cancelled, "not started", as in one process (issue 8, #9).
func TestStopOnFailureWithdrawsQueuedWork(t *testing.T) {
	var started atomic.Int32
	firstStarted := make(chan struct{})
	sig := &reclaimSignal{withdrawn: make(chan struct{})}
	queued := func(name string) *modpipe.Module[modpipe.None] {
		return modpipe.Task(name, func(c *modpipe.Context) error {
			if started.Add(1) == 1 {
				close(firstStarted)
				// Hold the worker's only slot until the master has
				// withdrawn the other two (bounded: the old code never does).
				select {
				case <-sig.withdrawn:
				case <-time.After(10 * time.Second):
				}
			}
			return nil
		}, modpipe.RequiresCapability("w"))
	}
	bad := modpipe.Task("bad", func(c *modpipe.Context) error {
		<-firstStarted
		return errors.New("boom")
	}, modpipe.PinToMaster())
	c := newCluster(t, 2, queued("q1"), queued("q2"), queued("q3"), bad)
	c.tune = func(o *modpipe.DistributedOptions) { o.Parallelism = 1 }
	sig.Coordinator = c.coord
	master := c.startWith(sig, c.mods, 0)
	worker := c.start(1, "w")
	master.wait(t)
	worker.wait(t)

	if n := started.Load(); n != 1 {
		t.Errorf("%d of the queued modules started after bad failed; want only the one already running", n)
	}
	var cancelled int
	for _, name := range []string{"q1", "q2", "q3"} {
		m := master.module(t, name)
		switch m.Status {
		case modpipe.Succeeded:
		case modpipe.Cancelled:
			cancelled++
			if !strings.Contains(m.Reason, "not started: stopping after bad failed") {
				t.Errorf("%s cancelled with reason %q", name, m.Reason)
			}
		default:
			t.Errorf("%s: %s (%s)", name, m.Status, m.Reason)
		}
	}
	if cancelled != 2 {
		t.Errorf("%d queued modules cancelled, want 2:\n%s", cancelled, master.out)
	}
	if !master.summary.Failed() {
		t.Error("the run did not fail")
	}
}

// A 20 MiB result (over the 16 MiB wire limit, but compressible) made on a
// worker reaches its dependent on the master intact (issue 8, #7).
func TestLargeResultCrossesInstances(t *testing.T) {
	want := strings.Repeat("0123456789abcdef", 20<<20/16)
	big := modpipe.New("big", func(*modpipe.Context) (string, error) { return want, nil }, modpipe.RequiresCapability("w"))
	var got atomic.Value
	use := modpipe.Task("use", func(c *modpipe.Context) error {
		v, err := modpipe.Result(c, big)
		got.Store(v)
		return err
	}, modpipe.DependsOn(big), modpipe.PinToMaster())
	c := newCluster(t, 2, big, use)
	// Building and compressing 20 MiB under the race detector takes a
	// while: no lease should expire meanwhile.
	c.tune = func(o *modpipe.DistributedOptions) { o.LeaseTimeout = 20 * time.Second }
	master := c.start(0)
	worker := c.start(1, "w")
	master.wait(t)
	worker.wait(t)
	if master.err != nil || master.summary.Failed() {
		t.Fatalf("run failed: %v\n%s", master.err, master.out)
	}
	if m := master.module(t, "big"); m.Instance != 1 {
		t.Errorf("big ran on instance %d, want the worker", m.Instance)
	}
	if v, _ := got.Load().(string); v != want {
		t.Errorf("the dependent got %d bytes, want %d", len(v), len(want))
	}
}

// awaitFails is the master's coordinator, unable to deliver one module's
// result (a permanent error such as WRONGTYPE on its key).
type awaitFails struct {
	distributed.Coordinator
	module string
}

var errAwait = errors.New("WRONGTYPE Operation against a key holding the wrong kind of value (simulated)")

func (a awaitFails) AwaitResult(ctx context.Context, module string) (distributed.Result, error) {
	if module == a.module {
		return distributed.Result{}, errAwait
	}
	return a.Coordinator.AwaitResult(ctx, module)
}

// An error while awaiting a module's result is retried for a bounded time
// (the lease timeout), then fails the module with the reason — it is not
// retried for as long as the master lives (issue 9).
func TestAwaitingAResultFailsWithinABound(t *testing.T) {
	// x runs on the worker: the master awaits its result through the
	// coordinator (its own modules' results reach it without that wait).
	x := modpipe.Task("x", func(*modpipe.Context) error { return nil }, modpipe.RequiresCapability("gpu"))
	c := newCluster(t, 2, x)
	master := c.startWith(awaitFails{Coordinator: c.coord, module: "x"}, c.mods, 0)
	c.start(1, "gpu")
	master.wait(t)
	m := master.module(t, "x")
	if m.Status != modpipe.Failed || !strings.Contains(m.Error, "could not obtain the result of x") || !strings.Contains(m.Error, "WRONGTYPE") {
		t.Errorf("x: %s: %q", m.Status, m.Error)
	}
	if !master.summary.Failed() {
		t.Error("the run did not fail")
	}
}

// A worker cut off from the coordinator does not report a run that
// succeeded: its summary fails, like its exit code (issue 9).
func TestCutOffWorkerDoesNotReportSuccess(t *testing.T) {
	var worker *instance
	hold := modpipe.Task("hold", func(*modpipe.Context) error {
		select { // keep the run going until the worker gave up
		case <-worker.done:
		case <-time.After(20 * time.Second):
		}
		return nil
	}, modpipe.PinToMaster())
	c := newCluster(t, 2, hold)
	part := newPartitioned()
	part.Coordinator = c.coord
	part.partition() // registration passes, every heartbeat fails
	worker = c.startWith(part, c.mods, 1)
	master := c.start(0)
	worker.wait(t)
	master.wait(t)
	if worker.err == nil || !strings.Contains(worker.err.Error(), "could not reach the coordinator") {
		t.Errorf("worker error: %v", worker.err)
	}
	if worker.summary == nil || !worker.summary.Failed() || worker.summary.ExitCode() != 1 {
		t.Errorf("the cut-off worker's summary says the run succeeded: %+v", worker.summary)
	}
}

// awaitRegistered waits until n instances have registered with coord.
func awaitRegistered(t *testing.T, coord distributed.Coordinator, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s distributed.RunState
	for s.Registered < n {
		next, err := coord.AwaitState(ctx, s)
		if err != nil {
			t.Fatalf("waiting for %d instances to register: %v (%d registered)", n, err, s.Registered)
		}
		s = next
	}
}
