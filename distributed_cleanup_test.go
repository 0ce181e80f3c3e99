package modpipe_test

import (
	"strings"
	"testing"

	"github.com/modpipe/modpipe"
)

// After a distributed run is cancelled (Ctrl-C on a worker here), the
// master runs the AlwaysRun cleanups itself, the workers being stopped; a
// cleanup needing a capability the master lacks is cancelled, saying so.
// The cleanup reads its dependency's result through the coordinator.
func TestDistributedCleanupsRunOnTheMasterAfterCancellation(t *testing.T) {
	started := make(chan string, 2)
	setup := modpipe.New("setup", func(*modpipe.Context) (string, error) { return "scratch-42", nil })
	work := modpipe.Task("work", func(c *modpipe.Context) error {
		started <- "work"
		<-c.Done()
		return c.Err()
	}, modpipe.DependsOn(setup), modpipe.RequiresCapability("docker"))
	cleanup := modpipe.Task("cleanup", func(c *modpipe.Context) error {
		dir, err := modpipe.Result(c, setup)
		if err != nil {
			return err
		}
		c.Logger().Info("removing " + dir + " on instance " + string(rune('0'+c.Instance().Index)))
		return c.Err()
	}, modpipe.DependsOn(setup, work), modpipe.AlwaysRun())
	dockerCleanup := modpipe.Task("docker-cleanup", func(*modpipe.Context) error { return nil },
		modpipe.DependsOn(work), modpipe.AlwaysRun(), modpipe.RequiresCapability("docker"))
	c := newCluster(t, 2, setup, work, cleanup, dockerCleanup)
	master := c.start(0)
	w := c.start(1, "docker")
	<-started
	w.cancel()
	master.wait(t)
	w.wait(t)
	if m := master.module(t, "work"); m.Status != modpipe.Cancelled {
		t.Errorf("work: %s %q", m.Status, m.Error)
	}
	m := master.module(t, "cleanup")
	if m.Status != modpipe.Succeeded || m.Instance != 0 || !strings.Contains(m.Log, "removing scratch-42 on instance 0") {
		t.Errorf("cleanup: %s on instance %d, error %q, log:\n%s", m.Status, m.Instance, m.Error, m.Log)
	}
	d := master.module(t, "docker-cleanup")
	if d.Status != modpipe.Cancelled || !strings.Contains(d.Reason, "the master runs cleanups itself, and it lacks what docker-cleanup needs (docker)") {
		t.Errorf("docker-cleanup: %s %q", d.Status, d.Reason)
	}
}
