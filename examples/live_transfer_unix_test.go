//go:build unix

package examples_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLiveViewShowsTransfers runs a pipeline inside tmux whose store holds
// every transfer halfway until the test releases it: while the upload and
// then the download wait, the screen shows a line with the artifact's
// name, bytes done of the total and percent; at the end the lines are gone.
func TestLiveViewShowsTransfers(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is not installed (scripts/test.sh installs it): %v", err)
	}
	bin := build(t, "testdata/artifacts")
	gate := t.TempDir()
	work := t.TempDir()
	session := "modpipe-live-" + strings.ReplaceAll(t.Name(), "/", "-")
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-L", session}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "30", "-c", work,
		"env -u CI -u GITHUB_ACTIONS TERM=xterm-256color ARTIFACT_SIZE=8388608 ARTIFACT_GATE="+gate+" "+bin+"; echo EXITED-$?; sleep 30")
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", session, "kill-server").Run() })

	screen := func() string { return tmux("capture-pane", "-p", "-t", session) }
	waitFor := func(what string, ok func(string) bool) string {
		t.Helper()
		var s string
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if s = screen(); ok(s) {
				return s
			}
		}
		t.Fatalf("the screen never showed %s:\n%s", what, s)
		return s
	}
	line := func(s, prefix string) string {
		for l := range strings.Lines(s) {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return l
			}
		}
		return ""
	}
	release := func(name string) {
		if err := os.WriteFile(filepath.Join(gate, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The upload holds at half its send: the data file is hashed and half
	// sent, the small tool done.
	up := waitFor("the upload's line at 6.0 MiB of 8.0 MiB, 75%", func(s string) bool {
		l := line(s, "↑ bundle")
		return strings.Contains(l, "6.0 MiB / 8.0 MiB  74%") || strings.Contains(l, "6.0 MiB / 8.0 MiB  75%")
	})
	if line(up, "make") == "" {
		t.Errorf("the module's own line is gone while it uploads:\n%s", up)
	}
	release("release-up")
	// The download holds at half its fetch, which writes into the
	// instance's cache and the target at once.
	down := waitFor("the download's line at 4.0 MiB of 8.0 MiB, 50%", func(s string) bool {
		l := line(s, "↓ bundle")
		return strings.Contains(l, "4.0 MiB / 8.0 MiB  49%") || strings.Contains(l, "4.0 MiB / 8.0 MiB  50%")
	})
	if line(down, "check") == "" {
		t.Errorf("the module's own line is gone while it downloads:\n%s", down)
	}
	release("release-down")
	after := waitFor("the end of the run", func(s string) bool { return strings.Contains(s, "EXITED-") })
	if !strings.Contains(after, "EXITED-0") || !strings.Contains(after, "Run succeeded") {
		t.Errorf("run did not succeed:\n%s", after)
	}
	if l := line(after, "↑ bundle") + line(after, "↓ bundle"); l != "" {
		t.Errorf("a transfer line was left behind: %q\n%s", l, after)
	}
}
