//go:build unix

package examples_test

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSignalCancelsRunAndPrintsSummary(t *testing.T) {
	bin := build(t, "testdata/interruptible")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			rep := filepath.Join(t.TempDir(), "report.json")
			cmd := exec.Command(bin, "--report", rep)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			sc := bufio.NewScanner(stdout)
			ready := false
			for sc.Scan() {
				out.WriteString(sc.Text() + "\n")
				if sc.Text() == "READY" && !ready {
					ready = true
					if err := cmd.Process.Signal(sig); err != nil {
						t.Fatal(err)
					}
				}
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("process did not exit after %s:\n%s", sig, out.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(out.String(), "MODULE") || !strings.Contains(out.String(), "Run FAILED") {
				t.Errorf("no summary after %s:\n%s", sig, out.String())
			}
			got := statuses(readReport(t, rep))
			if got["first"] != "succeeded" || got["wait"] != "cancelled" || got["after"] != "cancelled" {
				t.Errorf("statuses %v", got)
			}
		})
	}
}
