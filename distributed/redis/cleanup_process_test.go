//go:build unix

package redis_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modpipe/modpipe/internal/redistest"
)

var buildDistCleanup = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "modpipe-distcleanup-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "distcleanup")
	out, err := exec.Command("go", "build", "-o", bin, "../../examples/testdata/distcleanup").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// Ctrl-C on the master of a run over Redis, while a worker runs a module:
// the run is cancelled everywhere, the master runs the AlwaysRun cleanup
// itself (with a live context), and every process runs its teardown hook.
func TestProcessesCleanupAndTeardownAfterSignal(t *testing.T) {
	bin, err := buildDistCleanup()
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t)
	s := &scenario{t: t, bin: bin, srv: srv, url: srv.URL(), runID: newRunID(), total: 2, report: filepath.Join(t.TempDir(), "report.json")}
	master := s.start(0)
	worker := s.start(1, "--capability=slow")
	for deadline := time.Now().Add(time.Minute); !strings.Contains(worker.out.String(), "WORK STARTED on instance 1"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("work never started on the worker:\n%s\n%s", master.out.String(), worker.out.String())
		}
	}
	if err := master.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := master.wait(t, time.Minute); code != 1 {
		t.Errorf("master exit %d, want 1:\n%s", code, master.out.String())
	}
	worker.wait(t, time.Minute)
	if out := master.out.String(); !strings.Contains(out, "CLEANUP on instance 0 (context: <nil>)") || !strings.Contains(out, "TEARDOWN (context: <nil>)") {
		t.Errorf("the master should run the cleanup and its teardown:\n%s", out)
	}
	if out := worker.out.String(); !strings.Contains(out, "TEARDOWN (context: <nil>)") || strings.Contains(out, "CLEANUP") {
		t.Errorf("the worker should run its teardown and not the cleanup:\n%s", out)
	}
	mods := s.readReport()
	if mods["work"].Status != "cancelled" || mods["cleanup"].Status != "succeeded" || mods["cleanup"].Instance != 0 {
		t.Errorf("report: work %+v, cleanup %+v", mods["work"], mods["cleanup"])
	}
}
