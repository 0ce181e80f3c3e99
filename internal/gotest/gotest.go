// Package gotest reads the event stream of `go test -json` (test2json) into
// a report of packages, tests and failures, each failure located at the
// file:line the test (or its panic, or the compiler) named.
//
// The stream is read line by line as it arrives (Parser.Line), so a caller
// can log a readable form of the output while the tests run. Lines that are
// not JSON events (what older Go versions printed for build failures, or
// anything a test binary wrote around test2json) are kept as stray output.
package gotest

import (
	"bytes"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event is one test2json event (`go doc test2json`).
type Event struct {
	Time    time.Time `json:",omitzero"`
	Action  string
	Package string  `json:",omitempty"`
	Test    string  `json:",omitempty"`
	Elapsed float64 `json:",omitempty"` // seconds
	Output  string  `json:",omitempty"`
	// FailedBuild names the package whose build failure failed this one.
	FailedBuild string `json:",omitempty"`
	// ImportPath identifies the package of build-output and build-fail
	// events (Go 1.24 and later).
	ImportPath string `json:",omitempty"`
}

// Status is the outcome of a package or a test.
type Status string

// Outcomes. A test that never reported one (its package ended while it was
// running, as on a timeout) is counted as failed.
const (
	Pass Status = "pass" // passed
	Fail Status = "fail" // failed, panicked, timed out, or never reported
	Skip Status = "skip" // skipped
)

// Kind tells what a failure is.
type Kind string

// Failure kinds.
const (
	// KindTest is a test that failed through t.Error, t.Fatal and the like.
	KindTest Kind = "test"
	// KindPanic is a test that panicked or timed out.
	KindPanic Kind = "panic"
	// KindBuild is a package whose test binary did not build, or whose
	// setup (dependencies, module graph) failed.
	KindBuild Kind = "build"
	// KindPackage is a package that failed without a failing test: TestMain
	// exiting non-zero, a test binary that crashed outside any test.
	KindPackage Kind = "package"
)

// Package is the outcome of one package.
type Package struct {
	Name    string // import path
	Status  Status
	Elapsed time.Duration
	// BuildFailed is set when the package failed because it (or a package
	// it needs) did not build or its setup failed.
	BuildFailed bool
	// NoTests is set for a package without test files.
	NoTests bool
}

// Test is the outcome of one test or subtest ("TestX/case").
type Test struct {
	Package string
	Name    string
	Status  Status
	Elapsed time.Duration
	// Output is what the test printed, framing lines included.
	Output string
}

// Message is one file:line message of a failing test (t.Error, t.Log...) or
// of a compiler error.
type Message struct {
	File string // as printed: a base name for t.Error, a path for the compiler and panics
	Line int
	Text string
}

// Failure is one thing that failed, located where possible.
type Failure struct {
	Kind    Kind
	Package string
	// Test is the failing test ("" for build and package failures). A test
	// whose failure is explained by failing subtests is not listed itself.
	Test string
	// File and Line locate the failure (File as printed, see Message); Line
	// is 0 when nothing located it.
	File string
	Line int
	// Message is the main message: the last file:line message of the test
	// (a Fatal ends the test, so it is the last; earlier ones may be logs),
	// the panic, or the first compiler error.
	Message string
	// Messages are every file:line message, in order.
	Messages []Message
	// Output is the output of the test (or package, or build) that failed.
	Output string
}

// Report is what a `go test -json` run produced.
type Report struct {
	Packages []Package
	Tests    []Test
	Failures []Failure
	// Stray is output that was not a JSON event.
	Stray []string
}

// Failed reports whether anything failed.
func (r *Report) Failed() bool {
	if len(r.Failures) > 0 {
		return true
	}
	for _, p := range r.Packages {
		if p.Status == Fail {
			return true
		}
	}
	return false
}

// Parser accumulates a stream of events. The zero value is not ready: use
// NewParser.
type Parser struct {
	pkgs   map[string]*pkgState
	order  []string // packages in order of first appearance
	builds map[string]*strings.Builder
	stray  []string
}

type pkgState struct {
	pkg  Package
	done bool
	// failedBuild is the import path whose build failure failed the package.
	failedBuild string
	output      strings.Builder // package-level output (outside tests)
	tests       map[string]*testState
	order       []string
}

type testState struct {
	test   Test
	output strings.Builder
}

// NewParser returns an empty parser.
func NewParser() *Parser {
	return &Parser{pkgs: map[string]*pkgState{}, builds: map[string]*strings.Builder{}}
}

// maxKept bounds the output kept per test, per package and per build, so
// that a test printing without end cannot exhaust memory.
const maxKept = 1 << 20

// Line feeds one line of the stream (without its newline) and returns the
// event it held, or false when the line is not a JSON event (it is then
// kept as stray output).
func (p *Parser) Line(line []byte) (Event, bool) {
	line = bytes.TrimRight(line, "\r\n")
	var ev Event
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil || ev.Action == "" {
		if len(bytes.TrimSpace(line)) > 0 && len(p.stray) < 10000 {
			p.stray = append(p.stray, string(line))
		}
		return Event{}, false
	}
	p.Event(ev)
	return ev, true
}

// Event feeds one decoded event.
func (p *Parser) Event(ev Event) {
	switch ev.Action {
	case "build-output":
		b := p.builds[ev.ImportPath]
		if b == nil {
			b = &strings.Builder{}
			p.builds[ev.ImportPath] = b
		}
		appendBounded(b, ev.Output)
		return
	case "build-fail":
		return
	}
	if ev.Package == "" {
		return
	}
	ps := p.pkg(ev.Package)
	if ev.Test == "" {
		switch ev.Action {
		case "output":
			appendBounded(&ps.output, ev.Output)
			if strings.HasPrefix(ev.Output, "?") && strings.Contains(ev.Output, "[no test files]") {
				ps.pkg.NoTests = true
			}
		case "pass", "fail", "skip":
			ps.done = true
			ps.pkg.Status = Status(ev.Action)
			ps.pkg.Elapsed = seconds(ev.Elapsed)
			ps.failedBuild = ev.FailedBuild
			if ev.FailedBuild != "" || strings.Contains(ps.output.String(), "[build failed]") || strings.Contains(ps.output.String(), "[setup failed]") {
				ps.pkg.BuildFailed = ev.Action == "fail"
			}
		}
		return
	}
	t := ps.test(ev.Test)
	switch ev.Action {
	case "output":
		appendBounded(&t.output, ev.Output)
	case "pass", "fail", "skip":
		t.test.Status = Status(ev.Action)
		t.test.Elapsed = seconds(ev.Elapsed)
	}
}

func (p *Parser) pkg(name string) *pkgState {
	ps := p.pkgs[name]
	if ps == nil {
		ps = &pkgState{pkg: Package{Name: name}, tests: map[string]*testState{}}
		p.pkgs[name] = ps
		p.order = append(p.order, name)
	}
	return ps
}

func (ps *pkgState) test(name string) *testState {
	t := ps.tests[name]
	if t == nil {
		t = &testState{test: Test{Package: ps.pkg.Name, Name: name}}
		ps.tests[name] = t
		ps.order = append(ps.order, name)
	}
	return t
}

func appendBounded(b *strings.Builder, s string) {
	if b.Len() < maxKept {
		b.WriteString(s)
	}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Report returns what the stream held so far. Tests without an outcome in a
// package that ended failed are counted as failed (the package timed out or
// crashed while they ran).
func (p *Parser) Report() *Report {
	r := &Report{Stray: slices.Clone(p.stray)}
	for _, name := range p.order {
		ps := p.pkgs[name]
		pkg := ps.pkg
		if !ps.done {
			pkg.Status = Fail
		}
		r.Packages = append(r.Packages, pkg)
		var failed []Test
		for _, tn := range ps.order {
			t := ps.tests[tn].test
			t.Output = ps.tests[tn].output.String()
			if t.Status == "" && pkg.Status == Fail {
				t.Status = Fail
			}
			r.Tests = append(r.Tests, t)
			if t.Status == Fail {
				failed = append(failed, t)
			}
		}
		testFailures := 0
		for i := range failed {
			f := testFailure(pkg.Name, &failed[i])
			if f.Kind == KindTest && len(f.Messages) == 0 && hasFailedSubtest(failed[i].Name, failed) {
				continue // explained by its subtests
			}
			r.Failures = append(r.Failures, f)
			testFailures++
		}
		switch {
		case pkg.BuildFailed:
			r.Failures = append(r.Failures, p.buildFailure(ps))
		case pkg.Status == Fail && testFailures == 0:
			out := packageOutput(ps.output.String(), pkg.Name)
			r.Failures = append(r.Failures, Failure{
				Kind: KindPackage, Package: pkg.Name, Output: out,
				Message: firstLines(out, 3, "the package failed without a failing test (TestMain exited non-zero, or the test binary crashed)"),
			})
		}
	}
	return r
}

func hasFailedSubtest(name string, failed []Test) bool {
	for _, t := range failed {
		if strings.HasPrefix(t.Name, name+"/") {
			return true
		}
	}
	return false
}

var (
	// locRE matches the lines the testing package prints for t.Error,
	// t.Log and friends: an indentation, file.go:line: and the message.
	locRE = regexp.MustCompile(`^(\s+)([^\s:]+\.go):(\d+): ?(.*)$`)
	// frameRE matches a file line of a goroutine trace.
	frameRE = regexp.MustCompile(`^\t(\S+\.go):(\d+)(?: \+0x[0-9a-f]+)?$`)
	// compileRE matches a compiler or go command error: file.go:line[:col]: msg.
	compileRE = regexp.MustCompile(`^(\S+\.go):(\d+)(?::\d+)?: (.*)$`)
)

// testFailure locates the failure of test t.
func testFailure(pkg string, t *Test) Failure {
	f := Failure{Kind: KindTest, Package: pkg, Test: t.Name, Output: t.Output}
	lines := strings.Split(t.Output, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.HasPrefix(line, "panic: ") {
			f.Kind = KindPanic
			f.Message = strings.TrimSuffix(strings.TrimPrefix(line, "panic: "), " [recovered, repanicked]")
			f.Message = "panic: " + strings.TrimSuffix(f.Message, " [recovered]")
			f.File, f.Line = panicFrame(pkg, lines[i+1:])
			return f
		}
		m := locRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[3])
		text := m[4]
		indent := len(m[1])
		// Continuation lines are indented deeper than the location line.
		for i+1 < len(lines) && len(lines[i+1]) > indent+1 && strings.TrimSpace(lines[i+1][:indent+1]) == "" && !locRE.MatchString(lines[i+1]) {
			i++
			text += "\n" + strings.TrimSpace(lines[i])
		}
		f.Messages = append(f.Messages, Message{File: m[2], Line: n, Text: text})
	}
	if k := len(f.Messages); k > 0 {
		last := f.Messages[k-1]
		f.File, f.Line, f.Message = last.File, last.Line, last.Text
		if strings.TrimSpace(f.Message) == "" {
			f.Message = "(empty message)"
		}
	} else {
		f.Message = "failed without a message"
	}
	return f
}

// panicFrame returns the first frame of the trace inside package pkg (the
// function line reads "pkg.Func(...)"), else the first frame in a _test.go
// file.
func panicFrame(pkg string, lines []string) (string, int) {
	var fallback string
	var fallbackLine int
	for i, line := range lines {
		m := frameRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		if i > 0 && strings.HasPrefix(lines[i-1], pkg+".") {
			return m[1], n
		}
		if fallback == "" && strings.HasSuffix(m[1], "_test.go") {
			fallback, fallbackLine = m[1], n
		}
	}
	return fallback, fallbackLine
}

// buildFailure describes a package that did not build, from the build
// output (Go 1.24+ puts it in the stream; older versions print it on
// stderr, which the caller passes as stray lines).
func (p *Parser) buildFailure(ps *pkgState) Failure {
	f := Failure{Kind: KindBuild, Package: ps.pkg.Name}
	var out strings.Builder
	if b := p.builds[ps.failedBuild]; b != nil {
		out.WriteString(b.String())
	} else {
		// Older Go: no build events; a build-output under the package's own
		// name, or the stray stderr lines.
		for _, imp := range slices.Sorted(maps.Keys(p.builds)) {
			if imp == ps.pkg.Name || strings.HasPrefix(imp, ps.pkg.Name+" ") {
				out.WriteString(p.builds[imp].String())
			}
		}
	}
	if out.Len() == 0 {
		out.WriteString(strings.Join(p.stray, "\n"))
	}
	f.Output = out.String()
	for line := range strings.Lines(f.Output) {
		line = strings.TrimRight(line, "\n")
		if m := compileRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[2])
			f.Messages = append(f.Messages, Message{File: m[1], Line: n, Text: m[3]})
		}
	}
	kind := "build failed"
	if strings.Contains(ps.output.String(), "[setup failed]") {
		kind = "setup failed"
	}
	if len(f.Messages) > 0 {
		f.File, f.Line = f.Messages[0].File, f.Messages[0].Line
		f.Message = kind + ": " + f.Messages[0].Text
	} else {
		f.Message = firstLines(packageOutput(f.Output, ps.pkg.Name), 3, kind)
		if !strings.HasPrefix(f.Message, kind) {
			f.Message = kind + ": " + f.Message
		}
	}
	return f
}

// packageOutput drops the lines every failing package prints ("FAIL",
// "FAIL\tpkg\t0.1s", "# pkg") from out.
func packageOutput(out, pkg string) string {
	var b strings.Builder
	for line := range strings.Lines(out) {
		t := strings.TrimSpace(line)
		if t == "FAIL" || strings.HasPrefix(t, "FAIL\t"+pkg) || strings.HasPrefix(t, "# "+pkg) || t == "" {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// firstLines returns up to n non-empty lines of s joined by "; ", or def
// when s has none.
func firstLines(s string, n int, def string) string {
	var lines []string
	for line := range strings.Lines(s) {
		if t := strings.TrimSpace(line); t != "" && len(lines) < n {
			lines = append(lines, t)
		}
	}
	if len(lines) == 0 {
		return def
	}
	return strings.Join(lines, "; ")
}

// Readable returns the text of an output event as a person reads it, or ""
// for framing lines that only add noise to a log ("=== RUN", "=== PAUSE",
// "=== CONT", "=== NAME").
func Readable(ev Event) string {
	if ev.Action != "output" && ev.Action != "build-output" {
		return ""
	}
	if strings.HasPrefix(ev.Output, "=== ") {
		return ""
	}
	return ev.Output
}
