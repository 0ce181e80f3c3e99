package modpipe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modpipe/modpipe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run runs mods in a fresh pipeline and returns the summary and the output.
func run(t *testing.T, configure func(p *modpipe.Pipeline), mods ...modpipe.AnyModule) (*modpipe.Summary, string) {
	t.Helper()
	var out bytes.Buffer
	p := modpipe.NewPipeline().Add(mods...)
	p.Output = &out
	if configure != nil {
		configure(p)
	}
	s, err := p.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return s, out.String()
}

func status(t *testing.T, s *modpipe.Summary, want map[string]modpipe.Status) {
	t.Helper()
	for name, st := range want {
		m, ok := s.Module(name)
		if !ok {
			t.Errorf("no module %s in summary", name)
			continue
		}
		if m.Status != st {
			t.Errorf("%s: %s (reason %q, error %q), want %s", name, m.Status, m.Reason, m.Error, st)
		}
	}
}

type info struct {
	Version string
	Files   int
}

func TestTypedResultsFlowThroughADiamond(t *testing.T) {
	src := modpipe.New("src", func(*modpipe.Context) (info, error) { return info{Version: "1.2.3", Files: 4}, nil })
	left := modpipe.New("left", func(c *modpipe.Context) (int, error) {
		i, err := modpipe.Result(c, src)
		return i.Files * 10, err
	}, modpipe.DependsOn(src))
	right := modpipe.New("right", func(c *modpipe.Context) (string, error) {
		i, err := modpipe.Result(c, src)
		return "v" + i.Version, err
	}, modpipe.DependsOn(src))
	var got string
	join := modpipe.Task("join", func(c *modpipe.Context) error {
		l, err := modpipe.Result(c, left)
		if err != nil {
			return err
		}
		r, err := modpipe.Result(c, right)
		if err != nil {
			return err
		}
		got = fmt.Sprintf("%s/%d", r, l)
		return nil
	}, modpipe.DependsOn(left, right))
	s, _ := run(t, nil, src, left, right, join)
	status(t, s, map[string]modpipe.Status{"src": modpipe.Succeeded, "left": modpipe.Succeeded, "right": modpipe.Succeeded, "join": modpipe.Succeeded})
	if got != "v1.2.3/40" {
		t.Errorf("join saw %q, want v1.2.3/40", got)
	}
	if s.Failed() || s.ExitCode() != 0 {
		t.Error("run reported as failed")
	}
}

func TestResultOfUndeclaredDependencyIsAnError(t *testing.T) {
	a := modpipe.New("a", func(*modpipe.Context) (int, error) { return 1, nil })
	b := modpipe.New("b", func(c *modpipe.Context) (int, error) { return modpipe.Result(c, a) },
		modpipe.DependsOnOptional()) // no dependency on a
	s, _ := run(t, func(p *modpipe.Pipeline) { p.ContinueOnFailure = true }, a, b)
	m, _ := s.Module("b")
	if m.Status != modpipe.Failed || !strings.Contains(m.Error, "module b read the result of a, which is not one of its dependencies") {
		t.Errorf("b: %s %q", m.Status, m.Error)
	}
}

func TestResultOfAFailedOptionalDependency(t *testing.T) {
	bad := modpipe.New("bad", func(*modpipe.Context) (int, error) { return 0, errors.New("broken") })
	var resErr error
	after := modpipe.Task("after", func(c *modpipe.Context) error {
		_, resErr = modpipe.Result(c, bad)
		return nil
	}, modpipe.DependsOnOptional(bad))
	s, _ := run(t, func(p *modpipe.Pipeline) { p.ContinueOnFailure = true }, bad, after)
	status(t, s, map[string]modpipe.Status{"bad": modpipe.Failed, "after": modpipe.Succeeded})
	if !errors.Is(resErr, modpipe.ErrNoResult) || !strings.Contains(resErr.Error(), "broken") {
		t.Errorf("Result error %v", resErr)
	}
}

func TestValidationRejectsBadGraphs(t *testing.T) {
	noop := func(*modpipe.Context) error { return nil }
	a := modpipe.Task("a", noop)
	orphan := modpipe.Task("orphan", noop)
	needsOrphan := modpipe.Task("needs-orphan", noop, modpipe.DependsOn(orphan))
	dupA := modpipe.Task("a", noop)
	badOS := modpipe.Task("bad-os", noop, modpipe.OnOS("plan9"))
	nilFn := modpipe.Task("nil-fn", nil)
	badBackoff := modpipe.Task("bad-backoff", noop, modpipe.Retry(1, modpipe.Backoff(-time.Second, 0)))
	// Cycles cannot be built through the public API (a module's
	// dependencies exist before it does); internal/graph tests the check.

	cases := []struct {
		name string
		mods []modpipe.AnyModule
		want []string
	}{
		{"duplicate", []modpipe.AnyModule{a, dupA}, []string{`"a" is added twice`}},
		{"same module twice", []modpipe.AnyModule{a, a}, []string{`"a" is added twice`}},
		{"unregistered dependency", []modpipe.AnyModule{needsOrphan}, []string{`"needs-orphan" depends on "orphan", which is not added`}},
		{"option errors", []modpipe.AnyModule{badOS, nilFn, badBackoff}, []string{`unknown OS "plan9"`, `"nil-fn": its function is nil`, `"bad-backoff": Backoff(-1s, 0s) is negative`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ran atomic.Bool
			p := modpipe.NewPipeline().Add(tc.mods...)
			p.Add(modpipe.Task("sentinel", func(*modpipe.Context) error { ran.Store(true); return nil }))
			_, err := p.Run(context.Background())
			if err == nil {
				t.Fatal("no validation error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if ran.Load() {
				t.Error("a module ran although validation failed")
			}
		})
	}
}

func TestFilters(t *testing.T) {
	noop := func(*modpipe.Context) error { return nil }
	gen := modpipe.Task("gen", noop, modpipe.Category("build"))
	compile := modpipe.Task("compile", noop, modpipe.DependsOn(gen), modpipe.Category("build"))
	unit := modpipe.Task("unit", noop, modpipe.DependsOn(compile), modpipe.Category("test"))
	docs := modpipe.Task("docs", noop, modpipe.Category("docs"))
	mods := []modpipe.AnyModule{gen, compile, unit, docs}
	S, K := modpipe.Succeeded, modpipe.Skipped

	cases := []struct {
		name      string
		configure func(p *modpipe.Pipeline)
		want      map[string]modpipe.Status
	}{
		{"only with dependencies", func(p *modpipe.Pipeline) { p.Only = []string{"compile"} }, map[string]modpipe.Status{"gen": S, "compile": S, "unit": K, "docs": K}},
		{"skip propagates", func(p *modpipe.Pipeline) { p.Skip = []string{"compile"} }, map[string]modpipe.Status{"gen": S, "compile": K, "unit": K, "docs": S}},
		{"category", func(p *modpipe.Pipeline) { p.Categories = []string{"test"} }, map[string]modpipe.Status{"gen": S, "compile": S, "unit": S, "docs": K}},
		{"ignore category", func(p *modpipe.Pipeline) { p.IgnoreCategories = []string{"docs"} }, map[string]modpipe.Status{"gen": S, "compile": S, "unit": S, "docs": K}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := run(t, tc.configure, mods...)
			status(t, s, tc.want)
			if s.Failed() {
				t.Error("filtered run failed")
			}
		})
	}

	for _, bad := range []func(p *modpipe.Pipeline){
		func(p *modpipe.Pipeline) { p.Only = []string{"nope"} },
		func(p *modpipe.Pipeline) { p.Skip = []string{"nope"} },
		func(p *modpipe.Pipeline) { p.Categories = []string{"nope"} },
		func(p *modpipe.Pipeline) { p.IgnoreCategories = []string{"nope"} },
	} {
		p := modpipe.NewPipeline().Add(mods...)
		bad(p)
		_, err := p.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("unknown filter name: error %v", err)
		}
	}
}

func thisOS() string {
	if runtime.GOOS == "darwin" {
		return "macos"
	}
	return runtime.GOOS
}

func otherOS() string {
	if thisOS() == "windows" {
		return "linux"
	}
	return "windows"
}

func TestOnOSAndMatrixOnASingleInstance(t *testing.T) {
	noop := func(*modpipe.Context) error { return nil }
	here := modpipe.Task("here", noop, modpipe.OnOS(thisOS()))
	there := modpipe.Task("there", noop, modpipe.OnOS(otherOS()))
	var targets atomic.Value
	cross := modpipe.New("cross", func(c *modpipe.Context) (string, error) {
		targets.Store(c.MatrixTarget())
		return "report-" + c.MatrixTarget(), nil
	}, modpipe.MatrixTarget(thisOS(), otherOS()))
	var collected map[string]string
	collect := modpipe.Task("collect", func(c *modpipe.Context) error {
		var err error
		collected, err = modpipe.MatrixResults(c, cross)
		return err
	}, modpipe.DependsOn(cross))
	s, _ := run(t, nil, here, there, cross, collect)
	status(t, s, map[string]modpipe.Status{
		"here": modpipe.Succeeded, "there": modpipe.Skipped,
		"cross[" + thisOS() + "]": modpipe.Succeeded, "cross[" + otherOS() + "]": modpipe.Skipped,
		"collect": modpipe.Succeeded,
	})
	if m, _ := s.Module("there"); !strings.Contains(m.Reason, "runs on "+otherOS()+" only") {
		t.Errorf("there: reason %q", m.Reason)
	}
	if m, _ := s.Module("cross[" + otherOS() + "]"); !strings.Contains(m.Reason, "needs a "+otherOS()+" instance") {
		t.Errorf("other variant: reason %q", m.Reason)
	}
	if targets.Load() != thisOS() {
		t.Errorf("MatrixTarget() = %v", targets.Load())
	}
	if len(collected) != 1 || collected[thisOS()] != "report-"+thisOS() {
		t.Errorf("MatrixResults = %v", collected)
	}
}

func TestConditions(t *testing.T) {
	flag := modpipe.New("flag", func(*modpipe.Context) (bool, error) { return true, nil })
	skipped := modpipe.Task("skipped", func(*modpipe.Context) error { return errors.New("must not run") },
		modpipe.DependsOn(flag),
		modpipe.SkipIf("flag is set", func(c *modpipe.Context) bool { v, _ := modpipe.Result(c, flag); return v }))
	notMet := modpipe.Task("not-met", func(*modpipe.Context) error { return errors.New("must not run") },
		modpipe.RunIf("on a tag", func(*modpipe.Context) bool { return false }))
	met := modpipe.Task("met", func(*modpipe.Context) error { return nil },
		modpipe.RunIf("always true", func(*modpipe.Context) bool { return true }))
	after := modpipe.Task("after", func(*modpipe.Context) error { return nil }, modpipe.DependsOn(skipped))
	s, _ := run(t, nil, flag, skipped, notMet, met, after)
	status(t, s, map[string]modpipe.Status{"skipped": modpipe.Skipped, "not-met": modpipe.Skipped, "met": modpipe.Succeeded, "after": modpipe.Skipped})
	if m, _ := s.Module("skipped"); m.Reason != "flag is set" {
		t.Errorf("skipped reason %q", m.Reason)
	}
	if m, _ := s.Module("not-met"); m.Reason != "condition not met: on a tag" {
		t.Errorf("not-met reason %q", m.Reason)
	}
}

func TestPanicsAndTimeoutsAreReported(t *testing.T) {
	p := modpipe.Task("panics", func(*modpipe.Context) error { panic("nil map") })
	slow := modpipe.Task("slow", func(c *modpipe.Context) error { <-c.Done(); return c.Err() }, modpipe.Timeout(20*time.Millisecond))
	s, out := run(t, func(p *modpipe.Pipeline) { p.ContinueOnFailure = true }, p, slow)
	status(t, s, map[string]modpipe.Status{"panics": modpipe.Failed, "slow": modpipe.TimedOut})
	m, _ := s.Module("panics")
	if m.ErrorKind != "panic" || !strings.Contains(m.Error, "panic: nil map") {
		t.Errorf("panics: kind %q error %q", m.ErrorKind, m.Error)
	}
	if !strings.Contains(out, "modpipe_test.go") {
		t.Error("panic stack trace not in the module's log")
	}
	if m, _ := s.Module("slow"); m.ErrorKind != "timeout" {
		t.Errorf("slow: kind %q", m.ErrorKind)
	}
	if s.ExitCode() != 1 {
		t.Errorf("exit code %d", s.ExitCode())
	}
}

func TestRetryOption(t *testing.T) {
	var calls atomic.Int32
	flaky := modpipe.Task("flaky", func(c *modpipe.Context) error {
		if calls.Add(1) < 3 {
			return fmt.Errorf("attempt %d flaked", c.Attempt())
		}
		return nil
	}, modpipe.Retry(2, modpipe.Backoff(time.Millisecond, time.Millisecond)))
	var permCalls atomic.Int32
	errFatal := errors.New("fatal")
	perm := modpipe.Task("perm", func(*modpipe.Context) error { permCalls.Add(1); return errFatal },
		modpipe.Retry(3, modpipe.Backoff(0, 0), modpipe.RetryIf(func(err error) bool { return !errors.Is(err, errFatal) })))
	s, out := run(t, func(p *modpipe.Pipeline) { p.ContinueOnFailure = true }, flaky, perm)
	status(t, s, map[string]modpipe.Status{"flaky": modpipe.Succeeded, "perm": modpipe.Failed})
	if m, _ := s.Module("flaky"); m.Attempts != 3 {
		t.Errorf("flaky attempts %d", m.Attempts)
	}
	if permCalls.Load() != 1 {
		t.Errorf("non-retryable error retried: %d calls", permCalls.Load())
	}
	if !strings.Contains(out, "attempt 1 of 3 failed: attempt 1 flaked; retrying") {
		t.Errorf("retry not logged:\n%s", out)
	}
	if m, _ := s.Module("perm"); !errors.Is(m.Err, errFatal) {
		t.Errorf("Err does not wrap the module's error: %v", m.Err)
	}
}

// A retry that succeeds leaves no error behind: not in the summary, not as
// a GitHub ::error annotation, not in the report.
func TestRetryThatSucceedsCarriesNoError(t *testing.T) {
	flaky := modpipe.Task("flaky", func(c *modpipe.Context) error {
		if c.Attempt() == 1 {
			return errors.New("first attempt flaked")
		}
		return nil
	}, modpipe.Retry(1, modpipe.Backoff(0, 0)))
	s, out := run(t, func(p *modpipe.Pipeline) { p.GitHubActions = true }, flaky)
	status(t, s, map[string]modpipe.Status{"flaky": modpipe.Succeeded})
	m, _ := s.Module("flaky")
	if m.Attempts != 2 || m.Err != nil || m.Error != "" || m.ErrorKind != "" {
		t.Errorf("succeeded on attempt 2 but carries attempts %d, Err %v, Error %q, ErrorKind %q", m.Attempts, m.Err, m.Error, m.ErrorKind)
	}
	if strings.Contains(out, "::error") {
		t.Errorf("a module that succeeded produced an ::error annotation:\n%s", out)
	}
	if !strings.Contains(out, "attempt 1 of 2 failed: first attempt flaked") {
		t.Errorf("the failed attempt is no longer noted in the log:\n%s", out)
	}
	var text, report bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteJSON(&report); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "flaked") {
		t.Errorf("summary details show the failed attempt's error:\n%s", text.String())
	}
	if strings.Contains(report.String(), `"error"`) {
		t.Errorf("report carries an error for a module that succeeded:\n%s", report.String())
	}
}

// Two commands run concurrently inside one module share its logger, which
// is made on first use: under -race this failed with a data race.
func TestConcurrentCommandsInOneModule(t *testing.T) {
	both := modpipe.Task("both", func(c *modpipe.Context) error {
		start := make(chan struct{})
		errs := make(chan error, 2)
		for _, arg := range []string{"GOOS", "GOARCH"} {
			go func() {
				<-start
				_, err := c.Command("go", "env", arg).Run()
				errs <- err
			}()
		}
		close(start)
		return errors.Join(<-errs, <-errs)
	})
	s, out := run(t, nil, both)
	status(t, s, map[string]modpipe.Status{"both": modpipe.Succeeded})
	for _, want := range []string{"$ go env GOOS", "$ go env GOARCH", "│ " + runtime.GOOS, "│ " + runtime.GOARCH} {
		if !strings.Contains(out, want) {
			t.Errorf("module log lacks %q:\n%s", want, out)
		}
	}
}

func TestSecretsAreMaskedEverywhere(t *testing.T) {
	leak := modpipe.Task("leak", func(c *modpipe.Context) error {
		c.Secret("runtime-token-42")
		c.Logger().Info("using credentials", "password", "hunter2hunter2", "token", "runtime-token-42")
		return errors.New("login failed for hunter2hunter2")
	})
	p := modpipe.NewPipeline().Add(leak).Secrets("hunter2hunter2")
	var out bytes.Buffer
	p.Output = &out
	s, err := p.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var text, report bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteJSON(&report); err != nil {
		t.Fatal(err)
	}
	for where, content := range map[string]string{"output": out.String(), "summary": text.String(), "report": report.String()} {
		for _, secret := range []string{"hunter2hunter2", "runtime-token-42"} {
			if strings.Contains(content, secret) {
				t.Errorf("%s contains secret %q:\n%s", where, secret, content)
			}
		}
		if !strings.Contains(content, "***") {
			t.Errorf("%s shows no mask:\n%s", where, content)
		}
	}
}

// A secret too short to be masked is refused loudly instead of being
// silently printed in clear: a module registering one fails, saying why,
// and a pipeline secret fails validation. Empty values are ignored.
func TestShortSecretsAreRefused(t *testing.T) {
	short := modpipe.Task("short", func(c *modpipe.Context) error {
		c.Secret("q7")
		return nil
	})
	empty := modpipe.Task("empty", func(c *modpipe.Context) error {
		c.Secret("", "long-enough")
		return nil
	})
	s, _ := run(t, func(p *modpipe.Pipeline) { p.ContinueOnFailure = true }, short, empty)
	status(t, s, map[string]modpipe.Status{"short": modpipe.Failed, "empty": modpipe.Succeeded})
	if m, _ := s.Module("short"); !strings.Contains(m.Error, "c.Secret: a secret of 2 bytes is too short to be masked") || strings.Contains(m.Error, "q7") {
		t.Errorf("short: error %q does not say why (or shows the value)", m.Error)
	}

	var ran atomic.Bool
	p := modpipe.NewPipeline().Add(modpipe.Task("a", func(*modpipe.Context) error { ran.Store(true); return nil })).Secrets("", "xy")
	p.Output = &bytes.Buffer{}
	_, err := p.Run(context.Background())
	if !errors.Is(err, modpipe.ErrInvalidPipeline) || !strings.Contains(fmt.Sprint(err), "p.Secrets: value #2: a secret of 2 bytes is too short") {
		t.Errorf("p.Secrets with a 2-byte value: %v, want ErrInvalidPipeline saying why", err)
	}
	if ran.Load() {
		t.Error("the pipeline ran with a secret it cannot mask")
	}
}

func TestNotInParallelKeepsModulesApart(t *testing.T) {
	var in, peak atomic.Int32
	work := func(*modpipe.Context) error {
		// Raise peak with compare-and-swap: a separate load and store could
		// lose an overlap seen by two modules at once.
		for cur := in.Add(1); ; {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond) // simulated work so that modules could overlap
		in.Add(-1)
		return nil
	}
	var mods []modpipe.AnyModule
	for i := range 4 {
		mods = append(mods, modpipe.Task(fmt.Sprintf("db%d", i), work, modpipe.NotInParallel("database")))
	}
	s, _ := run(t, nil, mods...)
	if s.Failed() {
		t.Fatal("run failed")
	}
	if peak.Load() != 1 {
		t.Errorf("modules sharing a key overlapped (peak %d)", peak.Load())
	}
}

func TestReportJSON(t *testing.T) {
	ok := modpipe.Task("ok", func(c *modpipe.Context) error { c.Logger().Info("hello"); return nil }, modpipe.Category("build"))
	bad := modpipe.Task("bad", func(*modpipe.Context) error { return errors.New("nope") }, modpipe.DependsOn(ok))
	skipped := modpipe.Task("skipped", func(*modpipe.Context) error { return nil }, modpipe.DependsOn(bad))
	s, _ := run(t, nil, ok, bad, skipped)
	var buf bytes.Buffer
	if err := s.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Schema   string         `json:"schema"`
		Result   string         `json:"result"`
		ExitCode int            `json:"exit_code"`
		Counts   map[string]int `json:"counts"`
		Modules  []struct {
			Name       string  `json:"name"`
			Category   string  `json:"category"`
			Status     string  `json:"status"`
			Error      string  `json:"error"`
			ErrorKind  string  `json:"error_kind"`
			Attempts   int     `json:"attempts"`
			DurationMS float64 `json:"duration_ms"`
			LogTail    string  `json:"log_tail"`
			Reason     string  `json:"reason"`
			StartedAt  *string `json:"started_at"`
		} `json:"modules"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, buf.String())
	}
	if rep.Schema != "modpipe.report/v1" || rep.Result != "failed" || rep.ExitCode != 1 {
		t.Errorf("header: %+v", rep)
	}
	if len(rep.Modules) != 3 {
		t.Fatalf("%d modules", len(rep.Modules))
	}
	m0, m1, m2 := rep.Modules[0], rep.Modules[1], rep.Modules[2]
	if m0.Name != "ok" || m0.Status != "succeeded" || m0.Category != "build" || m0.Attempts != 1 || !strings.Contains(m0.LogTail, "hello") || m0.StartedAt == nil {
		t.Errorf("ok: %+v", m0)
	}
	if m1.Status != "failed" || m1.Error != "nope" || m1.ErrorKind != "error" {
		t.Errorf("bad: %+v", m1)
	}
	if m2.Status != "cancelled" || m2.StartedAt != nil || m2.Attempts != 0 {
		t.Errorf("skipped: %+v", m2)
	}
	if rep.Counts["succeeded"] != 1 || rep.Counts["failed"] != 1 {
		t.Errorf("counts %v", rep.Counts)
	}
	var tl struct {
		Timeline []struct {
			Instance int `json:"instance"`
			Spans    []struct {
				Module  string  `json:"module"`
				StartMS float64 `json:"start_ms"`
				EndMS   float64 `json:"end_ms"`
			} `json:"spans"`
		} `json:"timeline"`
	}
	if err := json.Unmarshal(buf.Bytes(), &tl); err != nil {
		t.Fatal(err)
	}
	if len(tl.Timeline) != 1 || len(tl.Timeline[0].Spans) != 2 || tl.Timeline[0].Spans[0].Module != "ok" || tl.Timeline[0].Spans[1].Module != "bad" ||
		tl.Timeline[0].Spans[0].EndMS < tl.Timeline[0].Spans[0].StartMS || tl.Timeline[0].Spans[1].StartMS < tl.Timeline[0].Spans[0].StartMS {
		t.Errorf("timeline %+v", tl.Timeline)
	}
}

func TestSummaryText(t *testing.T) {
	ok := modpipe.Task("compile", func(*modpipe.Context) error { return nil })
	bad := modpipe.Task("unit-tests", func(*modpipe.Context) error { return errors.New("2 tests failed\nsecond line") })
	s, _ := run(t, func(p *modpipe.Pipeline) { p.ContinueOnFailure = true }, ok, bad)
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{"MODULE", "STATUS", "compile", "✓ succeeded", "unit-tests", "✗ failed", "2 tests failed …", "Run FAILED in", "1 succeeded, 1 failed"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "second line") {
		t.Errorf("summary rows must be one line:\n%s", text)
	}
}

func TestGitHubActionsGroups(t *testing.T) {
	ok := modpipe.Task("compile", func(c *modpipe.Context) error { c.Logger().Info("compiling"); return nil })
	bad := modpipe.Task("lint", func(*modpipe.Context) error { return errors.New("50% done\nthen failed") })
	ign := modpipe.Task("style", func(*modpipe.Context) error { return errors.New("meh") }, modpipe.IgnoreFailure())
	_, out := run(t, func(p *modpipe.Pipeline) { p.GitHubActions = true; p.ContinueOnFailure = true }, ok, bad, ign)
	for _, want := range []string{
		"::group::✓ compile · succeeded",
		"INFO  compiling\n::endgroup::",
		"::error title=lint failed::50%25 done%0Athen failed",
		"::warning title=style ignored-failure::meh",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestContextCancellationCancelsTheRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	blocker := modpipe.Task("blocker", func(c *modpipe.Context) error {
		close(started)
		<-c.Done()
		return c.Err()
	})
	next := modpipe.Task("next", func(*modpipe.Context) error { return nil }, modpipe.DependsOn(blocker))
	p := modpipe.NewPipeline().Add(blocker, next)
	p.Output = &bytes.Buffer{}
	go func() { <-started; cancel() }()
	s, err := p.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	status(t, s, map[string]modpipe.Status{"blocker": modpipe.Cancelled, "next": modpipe.Cancelled})
}
