//go:build !unix && !windows

package modpipe

import (
	"log/slog"
	"os/exec"
	"time"
)

// procTree only bounds the wait for output pipes on systems with neither
// process groups nor job objects: cancellation kills the process itself.
type procTree struct{}

func newProcTree(cmd *exec.Cmd) *procTree {
	cmd.WaitDelay = 5 * time.Second
	return &procTree{}
}

func (*procTree) started(*slog.Logger) error { return nil }

func (*procTree) stop() {}
