// Command spawner is a test helper for modpipe's process-tree tests: it
// starts a copy of itself that sleeps, writes "<own pid> <child pid>" to a
// file, and then either sleeps too or exits at once.
//
//	spawner wait FILE   stay running (until killed, at most 10 minutes)
//	spawner exit FILE   exit as soon as FILE is written, leaving the child
//
// The child's standard streams are not the parent's, so a child left running
// holds no pipe of whoever ran the parent. It is plain Go, so the same test
// runs on every OS (command_windows_test.go uses it).
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// lifetime bounds every process this helper starts.
const lifetime = 10 * time.Minute

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "spawner:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	if len(args) == 1 && args[0] == "child" {
		time.Sleep(lifetime)
		return nil
	}
	if len(args) != 2 || (args[0] != "wait" && args[0] != "exit") {
		return fmt.Errorf("usage: spawner wait|exit FILE (got %q)", args)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding own executable: %w", err)
	}
	child := exec.Command(self, "child")
	if err := child.Start(); err != nil {
		return fmt.Errorf("starting the child: %w", err)
	}
	// Written then renamed, so a reader never sees half the line.
	tmp := args[1] + ".tmp"
	line := fmt.Sprintf("%d %d\n", os.Getpid(), child.Process.Pid)
	if err := os.WriteFile(tmp, []byte(line), 0o644); err != nil {
		return fmt.Errorf("writing the pids: %w", err)
	}
	if err := os.Rename(tmp, filepath.Clean(args[1])); err != nil {
		return fmt.Errorf("writing the pids: %w", err)
	}
	if args[0] == "wait" {
		time.Sleep(lifetime)
	}
	return nil
}
