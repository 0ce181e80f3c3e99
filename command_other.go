//go:build !unix

package modpipe

import (
	"os/exec"
	"time"
)

// killProcessGroup only bounds the wait for output pipes on systems without
// process groups; cancellation kills the process itself.
func killProcessGroup(cmd *exec.Cmd) (stop func()) {
	cmd.WaitDelay = 5 * time.Second
	return func() {}
}
