package modpipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// events records what happened, in order, from any goroutine.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, s)
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

// Teardown hooks run once Run's modules have ended, whether the run
// succeeded or failed, the last registered first; a failing hook is
// reported without changing the verdict.
func TestTeardownRunsAfterTheRunWhateverItsOutcome(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("module fails %v", fail), func(t *testing.T) {
			var ev events
			p := NewPipeline().Add(Task("build", func(*Context) error {
				ev.add("build")
				if fail {
					return errors.New("broken")
				}
				return nil
			}))
			p.Output = io.Discard
			p.OnTeardown(func(ctx context.Context) error { ev.add("first hook"); return nil })
			p.OnTeardown(func(ctx context.Context) error {
				ev.add("second hook")
				return errors.New("docker compose down: exit 1")
			})
			s, err := p.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := ev.get(), []string{"build", "second hook", "first hook"}; !slices.Equal(got, want) {
				t.Errorf("events %v, want %v", got, want)
			}
			if s.Failed() != fail {
				t.Errorf("the verdict changed: failed %v, want %v", s.Failed(), fail)
			}
			if len(s.TeardownErrors) != 1 || !strings.Contains(s.TeardownErrors[0], "teardown hook #2 (OnTeardown): docker compose down: exit 1") {
				t.Errorf("TeardownErrors %q", s.TeardownErrors)
			}
		})
	}
}

// Main prints a failing hook's error and still exits with the run's code.
func TestMainTeardownErrorKeepsTheExitCode(t *testing.T) {
	p := NewPipeline().Add(Task("a", func(*Context) error { return nil }))
	p.Secrets("hunter2-token")
	p.OnTeardown(func(context.Context) error { return errors.New("removing cache with hunter2-token failed") })
	code, _, errOut := runMain(t, p, nil)
	if code != 0 {
		t.Errorf("exit %d, want the run's 0", code)
	}
	if !strings.Contains(errOut, "teardown hook #1 (OnTeardown): removing cache with *** failed") {
		t.Errorf("stderr should report the masked teardown error:\n%s", errOut)
	}
}

// After a cancellation the hooks still run, with a context that is not
// cancelled; a hook that does not return within TeardownTimeout is
// abandoned and reported, and the next one runs.
func TestTeardownAfterCancellationAndTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := NewPipeline().Add(Task("wait", func(c *Context) error { cancel(); <-c.Done(); return c.Err() }))
	p.Output = io.Discard
	p.TeardownTimeout = 50 * time.Millisecond
	var ev events
	release, returned := make(chan struct{}), make(chan struct{})
	p.OnTeardown(func(ctx context.Context) error { ev.add(fmt.Sprintf("first hook, ctx err %v", ctx.Err())); return nil })
	p.OnTeardown(func(context.Context) error { defer close(returned); <-release; return nil })
	s, err := p.Run(ctx)
	close(release)
	<-returned
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ev.get(), []string{"first hook, ctx err <nil>"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if len(s.TeardownErrors) != 1 || !strings.Contains(s.TeardownErrors[0], "did not return within 50ms (TeardownTimeout); abandoned") {
		t.Errorf("TeardownErrors %q", s.TeardownErrors)
	}
	if m, _ := s.Module("wait"); m.Status != Cancelled {
		t.Errorf("wait: %s", m.Status)
	}
}

// A pipeline that cannot start still runs its hooks: the error says why
// it could not start and what the hooks said.
func TestTeardownRunsWhenThePipelineCannotStart(t *testing.T) {
	a := Task("a", func(*Context) error { return nil })
	p := NewPipeline().Add(Task("b", func(*Context) error { return nil }, DependsOn(a))) // a not added
	p.OnTeardown(func(context.Context) error { panic("boom") })
	_, err := p.Run(context.Background())
	if !errors.Is(err, ErrInvalidPipeline) || !strings.Contains(err.Error(), "teardown hook #1 (OnTeardown): panic: boom") {
		t.Errorf("err %v", err)
	}
}

// Every instance of a distributed run runs its own hooks once: here three
// instances in one process (--local-instances).
func TestTeardownRunsOnEveryInstance(t *testing.T) {
	var ev events
	mods := []AnyModule{}
	for k := range 4 {
		mods = append(mods, Task(fmt.Sprintf("m%d", k), func(c *Context) error { return nil }))
	}
	p := NewPipeline().Add(mods...)
	p.OnTeardown(func(context.Context) error { ev.add("teardown"); return errors.New("stop failed") })
	code, out, errOut := runMain(t, p, nil, "--local-instances", "3", "--no-live")
	if code != 0 {
		t.Errorf("exit %d, want the run's 0\n%s\n%s", code, out, errOut)
	}
	if got := len(ev.get()); got != 3 {
		t.Errorf("the hook ran %d times, want once per instance (3)", got)
	}
	// Each instance's failure is reported. (A worker may also find the
	// run over before it joined; its hook runs and is reported all the same.)
	if n := strings.Count(errOut, "teardown hook #1 (OnTeardown): stop failed"); n != 3 {
		t.Errorf("stderr reports %d teardown failures, want 3 (one per instance):\n%s", n, errOut)
	}
}

// A worker that never sees its master ends with ErrMasterLost and still
// runs its hooks.
func TestTeardownRunsOnAWorkerThatLostItsMaster(t *testing.T) {
	var ev events
	p := NewPipeline().Add(Task("a", func(*Context) error { return nil }))
	p.Output = io.Discard
	p.UseDistributed(DistributedOptions{InstanceIndex: 1, TotalInstances: 2, HeartbeatInterval: 20 * time.Millisecond,
		LeaseTimeout: 200 * time.Millisecond, MasterTimeout: 300 * time.Millisecond})
	p.UseCoordinator(distributed.NewInMemory())
	p.OnTeardown(func(ctx context.Context) error { ev.add(fmt.Sprintf("teardown, ctx err %v", ctx.Err())); return nil })
	_, err := p.Run(context.Background())
	if !errors.Is(err, ErrMasterLost) {
		t.Fatalf("err %v, want ErrMasterLost", err)
	}
	if got, want := ev.get(), []string{"teardown, ctx err <nil>"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}
