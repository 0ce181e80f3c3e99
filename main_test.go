package modpipe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

func mainPipeline() *Pipeline {
	noop := func(*Context) error { return nil }
	gen := Task("gen", noop, Category("build"))
	compile := Task("compile", func(c *Context) error { c.Logger().Debug("debug detail"); return nil }, DependsOn(gen), Category("build"), Retry(2))
	test := Task("test", noop, DependsOn(compile), Category("test"), Timeout(5e9))
	release := Task("release", noop, DependsOn(test), RunIf("on a tag", func(*Context) bool { return false }), PinToMaster())
	return NewPipeline().Add(gen, compile, test, release)
}

func runMain(t *testing.T, p *Pipeline, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = p.main(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMainRunsAndPrintsSummary(t *testing.T) {
	report := filepath.Join(t.TempDir(), "report.json")
	code, out, errOut := runMain(t, mainPipeline(), nil, "--report", report, "--only", "test", "-v")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	for _, want := range []string{"✓ compile · succeeded", "debug detail", "MODULE", "release", "not selected", "Run succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(data, &rep); err != nil || rep["result"] != "succeeded" {
		t.Errorf("report %v %s", err, data)
	}
}

func TestMainExitCodes(t *testing.T) {
	bad := Task("bad", func(*Context) error { return errors.New("broken") })
	if code, out, _ := runMain(t, NewPipeline().Add(bad), nil); code != 1 || !strings.Contains(out, "Run FAILED") {
		t.Errorf("failing pipeline: exit %d\n%s", code, out)
	}
	ign := Task("ign", func(*Context) error { return errors.New("broken") }, IgnoreFailure())
	if code, _, _ := runMain(t, NewPipeline().Add(ign), nil); code != 0 {
		t.Errorf("ignored failure: exit %d", code)
	}
	for _, args := range [][]string{{"--only", "nope"}, {"--bogus"}, {"stray"}, {"--category", "nope"}} {
		code, _, errOut := runMain(t, mainPipeline(), nil, args...)
		if code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	dup := Task("gen", func(*Context) error { return nil })
	code, _, errOut := runMain(t, mainPipeline().Add(dup), nil)
	if code != 2 || !strings.Contains(errOut, `"gen" is added twice`) {
		t.Errorf("invalid pipeline: exit %d, stderr %q", code, errOut)
	}
}

func TestMainList(t *testing.T) {
	code, out, _ := runMain(t, mainPipeline(), nil, "--list")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"MODULE", "CATEGORY", "DEPENDS ON", "compile", "build", "gen", "retry 2", "timeout 5s", `run if "on a tag"`, "master only", "4 modules"} {
		if !strings.Contains(out, want) {
			t.Errorf("--list lacks %q:\n%s", want, out)
		}
	}
}

func TestMainDryRun(t *testing.T) {
	code, out, _ := runMain(t, mainPipeline(), nil, "--dry-run", "--skip", "compile")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"dry run", "wave 1: gen", "compile: skipped by --skip", "test: dependency compile is skipped", "1 of 4 modules would run"} {
		if !strings.Contains(out, want) {
			t.Errorf("--dry-run lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "✓") {
		t.Errorf("--dry-run ran modules:\n%s", out)
	}
}

func TestMainGitHubActionsFromEnv(t *testing.T) {
	_, out, _ := runMain(t, mainPipeline(), map[string]string{"GITHUB_ACTIONS": "true"})
	if !strings.Contains(out, "::group::✓ gen") {
		t.Errorf("no ::group:: under GITHUB_ACTIONS=true:\n%s", out)
	}
}

func TestListFlagSplitsCommas(t *testing.T) {
	var l listFlag
	_ = l.Set("a, b,,c")
	_ = l.Set("d")
	if strings.Join(l, "|") != "a|b|c|d" {
		t.Errorf("%q", l)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[int64]string{0: "0s", 1500: "1µs", 2_500_000: "3ms", 1_234_000_000: "1.23s", 125_000_000_000: "2m05s"} {
		if got := formatDuration(time.Duration(d)); got != want {
			t.Errorf("formatDuration(%d) = %q, want %q", d, got, want)
		}
	}
}

func TestMainWritesGitHubJobSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "step-summary.md")
	if err := os.WriteFile(path, []byte("earlier step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := Task("bad", func(c *Context) error { c.Logger().Info("about to break"); return errors.New("it broke") })
	code, _, _ := runMain(t, NewPipeline().Add(bad), map[string]string{"GITHUB_STEP_SUMMARY": path})
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	data, _ := os.ReadFile(path)
	md := string(data)
	for _, want := range []string{"earlier step\n## ❌ modpipe: Run FAILED", "| bad | ✗ failed | - | 1 |", "### First failure: `bad`", "about to break", "section local"} {
		if !strings.Contains(md, want) {
			t.Errorf("job summary lacks %q:\n%s", want, md)
		}
	}
}

// runReport runs Main with a JSON report and returns each module's status,
// reason and error.
func runReport(t *testing.T, p *Pipeline, env map[string]string, args ...string) (code int, stdout string, mods map[string][3]string) {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	code, stdout, stderr := runMain(t, p, env, append([]string{"--report", report}, args...)...)
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("no report (exit %d, stderr %s): %v", code, stderr, err)
	}
	var rep struct {
		Modules []struct{ Name, Status, Reason, Error string }
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	mods = map[string][3]string{}
	for _, m := range rep.Modules {
		mods[m.Name] = [3]string{m.Status, m.Reason, m.Error}
	}
	return code, stdout, mods
}

// Flags override settings made in code: a list flag replaces the list
// (it does not add to it), and a boolean flag switches a setting off too.
func TestMainFlagsReplaceCodeSettings(t *testing.T) {
	cases := []struct {
		name string
		code func(p *Pipeline)
		args []string
		want map[string]string // module -> status
	}{
		{"--only replaces Only", func(p *Pipeline) { p.Only = []string{"test"} }, []string{"--only", "gen"},
			map[string]string{"gen": "succeeded", "compile": "skipped", "test": "skipped"}},
		{"empty --only clears Only", func(p *Pipeline) { p.Only = []string{"gen"} }, []string{"--only="},
			map[string]string{"gen": "succeeded", "compile": "succeeded", "test": "succeeded"}},
		{"--skip replaces Skip", func(p *Pipeline) { p.Skip = []string{"gen"} }, []string{"--skip", "test"},
			map[string]string{"gen": "succeeded", "compile": "succeeded", "test": "skipped"}},
		{"--category replaces Categories", func(p *Pipeline) { p.Categories = []string{"test"} }, []string{"--category", "build"},
			map[string]string{"gen": "succeeded", "compile": "succeeded", "test": "skipped"}},
		{"--ignore-category replaces IgnoreCategories", func(p *Pipeline) { p.IgnoreCategories = []string{"build"} }, []string{"--ignore-category", "test"},
			map[string]string{"gen": "succeeded", "compile": "succeeded", "test": "skipped"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mainPipeline()
			tc.code(p)
			code, out, mods := runReport(t, p, nil, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, out)
			}
			for name, st := range tc.want {
				if mods[name][0] != st {
					t.Errorf("%s: %s (%s), want %s", name, mods[name][0], mods[name][1], st)
				}
			}
		})
	}

	t.Run("--continue-on-failure=false", func(t *testing.T) {
		bad := Task("bad", func(*Context) error { return errors.New("broken") })
		after := Task("after", func(*Context) error { return nil })
		p := NewPipeline().Add(bad, after)
		p.ContinueOnFailure = true
		p.MaxParallel = 1 // bad starts first, so the run is stopping when after would start
		code, out, mods := runReport(t, p, nil, "--continue-on-failure=false")
		if code != 1 || mods["after"][0] != "cancelled" {
			t.Errorf("exit %d, after %v; want exit 1 and after cancelled (the run stops after bad)\n%s", code, mods["after"], out)
		}
	})
	t.Run("-v=false", func(t *testing.T) {
		p := mainPipeline()
		p.Verbose = true
		code, out, _ := runMain(t, p, nil, "-v=false")
		if code != 0 || strings.Contains(out, "debug detail") {
			t.Errorf("exit %d; -v=false still printed debug lines:\n%s", code, out)
		}
	})
	t.Run("--parallel", func(t *testing.T) {
		p := mainPipeline()
		p.MaxParallel = 3
		if code, _, errOut := runMain(t, p, nil, "--parallel", "0"); code != 0 || p.MaxParallel != 0 {
			t.Errorf("--parallel 0: exit %d, MaxParallel %d, stderr %s", code, p.MaxParallel, errOut)
		}
		if code, _, errOut := runMain(t, mainPipeline(), nil, "--parallel", "-1"); code != 2 || !strings.Contains(errOut, "negative") {
			t.Errorf("--parallel -1: exit %d, stderr %q", code, errOut)
		}
		// A duration flag given as 0 used to be ignored silently.
		if code, _, errOut := runMain(t, mainPipeline(), nil, "--lease-timeout", "0s"); code != 2 || !strings.Contains(errOut, "--lease-timeout 0s is not a positive duration") {
			t.Errorf("--lease-timeout 0s: exit %d, stderr %q", code, errOut)
		}
	})
}

func TestLiveWanted(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "MODPIPE_LIVE" {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		args []string
		env  string
		want bool
	}{
		{nil, "", true},
		{nil, "0", false},
		{[]string{"--no-live"}, "", false},
		{[]string{"--no-live=false"}, "0", true},
		{[]string{"--no-live"}, "1", false},
	} {
		o, _, err := parseFlags(NewPipeline(), tc.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got := liveWanted(o, env(tc.env)); got != tc.want {
			t.Errorf("%v with MODPIPE_LIVE=%q: live %v, want %v", tc.args, tc.env, got, tc.want)
		}
	}
}

// Instance settings that would run the wrong part of the pipeline are
// refused with exit 2 before anything runs, whether they come from flags,
// the environment or code.
func TestMainRefusesBadInstanceSettings(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		code func(p *Pipeline)
		want string
	}{
		{"--instance -1", []string{"--instance", "-1"}, nil, nil, "instance index -1 is negative"},
		{"--instance -1 --total 3", []string{"--instance", "-1", "--total", "3"}, nil, nil, "instance index -1"},
		{"MODPIPE_INSTANCE=-1", nil, map[string]string{"MODPIPE_INSTANCE": "-1"}, nil, "instance index -1 is negative"},
		{"--instance 7 --total 0", []string{"--instance", "7", "--total", "0"}, nil, nil, "instance index 7 needs a total above it, but the total is 0"},
		{"--instance 7 alone", []string{"--instance", "7"}, nil, nil, "instance index 7 needs a total above it"},
		{"MODPIPE_INSTANCE=2 MODPIPE_TOTAL=1", nil, map[string]string{"MODPIPE_INSTANCE": "2", "MODPIPE_TOTAL": "1"}, nil, "instance index 2 needs a total above it, but the total is 1"},
		{"--total -2", []string{"--total", "-2"}, nil, nil, "total instances -2 is negative"},
		{"code", nil, nil, func(p *Pipeline) { p.UseDistributed(DistributedOptions{InstanceIndex: 3}) }, "instance index 3 needs a total above it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ran atomic.Bool
			pinned := Task("pinned", func(*Context) error { ran.Store(true); return nil }, PinToMaster())
			p := NewPipeline().Add(pinned)
			if tc.code != nil {
				tc.code(p)
			}
			code, out, errOut := runMain(t, p, tc.env, tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q\n%s", code, errOut, tc.want, out)
			}
			if ran.Load() {
				t.Error("the pipeline ran although the instance settings were refused")
			}
		})
	}
	// Run, the library form, refuses them too.
	p := NewPipeline().Add(Task("a", func(*Context) error { return nil })).UseDistributed(DistributedOptions{InstanceIndex: 7})
	if _, err := p.Run(context.Background()); !errors.Is(err, ErrBadConfig) {
		t.Errorf("Run with InstanceIndex 7 and no total: %v, want ErrBadConfig", err)
	}
}

// Workers exit with the run's verdict: a module a worker ran that failed
// with IgnoreFailure does not fail the run, so the worker exits 0 like the
// master. A worker's summary and report carry the run id, and an idle
// worker says that it ran nothing.
func TestMainWorkersExitWithTheRunsVerdict(t *testing.T) {
	coord := distributed.NewInMemory()
	// build holds the run open until every instance has joined: a worker
	// that registers after the run ended is refused, which is not what
	// this test is about.
	build := Task("build", func(c *Context) error {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			ins, err := coord.Instances(c)
			if err != nil {
				return err
			}
			if len(ins) == 3 {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("only %d of 3 instances registered within 30s", len(ins))
			}
		}
	}, PinToMaster())
	lint := Task("lint", func(*Context) error { return errors.New("3 lint problems") }, RequiresCapability("gpu"), IgnoreFailure())
	dir := t.TempDir()
	type result struct {
		code        int
		out, errOut string
	}
	results := make([]chan result, 3)
	for i := range results {
		results[i] = make(chan result, 1)
		p := NewPipeline().Add(build, lint).UseCoordinator(coord)
		args := []string{"--instance", fmt.Sprint(i), "--total", "3", "--run-id", "run-42",
			"--heartbeat", "20ms", "--lease-timeout", "5s", "--master-timeout", "20s", "--no-live",
			"--report", filepath.Join(dir, fmt.Sprintf("report-%d.json", i))}
		if i == 1 {
			args = append(args, "--capability", "gpu")
		}
		go func() {
			var out, errOut bytes.Buffer
			code := p.main(context.Background(), args, func(string) string { return "" }, &out, &errOut)
			results[i] <- result{code, out.String(), errOut.String()}
		}()
	}
	var got [3]result
	for i := range results {
		select {
		case got[i] = <-results[i]:
		case <-time.After(60 * time.Second):
			t.Fatalf("instance %d did not finish", i)
		}
	}
	for i, r := range got {
		if r.code != 0 {
			t.Errorf("instance %d exited %d; the run succeeded (lint's failure is ignored)\nstdout:\n%s\nstderr:\n%s", i, r.code, r.out, r.errOut)
		}
	}
	for _, want := range []string{"Worker 1 ran 1 modules; run run-42 succeeded", "! lint · ignored-failure", "Run id: run-42"} {
		if !strings.Contains(got[1].out, want) {
			t.Errorf("worker 1's output lacks %q:\n%s", want, got[1].out)
		}
	}
	for _, want := range []string{"Worker 2 ran no modules; run run-42 succeeded", "This worker ran no modules", "Run succeeded in ", ": no modules ran here", "Run id: run-42"} {
		if !strings.Contains(got[2].out, want) {
			t.Errorf("idle worker 2's output lacks %q:\n%s", want, got[2].out)
		}
	}
	if strings.Contains(got[2].out, "MODULE") {
		t.Errorf("idle worker 2 printed an empty table:\n%s", got[2].out)
	}
	for i := 1; i <= 2; i++ {
		var rep struct {
			RunID  string `json:"run_id"`
			Result string `json:"result"`
		}
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("report-%d.json", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &rep); err != nil || rep.RunID != "run-42" || rep.Result != "succeeded" {
			t.Errorf("worker %d report: %v %s", i, err, data)
		}
	}
}

// A module that never started carries no instance in the JSON report: an
// instance 0 there would claim the master ran it.
func TestReportLeavesOutTheInstanceOfModulesThatNeverRan(t *testing.T) {
	bad := Task("bad", func(*Context) error { return errors.New("broken") })
	never := Task("never", func(*Context) error { return nil }, DependsOn(bad))
	p := NewPipeline().Add(bad, never)
	p.Output = io.Discard
	s, err := p.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Module("never"); m.Status != Cancelled {
		t.Fatalf("never: %s", m.Status)
	}
	var buf bytes.Buffer
	if err := s.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Modules []map[string]any `json:"modules"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if inst, ok := rep.Modules[0]["instance"]; !ok || inst != float64(0) {
		t.Errorf("bad ran on instance 0 but the report says %v (present %v)", inst, ok)
	}
	if inst, ok := rep.Modules[1]["instance"]; ok {
		t.Errorf("never did not run but the report gives it instance %v", inst)
	}
}

// Modules outside --only are skipped, never cancelled, even when a selected
// module fails, and --dry-run, the summary and the report give each skipped
// module the same reason.
func TestMainUnselectedModulesAreSkippedWithOneReason(t *testing.T) {
	pipeline := func() *Pipeline {
		noop := func(*Context) error { return nil }
		a := Task("a", func(*Context) error { return errors.New("a broke") })
		b := Task("b", noop)
		c := Task("c", noop, DependsOn(a))
		d := Task("d", noop, DependsOn(b))
		x := Task("x", noop)
		y := Task("y", noop, DependsOn(x))
		return NewPipeline().Add(a, b, c, d, x, y)
	}
	args := []string{"--only", "a,x,y", "--skip", "x"}
	code, out, mods := runReport(t, pipeline(), nil, args...)
	if code != 1 || mods["a"][0] != "failed" {
		t.Fatalf("exit %d, a %v; want exit 1 with a failed\n%s", code, mods["a"], out)
	}
	want := map[string]string{
		"b": "not selected (--only/--category)",
		"c": "not selected (--only/--category)",
		"d": "not selected (--only/--category)",
		"x": "skipped by --skip",
		"y": "dependency x is skipped",
	}
	_, dry, _ := runMain(t, pipeline(), nil, append([]string{"--dry-run"}, args...)...)
	for name, reason := range want {
		if mods[name] != [3]string{"skipped", reason, ""} {
			t.Errorf("report: %s is %v, want skipped with %q", name, mods[name], reason)
		}
		if !strings.Contains(dry, "  "+name+": "+reason+"\n") {
			t.Errorf("--dry-run does not give %s the reason %q:\n%s", name, reason, dry)
		}
		if !strings.Contains(out, reason) {
			t.Errorf("summary lacks %q:\n%s", reason, out)
		}
	}
	if strings.Contains(out, "cancelled") {
		t.Errorf("a module outside the selection is reported cancelled:\n%s", out)
	}
}

// A module that succeeds on its second attempt on a worker reaches the
// master without the first attempt's error: no ::error annotation, no error
// in the summary or the report.
func TestMainRetrySucceededOnAWorkerCarriesNoError(t *testing.T) {
	flaky := Task("flaky", func(c *Context) error {
		if c.Attempt() == 1 {
			return errors.New("first attempt flaked")
		}
		return nil
	}, RequiresCapability("gpu"), Retry(1, Backoff(0, 0)))
	p := NewPipeline().Add(flaky).UseDistributed(DistributedOptions{
		HeartbeatInterval: 20 * time.Millisecond, LeaseTimeout: 5 * time.Second,
		LocalCapabilities: map[int][]string{1: {"gpu"}},
	})
	code, out, mods := runReport(t, p, map[string]string{"GITHUB_ACTIONS": "true"}, "--local-instances", "2")
	if code != 0 || mods["flaky"][0] != "succeeded" || mods["flaky"][2] != "" {
		t.Fatalf("exit %d, flaky %q; want exit 0, flaky succeeded without error\n%s", code, mods["flaky"], out)
	}
	if strings.Contains(out, "::error") || strings.Contains(out, "first attempt flaked") && !strings.Contains(out, "attempt 1 of 2 failed: first attempt flaked") {
		t.Errorf("the master shows the failed attempt's error for a module that succeeded:\n%s", out)
	}
	if !strings.Contains(out, "instance 1") {
		t.Errorf("flaky did not run on the worker:\n%s", out)
	}
}

// cutOffCoordinator fails its instance's heartbeats once cut: the instance
// can no longer reach the coordinator.
type cutOffCoordinator struct {
	distributed.Coordinator
	cut atomic.Bool
}

func (c *cutOffCoordinator) Heartbeat(ctx context.Context, instance int) (distributed.Pulse, error) {
	if c.cut.Load() {
		return distributed.Pulse{}, errors.New("connection refused (simulated)")
	}
	return c.Coordinator.Heartbeat(ctx, instance)
}

// A worker cut off from the coordinator before the run ended does not know
// the run's verdict: it never prints "Run succeeded", and exits 1.
func TestMainCutOffWorkerDoesNotClaimSuccess(t *testing.T) {
	coord := distributed.NewInMemory()
	workerCoord := &cutOffCoordinator{Coordinator: coord}
	release := make(chan struct{})
	build := Task("build", func(c *Context) error {
		select {
		case <-release:
			return nil
		case <-time.After(30 * time.Second):
			return errors.New("never released")
		}
	}, PinToMaster())
	job := Task("job", func(*Context) error { workerCoord.cut.Store(true); return nil }, RequiresCapability("gpu"))
	common := []string{"--total", "2", "--heartbeat", "20ms", "--lease-timeout", "1s", "--master-timeout", "20s", "--no-live"}
	type result struct {
		code        int
		out, errOut string
	}
	start := func(index int, c distributed.Coordinator, extra ...string) chan result {
		ch := make(chan result, 1)
		p := NewPipeline().Add(build, job).UseCoordinator(c)
		args := append(append([]string{"--instance", fmt.Sprint(index)}, common...), extra...)
		go func() {
			var out, errOut bytes.Buffer
			code := p.main(context.Background(), args, func(string) string { return "" }, &out, &errOut)
			ch <- result{code, out.String(), errOut.String()}
		}()
		return ch
	}
	masterCh := start(0, coord)
	workerCh := start(1, workerCoord, "--capability", "gpu")
	var worker result
	select {
	case worker = <-workerCh:
	case <-time.After(60 * time.Second):
		t.Fatal("the cut-off worker did not stop")
	}
	close(release)
	select {
	case master := <-masterCh:
		if master.code != 0 {
			t.Errorf("master exited %d:\n%s\n%s", master.code, master.out, master.errOut)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the master did not finish")
	}
	if worker.code != 1 || !strings.Contains(worker.errOut, "could not reach the coordinator") {
		t.Errorf("cut-off worker: exit %d, stderr %q; want exit 1 saying it could not reach the coordinator", worker.code, worker.errOut)
	}
	if strings.Contains(worker.out, "Run succeeded") || !strings.Contains(worker.out, "Run verdict unknown: this worker stopped") {
		t.Errorf("cut-off worker claims a verdict it does not know:\n%s", worker.out)
	}
}
