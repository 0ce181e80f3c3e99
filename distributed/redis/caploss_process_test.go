package redis_test

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modpipe/modpipe/internal/redistest"
)

// TestProcessesOnlyCapableWorkerKilled: the only worker with docker is
// SIGKILLed while it builds the docker image. The master fails the module
// once the worker's lease times out, naming the lost worker, instead of
// waiting out --capability-timeout (3 minutes here) for a capable instance
// that will not come; the report records where the module was last
// dispatched.
func TestProcessesOnlyCapableWorkerKilled(t *testing.T) {
	srv := redistest.Start(t)
	s := newScenario(t, srv, 2, "DEMO_SLOW=docker-image=30s")
	// build-tool needs docker too: when it is still queued or running at
	// the kill, it may fail first, and without --continue-on-failure the
	// run would then cancel docker-image instead of failing it.
	master := s.start(0, "--capability=linux,windows,macos", "--capability-timeout=3m", "--continue-on-failure")
	worker := s.start(1, "--capability=docker")
	if holder := s.awaitLease("docker-image"); holder != 1 {
		t.Fatalf("docker-image claimed by instance %d, want 1", holder)
	}
	if err := worker.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Generous, but far below the capability timeout: the lease timeout
	// is 1s and the heartbeat 100ms.
	if code := master.wait(t, 60*time.Second); code != 1 {
		t.Fatalf("master exited %d, want 1:\n%s", code, master.out.String())
	}
	m := s.readReport()["docker-image"]
	for _, want := range []string{"no instance able to run docker-image is left", "instance 1 (offers docker", "sent no heartbeat", "it was last dispatched to instance 1"} {
		if !strings.Contains(m.Error, want) {
			t.Errorf("docker-image's error does not say %q: %+v", want, m)
		}
	}
	data, err := os.ReadFile(s.report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Modules []struct {
			Name             string `json:"name"`
			LastDispatchedTo int    `json:"last_dispatched_to"`
		} `json:"modules"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	for _, rm := range rep.Modules {
		if rm.Name == "docker-image" && rm.LastDispatchedTo != 1 {
			t.Errorf("report: docker-image last_dispatched_to %d, want 1", rm.LastDispatchedTo)
		}
	}
}
