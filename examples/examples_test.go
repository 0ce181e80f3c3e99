// Package examples_test runs the example pipelines as real processes and
// checks what a user sees: output, summary, report and exit code.
package examples_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// build compiles the example at pkg (relative to this directory) once.
var (
	buildOnce sync.Map
	binDir    string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "modpipe-examples-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(t *testing.T, pkg string) string {
	t.Helper()
	v, _ := buildOnce.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		out := filepath.Join(binDir, filepath.Base(pkg))
		if runtime.GOOS == "windows" {
			out += ".exe"
		}
		cmd := exec.Command("go", "build", "-o", out, "./"+pkg)
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", errors.New(string(b))
		}
		return out, nil
	}))
	bin, err := v.(func() (string, error))()
	if err != nil {
		t.Fatalf("building %s: %v", pkg, err)
	}
	return bin
}

type report struct {
	Schema   string `json:"schema"`
	Result   string `json:"result"`
	ExitCode int    `json:"exit_code"`
	Modules  []struct {
		Name     string `json:"name"`
		Status   string `json:"status"`
		Reason   string `json:"reason"`
		Error    string `json:"error"`
		Attempts int    `json:"attempts"`
		LogTail  string `json:"log_tail"`
	} `json:"modules"`
}

func readReport(t *testing.T, path string) report {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, data)
	}
	return r
}

func statuses(r report) map[string]string {
	m := map[string]string{}
	for _, mod := range r.Modules {
		m[mod.Name] = mod.Status
	}
	return m
}

func runBin(t *testing.T, bin string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %s: %v", bin, err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

func TestQuickstart(t *testing.T) {
	bin := build(t, "quickstart")
	rep := filepath.Join(t.TempDir(), "report.json")
	env := []string{"GITHUB_ACTIONS=", "GITHUB_REF=", "GITHUB_EVENT_NAME=", "MODPIPE_CACHE_MODE=", "MODPIPE_CACHE=file://" + filepath.ToSlash(filepath.Join(t.TempDir(), "cache")),
		// The workspace has a fixed name under TMPDIR (so that the cached
		// modules' keys repeat): give each test its own.
		"TMPDIR=" + t.TempDir(), "TMP=" + t.TempDir()}
	out, code := runBin(t, bin, env, "--report", rep)
	if code != 0 {
		t.Fatalf("exit code %d:\n%s", code, out)
	}
	want := map[string]string{
		"workspace": "succeeded", "vet": "succeeded", "test": "succeeded", "build": "succeeded",
		"smoke": "succeeded", "publish": "skipped", "cleanup": "succeeded",
	}
	if runtime.GOOS == "windows" {
		want["installer"] = "succeeded"
	} else {
		want["installer"] = "skipped"
	}
	got := statuses(readReport(t, rep))
	for name, st := range want {
		if got[name] != st {
			t.Errorf("%s: %s, want %s", name, got[name], st)
		}
	}
	for _, line := range []string{
		"--- PASS: TestGreet",  // a command's output, streamed into the test module's log
		"tests passed count=2", // a typed result computed from it
		"│ hello, modpipe",     // the built binary ran
		"condition not met: building a release tag",
		"Run succeeded",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}

	// The second run restores vet, test and build from the cache; smoke
	// downloads the cached build's binary and runs it.
	out, code = runBin(t, bin, env, "--report", rep)
	if code != 0 {
		t.Fatalf("second run: exit code %d:\n%s", code, out)
	}
	want["vet"], want["test"], want["build"] = "cached", "cached", "cached"
	got = statuses(readReport(t, rep))
	for name, st := range want {
		if got[name] != st {
			t.Errorf("second run: %s: %s, want %s", name, got[name], st)
		}
	}
	if !strings.Contains(out, "│ hello, modpipe") || !strings.Contains(out, "Cache: 3 hits, 0 misses") {
		t.Errorf("second run output:\n%s", out)
	}
}

func TestQuickstartListAndDryRun(t *testing.T) {
	bin := build(t, "quickstart")
	out, code := runBin(t, bin, nil, "--list")
	if code != 0 || !strings.Contains(out, "workspace, vet, test") {
		t.Errorf("--list: exit %d\n%s", code, out)
	}
	out, code = runBin(t, bin, nil, "--dry-run", "--only", "vet")
	if code != 0 || !strings.Contains(out, "wave 2: vet") || !strings.Contains(out, "2 of 8 modules would run") {
		t.Errorf("--dry-run: exit %d\n%s", code, out)
	}
}

func TestFailingPipelineExitsOne(t *testing.T) {
	bin := build(t, "failing")
	rep := filepath.Join(t.TempDir(), "report.json")
	out, code := runBin(t, bin, []string{"GITHUB_ACTIONS="}, "--report", rep)
	if code != 1 {
		t.Fatalf("exit code %d, want 1:\n%s", code, out)
	}
	r := readReport(t, rep)
	if r.Result != "failed" || r.ExitCode != 1 {
		t.Errorf("report result %q exit %d", r.Result, r.ExitCode)
	}
	got := statuses(r)
	for name, st := range map[string]string{"compile": "succeeded", "unit-tests": "failed", "lint": "ignored-failure", "package": "cancelled", "report": "succeeded"} {
		if got[name] != st {
			t.Errorf("%s: %s, want %s", name, got[name], st)
		}
	}
	// The failing command's own output is in the module's group and in the error.
	for _, want := range []string{"✗ unit-tests · failed", "directory not found", `command "go vet ./this/package/does/not/exist" exited with code 1`, "Run FAILED"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, code = runBin(t, bin, []string{"GITHUB_ACTIONS="}, "--continue-on-failure", "--report", rep)
	if code != 1 || statuses(readReport(t, rep))["package"] != "dependency-failed" {
		t.Errorf("--continue-on-failure: exit %d, package %s\n%s", code, statuses(readReport(t, rep))["package"], out)
	}
}

func TestDistributedExampleInOneProcess(t *testing.T) {
	bin := build(t, "distributed")
	rep := filepath.Join(t.TempDir(), "report.json")
	published := filepath.Join(t.TempDir(), "published")
	out, code := runBin(t, bin, []string{"GITHUB_ACTIONS="}, "--local-instances", "4", "--report", rep, "--artifacts-out", published)
	if code != 0 {
		t.Fatalf("exit code %d:\n%s", code, out)
	}
	data, err := os.ReadFile(rep)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Distributed bool `json:"distributed"`
		Modules     []struct {
			Name     string `json:"name"`
			Status   string `json:"status"`
			Instance int    `json:"instance"`
			LogTail  string `json:"log_tail"`
		} `json:"modules"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if !r.Distributed || len(r.Modules) != 11 {
		t.Fatalf("report: distributed %v, %d modules", r.Distributed, len(r.Modules))
	}
	where := map[string]int{}
	for _, m := range r.Modules {
		if m.Status != "succeeded" {
			t.Errorf("%s: %s", m.Name, m.Status)
		}
		where[m.Name] = m.Instance
	}
	// Instance 1 offers docker, 2 poses as Windows, 3 as macOS (see the
	// example's LocalCapabilities); publish is pinned to the master.
	for name, inst := range map[string]int{"docker-image": 1, "cross-tests[windows]": 2, "cross-tests[macos]": 3, "publish": 0, "build-tool": 1, "smoke-test": 0, "tool-check": 2} {
		if where[name] != inst {
			t.Errorf("%s ran on instance %d, want %d", name, where[name], inst)
		}
	}
	// The binary built on instance 1 ran on the master, and was published.
	tool := filepath.Join(published, "hello-tool", "hello")
	if runtime.GOOS == "windows" {
		tool += ".exe"
	}
	if said, err := exec.Command(tool).Output(); err != nil || strings.TrimSpace(string(said)) != "hello from the tool" {
		t.Errorf("published tool: %q, %v", said, err)
	}
	for _, want := range []string{"INSTANCE", "QUEUED", "publishing image=ghcr.io/acme/app:1.8.0", "cross=", "Run succeeded",
		"ran the tool built_on=1 instance=0", "uploaded artifact hello-tool", "Artifacts:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
