package modpipe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modpipe/modpipe"
	"github.com/modpipe/modpipe/distributed"
)

// startTuned is cluster.startWith with a hook on the pipeline.
func (c *cluster) startTuned(index int, tweak func(p *modpipe.Pipeline), caps ...string) *instance {
	p := modpipe.NewPipeline().Add(c.mods...)
	in := &instance{index: index, out: &bytes.Buffer{}, done: make(chan struct{})}
	p.Output = &lockedWriter{w: in.out}
	p.Grace = time.Second
	p.UseDistributed(c.options(index, caps)).UseCoordinator(c.coord)
	if tweak != nil {
		tweak(p)
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

// output returns what the instance printed so far.
func (in *instance) output() string {
	// The instance has returned when this is called, so nothing writes.
	return in.out.String()
}

// secretModules are modules that register secret with c.Secret on the
// instance running them and then leak it every way a module can: a command
// argument, the command's output, an error, a panic, a skip reason and a
// log line.
func secretModules(secret string, opts ...modpipe.Option) []modpipe.AnyModule {
	with := func(more ...modpipe.Option) []modpipe.Option {
		return append(append([]modpipe.Option{}, opts...), more...)
	}
	return []modpipe.AnyModule{
		modpipe.Task("cmd", func(c *modpipe.Context) error {
			c.Secret(secret)
			_, err := c.Command("sh", "-c", "echo token="+secret+"; exit 3", secret).Run()
			return err
		}, with()...),
		modpipe.Task("errs", func(c *modpipe.Context) error {
			c.Secret(secret)
			return fmt.Errorf("login with %s refused", secret)
		}, with()...),
		modpipe.Task("panics", func(c *modpipe.Context) error {
			c.Secret(secret)
			panic("cannot use " + secret)
		}, with()...),
		modpipe.Task("skipped", func(c *modpipe.Context) error { return nil },
			with(modpipe.SkipIf("the key "+secret+" is revoked", func(c *modpipe.Context) bool {
				c.Secret(secret)
				return true
			}))...),
		modpipe.New("logs", func(c *modpipe.Context) (string, error) {
			c.Secret(secret)
			c.Logf("using %s", secret)
			return "done", nil
		}, with()...),
	}
}

// TestDistributedWorkerSecretsMasked: secrets a module registers on a
// worker never reach the master's console, report or job summary in clear.
func TestDistributedWorkerSecretsMasked(t *testing.T) {
	const secret = "s3cr3t-value"
	c := newCluster(t, 2, secretModules(secret, modpipe.RequiresCapability("worker-only"))...)
	tweak := func(p *modpipe.Pipeline) { p.ContinueOnFailure, p.GitHubActions = true, true }
	worker := c.startTuned(1, tweak, "worker-only")
	awaitInstance(t, c.coord, 1) // before the master's CapabilityTimeout starts
	master := c.startTuned(0, tweak)
	master.wait(t)
	worker.wait(t)
	if master.summary == nil {
		t.Fatalf("the master has no summary: %v", master.err)
	}
	want := map[string]modpipe.Status{"cmd": modpipe.Failed, "errs": modpipe.Failed, "panics": modpipe.Failed,
		"skipped": modpipe.Skipped, "logs": modpipe.Succeeded}
	for name, st := range want {
		m := master.module(t, name)
		if m.Status != st || m.Instance != 1 {
			t.Errorf("%s: %s on instance %d, want %s on instance 1", name, m.Status, m.Instance, st)
		}
	}
	var report, markdown bytes.Buffer
	if err := master.summary.WriteJSON(&report); err != nil {
		t.Fatal(err)
	}
	if err := master.summary.WriteMarkdown(&markdown); err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"console": master.output(), "--report JSON": report.String(), "job summary": markdown.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("the master's %s shows the worker's secret in clear:\n%s", what, text)
		}
		if !strings.Contains(text, "***") {
			t.Errorf("the master's %s shows no masked text, so the test proves nothing:\n%s", what, text)
		}
	}
	// Each leak path reached the master, masked.
	for name, want := range map[string]string{"cmd": "token=***", "errs": "login with *** refused", "panics": "cannot use ***", "skipped": "the key *** is revoked"} {
		m := master.module(t, name)
		if got := m.Error + m.Reason + m.Log; !strings.Contains(got, want) {
			t.Errorf("%s: the master's error, reason and log do not show %q:\n%s", name, want, got)
		}
	}
	if m := master.module(t, "logs"); !strings.Contains(m.Log, "using ***") {
		t.Errorf("logs: the master's log does not show the masked line:\n%s", m.Log)
	}
}

// forgery runs a pipeline where instance 1 runs victim, which waits until
// a forger has published a result for it with the lease it read from the
// coordinator; reader, on the master, reads victim's result.
func forgery(t *testing.T, sharedSecret string) (master *instance, read string, readOK bool) {
	t.Helper()
	forged := make(chan struct{})
	var mu sync.Mutex
	victim := modpipe.New("victim", func(c *modpipe.Context) (string, error) {
		select {
		case <-forged:
		case <-c.Done():
			return "", c.Err()
		}
		return "genuine", nil
	}, modpipe.RequiresCapability("worker-only"))
	reader := modpipe.Task("reader", func(c *modpipe.Context) error {
		v, err := modpipe.Result(c, victim)
		if err != nil {
			return err
		}
		mu.Lock()
		read, readOK = v, true
		mu.Unlock()
		return nil
	}, modpipe.DependsOn(victim), modpipe.PinToMaster())
	c := newCluster(t, 2, victim, reader)
	c.tune = func(o *modpipe.DistributedOptions) { o.SharedSecret = sharedSecret }
	worker := c.start(1, "worker-only")
	awaitInstance(t, c.coord, 1)
	master = c.start(0)

	// The forger has write access to the coordinator but not the secret.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var lease distributed.Lease
	for lease.Token == "" {
		leases, err := c.coord.Leases(ctx)
		if err != nil {
			t.Fatalf("the forger could not list leases: %v", err)
		}
		for _, l := range leases {
			if l.Module == "victim" {
				lease = l
			}
		}
		if lease.Token == "" {
			select {
			case <-ctx.Done():
				t.Fatal("victim was never claimed")
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	err := c.coord.Publish(ctx, distributed.Result{Module: "victim", Lease: lease, Status: distributed.StatusSucceeded, Value: []byte(`"forged"`)})
	if err != nil {
		t.Fatalf("the coordinator refused the forged result, so the test proves nothing: %v", err)
	}
	close(forged)
	master.wait(t)
	worker.wait(t)
	mu.Lock()
	defer mu.Unlock()
	return master, read, readOK
}

// TestForgedResultAcceptedWithoutSharedSecret shows what SharedSecret is
// for: without it, whoever can write to the coordinator decides a module's
// result.
func TestForgedResultAcceptedWithoutSharedSecret(t *testing.T) {
	master, read, ok := forgery(t, "")
	if !ok || read != "forged" {
		t.Fatalf("reader read %q (ok %v); without a shared secret the forged result was expected to win", read, ok)
	}
	if m := master.module(t, "victim"); m.Status != modpipe.Succeeded {
		t.Errorf("victim: %s, want succeeded (the forgery)", m.Status)
	}
}

// TestForgedResultRefusedWithSharedSecret: with a shared secret, a result
// not signed with it is never taken as the module's result: the module
// fails with an error naming module and instance, and its dependents never
// see the forged value.
func TestForgedResultRefusedWithSharedSecret(t *testing.T) {
	master, read, ok := forgery(t, "a-shared-secret-of-some-length")
	if ok {
		t.Fatalf("reader read %q: a forged result reached a dependent", read)
	}
	m := master.module(t, "victim")
	if m.Status != modpipe.Failed {
		t.Fatalf("victim: %s, want failed", m.Status)
	}
	for _, want := range []string{"result for module victim from instance 1 is not signed with the run's shared secret", "it carries no MAC", "refused"} {
		if !strings.Contains(m.Error, want) {
			t.Errorf("victim's error %q does not say %q", m.Error, want)
		}
	}
	if !master.summary.Failed() {
		t.Error("the run succeeded with a refused result")
	}
	if r := master.module(t, "reader"); r.Status == modpipe.Succeeded {
		t.Errorf("reader: %s, want it not to run", r.Status)
	}
	if strings.Contains(master.output(), "a-shared-secret-of-some-length") {
		t.Error("the master prints the shared secret")
	}
}

// TestSignedRunSucceeds: with the same shared secret everywhere, a run
// with work on both instances and a result crossing them just works.
func TestSignedRunSucceeds(t *testing.T) {
	var ran ranOn
	onWorker := modpipe.New("produce", func(c *modpipe.Context) (int, error) { return 42, nil }, modpipe.RequiresCapability("worker-only"))
	got := make(chan int, 1)
	consume := modpipe.Task("consume", func(c *modpipe.Context) error {
		v, err := modpipe.Result(c, onWorker)
		got <- v
		return err
	}, modpipe.DependsOn(onWorker), modpipe.PinToMaster())
	c := newCluster(t, 2, onWorker, consume, ran.task("anywhere"))
	c.tune = func(o *modpipe.DistributedOptions) { o.SharedSecret = "a-shared-secret-of-some-length" }
	worker := c.start(1, "worker-only")
	awaitInstance(t, c.coord, 1)
	master := c.start(0)
	master.wait(t)
	worker.wait(t)
	if master.err != nil || master.summary.Failed() {
		t.Fatalf("signed run failed: %v\n%s", master.err, master.output())
	}
	if v := <-got; v != 42 {
		t.Errorf("consume read %d, want 42", v)
	}
}

// TestWorkerWithoutSharedSecretIsRefused: a worker that lacks the run's
// shared secret gets no work, and the module only it could run fails
// saying why.
func TestWorkerWithoutSharedSecretIsRefused(t *testing.T) {
	var ran ranOn
	c := newCluster(t, 2, ran.task("only-worker", modpipe.RequiresCapability("worker-only")))
	c.tune = func(o *modpipe.DistributedOptions) {
		o.CapabilityTimeout = 300 * time.Millisecond
		if o.InstanceIndex == 0 {
			o.SharedSecret = "a-shared-secret-of-some-length"
		}
	}
	// The worker registers first, so the master sees (and refuses) it
	// however slowly the instances start.
	worker := c.start(1, "worker-only")
	awaitInstance(t, c.coord, 1)
	master := c.start(0)
	master.wait(t)
	worker.cancel()
	worker.wait(t)
	m := master.module(t, "only-worker")
	if m.Status != modpipe.Failed {
		t.Fatalf("only-worker: %s, want failed", m.Status)
	}
	if want := "registration of instance 1"; !strings.Contains(m.Error, want) || !strings.Contains(m.Error, "not signed with the run's shared secret") {
		t.Errorf("only-worker's error %q does not say the worker was refused for want of the shared secret", m.Error)
	}
	if got := ran.get("only-worker"); len(got) != 0 {
		t.Errorf("only-worker ran on %v; the unsigned worker must get no work", got)
	}
}

// TestSharedSecretTooShortRefused: a guessable secret is a configuration
// error, not a silent weakness.
func TestSharedSecretTooShortRefused(t *testing.T) {
	var ran ranOn
	c := newCluster(t, 2, ran.task("a"))
	c.tune = func(o *modpipe.DistributedOptions) { o.SharedSecret = "short" }
	in := c.start(0).wait(t)
	if !errors.Is(in.err, modpipe.ErrBadConfig) || !strings.Contains(in.err.Error(), "at least 16") {
		t.Fatalf("a 5-byte shared secret gives %v, want ErrBadConfig saying at least 16 bytes", in.err)
	}
}

// TestForgedAssignmentRefused: with a shared secret, an assignment queued
// by someone without it is not run: the worker that claims it refuses it,
// and the module fails saying so instead of running before its dependency.
func TestForgedAssignmentRefused(t *testing.T) {
	release := make(chan struct{})
	gate := modpipe.Task("gate", func(c *modpipe.Context) error {
		select {
		case <-release:
			return nil
		case <-c.Done():
			return c.Err()
		}
	}, modpipe.PinToMaster())
	var early atomic.Bool // victim ran before its dependency ended
	victim := modpipe.Task("victim", func(c *modpipe.Context) error {
		select {
		case <-release:
		default:
			early.Store(true)
		}
		return nil
	}, modpipe.DependsOn(gate), modpipe.RequiresCapability("worker-only"))
	c := newCluster(t, 2, gate, victim)
	c.tune = func(o *modpipe.DistributedOptions) { o.SharedSecret = "a-shared-secret-of-some-length" }
	master := c.start(0)
	worker := c.start(1, "worker-only")

	// While gate runs, the forger queues victim itself, unsigned.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.coord.Enqueue(ctx, distributed.Assignment{Module: "victim", Attempt: 1, Requires: []string{"worker-only"}}); err != nil {
		t.Fatalf("the forger could not enqueue: %v", err)
	}
	res, err := c.coord.AwaitResult(ctx, "victim")
	close(release)
	if err != nil {
		t.Fatalf("no result for the forged assignment: %v", err)
	}
	if res.Status != distributed.StatusFailed || res.Error == nil || !strings.Contains(res.Error.Message, "assignment of module victim (attempt 1) claimed by instance 1 is not signed") {
		t.Errorf("the worker published %s %+v for the forged assignment; want a failure refusing it", res.Status, res.Error)
	}
	master.wait(t)
	worker.wait(t)
	if early.Load() {
		t.Error("victim ran from the forged assignment, before its dependency ended")
	}
	if m := master.module(t, "victim"); m.Status != modpipe.Failed || !strings.Contains(m.Error, "is not signed with the run's shared secret") {
		t.Errorf("victim: %s (%s); want failed, naming the unsigned assignment", m.Status, m.Error)
	}
}

// TestWorkerWithoutSharedSecretDoesNotRun: a worker lacking the shared
// secret that claims signed work does not run it; the module fails on the
// master, naming the module, the instance and the missing secret.
func TestWorkerWithoutSharedSecretDoesNotRun(t *testing.T) {
	release := make(chan struct{})
	busy := modpipe.Task("busy", func(c *modpipe.Context) error {
		select {
		case <-release:
			return nil
		case <-c.Done():
			return c.Err()
		}
	}, modpipe.PinToMaster())
	// after gives busy the longer critical path: it is dispatched, and
	// claimed by the master's only slot, before free.
	after := modpipe.Task("after", func(c *modpipe.Context) error { return nil }, modpipe.DependsOn(busy), modpipe.PinToMaster())
	var ran atomic.Bool
	free := modpipe.Task("free", func(c *modpipe.Context) error { ran.Store(true); return nil })
	c := newCluster(t, 2, busy, after, free)
	c.tune = func(o *modpipe.DistributedOptions) {
		if o.InstanceIndex == 0 {
			// One slot, taken by busy: only the worker can claim free.
			o.SharedSecret, o.Parallelism = "a-shared-secret-of-some-length", 1
		}
	}
	master := c.start(0)
	worker := c.start(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.coord.AwaitResult(ctx, "free")
	close(release)
	if err != nil {
		t.Fatalf("no result for free: %v", err)
	}
	if res.Lease.Holder != 1 || res.Error == nil || !strings.Contains(res.Error.Message, "instance 1 has none") {
		t.Errorf("free: published by instance %d with %+v; want the worker refusing it for want of the secret", res.Lease.Holder, res.Error)
	}
	master.wait(t)
	worker.wait(t)
	if ran.Load() {
		t.Error("free ran on an instance without the shared secret")
	}
	m := master.module(t, "free")
	if m.Status != modpipe.Failed || !strings.Contains(m.Error, "result for module free from instance 1 is not signed with the run's shared secret") ||
		!strings.Contains(m.Error, "MODPIPE_SHARED_SECRET") {
		t.Errorf("free: %s (%s); want failed, naming the unsigned instance and the secret", m.Status, m.Error)
	}
}

// awaitInstance waits until instance is registered with coord.
func awaitInstance(t *testing.T, coord distributed.Coordinator, instance int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		ins, err := coord.Instances(ctx)
		if err != nil {
			t.Fatalf("listing instances: %v", err)
		}
		for _, in := range ins {
			if in.Instance == instance {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("instance %d never registered", instance)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
