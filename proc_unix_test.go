//go:build unix

package modpipe_test

import (
	"errors"
	"syscall"
	"time"
)

// processGone waits up to limit for process pid to disappear (a zombie
// awaiting its reaper counts as gone once it can no longer be signalled).
func processGone(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if isZombie(pid) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
