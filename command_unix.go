//go:build unix

package modpipe

import (
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// killDelay is how long a command gets between SIGTERM and SIGKILL.
const killDelay = 3 * time.Second

// procTree makes the command the leader of its own process group and, on
// cancellation, signals the whole group (SIGTERM, then SIGKILL after
// killDelay), so that a killed `go test` does not leave its test binaries
// running.
type procTree struct {
	mu    sync.Mutex
	timer *time.Timer
}

// newProcTree prepares cmd before it starts.
func newProcTree(cmd *exec.Cmd) *procTree {
	t := &procTree{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		pid := cmd.Process.Pid
		err := syscall.Kill(-pid, syscall.SIGTERM)
		t.mu.Lock()
		t.timer = time.AfterFunc(killDelay, func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
		t.mu.Unlock()
		return err
	}
	// Bound the wait for output pipes held open by orphaned grandchildren.
	cmd.WaitDelay = killDelay + time.Second
	return t
}

// started has nothing to do: the process group exists from the start.
func (t *procTree) started(*slog.Logger) error { return nil }

// stop stops the pending SIGKILL once the command has been waited for.
func (t *procTree) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer != nil {
		t.timer.Stop()
	}
}
