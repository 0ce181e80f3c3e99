package modpipe_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modpipe/modpipe"
)

// The router's shape: general tests any instance runs, and a race run only
// the cgo worker can. Each instance runs one module at a time. The cgo
// worker must start the race run before any general test: general tests
// have other takers, the race run has none. (The cgo worker registers
// first, so that the master queues the race run with the rest instead of
// parking it until a capable instance appears.)
func TestOnlyCapableWorkerTakesItsScarceWorkFirst(t *testing.T) {
	var mu sync.Mutex
	ran := map[int][]string{}
	record := func(c *modpipe.Context) {
		mu.Lock()
		defer mu.Unlock()
		ran[c.Instance().Index] = append(ran[c.Instance().Index], c.Name())
	}
	// General tests last until the race run starts (bounded: without
	// precedence it would start only after the cgo worker's tests), so
	// the queue still holds general tests when the cgo worker claims.
	raceStarted := make(chan struct{})
	var mods []modpipe.AnyModule
	for i := range 6 {
		mods = append(mods, modpipe.Task(fmt.Sprintf("test-%d", i), func(c *modpipe.Context) error {
			record(c)
			select {
			case <-raceStarted:
			case <-time.After(3 * time.Second):
			}
			return nil
		}))
	}
	race := modpipe.Task("race", func(c *modpipe.Context) error {
		record(c)
		close(raceStarted)
		return nil
	}, modpipe.RequiresCapability("cgo"))
	mods = append(mods, race)
	c := newCluster(t, 3, mods...)
	c.tune = func(o *modpipe.DistributedOptions) { o.Parallelism = 1 }
	cgo := c.start(2, "cgo")
	awaitRegistered(t, c.coord, 1)
	master := c.start(0)
	c.start(1)
	master.wait(t)
	cgo.wait(t)
	if master.err != nil || master.summary.Failed() {
		t.Fatalf("run failed: %v\n%s", master.err, master.out)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := ran[2]; len(got) == 0 || got[0] != "race" {
		t.Errorf("the cgo worker ran %v; the race run must come first", got)
	}
	if slices.Contains(ran[0], "race") || slices.Contains(ran[1], "race") {
		t.Errorf("race ran without cgo: %v", ran)
	}
}

// When the only cgo worker is lost while running the race run, the race
// run fails once its lease times out, naming the lost worker, instead of
// waiting out CapabilityTimeout for a capable instance that will not come;
// the report records where it was last dispatched.
func TestModuleFailsWhenItsOnlyCapableWorkerIsLost(t *testing.T) {
	started := make(chan struct{})
	race := modpipe.Task("race", func(c *modpipe.Context) error {
		close(started)
		<-c.Done() // the worker is cut off while the race run runs
		return c.Err()
	}, modpipe.RequiresCapability("cgo"))
	notes := modpipe.Task("notes", func(*modpipe.Context) error { return nil }, modpipe.DependsOn(race), modpipe.PinToMaster())
	c := newCluster(t, 3, race, notes)
	c.tune = func(o *modpipe.DistributedOptions) { o.CapabilityTimeout = 90 * time.Second }
	part := newPartitioned()
	part.Coordinator = c.coord
	master := c.start(0)
	c.start(1)
	doomed := c.startWith(part, c.mods, 2, "cgo")
	<-started
	part.partition()
	master.wait(t)
	doomed.wait(t)
	m := master.module(t, "race")
	if m.Status != modpipe.Failed || m.LastDispatchedTo != 2 {
		t.Errorf("race: %s, last dispatched to %d; want failed, last dispatched to 2", m.Status, m.LastDispatchedTo)
	}
	for _, want := range []string{"instance 2 sent no heartbeat", "no instance able to run race is left", "no other instance offers cgo"} {
		if !strings.Contains(m.Error+m.Log, want) {
			t.Errorf("race's error and log do not say %q:\n%s\n%s", want, m.Error, m.Log)
		}
	}
	if st := master.module(t, "notes").Status; st != modpipe.Cancelled { // the run stops after race failed
		t.Errorf("notes: %s", st)
	}
	var b bytes.Buffer
	if err := master.summary.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Modules []struct {
			Name             string `json:"name"`
			LastDispatchedTo int    `json:"last_dispatched_to"`
		} `json:"modules"`
	}
	if err := json.Unmarshal(b.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	for _, rm := range rep.Modules {
		if want := map[string]int{"race": 2}[rm.Name]; rm.LastDispatchedTo != want {
			t.Errorf("report: %s last_dispatched_to %d, want %d", rm.Name, rm.LastDispatchedTo, want)
		}
	}
}
