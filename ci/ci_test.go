package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"go.yaml.in/yaml/v3"
)

// workflowFile is the checked-in workflow, relative to this package.
const workflowFile = "../.github/workflows/modpipe.yml"

// regenerate is the command that writes workflowFile, run from the
// repository root.
const regenerate = "go run ./ci " + workflowArgs + " > .github/workflows/modpipe.yml"

// workflowArgs are the arguments that generate workflowFile. The branch is
// given, not detected: the file must not depend on the clone it is
// generated in.
const workflowArgs = "workflow github --extra-workers 1 --name modpipe --branch main"

// ciBinary is this program, built once by TestMain.
var ciBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "modpipe-ci-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ciBinary = filepath.Join(dir, "ci")
	if out, err := exec.Command("go", "build", "-o", ciBinary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building ./ci: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// runCI runs the built pipeline program with args and returns its stdout;
// the test fails unless it exits 0.
func runCI(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(ciBinary, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ci %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestCheckedInWorkflowIsUpToDate(t *testing.T) {
	want := runCI(t, strings.Fields(workflowArgs)...)
	got, err := os.ReadFile(workflowFile)
	if err != nil {
		t.Fatalf("reading the checked-in workflow: %v; create it from the repository root with:\n\t%s", err, regenerate)
	}
	if string(got) != want {
		t.Fatalf(".github/workflows/modpipe.yml is not what ./ci generates (the pipeline or the generator changed); regenerate it from the repository root with:\n\t%s", regenerate)
	}
}

func TestWorkflowRunsOnLinuxWindowsAndMacOSAndPassesActionlint(t *testing.T) {
	gh := []byte(runCI(t, strings.Fields(workflowArgs)...))
	dir := t.TempDir()
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{WorkingDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.Lint(filepath.Join(dir, ".github", "workflows", "modpipe.yml"), gh, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("actionlint: %s", e.Error())
	}
	var doc struct {
		Jobs map[string]struct {
			Strategy struct {
				Matrix struct {
					Include []struct {
						Instance int    `yaml:"instance"`
						Runner   string `yaml:"runner"`
					} `yaml:"include"`
				} `yaml:"matrix"`
			} `yaml:"strategy"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(gh, &doc); err != nil {
		t.Fatalf("the workflow is not YAML: %v", err)
	}
	runners := map[string]int{}
	for _, inst := range doc.Jobs["pipeline"].Strategy.Matrix.Include {
		runners[inst.Runner]++
	}
	want := map[string]int{"ubuntu-latest": 2, "windows-latest": 1, "macos-latest": 1}
	for r, n := range want {
		if runners[r] != n {
			t.Errorf("%d instances on %s, want %d (all: %v)", runners[r], r, n, runners)
		}
	}
}

// modules is every module of the pipeline.
var modules = []string{
	"gofmt", "vet", "test-core", "test-redis", "test-examples",
	"cross-windows-amd64", "cross-darwin-amd64", "cross-darwin-arm64",
	"test-windows", "test-macos",
}

func TestListNamesEveryModule(t *testing.T) {
	out := runCI(t, "--list")
	for _, m := range modules {
		if !strings.Contains(out, "\n"+m+" ") {
			t.Errorf("--list does not name %s:\n%s", m, out)
		}
	}
	if !strings.Contains(out, "10 modules") {
		t.Errorf("--list does not count 10 modules:\n%s", out)
	}
}

func TestDryRunPlansEveryModuleForThisOS(t *testing.T) {
	out := runCI(t, "--dry-run")
	if !strings.Contains(out, "dry run: nothing is executed") || !strings.Contains(out, "wave 1:") {
		t.Fatalf("--dry-run printed no plan:\n%s", out)
	}
	for _, m := range modules {
		if !strings.Contains(out, m) {
			t.Errorf("--dry-run does not mention %s:\n%s", m, out)
		}
	}
}
