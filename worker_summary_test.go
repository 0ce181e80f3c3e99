package modpipe_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/modpipe/modpipe"
)

// A worker's summary lists the modules it ran, and only those, each as the
// run's summary would show it: status, instance, attempts, error, log.
func TestWorkerSummaryListsWhatItRan(t *testing.T) {
	ok := modpipe.Task("ok", func(c *modpipe.Context) error {
		c.Logger().Info("built", "target", "app")
		return nil
	}, modpipe.RequiresCapability("w"))
	bad := modpipe.Task("bad", func(*modpipe.Context) error { return errors.New("broken build") }, modpipe.RequiresCapability("w"))
	local := modpipe.Task("local", func(*modpipe.Context) error { return nil }, modpipe.PinToMaster())
	c := newCluster(t, 2, ok, bad, local)
	c.continueOnFailure = true
	master := c.start(0, "linux")
	worker := c.start(1, "w", "linux")
	master.wait(t)
	worker.wait(t)
	s := worker.summary
	if s == nil || s.Role != modpipe.RoleWorker || !s.Distributed {
		t.Fatalf("worker summary %+v, err %v", s, worker.err)
	}
	var names []string
	for _, m := range s.Modules {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"bad", "ok"}) {
		t.Fatalf("the worker's summary lists %v, want the two modules it ran: [bad ok]", names)
	}
	for _, m := range s.Modules {
		if m.Instance != 1 || m.Attempts != 1 || m.Start.IsZero() {
			t.Errorf("%s: instance %d, %d attempts, start %v; want instance 1, 1 attempt, a start", m.Name, m.Instance, m.Attempts, m.Start)
		}
		switch m.Name {
		case "ok":
			if m.Status != modpipe.Succeeded || !strings.Contains(m.Log, "built target=app") {
				t.Errorf("ok: %s with log %q; want succeeded with its log line", m.Status, m.Log)
			}
		case "bad":
			if m.Status != modpipe.Failed || m.Error != "broken build" {
				t.Errorf("bad: %s, error %q; want failed with its error", m.Status, m.Error)
			}
		}
	}
}
