package modpipe

import (
	"strings"
	"sync/atomic"
	"testing"
)

// --help names the workflow subcommand and where its own help is.
func TestMainHelpMentionsWorkflowSubcommand(t *testing.T) {
	p := NewPipeline().Add(Task("a", func(*Context) error { return nil }))
	code, _, errOut := runMain(t, p, nil, "--help")
	if code != 0 {
		t.Fatalf("--help exits %d\n%s", code, errOut)
	}
	_, sub, ok := strings.Cut(errOut, "Subcommands:")
	if !ok || !strings.Contains(sub, "workflow github|gitlab") || !strings.Contains(sub, "workflow -h") {
		t.Errorf("--help should end with the workflow subcommand and point to its -h:\n%s", errOut)
	}
}

// `go run ./prog -- --help` passes the "--" on: one leading "--" is dropped.
func TestMainDropsOneLeadingDoubleDash(t *testing.T) {
	var ran atomic.Int32
	p := NewPipeline().Add(Task("a", func(*Context) error { ran.Add(1); return nil }))
	code, _, errOut := runMain(t, p, nil, "--", "--help")
	if code != 0 || !strings.Contains(errOut, "-only NAME") {
		t.Fatalf("-- --help: exit %d, want 0 with the usage:\n%s", code, errOut)
	}
	if ran.Load() != 0 {
		t.Error("-- --help ran the pipeline")
	}
	code, out, errOut := runMain(t, p, nil, "--", "--only", "a")
	if code != 0 || ran.Load() != 1 || !strings.Contains(out, "Run succeeded") {
		t.Fatalf("-- --only a: exit %d, ran %d times, want 0 and once:\n%s%s", code, ran.Load(), out, errOut)
	}
	// Only one: a second "--" ends the flags, and what follows is an argument.
	code, _, errOut = runMain(t, p, nil, "--", "--", "--help")
	if code != 2 || !strings.Contains(errOut, `unexpected argument "--help"`) {
		t.Errorf("-- -- --help: exit %d, want 2 naming the argument:\n%s", code, errOut)
	}
}
