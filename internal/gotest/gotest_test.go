package gotest

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func parseFile(t *testing.T, name string) *Report {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "streams", name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := NewParser()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if _, ok := p.Line(sc.Bytes()); !ok {
			t.Errorf("%s: line is not an event: %q", name, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return p.Report()
}

const sample = "example.com/sample/"

func pkgStatus(r *Report) map[string]Status {
	m := map[string]Status{}
	for _, p := range r.Packages {
		m[strings.TrimPrefix(p.Name, sample)] = p.Status
	}
	return m
}

func testStatus(r *Report) map[string]Status {
	m := map[string]Status{}
	for _, t := range r.Tests {
		m[t.Name] = t.Status
	}
	return m
}

func wantMap[V comparable](t *testing.T, what string, got, want map[string]V) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %v, want %v", what, got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s[%s] = %v, want %v (all: %v)", what, k, got[k], v, got)
		}
	}
}

func TestPassingAndSkippedTests(t *testing.T) {
	r := parseFile(t, "pass")
	wantMap(t, "packages", pkgStatus(r), map[string]Status{"pass": Pass, "skip": Pass})
	wantMap(t, "tests", testStatus(r), map[string]Status{"TestAdd": Pass, "TestSkipped": Skip, "TestOnlySkips": Skip})
	if r.Failed() || len(r.Failures) != 0 {
		t.Errorf("failures in a passing run: %+v", r.Failures)
	}
	for _, p := range r.Packages {
		if p.Elapsed <= 0 {
			t.Errorf("package %s: elapsed %v", p.Name, p.Elapsed)
		}
	}
}

func TestFailuresAreLocated(t *testing.T) {
	r := parseFile(t, "fail")
	wantMap(t, "tests", testStatus(r), map[string]Status{"TestPasses": Pass, "TestCompare": Fail, "TestMultiline": Fail, "TestHelper": Fail})
	if !r.Failed() || len(r.Failures) != 3 {
		t.Fatalf("failures: %+v", r.Failures)
	}
	want := []Failure{
		{Kind: KindTest, Test: "TestCompare", File: "fail_test.go", Line: 10, Message: "Sum() = 3, want 4"},
		{Kind: KindTest, Test: "TestMultiline", File: "fail_test.go", Line: 16, Message: "first line\nsecond line"},
		{Kind: KindTest, Test: "TestHelper", File: "fail_test.go", Line: 24, Message: "reported at the caller"},
	}
	for i, w := range want {
		f := r.Failures[i]
		if f.Kind != w.Kind || f.Test != w.Test || f.File != w.File || f.Line != w.Line || f.Message != w.Message || f.Package != sample+"fail" {
			t.Errorf("failure %d = %+v, want %+v", i, f, w)
		}
	}
	if m := r.Failures[1].Messages; len(m) != 2 || m[0].Text != "context before the failure" || m[0].Line != 15 {
		t.Errorf("TestMultiline messages = %+v", m)
	}
	if !strings.Contains(r.Failures[0].Output, "--- FAIL: TestCompare") {
		t.Errorf("output %q", r.Failures[0].Output)
	}
}

func TestPanicIsLocatedInTheTest(t *testing.T) {
	r := parseFile(t, "panic")
	wantMap(t, "tests", testStatus(r), map[string]Status{"TestFine": Pass, "TestPanics": Fail})
	if len(r.Failures) != 1 {
		t.Fatalf("failures: %+v", r.Failures)
	}
	f := r.Failures[0]
	if f.Kind != KindPanic || f.Test != "TestPanics" || filepath.Base(f.File) != "panic_test.go" || f.Line != 9 ||
		f.Message != "panic: assignment to entry in nil map" {
		t.Errorf("failure = %+v", f)
	}
}

func TestSubtestFailuresNameTheLeaves(t *testing.T) {
	r := parseFile(t, "subtests")
	wantMap(t, "tests", testStatus(r), map[string]Status{
		"TestTable": Fail, "TestTable/zero": Pass, "TestTable/one": Fail, "TestTable/two": Pass,
		"TestNested": Fail, "TestNested/outer": Fail, "TestNested/outer/inner": Fail,
		"TestParallel": Fail, "TestParallel/a": Pass, "TestParallel/b": Fail,
	})
	got := map[string]string{}
	for _, f := range r.Failures {
		got[f.Test] = f.File + ":" + itoa(f.Line) + " " + f.Message
	}
	wantMap(t, "failures", got, map[string]string{
		"TestTable/one":          "sub_test.go:12 in=1 is odd",
		"TestNested/outer/inner": "sub_test.go:21 deep failure",
		"TestParallel/b":         "sub_test.go:31 b failed in parallel",
	})
}

func TestBuildAndSetupFailures(t *testing.T) {
	r := parseFile(t, "build")
	wantMap(t, "packages", pkgStatus(r), map[string]Status{"buildfail": Fail, "setupfail": Fail, "pass": Pass})
	got := map[string]Failure{}
	for _, f := range r.Failures {
		got[strings.TrimPrefix(f.Package, sample)] = f
	}
	if len(got) != 2 {
		t.Fatalf("failures: %+v", r.Failures)
	}
	b := got["buildfail"]
	if b.Kind != KindBuild || b.File != "buildfail/build_test.go" || b.Line != 6 ||
		!strings.HasPrefix(b.Message, `build failed: cannot use "not an int"`) {
		t.Errorf("build failure = %+v", b)
	}
	s := got["setupfail"]
	if s.Kind != KindBuild || s.File != "setupfail/setup_test.go" || s.Line != 6 ||
		!strings.HasPrefix(s.Message, "setup failed: no required module provides package example.com/missing/dependency") {
		t.Errorf("setup failure = %+v", s)
	}
	for _, p := range r.Packages {
		if p.BuildFailed != (p.Status == Fail) {
			t.Errorf("package %s: BuildFailed %v", p.Name, p.BuildFailed)
		}
	}
}

func TestTimeoutAndTestMainFailures(t *testing.T) {
	r := parseFile(t, "timeout")
	wantMap(t, "packages", pkgStatus(r), map[string]Status{"timeout": Fail, "testmain": Fail})
	wantMap(t, "tests", testStatus(r), map[string]Status{"TestQuick": Pass, "TestHangs": Fail})
	got := map[string]Failure{}
	for _, f := range r.Failures {
		got[strings.TrimPrefix(f.Package, sample)] = f
	}
	if len(got) != 2 {
		t.Fatalf("failures: %+v", r.Failures)
	}
	h := got["timeout"]
	if h.Kind != KindPanic || h.Test != "TestHangs" || filepath.Base(h.File) != "timeout_test.go" || h.Line != 10 ||
		h.Message != "panic: test timed out after 1s" {
		t.Errorf("timeout failure = %+v", h)
	}
	m := got["testmain"]
	if m.Kind != KindPackage || m.Test != "" || m.Message != "database unreachable" {
		t.Errorf("TestMain failure = %+v", m)
	}
}

// Before Go 1.24 a build failure printed the compiler's errors on stderr and
// only "FAIL pkg [build failed]" in the stream.
func TestOldStyleBuildFailureUsesStrayLines(t *testing.T) {
	p := NewParser()
	for _, line := range []string{
		"# example.com/old",
		"./old_test.go:7:2: undefined: missing",
		`{"Action":"start","Package":"example.com/old"}`,
		`{"Action":"output","Package":"example.com/old","Output":"FAIL\texample.com/old [build failed]\n"}`,
		`{"Action":"fail","Package":"example.com/old","Elapsed":0}`,
	} {
		p.Line([]byte(line))
	}
	r := p.Report()
	if len(r.Failures) != 1 {
		t.Fatalf("failures: %+v", r.Failures)
	}
	f := r.Failures[0]
	if f.Kind != KindBuild || f.File != "./old_test.go" || f.Line != 7 || f.Message != "build failed: undefined: missing" {
		t.Errorf("failure = %+v", f)
	}
}

// A stream cut short (the go command was killed) leaves its packages and
// running tests failed, not passing.
func TestTruncatedStreamFails(t *testing.T) {
	p := NewParser()
	p.Line([]byte(`{"Action":"run","Package":"example.com/cut","Test":"TestSlow"}`))
	p.Line([]byte(`{"Action":"output","Package":"example.com/cut","Test":"TestSlow","Output":"    slow_test.go:3: still going\n"}`))
	r := p.Report()
	if !r.Failed() || len(r.Failures) != 1 || r.Failures[0].Test != "TestSlow" || r.Failures[0].Line != 3 {
		t.Errorf("report = %+v", r)
	}
}

func TestReadableDropsFraming(t *testing.T) {
	for _, c := range []struct {
		ev   Event
		want string
	}{
		{Event{Action: "output", Output: "=== RUN   TestX\n"}, ""},
		{Event{Action: "output", Output: "=== PAUSE TestX\n"}, ""},
		{Event{Action: "output", Output: "--- FAIL: TestX (0.00s)\n"}, "--- FAIL: TestX (0.00s)\n"},
		{Event{Action: "build-output", Output: "x.go:1:1: bad\n"}, "x.go:1:1: bad\n"},
		{Event{Action: "pass"}, ""},
	} {
		if got := Readable(c.ev); got != c.want {
			t.Errorf("Readable(%+v) = %q, want %q", c.ev, got, c.want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func FuzzParser(f *testing.F) {
	for name := range recordings {
		data, err := os.ReadFile(filepath.Join("testdata", "streams", name+".jsonl"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("# pkg\nx.go:1:2: oops\n{\"Action\":\"fail\",\"Package\":\"pkg\"}\n"))
	f.Add([]byte(`{"Action":"output","Package":"p","Test":"T","Output":"panic: x\n\t/a/b_test.go:3 +0x1\n"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := NewParser()
		for line := range strings.Lines(string(data)) {
			p.Line([]byte(line))
		}
		r := p.Report()
		for _, fl := range r.Failures {
			if fl.Line < 0 || fl.Message == "" {
				t.Errorf("failure without a message or with a negative line: %+v", fl)
			}
			if fl.Kind != KindTest && fl.Kind != KindPanic && fl.Kind != KindBuild && fl.Kind != KindPackage {
				t.Errorf("unknown kind %q", fl.Kind)
			}
		}
		failedPkgs := 0
		for _, pk := range r.Packages {
			if pk.Status == Fail {
				failedPkgs++
			}
		}
		if failedPkgs > 0 && len(r.Failures) == 0 {
			t.Errorf("%d packages failed but no failure is reported", failedPkgs)
		}
	})
}

// A test printing without end keeps a bounded amount of output.
func TestOutputIsBounded(t *testing.T) {
	p := NewParser()
	line := []byte(`{"Action":"output","Package":"p","Test":"TestLoud","Output":"` + strings.Repeat("x", 1000) + `\n"}`)
	for range 3000 {
		p.Line(line)
	}
	p.Line([]byte(`{"Action":"fail","Package":"p","Test":"TestLoud"}`))
	p.Line([]byte(`{"Action":"fail","Package":"p"}`))
	r := p.Report()
	if n := len(r.Tests[0].Output); n > maxKept+1001 || n < maxKept {
		t.Errorf("kept %d bytes of output, want about %d", n, maxKept)
	}
	if len(r.Failures) != 1 || r.Failures[0].Message != "failed without a message" {
		t.Errorf("failures: %+v", r.Failures)
	}
}
