package modpipe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/logbuf"
)

// workerRun is a worker's run of mods, ready for ExecNode.
func workerRun(t testing.TB, mods ...AnyModule) *run {
	t.Helper()
	p := NewPipeline().Add(mods...)
	p.Output = io.Discard
	pl, err := p.buildPlan(planEnv{os: "linux", distributed: true})
	if err != nil {
		t.Fatal(err)
	}
	r := p.newRun(pl)
	r.instance = Instance{Index: 1, Role: RoleWorker}
	r.dist = &distState{outs: make([]engine.Outcome, len(pl.nodes)), base: r.engineNodes(pl), index: pl.graph.Index}
	return r
}

// A worker builds an execution's node in one allocation: the node, its
// functions and its first attempt's Context together.
func TestExecNodeAllocatesOnce(t *testing.T) {
	r := workerRun(t, noopWorkerModules(1)...)
	var buf logbuf.Buffer
	if n := testing.AllocsPerRun(100, func() { _ = r.ExecNode(0, &buf) }); n > 1 {
		t.Errorf("ExecNode allocates %v times, want 1", n)
	}
}

// Each attempt of an execution gets its own Context, which logs into the
// execution's log: a module may keep using its Context after it returned.
func TestExecNodeAttemptsGetTheirOwnContext(t *testing.T) {
	var seen []*Context
	r := workerRun(t, Task("flaky", func(c *Context) error {
		seen = append(seen, c)
		c.Logger().Info("attempt", "n", len(seen))
		if len(seen) == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	}, Retry(1)))
	var buf logbuf.Buffer
	var o engine.Outcome
	engine.Exec(context.Background(), r.ExecNode(0, &buf), engine.NewCompletion(func(got engine.Outcome) { o = got }), time.Second)
	if o.Status != engine.Succeeded || o.Attempts != 2 {
		t.Fatalf("got %s after %d attempts (%v), want succeeded after 2", o.Status, o.Attempts, o.Err)
	}
	if len(seen) != 2 || seen[0] == seen[1] || seen[0].attempt != 1 || seen[1].attempt != 2 {
		t.Errorf("the attempts shared a Context, or it changed under the first")
	}
	for _, want := range []string{"n=1", "n=2", "attempt 1 of 2 failed"} {
		if !bytes.Contains(buf.Bytes(), []byte(want)) {
			t.Errorf("the execution's log lacks %q:\n%s", want, buf.Bytes())
		}
	}
}
