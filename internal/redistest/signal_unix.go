//go:build unix

package redistest

import (
	"os"
	"syscall"
)

// terminate asks the process to shut down cleanly.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// pause freezes the process with SIGSTOP.
func pause(p *os.Process) error { return p.Signal(syscall.SIGSTOP) }

// resume continues a process frozen by pause.
func resume(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
