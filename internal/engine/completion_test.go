package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

type countingReceiver struct {
	c   Completion
	got []Status
}

func (r *countingReceiver) Receive(o Outcome) { r.got = append(r.got, o.Status) }

// A Completion initialised with InitTo delivers the first outcome to its
// receiver, once, and allocates nothing; Abandon marks how it came.
func TestCompletionInitToDeliversOnce(t *testing.T) {
	r := &countingReceiver{got: make([]Status, 0, 4)}
	r.c.InitTo(r)
	if !r.c.Finish(Outcome{Status: Succeeded}) || r.c.Finish(Outcome{Status: Failed}) || r.c.Abandon(Outcome{Status: Cancelled}) {
		t.Fatal("the first outcome was not the only one delivered")
	}
	if len(r.got) != 1 || r.got[0] != Succeeded || r.c.Abandoned() || !r.c.Done() {
		t.Fatalf("received %v (abandoned %v), want [succeeded] only", r.got, r.c.Abandoned())
	}
	r.c.InitTo(r) // fresh again
	if r.c.Done() || !r.c.Abandon(Outcome{Status: TimedOut}) || !r.c.Abandoned() || r.c.Finish(Outcome{}) {
		t.Fatal("an abandoned outcome was not delivered, or not marked")
	}
	r.got = r.got[:0]
	allocs := testing.AllocsPerRun(100, func() {
		r.got = r.got[:0]
		r.c.InitTo(r)
		r.c.Finish(Outcome{Status: Succeeded})
	})
	if allocs != 0 {
		t.Errorf("InitTo and Finish allocate %v times, want 0", allocs)
	}
}

// funcsNode is a NodeFuncs recording its calls.
type funcsNode struct {
	skip  bool
	fails int // attempts that fail before one succeeds
	calls []string
}

func (f *funcsNode) Check(context.Context, int) (bool, string, error) {
	f.calls = append(f.calls, "check")
	return f.skip, "skipped by funcs", nil
}

func (f *funcsNode) Run(_ context.Context, _, attempt int) (any, error) {
	f.calls = append(f.calls, fmt.Sprintf("run %d", attempt))
	if attempt <= f.fails {
		return nil, errors.New("boom")
	}
	return attempt, nil
}

func (f *funcsNode) Log(_ int, msg string) { f.calls = append(f.calls, "log") }

// A node's Funcs stand for its Check, Run and Log, whose being set says
// whether the node has a check and a log.
func TestExecCallsNodeFuncs(t *testing.T) {
	never := func() { t.Error("a field was called in place of Funcs") }
	fields := Node{
		Check: func(context.Context, int) (bool, string, error) { never(); return false, "", nil },
		Run:   func(context.Context, int, int) (any, error) { never(); return nil, nil },
		Log:   func(int, string) { never() },
		Retry: Retry{Count: 1},
	}
	exec := func(n Node) Outcome {
		var o Outcome
		Exec(context.Background(), &n, NewCompletion(func(got Outcome) { o = got }), time.Second)
		return o
	}
	f := &funcsNode{fails: 1}
	n := fields
	n.Funcs = f
	if o := exec(n); o.Status != Succeeded || o.Value != 2 || fmt.Sprint(f.calls) != "[check run 1 log run 2]" {
		t.Errorf("got %s %v after %v, want succeeded 2 after [check run 1 log run 2]", o.Status, o.Value, f.calls)
	}
	f = &funcsNode{skip: true}
	n.Funcs = f
	if o := exec(n); o.Status != Skipped || o.Reason != "skipped by funcs" {
		t.Errorf("got %s %q, want skipped by funcs", o.Status, o.Reason)
	}
	f = &funcsNode{fails: 1}
	n.Funcs, n.Check, n.Log = f, nil, nil // no check, no log
	if o := exec(n); o.Status != Succeeded || fmt.Sprint(f.calls) != "[run 1 run 2]" {
		t.Errorf("got %s after %v, want succeeded after [run 1 run 2]", o.Status, f.calls)
	}
}
