package modpipe_test

import (
	"context"
	"sync"
	"testing"

	"github.com/modpipe/modpipe"
	"github.com/modpipe/modpipe/distributed"
)

// awaitCounter is a coordinator that counts the results awaited through it.
type awaitCounter struct {
	distributed.Coordinator
	mu      sync.Mutex
	awaited map[string]int
}

func (a *awaitCounter) AwaitResult(ctx context.Context, module string) (distributed.Result, error) {
	a.mu.Lock()
	a.awaited[module]++
	a.mu.Unlock()
	return a.Coordinator.AwaitResult(ctx, module)
}

func (a *awaitCounter) count(module string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.awaited[module]
}

// A module the master runs itself reaches the master's scheduler from its
// own executor, not through the coordinator; a worker that depends on it
// still receives its result.
func TestDistributedMasterRunModulesSkipTheCoordinator(t *testing.T) {
	first := modpipe.New("first", func(*modpipe.Context) (int, error) { return 41, nil }, modpipe.PinToMaster())
	second := modpipe.New("second", func(c *modpipe.Context) (int, error) {
		v, err := modpipe.Result(c, first)
		return v + 1, err
	}, modpipe.DependsOn(first), modpipe.PinToMaster())
	var got int
	onWorker := modpipe.Task("on-worker", func(c *modpipe.Context) error {
		v, err := modpipe.Result(c, second)
		got = v
		return err
	}, modpipe.DependsOn(second), modpipe.RequiresCapability("docker"))
	c := newCluster(t, 2, first, second, onWorker)
	counted := &awaitCounter{Coordinator: c.coord, awaited: map[string]int{}}
	master := c.startWith(counted, c.mods, 0, "linux")
	worker := c.start(1, "docker")
	master.wait(t)
	worker.wait(t)
	if master.err != nil || master.summary.Failed() {
		t.Fatalf("run failed: %v\n%s", master.err, master.out)
	}
	for _, name := range []string{"first", "second"} {
		if m := master.module(t, name); m.Status != modpipe.Succeeded || m.Instance != 0 {
			t.Errorf("%s: %s on instance %d, want succeeded on the master", name, m.Status, m.Instance)
		}
		if n := counted.count(name); n != 0 {
			t.Errorf("the master awaited %s through the coordinator %d times; it ran it itself", name, n)
		}
	}
	if worker.err != nil || got != 42 {
		t.Errorf("worker: err %v, result of second %d, want 42", worker.err, got)
	}
	if n := counted.count("on-worker"); n == 0 {
		t.Error("the master never awaited on-worker, which a worker ran, through the coordinator")
	}
}
