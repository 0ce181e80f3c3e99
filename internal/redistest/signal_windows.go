//go:build windows

package redistest

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// Windows has neither SIGTERM nor SIGSTOP: a server is stopped by
// terminating it, and frozen by suspending every thread of the process with
// NtSuspendProcess (ntdll), which NtResumeProcess undoes; this is what
// debuggers and Process Explorer's "Suspend" use.
var (
	ntdll            = windows.NewLazySystemDLL("ntdll.dll")
	ntSuspendProcess = ntdll.NewProc("NtSuspendProcess")
	ntResumeProcess  = ntdll.NewProc("NtResumeProcess")
)

// errNoSignals makes Stop fall back to killing the process.
var errNoSignals = errors.New("Windows has no SIGTERM; the process is killed instead")

// terminate has no graceful form on Windows.
func terminate(*os.Process) error { return errNoSignals }

// pause suspends every thread of the process.
func pause(p *os.Process) error { return callOnProcess(p, ntSuspendProcess) }

// resume resumes a process suspended by pause.
func resume(p *os.Process) error { return callOnProcess(p, ntResumeProcess) }

func callOnProcess(p *os.Process, proc *windows.LazyProc) error {
	if err := proc.Find(); err != nil {
		return fmt.Errorf("%s is not available in ntdll.dll: %w", proc.Name, err)
	}
	var callErr error
	err := p.WithHandle(func(h uintptr) {
		// NTSTATUS: 0 is success, negative values are errors.
		if status, _, _ := proc.Call(h); status != 0 {
			callErr = fmt.Errorf("%s failed with NTSTATUS 0x%08x", proc.Name, uint32(status))
		}
	})
	if err != nil {
		return fmt.Errorf("no handle to process %d: %w", p.Pid, err)
	}
	return callErr
}
