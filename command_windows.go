//go:build windows

package modpipe

import (
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// killDelay is how long a command gets between CTRL_BREAK_EVENT and the
// termination of its job object.
const killDelay = 3 * time.Second

// procTree confines a command and everything it starts to a job object, so
// that cancellation ends the whole tree (see Context.Command).
//
// The race: a job only holds processes assigned to it and the children they
// start afterwards. A process assigned right after it started could already
// have started children, which would escape the job. So the process is
// created with CREATE_SUSPENDED (its primary thread does not run), assigned
// to the job, and only then resumed. os/exec does not keep the primary
// thread's handle, so started finds the thread with a Toolhelp snapshot of
// the process's threads (the only thread a suspended new process has) and
// resumes it with ResumeThread.
//
// Cancellation may arrive (from os/exec's context watcher) before started
// has put the process in the job: the process is then still suspended and
// has started nothing, so killing it alone kills the whole tree.
type procTree struct {
	cmd *exec.Cmd

	mu        sync.Mutex
	job       windows.Handle // 0 until the process is in it, and after stop
	cancelled bool
	timer     *time.Timer
}

// newProcTree prepares cmd before it starts.
func newProcTree(cmd *exec.Cmd) *procTree {
	t := &procTree{cmd: cmd}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		CreationFlags: windows.CREATE_SUSPENDED | windows.CREATE_NEW_PROCESS_GROUP,
	}
	cmd.Cancel = t.cancel
	// Bound the wait for output pipes held open by processes outside the job.
	cmd.WaitDelay = killDelay + time.Second
	return t
}

// started puts the started, suspended process into a new job object and
// resumes it. When no job can be created or joined (for example a parent job
// that forbids it), the command still runs and a cancellation ends only the
// process itself; the module's log says so. A non-nil error means the process
// could not be resumed and has been killed.
func (t *procTree) started(log *slog.Logger) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cancelled {
		return nil // cancel killed the suspended process; Wait reports it
	}
	job, err := newJob(t.cmd)
	if err != nil {
		log.Warn("processes this command starts will not be ended with it on timeout or cancellation", "error", err)
	} else {
		t.job = job
	}
	if err := resumeProcess(uint32(t.cmd.Process.Pid)); err != nil {
		_ = t.cmd.Process.Kill()
		return fmt.Errorf("starting %s: the process was created suspended (to put it into a job object first) and could not be resumed: %w", t.cmd.Path, err)
	}
	return nil
}

// newJob creates a job object and assigns the command's process to it.
func newJob(cmd *exec.Cmd) (windows.Handle, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0, fmt.Errorf("creating a job object: %w", err)
	}
	var assignErr error
	err = cmd.Process.WithHandle(func(h uintptr) {
		assignErr = windows.AssignProcessToJobObject(job, windows.Handle(h))
	})
	if err == nil {
		err = assignErr
	}
	if err != nil {
		_ = windows.CloseHandle(job)
		return 0, fmt.Errorf("putting process %d into a job object: %w", cmd.Process.Pid, err)
	}
	return job, nil
}

// resumeProcess resumes the threads of a process created suspended.
func resumeProcess(pid uint32) error {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPTHREAD, 0)
	if err != nil {
		return fmt.Errorf("listing threads: %w", err)
	}
	defer windows.CloseHandle(snap)
	entry := windows.ThreadEntry32{Size: uint32(unsafe.Sizeof(windows.ThreadEntry32{}))}
	resumed := 0
	for err = windows.Thread32First(snap, &entry); err == nil; err = windows.Thread32Next(snap, &entry) {
		if entry.OwnerProcessID != pid {
			continue
		}
		th, err := windows.OpenThread(windows.THREAD_SUSPEND_RESUME, false, entry.ThreadID)
		if err != nil {
			return fmt.Errorf("opening thread %d: %w", entry.ThreadID, err)
		}
		_, err = windows.ResumeThread(th)
		_ = windows.CloseHandle(th)
		if err != nil {
			return fmt.Errorf("resuming thread %d: %w", entry.ThreadID, err)
		}
		resumed++
	}
	if !errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return fmt.Errorf("listing threads: %w", err)
	}
	if resumed == 0 {
		return fmt.Errorf("process %d has no thread to resume", pid)
	}
	return nil
}

// cancel is the command's exec.Cmd.Cancel: CTRL_BREAK_EVENT to the
// command's process group, and the job terminated killDelay later.
func (t *procTree) cancel() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cancelled = true
	if t.job == 0 {
		// Still suspended (started has not run), or no job: the process alone.
		return t.cmd.Process.Kill()
	}
	// Only while the command runs: its process group then surely exists, and
	// the event cannot reach any other process on the console.
	if running(t.cmd) {
		if err := windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(t.cmd.Process.Pid)); err == nil {
			t.timer = time.AfterFunc(killDelay, t.terminate)
			return nil
		}
	}
	return t.terminateLocked()
}

// stillActive is the exit code GetExitCodeProcess gives a running process
// (STILL_ACTIVE).
const stillActive = 259

// running reports whether the command's own process has not exited yet.
func running(cmd *exec.Cmd) bool {
	var code uint32
	err := cmd.Process.WithHandle(func(h uintptr) {
		if windows.GetExitCodeProcess(windows.Handle(h), &code) != nil {
			code = 0
		}
	})
	return err == nil && code == stillActive
}

func (t *procTree) terminate() {
	t.mu.Lock()
	defer t.mu.Unlock()
	_ = t.terminateLocked()
}

// terminateLocked ends every process in the job.
func (t *procTree) terminateLocked() error {
	if t.job == 0 {
		return nil
	}
	if err := windows.TerminateJobObject(t.job, 1); err != nil {
		return fmt.Errorf("terminating the command's job object: %w", err)
	}
	return nil
}

// stop runs once the command has been waited for. After a cancellation the
// processes still in the job are terminated now (the command itself has
// exited, so its grace period is over); then the job handle is closed, which
// leaves processes of a command that ended on its own running.
func (t *procTree) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer != nil {
		t.timer.Stop()
	}
	if t.job == 0 {
		return
	}
	if t.cancelled {
		_ = t.terminateLocked()
	}
	_ = windows.CloseHandle(t.job)
	t.job = 0
}
