//go:build windows

package modpipe_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/modpipe/modpipe"
)

// buildSpawner builds internal/testprog/spawner, which starts a child of its
// own and writes both pids to a file.
func buildSpawner(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "spawner.exe")
	out, err := exec.Command("go", "build", "-o", bin, "./internal/testprog/spawner").CombinedOutput()
	if err != nil {
		t.Fatalf("building the spawner helper: %v\n%s", err, out)
	}
	return bin
}

// awaitPids waits (bounded) for the spawner's pid file and returns the
// spawner's pid and its child's.
func awaitPids(ctx context.Context, file string) ([2]uint32, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if data, err := os.ReadFile(file); err == nil {
			var pids [2]uint32
			fields := strings.Fields(string(data))
			if len(fields) != 2 {
				return pids, errors.New("pid file " + file + " holds " + strconv.Quote(string(data)))
			}
			for i, f := range fields {
				n, err := strconv.ParseUint(f, 10, 32)
				if err != nil {
					return pids, err
				}
				pids[i] = uint32(n)
			}
			return pids, nil
		}
		select {
		case <-ctx.Done():
			return [2]uint32{}, errors.New("the spawner never wrote " + file)
		case <-tick.C:
		}
	}
}

// exited waits up to limit for process pid to end and reports whether it did.
func exited(t *testing.T, pid uint32, limit time.Duration) bool {
	t.Helper()
	h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return true // no such process any more
	}
	defer windows.CloseHandle(h)
	ev, err := windows.WaitForSingleObject(h, uint32(limit.Milliseconds()))
	if err != nil {
		t.Fatalf("waiting for process %d: %v", pid, err)
	}
	return ev == windows.WAIT_OBJECT_0
}

func TestCommandCancellationEndsTheWholeProcessTree(t *testing.T) {
	bin := buildSpawner(t)
	pidFile := filepath.Join(t.TempDir(), "pids")
	var cmdErr error
	m := modpipe.Task("tree", func(c *modpipe.Context) error {
		_, cmdErr = c.Command(bin, "wait", pidFile).Run()
		return cmdErr
	})
	p := modpipe.NewPipeline().Add(m)
	p.Output = io.Discard

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type found struct {
		pids [2]uint32
		err  error
	}
	got := make(chan found, 1)
	go func() {
		wait, stop := context.WithTimeout(ctx, 2*time.Minute)
		defer stop()
		pids, err := awaitPids(wait, pidFile)
		got <- found{pids, err}
		cancel() // both processes run: cancel the run
	}()
	start := time.Now()
	_, _ = p.Run(ctx)
	f := <-got
	if f.err != nil {
		t.Fatal(f.err)
	}
	if elapsed := time.Since(start); elapsed > time.Minute {
		t.Errorf("the cancelled command held the run for %s", elapsed)
	}
	if cmdErr == nil || !strings.Contains(cmdErr.Error(), "killed") {
		t.Errorf("command error %v, want one saying it was killed", cmdErr)
	}
	for i, who := range []string{"command", "its child"} {
		if !exited(t, f.pids[i], 20*time.Second) {
			t.Errorf("%s (pid %d) still runs after the command was cancelled", who, f.pids[i])
		}
	}
}

func TestCommandThatExitsLeavesItsBackgroundProcessesRunning(t *testing.T) {
	bin := buildSpawner(t)
	pidFile := filepath.Join(t.TempDir(), "pids")
	m := modpipe.Task("detach", func(c *modpipe.Context) error {
		_, err := c.Command(bin, "exit", pidFile).Run()
		return err
	})
	s, _ := run(t, nil, m)
	status(t, s, map[string]modpipe.Status{"detach": modpipe.Succeeded})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pids, err := awaitPids(ctx, pidFile)
	if err != nil {
		t.Fatal(err)
	}
	h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_TERMINATE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pids[1])
	if err != nil {
		t.Fatalf("the child (pid %d) of a command that exited on its own did not keep running: %v", pids[1], err)
	}
	defer windows.CloseHandle(h)
	if ev, _ := windows.WaitForSingleObject(h, 0); ev == windows.WAIT_OBJECT_0 {
		t.Errorf("the child (pid %d) of a command that exited on its own was ended with it", pids[1])
	}
	_ = windows.TerminateProcess(h, 1)
}
