package engine

import "testing"

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
