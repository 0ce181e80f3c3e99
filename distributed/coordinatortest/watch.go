package coordinatortest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// watchOutcome is one call of a ResultWatcher's deliver.
type watchOutcome struct {
	r   distributed.Result
	err error
}

// watchRecorder records what a ResultWatcher delivers, per module.
type watchRecorder struct {
	mu      sync.Mutex
	got     map[string][]watchOutcome
	changed chan struct{}
}

func newWatchRecorder() *watchRecorder {
	return &watchRecorder{got: map[string][]watchOutcome{}, changed: make(chan struct{})}
}

func (w *watchRecorder) deliver(module string, r distributed.Result, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got[module] = append(w.got[module], watchOutcome{r, err})
	close(w.changed)
	w.changed = make(chan struct{})
}

// outcomes returns what was delivered for module so far.
func (w *watchRecorder) outcomes(module string) []watchOutcome {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]watchOutcome(nil), w.got[module]...)
}

// wait returns the first outcome delivered for each of modules, failing the
// test when one has not come within the suite's wait limit.
func (w *watchRecorder) wait(t *testing.T, modules ...string) []watchOutcome {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		var out []watchOutcome
		var missing []string
		for _, m := range modules {
			if g := w.got[m]; len(g) > 0 {
				out = append(out, g[0])
			} else {
				missing = append(missing, m)
			}
		}
		ch := w.changed
		w.mu.Unlock()
		if len(missing) == 0 {
			return out
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("WatchResults delivered nothing within %s for %d modules, e.g. %v", waitLimit, len(missing), missing[:min(len(missing), 5)])
		}
	}
}

// testWatchResults checks distributed.ResultWatcher on one run: a result
// published before or after the watch starts is delivered, once; many
// modules in one watch; a watch whose ctx ended delivers nothing; Cancel
// ends no watch; Complete ends the others with ErrRunEnded.
func testWatchResults(t *testing.T, c distributed.Coordinator) {
	w, ok := c.(distributed.ResultWatcher)
	if !ok {
		t.Skip("the coordinator does not implement distributed.ResultWatcher (optional: AwaitResult alone is enough)")
	}
	join(t, c, 0, 1)
	rec := newWatchRecorder()
	ctx := ctxFor(t)

	// Published before the watch starts, and after.
	enqueue(t, c, "before", 1)
	must(t, c.Publish(ctxFor(t), success(claim(t, c, 1), `"b"`)), "Publish before")
	enqueue(t, c, "after", 1)
	must(t, w.WatchResults(ctx, []string{"before", "after"}, rec.deliver), "WatchResults")
	if o := rec.wait(t, "before")[0]; o.err != nil || string(o.r.Value) != `"b"` || o.r.Module != "before" {
		t.Errorf("result published before the watch: %s %q, %v; want \"b\"", o.r.Module, o.r.Value, o.err)
	}
	must(t, c.Publish(ctxFor(t), success(claim(t, c, 1), `"a"`)), "Publish after")
	if o := rec.wait(t, "after")[0]; o.err != nil || string(o.r.Value) != `"a"` {
		t.Errorf("result published after the watch started: %q, %v; want \"a\"", o.r.Value, o.err)
	}

	// Many modules in one watch, published while it runs, some of them
	// before the watch starts.
	const many = 300
	names := make([]string, many)
	for i := range names {
		names[i] = fmt.Sprintf("many%03d", i)
		enqueue(t, c, names[i], 0)
	}
	publish := func(n int) {
		for range n {
			cl := claim(t, c, 1)
			must(t, c.Publish(ctxFor(t), success(cl, fmt.Sprintf("%q", cl.Assignment.Module))), "Publish "+cl.Assignment.Module)
		}
	}
	publish(20)
	must(t, w.WatchResults(ctx, names, rec.deliver), "WatchResults(many)")
	publish(many - 20)
	for i, o := range rec.wait(t, names...) {
		if o.err != nil || string(o.r.Value) != fmt.Sprintf("%q", names[i]) {
			t.Fatalf("result of %s: %s, %v; want its own value", names[i], o.r.Value, o.err)
		}
	}

	// A watch whose ctx is done delivers nothing any more.
	enqueue(t, c, "dropped", 1)
	dctx, cancel := context.WithCancel(context.Background())
	dropped := newWatchRecorder()
	must(t, w.WatchResults(dctx, []string{"dropped"}, dropped.deliver), "WatchResults(dropped)")
	cancel()
	must(t, w.WatchResults(ctx, []string{"dropped"}, rec.deliver), "WatchResults(dropped) again, live")
	must(t, c.Publish(ctxFor(t), success(claim(t, c, 1), `"d"`)), "Publish dropped")
	if o := rec.wait(t, "dropped")[0]; o.err != nil || string(o.r.Value) != `"d"` {
		t.Errorf("second watch of the same module: %q, %v; want \"d\"", o.r.Value, o.err)
	}

	// Cancel ends no watch; Complete ends them.
	enqueue(t, c, "running", 1)
	running := claim(t, c, 1)
	enqueue(t, c, "never", 1)
	must(t, w.WatchResults(ctx, []string{"running", "never"}, rec.deliver), "WatchResults(running, never)")
	must(t, c.Cancel(ctxFor(t), 0, "stop"), "Cancel")
	must(t, c.Publish(ctxFor(t), success(running, `"r"`)), "Publish after Cancel")
	if o := rec.wait(t, "running")[0]; o.err != nil || string(o.r.Value) != `"r"` {
		t.Errorf("result published after Cancel: %q, %v; want \"r\"", o.r.Value, o.err)
	}
	if got := rec.outcomes("never"); len(got) > 0 {
		t.Errorf("a module without result was delivered after Cancel, before Complete: %v", got[0].err)
	}
	must(t, c.Complete(ctxFor(t), true), "Complete")
	if o := rec.wait(t, "never")[0]; !errors.Is(o.err, distributed.ErrRunEnded) {
		t.Errorf("watch of a module without result, after Complete: %v, want ErrRunEnded", o.err)
	}
	// Watching after Complete: refused or ended, never left waiting.
	late := newWatchRecorder()
	if err := w.WatchResults(ctx, []string{"late"}, late.deliver); err != nil {
		if !errors.Is(err, distributed.ErrRunEnded) {
			t.Errorf("WatchResults after Complete: %v, want nil or ErrRunEnded", err)
		}
	} else if o := late.wait(t, "late")[0]; !errors.Is(o.err, distributed.ErrRunEnded) {
		t.Errorf("watch started after Complete: %v, want ErrRunEnded", o.err)
	}

	// Each watch delivered once.
	for _, m := range append([]string{"before", "after", "dropped", "running", "never"}, names...) {
		if n := len(rec.outcomes(m)); n != 1 {
			t.Errorf("%s delivered %d times, want once", m, n)
		}
	}
	if got := dropped.outcomes("dropped"); len(got) > 0 {
		t.Errorf("a watch whose ctx was done delivered %q, %v", got[0].r.Value, got[0].err)
	}
}
