package modpipe_test

import (
	"fmt"
	"slices"
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
