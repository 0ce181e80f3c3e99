package modpipe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	for _, want := range []string{"dry run", "wave 1: gen", "compile: skipped by --skip", "test: dependency compile would be skipped", "1 of 4 modules would run"} {
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
