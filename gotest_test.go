package modpipe_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modpipe/modpipe"
)

const sampleModule = "internal/gotest/testdata/sample"

// goTestModule runs GoTest with args in the sample module and keeps its
// report and error.
type goTestModule struct {
	report *modpipe.GoTestReport
	err    error
	mod    *modpipe.Module[modpipe.None]
}

func newGoTestModule(name string, args ...string) *goTestModule {
	g := &goTestModule{}
	g.mod = modpipe.Task(name, func(c *modpipe.Context) error {
		g.report, g.err = modpipe.GoTest(c, append([]string{"-C", sampleModule, "-count=1"}, args...)...)
		return g.err
	})
	return g
}

// The error of a failing go test names the failing tests with file:line,
// and under GitHub Actions each becomes an annotation; the log shows
// readable output, not JSON.
func TestGoTestNamesFailingTests(t *testing.T) {
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "")
	t.Setenv("GOPROXY", "off")
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_WORKSPACE", root)

	failing := newGoTestModule("failing", "./fail", "./pass", "./subtests")
	broken := newGoTestModule("broken", "./buildfail")
	passing := newGoTestModule("passing", "./pass")
	missing := newGoTestModule("missing", "./no-such-dir")
	nothing := newGoTestModule("nothing", "-count=many", "./pass")
	s, out := run(t, func(p *modpipe.Pipeline) { p.GitHubActions = true }, failing.mod, broken.mod, passing.mod, missing.mod, nothing.mod)
	status(t, s, map[string]modpipe.Status{
		"failing": modpipe.Failed, "broken": modpipe.Failed, "passing": modpipe.Succeeded, "missing": modpipe.Failed, "nothing": modpipe.Failed,
	})

	m, _ := s.Module("failing")
	for _, want := range []string{
		"go test: 6 failed:",
		"TestCompare (example.com/sample/fail, fail_test.go:10): Sum() = 3, want 4",
		"TestMultiline (example.com/sample/fail, fail_test.go:16): first line …",
		"TestTable/one (example.com/sample/subtests, sub_test.go:12): in=1 is odd",
		"TestNested/outer/inner (example.com/sample/subtests, sub_test.go:21): deep failure",
	} {
		if !strings.Contains(m.Error, want) {
			t.Errorf("error does not contain %q:\n%s", want, m.Error)
		}
	}
	if strings.Contains(m.Error, "PASS") || strings.Contains(m.Error, "last output") {
		t.Errorf("error quotes output instead of naming failures:\n%s", m.Error)
	}
	var gerr *modpipe.GoTestError
	var cerr *modpipe.CommandError
	if !errors.As(failing.err, &gerr) || !errors.As(failing.err, &cerr) || cerr.ExitCode != 1 {
		t.Errorf("error %T does not unwrap to a *GoTestError and a *CommandError with exit code 1", failing.err)
	}

	r := failing.report
	if len(r.Packages) != 3 || !r.Failed() {
		t.Errorf("packages: %+v", r.Packages)
	}
	statuses := map[string]string{}
	for _, tc := range r.Tests {
		statuses[tc.Name] = tc.Status
	}
	if statuses["TestAdd"] != "pass" || statuses["TestSkipped"] != "skip" || statuses["TestCompare"] != "fail" {
		t.Errorf("tests: %v", statuses)
	}
	f := r.Failures[0]
	wantPath := filepath.Join(root, sampleModule, "fail", "fail_test.go")
	if f.Test != "TestCompare" || f.Path != wantPath || f.Line != 10 || !strings.Contains(f.Output, "--- FAIL: TestCompare") {
		t.Errorf("first failure = %+v, want TestCompare at %s:10", f, wantPath)
	}

	wantAnnotation := "::error file=" + sampleModule + "/fail/fail_test.go,line=10,title=TestCompare (example.com/sample/fail)::Sum() = 3, want 4\n"
	if !strings.Contains(out, wantAnnotation) {
		t.Errorf("no annotation %q in output:\n%s", wantAnnotation, out)
	}
	if !strings.Contains(out, "│ --- FAIL: TestCompare (") || strings.Contains(out, `"Action"`) || strings.Contains(out, "=== RUN") {
		t.Errorf("the log should show readable test output without JSON or === RUN lines:\n%s", out)
	}

	m, _ = s.Module("broken")
	if want := "example.com/sample/buildfail (build_test.go:6): build failed: cannot use"; !strings.Contains(m.Error, want) {
		t.Errorf("build failure error does not contain %q:\n%s", want, m.Error)
	}
	if bf := broken.report.Failures; len(bf) != 1 || bf[0].Path != filepath.Join(root, sampleModule, "buildfail", "build_test.go") {
		t.Errorf("build failure: %+v", bf)
	}

	if passing.err != nil || len(passing.report.Failures) != 0 || len(passing.report.Tests) != 2 || passing.report.Packages[0].Elapsed <= 0 {
		t.Errorf("passing: err %v, report %+v", passing.err, passing.report)
	}

	m, _ = s.Module("missing")
	if want := "./no-such-dir: setup failed:"; !strings.Contains(m.Error, want) || !strings.Contains(m.Error, "directory not found") {
		t.Errorf("missing package: error does not contain %q and the cause:\n%s", want, m.Error)
	}
	m, _ = s.Module("nothing")
	if !errors.As(nothing.err, &cerr) || errors.As(nothing.err, &gerr) || !strings.Contains(m.Error, "without a failing test") || !strings.Contains(m.Error, `invalid value "many"`) {
		t.Errorf("go test failing before any test: error %v", nothing.err)
	}
}

// Outside GitHub Actions the log carries no workflow commands.
func TestGoTestWritesNoAnnotationsOutsideGitHub(t *testing.T) {
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "")
	t.Setenv("GOPROXY", "off")
	broken := newGoTestModule("broken", "./buildfail")
	s, out := run(t, nil, broken.mod)
	status(t, s, map[string]modpipe.Status{"broken": modpipe.Failed})
	if strings.Contains(out, "::error") || !strings.Contains(out, "build_test.go:6:14: cannot use") {
		t.Errorf("output:\n%s", out)
	}
	if len(broken.report.Failures) != 1 || broken.report.Failures[0].Kind != "build" {
		t.Errorf("report: %+v", broken.report)
	}
}
