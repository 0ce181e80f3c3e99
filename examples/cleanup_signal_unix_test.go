//go:build unix

package examples_test

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// signalled runs bin, sends sig at each line that is a key of at, and
// returns its output once it exited.
func signalled(t *testing.T, bin string, env []string, at map[string]syscall.Signal, args ...string) (string, *os.ProcessState) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var out strings.Builder
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				err := cmd.Wait()
				var ee *exec.ExitError
				if err != nil && !errors.As(err, &ee) {
					t.Fatal(err)
				}
				return out.String(), cmd.ProcessState
			}
			out.WriteString(l + "\n")
			for prefix, sig := range at {
				if strings.HasPrefix(l, prefix) {
					if err := cmd.Process.Signal(sig); err != nil {
						t.Fatal(err)
					}
				}
			}
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("the process did not exit:\n%s", out.String())
		}
	}
}

// After Ctrl-C or SIGTERM, the AlwaysRun cleanup still runs (with a live
// context) and the teardown hook too; the summary and report show them.
func TestSignalStillRunsCleanupsAndTeardown(t *testing.T) {
	bin := build(t, "testdata/cleanup")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			rep := filepath.Join(t.TempDir(), "report.json")
			out, st := signalled(t, bin, nil, map[string]syscall.Signal{"READY": sig}, "--report", rep, "--no-live")
			if st.ExitCode() != 1 {
				t.Errorf("exit code %d, want 1:\n%s", st.ExitCode(), out)
			}
			if !strings.Contains(out, "CLEANUP STARTED (context: <nil>)") {
				t.Errorf("the cleanup did not run with a live context after %s:\n%s", sig, out)
			}
			if !strings.Contains(out, "TEARDOWN (context: <nil>)") {
				t.Errorf("the teardown hook did not run after %s:\n%s", sig, out)
			}
			got := statuses(readReport(t, rep))
			if got["wait"] != "cancelled" || got["after"] != "cancelled" || got["cleanup"] != "succeeded" {
				t.Errorf("statuses %v", got)
			}
		})
	}
}

// A cleanup that outlives --cleanup-grace is cancelled, and the run ends
// with its summary.
func TestSignalCleanupIsBoundedByTheGrace(t *testing.T) {
	bin := build(t, "testdata/cleanup")
	rep := filepath.Join(t.TempDir(), "report.json")
	out, st := signalled(t, bin, []string{"CLEANUP_BLOCK=1"}, map[string]syscall.Signal{"READY": syscall.SIGINT},
		"--report", rep, "--no-live", "--cleanup-grace", "300ms")
	if st.ExitCode() != 1 || !strings.Contains(out, "Run FAILED") || !strings.Contains(out, "TEARDOWN") {
		t.Errorf("exit code %d, want 1 with the summary and the teardown:\n%s", st.ExitCode(), out)
	}
	if got := statuses(readReport(t, rep)); got["cleanup"] != "cancelled" {
		t.Errorf("statuses %v, want cleanup cancelled by its grace", got)
	}
}

// A second signal during the cleanups ends the process at once (exit
// 128+signal) instead of waiting out the 30s default grace; also a second
// SIGINT, which a process started with SIGINT ignored (a background job,
// like this test's own process may be) would otherwise ignore.
func TestSecondSignalEndsCleanupsAtOnce(t *testing.T) {
	bin := build(t, "testdata/cleanup")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			out, st := signalled(t, bin, []string{"CLEANUP_BLOCK=1"},
				map[string]syscall.Signal{"READY": sig, "CLEANUP STARTED": sig}, "--no-live")
			if want := 128 + int(sig); st.ExitCode() != want {
				t.Errorf("exit code %d, want %d after a second %s:\n%s", st.ExitCode(), want, sig, out)
			}
			if !strings.Contains(out, "exiting at once") || strings.Contains(out, "TEARDOWN") {
				t.Errorf("the second signal should end the process at once, saying so:\n%s", out)
			}
		})
	}
}
