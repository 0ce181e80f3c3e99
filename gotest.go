package modpipe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modpipe/modpipe/internal/gotest"
	"github.com/modpipe/modpipe/internal/logbuf"
	"github.com/modpipe/modpipe/internal/render"
)

// GoTestReport is what GoTest found: every package and test with its
// outcome and duration, and every failure located at file:line.
type GoTestReport struct {
	Packages []GoTestPackage
	Tests    []GoTestCase
	// Failures lists failing tests (the innermost subtests that failed),
	// packages that did not build, and packages that failed without a
	// failing test (TestMain exiting non-zero).
	Failures []GoTestFailure
	// Duration is the wall time of the go test command.
	Duration time.Duration
}

// GoTestPackage is the outcome of one package.
type GoTestPackage struct {
	Name    string // import path
	Status  string // "pass", "fail" or "skip"
	Elapsed time.Duration
	// BuildFailed is set when the package failed because it did not build
	// or its setup (dependencies) failed.
	BuildFailed bool
}

// GoTestCase is the outcome of one test or subtest ("TestX/case").
type GoTestCase struct {
	Package string
	Name    string
	Status  string // "pass", "fail" or "skip"
	Elapsed time.Duration
}

// GoTestFailure is one failure.
type GoTestFailure struct {
	// Kind is "test", "panic" (a panic or a timeout), "build" (build or
	// setup failed) or "package" (failed without a failing test).
	Kind    string
	Package string
	Test    string // "" unless Kind is "test" or "panic"
	// File and Line locate the failure as go test printed it ("foo_test.go"
	// for t.Error, the compiler's path for build errors); Line is 0 when
	// nothing located it. Path is File resolved to a path on disk, when
	// that was possible.
	File string
	Line int
	Path string
	// Message is the failure's main message: the last file:line message of
	// the test (earlier ones are often t.Log context), the panic, or the
	// first compiler error.
	Message string
	// Output is what the failing test (or the build) printed.
	Output string
}

// String formats the failure as one line, as GoTest's error does:
// "TestX (pkg/path, foo_test.go:12): message".
func (f GoTestFailure) String() string {
	what := f.Test
	if what == "" {
		what = f.Package
	}
	var where []string
	if f.Test != "" {
		where = append(where, f.Package)
	}
	if f.File != "" && f.Line > 0 {
		where = append(where, fmt.Sprintf("%s:%d", filepath.Base(f.File), f.Line))
	}
	msg, _, more := strings.Cut(f.Message, "\n")
	if more {
		msg += " …"
	}
	if len(where) == 0 {
		return what + ": " + msg
	}
	return what + " (" + strings.Join(where, ", ") + "): " + msg
}

// Failed reports whether anything failed.
func (r *GoTestReport) Failed() bool {
	if len(r.Failures) > 0 {
		return true
	}
	for _, p := range r.Packages {
		if p.Status == "fail" {
			return true
		}
	}
	return false
}

// GoTestError is the error GoTest returns when tests fail: its message
// names each failure (up to 20) with file:line, not the tail of the output.
type GoTestError struct {
	Failures []GoTestFailure
	// Err is the go command's *CommandError.
	Err error
}

// goTestErrorMax is how many failures GoTestError's message names.
const goTestErrorMax = 20

// Error names each failure (at most 20; the module's log has them all).
func (e *GoTestError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "go test: %d failed:", len(e.Failures))
	for i, f := range e.Failures {
		if i == goTestErrorMax {
			fmt.Fprintf(&b, "\n  … and %d more (see the module's log)", len(e.Failures)-goTestErrorMax)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(f.String())
	}
	return b.String()
}

// Unwrap returns the error of the go test command itself.
func (e *GoTestError) Unwrap() error { return e.Err }

// GoTest runs `go test -json` with args (flags and packages, as for go test;
// "-C dir" first runs it in dir) under the module's context and returns
// what it found. The module's log shows the tests' output as go test -v
// prints it, not the JSON events. When tests fail the error is a
// *GoTestError naming each failing test with its package and file:line;
// when go test fails without a failing test (a bad flag, no packages) it is
// the *CommandError quoting its output. Under GitHub Actions each located
// failure is also an ::error annotation on its file and line. The report is
// returned in every case where go test started.
func GoTest(c *Context, args ...string) (*GoTestReport, error) {
	if c == nil {
		return nil, errors.New("modpipe.GoTest: nil context")
	}
	dir, args := goTestDir(args)
	full := slices.Clone(args)
	if !slices.ContainsFunc(args, func(a string) bool { return a == "-json" || strings.HasPrefix(a, "-json=") }) {
		full = append([]string{"-json"}, full...)
	}
	if dir != "" {
		full = append([]string{"-C", dir}, full...)
	}
	full = append([]string{"test"}, full...)

	sink := &goTestSink{parser: gotest.NewParser(), log: logbuf.NewLineWriter(c.log, "│ ", false)}
	cmd := c.Command("go", full...)
	cmd.stdoutTo = sink
	res, err := cmd.Run()
	sink.flush()
	if res == nil && err != nil {
		return nil, err // go did not start
	}
	for line := range strings.Lines(res.Stderr) {
		sink.parser.Line([]byte(line)) // build errors of older Go versions
	}
	report := convertGoTest(sink.parser.Report(), res.Duration)
	report.resolvePaths(c, dir)
	c.Logger().Info("go test: " + report.counts())
	var cerr *CommandError
	if errors.As(err, &cerr) && cerr.ExitCode < 0 {
		// Killed (timeout, cancellation) or never really ran: the failures
		// found so far are partial.
		return report, err
	}
	if len(report.Failures) == 0 {
		if err != nil {
			return report, fmt.Errorf("go test failed without a failing test or package in its output: %w", err)
		}
		return report, nil
	}
	if c.r.printer.GitHub {
		report.annotate(c)
	}
	return report, &GoTestError{Failures: report.Failures, Err: err}
}

// goTestDir takes "-C dir" (or "-C=dir") off the front of args.
func goTestDir(args []string) (string, []string) {
	switch {
	case len(args) >= 2 && args[0] == "-C":
		return args[1], args[2:]
	case len(args) >= 1 && strings.HasPrefix(args[0], "-C="):
		return strings.TrimPrefix(args[0], "-C="), args[1:]
	}
	return "", args
}

// goTestSink receives go test's standard output: it feeds each line to the
// parser and writes a readable form into the module's log.
type goTestSink struct {
	mu     sync.Mutex
	parser *gotest.Parser
	log    *logbuf.LineWriter
	lines  logbuf.Splitter
}

func (s *goTestSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines.Write(p, s.line)
	return len(p), nil
}

func (s *goTestSink) line(line []byte) {
	ev, ok := s.parser.Line(line)
	if !ok {
		_, _ = s.log.Write(append(line, '\n'))
		return
	}
	if text := gotest.Readable(ev); text != "" {
		_, _ = s.log.Write([]byte(text))
	}
}

func (s *goTestSink) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines.Flush(s.line)
	s.log.Flush()
}

func convertGoTest(r *gotest.Report, d time.Duration) *GoTestReport {
	out := &GoTestReport{Duration: d}
	for _, p := range r.Packages {
		out.Packages = append(out.Packages, GoTestPackage{Name: p.Name, Status: string(p.Status), Elapsed: p.Elapsed, BuildFailed: p.BuildFailed})
	}
	for _, t := range r.Tests {
		out.Tests = append(out.Tests, GoTestCase{Package: t.Package, Name: t.Name, Status: string(t.Status), Elapsed: t.Elapsed})
	}
	for _, f := range r.Failures {
		out.Failures = append(out.Failures, GoTestFailure{
			Kind: string(f.Kind), Package: f.Package, Test: f.Test, File: f.File, Line: f.Line,
			Message: f.Message, Output: f.Output,
		})
	}
	return out
}

// resolvePaths sets Path on failures: a path go printed is taken relative
// to the directory go test ran in; a bare file name (t.Error prints the base
// name) is looked up in its package's directory, asked of go list.
func (r *GoTestReport) resolvePaths(c *Context, dir string) {
	base, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	var pkgs []string
	for _, f := range r.Failures {
		if f.File != "" && filepath.Base(f.File) == f.File && !slices.Contains(pkgs, f.Package) {
			pkgs = append(pkgs, f.Package)
		}
	}
	dirs := map[string]string{}
	if len(pkgs) > 0 {
		args := []string{"list", "-e", "-f", "{{.ImportPath}}\t{{.Dir}}"}
		if dir != "" {
			args = append([]string{"-C", dir}, args...)
		}
		res, err := c.Command("go", append(args, pkgs...)...).Quiet().Run()
		if err == nil {
			for line := range strings.Lines(res.Stdout) {
				if imp, d, ok := strings.Cut(strings.TrimSpace(line), "\t"); ok && d != "" {
					dirs[imp] = d
				}
			}
		}
	}
	for i := range r.Failures {
		f := &r.Failures[i]
		switch {
		case f.File == "":
		case filepath.IsAbs(f.File):
			f.Path = f.File
		case filepath.Base(f.File) == f.File:
			if d := dirs[f.Package]; d != "" {
				f.Path = filepath.Join(d, f.File)
			}
		default:
			f.Path = filepath.Join(base, f.File)
		}
	}
}

// annotate writes a GitHub Actions ::error command per located failure
// into the module's log, which is printed as is under GitHub Actions. Paths
// are made relative to GITHUB_WORKSPACE (the repository root), which
// annotations need.
func (r *GoTestReport) annotate(c *Context) {
	root := os.Getenv("GITHUB_WORKSPACE")
	for _, f := range r.Failures {
		if f.Path == "" || f.Line <= 0 {
			continue
		}
		file := f.Path
		if root != "" {
			if rel, err := filepath.Rel(root, f.Path); err == nil && !strings.HasPrefix(rel, "..") {
				file = filepath.ToSlash(rel)
			}
		}
		title := f.Package
		if f.Test != "" {
			title = f.Test + " (" + f.Package + ")"
		}
		_, _ = c.log.Write([]byte(render.Annotation(file, f.Line, title, f.Message)))
	}
}

func (r *GoTestReport) counts() string {
	n := map[string]int{}
	for _, t := range r.Tests {
		n[t.Status]++
	}
	return fmt.Sprintf("%d packages, %d tests: %d passed, %d failed, %d skipped; %d failures",
		len(r.Packages), len(r.Tests), n["pass"], n["fail"], n["skip"], len(r.Failures))
}
