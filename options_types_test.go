package modpipe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modpipe/modpipe"
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

// Each kind of error a module can end with has its ErrorKind constant, in
// the summary and, by the same name, in the JSON report.
func TestErrorKinds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fails := modpipe.Task("fails", func(*modpipe.Context) error { return errors.New("nope") })
	panics := modpipe.Task("panics", func(*modpipe.Context) error { panic("boom") })
	slow := modpipe.Task("slow", func(c *modpipe.Context) error { <-c.Done(); return c.Err() }, modpipe.Timeout(time.Millisecond))
	// Runs after the others ended, then cancels the run and waits for it.
	cancelled := modpipe.Task("cancelled", func(c *modpipe.Context) error { cancel(); <-c.Done(); return c.Err() },
		modpipe.DependsOn(fails, panics, slow), modpipe.AlwaysRun())
	ok := modpipe.Task("ok", func(*modpipe.Context) error { return nil })
	p := modpipe.NewPipeline().Add(fails, panics, slow, cancelled, ok)
	p.Output = &bytes.Buffer{}
	p.ContinueOnFailure = true
	s, err := p.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]modpipe.ErrorKind{"fails": modpipe.KindError, "panics": modpipe.KindPanic,
		"slow": modpipe.KindTimeout, "cancelled": modpipe.KindCancel, "ok": ""}
	for name, kind := range want {
		if m, _ := s.Module(name); m.ErrorKind != kind {
			t.Errorf("%s: ErrorKind %q (status %s, error %v), want %q", name, m.ErrorKind, m.Status, m.Err, kind)
		}
	}
	var buf bytes.Buffer
	if err := s.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Modules []struct {
			Name      string `json:"name"`
			ErrorKind string `json:"error_kind"`
		} `json:"modules"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, buf.String())
	}
	for _, m := range rep.Modules {
		if m.ErrorKind != string(want[m.Name]) {
			t.Errorf("report: %s has error_kind %q, want %q", m.Name, m.ErrorKind, want[m.Name])
		}
	}
}
