package modpipe_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modpipe/modpipe"
	"github.com/modpipe/modpipe/distributed"
)

// partitioned is one instance's view of a shared coordinator that can be
// cut off, as when a runner is reclaimed or its network dies: after cut,
// heartbeats and publications fail and claims get nothing — including a
// claim that was already waiting when the cut came, whose connection dies
// with the network.
type partitioned struct {
	distributed.Coordinator
	cut     atomic.Bool
	cutOnce sync.Once
	cutCh   chan struct{}
}

func newPartitioned() *partitioned { return &partitioned{cutCh: make(chan struct{})} }

// partition cuts the instance off.
func (p *partitioned) partition() {
	p.cutOnce.Do(func() {
		p.cut.Store(true)
		close(p.cutCh)
	})
}

var errUnreachable = errors.New("connection refused (simulated partition)")

func (p *partitioned) Heartbeat(ctx context.Context, i int) (distributed.Pulse, error) {
	if p.cut.Load() {
		return distributed.Pulse{}, errUnreachable
	}
	return p.Coordinator.Heartbeat(ctx, i)
}

func (p *partitioned) Publish(ctx context.Context, r distributed.Result) error {
	if p.cut.Load() {
		return errUnreachable
	}
	return p.Coordinator.Publish(ctx, r)
}

func (p *partitioned) AwaitState(ctx context.Context, known distributed.RunState) (distributed.RunState, error) {
	s, err := p.Coordinator.AwaitState(ctx, known)
	if p.cut.Load() {
		<-ctx.Done() // news of the run no longer arrives
		return distributed.RunState{}, ctx.Err()
	}
	return s, err
}

func (p *partitioned) Leases(ctx context.Context) ([]distributed.Lease, error) {
	if p.cut.Load() {
		return nil, errUnreachable
	}
	return p.Coordinator.Leases(ctx)
}

func (p *partitioned) Instances(ctx context.Context) ([]distributed.InstanceInfo, error) {
	if p.cut.Load() {
		return nil, errUnreachable
	}
	return p.Coordinator.Instances(ctx)
}

func (p *partitioned) AwaitResult(ctx context.Context, module string) (distributed.Result, error) {
	res, err := p.Coordinator.AwaitResult(ctx, module)
	if p.cut.Load() {
		<-ctx.Done() // results no longer arrive
		return distributed.Result{}, ctx.Err()
	}
	return res, err
}

func (p *partitioned) Claim(ctx context.Context, i int, caps []string) (distributed.Claim, error) {
	// The claim's connection dies with the partition: a claim waiting in
	// the coordinator when the cut comes ends with it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.cutCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	if p.cut.Load() {
		<-ctx.Done()
		return distributed.Claim{}, errUnreachable
	}
	cl, err := p.Coordinator.Claim(ctx, i, caps)
	if p.cut.Load() {
		return distributed.Claim{}, errUnreachable
	}
	return cl, err
}

// lostWorkerRun runs a module that only instances with "big" can take: the
// first to take it (instance 1) is cut off while running it; instance 2,
// started only then, can take it over.
func lostWorkerRun(t *testing.T, opts ...modpipe.Option) (master *instance, doomed *instance, runs map[int]int) {
	var onDoomed, onRescuer atomic.Int32
	doomedStarted := make(chan struct{})
	part := newPartitioned()
	long := modpipe.New("long", func(c *modpipe.Context) (string, error) {
		switch c.Instance().Index {
		case 1:
			onDoomed.Add(1)
			c.Logger().Info("working on the doomed instance")
			close(doomedStarted)
			<-c.Done() // the instance is lost while its module runs
			return "", c.Err()
		default:
			onRescuer.Add(1)
			c.Logger().Info("working on the rescuer")
			return "done by the rescuer", nil
		}
	}, append(opts, modpipe.RequiresCapability("big"))...)
	var got atomic.Value
	after := modpipe.Task("after", func(c *modpipe.Context) error {
		v, err := modpipe.Result(c, long)
		got.Store(v)
		return err
	}, modpipe.DependsOn(long), modpipe.PinToMaster())
	c := newCluster(t, 3, long, after)
	part.Coordinator = c.coord
	master = c.start(0)
	doomed = c.startWith(part, c.mods, 1, "big")
	<-doomedStarted
	part.partition()
	c.start(2, "big")
	master.wait(t)
	doomed.wait(t)
	if v := got.Load(); v != nil && v != "done by the rescuer" {
		t.Errorf("dependent saw %v", v)
	}
	return master, doomed, map[int]int{1: int(onDoomed.Load()), 2: int(onRescuer.Load())}
}

func TestLostWorkerModuleIsRequeued(t *testing.T) {
	master, doomed, runs := lostWorkerRun(t)
	if master.err != nil || master.summary.Failed() {
		t.Fatalf("run failed: %v\n%s", master.err, master.out)
	}
	m := master.module(t, "long")
	if m.Status != modpipe.Succeeded || m.Instance != 2 || m.Dispatches != 2 || m.Attempts != 2 {
		t.Errorf("long: %s on %d, %d dispatches, %d attempts; want succeeded on 2 after 2 dispatches", m.Status, m.Instance, m.Dispatches, m.Attempts)
	}
	if runs[1] != 1 || runs[2] != 1 {
		t.Errorf("executions per instance %v, want one each", runs)
	}
	if !strings.Contains(m.Log, "instance 1 sent no heartbeat") || !strings.Contains(m.Log, "re-queued as attempt 2 of 3") || !strings.Contains(m.Log, "working on the rescuer") {
		t.Errorf("long's log on the master does not tell the story:\n%s", m.Log)
	}
	if doomed.err == nil || !strings.Contains(doomed.err.Error(), "could not reach the coordinator") {
		t.Errorf("the cut-off worker: %v", doomed.err)
	}
}

func TestLostWorkerNotIdempotentModuleFails(t *testing.T) {
	master, _, runs := lostWorkerRun(t, modpipe.NotIdempotent())
	m := master.module(t, "long")
	if m.Status != modpipe.Failed || !strings.Contains(m.Error, "NotIdempotent, so it is not run again") || m.Instance != 1 {
		t.Errorf("long: %s on %d: %q", m.Status, m.Instance, m.Error)
	}
	if runs[2] != 0 {
		t.Errorf("a NotIdempotent module ran again (%v)", runs)
	}
	if st := master.module(t, "after").Status; st != modpipe.Cancelled { // the run stops after long failed
		t.Errorf("after: %s, want cancelled", st)
	}
	if !master.summary.Failed() {
		t.Error("run not failed")
	}

}

// A master cut off from the coordinator ends what it awaits at once, and
// does not report a module no instance started as "abandoned" on itself
// (issue 9).
func TestCutOffMasterReportsWhereModulesStood(t *testing.T) {
	running := make(chan struct{})
	held := func(name string) *modpipe.Module[modpipe.None] {
		return modpipe.Task(name, func(c *modpipe.Context) error {
			close(running)
			<-c.Done() // until the worker gives up on its lost master
			return c.Err()
		}, modpipe.RequiresCapability("w"))
	}
	c := newCluster(t, 2, held("w1"), held("w2"))
	c.tune = func(o *modpipe.DistributedOptions) { o.Parallelism = 1; o.MasterTimeout = time.Second }
	part := newPartitioned()
	part.Coordinator = c.coord
	master := c.startWith(part, c.mods, 0)
	worker := c.start(1, "w")
	<-running // one module runs on the worker, the other waits in the queue
	part.partition()
	master.wait(t)
	worker.wait(t)
	if master.err == nil || !strings.Contains(master.err.Error(), "could not reach the coordinator") {
		t.Errorf("master: %v", master.err)
	}
	for _, name := range []string{"w1", "w2"} {
		m := master.module(t, name)
		if m.Status != modpipe.Cancelled || strings.Contains(m.Error, "abandoned") {
			t.Errorf("%s: %s on %d: %q %q", name, m.Status, m.Instance, m.Error, m.Reason)
		}
		if !strings.Contains(m.Error+m.Reason, "master lost the coordinator") {
			t.Errorf("%s does not say the master lost the coordinator: %q %q", name, m.Error, m.Reason)
		}
		if m.Instance == 0 && !strings.HasPrefix(m.Reason, "not started") {
			t.Errorf("%s reported on instance 0: %q %q", name, m.Error, m.Reason)
		}
	}
}
