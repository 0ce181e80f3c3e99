package modpipe

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/modpipe/modpipe/internal/cache"
	"github.com/modpipe/modpipe/internal/engine"
)

// The title line of a module's log group names everything that happened
// to it: duration, instance and dispatches in distributed runs, attempts,
// the time a cache hit saved, a skip's reason.
func TestModuleGroupTitles(t *testing.T) {
	noop := func(*Context) error { return nil }
	p := NewPipeline().Add(Task("m", noop))
	pl, err := p.buildPlan(planEnv{os: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		name        string
		distributed bool
		cached      time.Duration
		o           engine.Outcome
		want        string
	}{
		{"local", false, 0, engine.Outcome{Status: engine.Succeeded, Attempts: 1, Start: start, End: start.Add(12 * time.Millisecond)},
			"✓ m · succeeded · 12ms\n"},
		{"distributed", true, 0, engine.Outcome{Status: engine.Succeeded, Attempts: 1, Instance: 3, Dispatches: 1, Start: start, End: start.Add(850 * time.Microsecond)},
			"✓ m · succeeded · 850µs · instance 3\n"},
		{"redispatched with retries", true, 0, engine.Outcome{Status: engine.Failed, Attempts: 3, Instance: 12, Dispatches: 2, Start: start, End: start.Add(2*time.Minute + 3*time.Second), Err: errors.New("boom")},
			"✗ m · failed · 2m03s · instance 12 · dispatched 2 times · 3 attempts\n    error: boom\n"},
		{"skipped", false, 0, engine.Outcome{Status: engine.Skipped, Attempts: 1, Reason: "condition not met: tag", Start: start, End: start},
			"○ m · skipped · 0s · condition not met: tag\n"},
		{"cached", false, 1250 * time.Millisecond, engine.Outcome{Status: engine.Succeeded, Attempts: 1, Start: start, End: start.Add(time.Millisecond)},
			"↺ m · cached · 1ms · saved 1.25s\n"},
	} {
		var out bytes.Buffer
		p.Output = &out
		r := p.newRun(pl)
		if c.distributed {
			r.dist = &distState{}
		}
		if c.cached > 0 {
			r.nodes[0].cache = &cacheNode{hit: &cache.Entry{}, saved: c.cached}
		}
		r.printModule(0, &c.o)
		if got := out.String(); got != c.want {
			t.Errorf("%s: printed %q, want %q", c.name, got, c.want)
		}
	}
}
