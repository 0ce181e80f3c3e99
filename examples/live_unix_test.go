//go:build unix

package examples_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestLiveViewInATerminal runs a pipeline inside tmux (a real terminal) and
// reads the screen: while a module runs, a live line shows its name and
// elapsed time; at the end the line is gone and the summary follows the
// module groups.
func TestLiveViewInATerminal(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is not installed (scripts/test.sh installs it): %v", err)
	}
	bin := build(t, "testdata/slowlive")
	session := "modpipe-live-" + strings.ReplaceAll(t.Name(), "/", "-")
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-L", session}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// The program runs with CI unset: under CI the live view is off.
	tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30",
		"env -u CI -u GITHUB_ACTIONS TERM=xterm-256color "+bin+"; echo EXITED-$?; sleep 30")
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", session, "kill-server").Run() })

	screen := func() string { return tmux("capture-pane", "-p", "-t", session) }
	waitFor := func(what string, ok func(string) bool) string {
		t.Helper()
		var s string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if s = screen(); ok(s) {
				return s
			}
		}
		t.Fatalf("the screen never showed %s:\n%s", what, s)
		return s
	}
	during := waitFor("the live line of slow-module", func(s string) bool {
		for line := range strings.Lines(s) {
			if strings.HasPrefix(line, "slow-module") && (strings.Contains(line, "1s") || strings.Contains(line, "2s")) {
				return true
			}
		}
		return false
	})
	if !strings.Contains(during, "✓ fast · succeeded") {
		t.Errorf("the finished module's group is not printed above the live line:\n%s", during)
	}
	after := waitFor("the end of the run", func(s string) bool { return strings.Contains(s, "EXITED-") })
	if !strings.Contains(after, "EXITED-0") || !strings.Contains(after, "Run succeeded") {
		t.Errorf("run did not succeed:\n%s", after)
	}
	for line := range strings.Lines(after) {
		if strings.HasPrefix(line, "slow-module ") && !strings.Contains(line, "succeeded") {
			t.Errorf("a live line was left behind: %q\n%s", line, after)
		}
	}
}
