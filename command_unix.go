//go:build unix

package modpipe

import (
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// killDelay is how long a command gets between SIGTERM and SIGKILL.
const killDelay = 3 * time.Second

// killProcessGroup makes the command the leader of its own process group
// and, on cancellation, signals the whole group (SIGTERM, then SIGKILL after
// killDelay), so that a killed `go test` does not leave its test binaries
// running. The returned function stops the pending SIGKILL.
func killProcessGroup(cmd *exec.Cmd) (stop func()) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var mu sync.Mutex
	var timer *time.Timer
	cmd.Cancel = func() error {
		pid := cmd.Process.Pid
		err := syscall.Kill(-pid, syscall.SIGTERM)
		mu.Lock()
		timer = time.AfterFunc(killDelay, func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
		mu.Unlock()
		return err
	}
	// Bound the wait for output pipes held open by orphaned grandchildren.
	cmd.WaitDelay = killDelay + time.Second
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if timer != nil {
			timer.Stop()
		}
	}
}
