//go:build unix

package modpipe_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modpipe/modpipe"
)

func TestCommandStreamsOutputAndCapturesIt(t *testing.T) {
	dir := t.TempDir()
	var res *modpipe.CommandResult
	m := modpipe.Task("cmd", func(c *modpipe.Context) error {
		var err error
		res, err = c.Command("sh", "-c", `echo "out $GREETING"; echo "err line" >&2; pwd`).Dir(dir).Env("GREETING=hi").Run()
		return err
	})
	s, out := run(t, nil, m)
	status(t, s, map[string]modpipe.Status{"cmd": modpipe.Succeeded})
	if res == nil || res.ExitCode != 0 {
		t.Fatalf("result %+v", res)
	}
	realDir, _ := filepath.EvalSymlinks(dir)
	if res.Stdout != "out hi\n"+realDir+"\n" && res.Stdout != "out hi\n"+dir+"\n" {
		t.Errorf("stdout %q", res.Stdout)
	}
	if res.Stderr != "err line\n" {
		t.Errorf("stderr %q", res.Stderr)
	}
	for _, want := range []string{`$ sh -c "echo \"out $GREETING\"`, "│ out hi", "│ err line"} {
		if !strings.Contains(out, want) {
			t.Errorf("module log lacks %q:\n%s", want, out)
		}
	}
}

func TestCommandFailureQuotesCommandAndOutputTail(t *testing.T) {
	var res *modpipe.CommandResult
	var cmdErr error
	m := modpipe.Task("cmd", func(c *modpipe.Context) error {
		res, cmdErr = c.Command("sh", "-c", "for i in $(seq 1 30); do echo line$i; done; exit 3").Run()
		return cmdErr
	})
	s, _ := run(t, nil, m)
	status(t, s, map[string]modpipe.Status{"cmd": modpipe.Failed})
	var ce *modpipe.CommandError
	if !errors.As(cmdErr, &ce) {
		t.Fatalf("error %T %v is not a *CommandError", cmdErr, cmdErr)
	}
	if ce.ExitCode != 3 || res == nil || res.ExitCode != 3 {
		t.Errorf("exit code %d / %+v", ce.ExitCode, res)
	}
	msg := cmdErr.Error()
	if !strings.Contains(msg, `command "sh -c`) || !strings.Contains(msg, "exited with code 3") {
		t.Errorf("message %q", msg)
	}
	if !strings.Contains(msg, "line30") || !strings.Contains(msg, "line11") || strings.Contains(msg, "line10\n") {
		t.Errorf("message should quote the last 20 lines (11-30):\n%s", msg)
	}
}

func TestCommandIsKilledOnTimeout(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	m := modpipe.Task("hang", func(c *modpipe.Context) error {
		// A grandchild in the background: it must die with the command.
		_, err := c.Command("sh", "-c", "sh -c 'echo $$ > "+pidFile+"; exec sleep 30' >/dev/null 2>&1 & sleep 30").Run()
		return err
	}, modpipe.Timeout(300*time.Millisecond))
	start := time.Now()
	s, _ := run(t, nil, m)
	elapsed := time.Since(start)
	status(t, s, map[string]modpipe.Status{"hang": modpipe.TimedOut})
	if elapsed > 20*time.Second {
		t.Fatalf("timed-out command held the run for %s", elapsed)
	}
	mr, _ := s.Module("hang")
	if !strings.Contains(mr.Error, "timed out after 300ms") || !strings.Contains(mr.Error, "killed") {
		t.Errorf("error %q", mr.Error)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("grandchild never started: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if !processGone(pid, 10*time.Second) {
		t.Errorf("grandchild %d of the killed command is still running", pid)
	}
}

func TestCommandThatCannotStart(t *testing.T) {
	var cmdErr error
	m := modpipe.Task("missing", func(c *modpipe.Context) error {
		_, cmdErr = c.Command("definitely-not-a-command-modpipe").Run()
		return cmdErr
	})
	s, _ := run(t, nil, m)
	status(t, s, map[string]modpipe.Status{"missing": modpipe.Failed})
	var ce *modpipe.CommandError
	if !errors.As(cmdErr, &ce) || ce.ExitCode != -1 || !strings.Contains(cmdErr.Error(), "definitely-not-a-command-modpipe") {
		t.Errorf("error %v", cmdErr)
	}
}
