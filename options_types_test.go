package modpipe_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// compile builds a one-file program that imports modpipe, with every type
// error reported (-gcflags=-e), and returns the compiler's output.
func compile(t *testing.T, body string) (string, error) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "main.go")
	prog := "package main\n\nimport (\n\t\"time\"\n\n\t\"github.com/modpipe/modpipe\"\n)\n\nvar _ = time.Second\n\nfunc main() {\n" + body + "}\n"
	if err := os.WriteFile(src, []byte(prog), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-gcflags=-e", "-o", os.DevNull, src).CombinedOutput()
	return string(out), err
}

// Option configures a module and RetryOption a retry; neither may be passed,
// or converted, where the other is expected.
func TestOptionAndRetryOptionDoNotMix(t *testing.T) {
	// The harness compiles correct uses, so the failures below are the
	// type errors and nothing else.
	if out, err := compile(t, "\t_ = modpipe.Task(\"x\", nil, modpipe.Timeout(time.Second), modpipe.Retry(2, modpipe.Backoff(0, 0), modpipe.RetryIf(nil)))\n"); err != nil {
		t.Fatalf("a correct use of Retry does not compile: %v\n%s", err, out)
	}
	misuses := []string{
		"_ = modpipe.Retry(2, modpipe.Timeout(time.Second))",
		"_ = modpipe.RetryOption(modpipe.Timeout(time.Second))",
		"_ = modpipe.Task(\"x\", nil, modpipe.Backoff(0, 0))",
		"_ = modpipe.Option(modpipe.Backoff(0, 0))",
	}
	var body strings.Builder
	for _, m := range misuses {
		body.WriteString("\t" + m + "\n")
	}
	out, err := compile(t, body.String())
	if err == nil {
		t.Fatalf("mixing Option and RetryOption compiles:\n%s", body.String())
	}
	const firstLine = 12 // the line of the first statement in main
	for k, m := range misuses {
		at := fmt.Sprintf("main.go:%d:", firstLine+k)
		found := false
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, at) && (strings.Contains(l, "cannot use") || strings.Contains(l, "cannot convert")) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s compiles; want a type error at %s. Compiler output:\n%s", m, at, out)
		}
	}
}
