package modpipe

import (
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// generatedMatrix is what these tests read of a generated GitHub workflow.
type generatedMatrix struct {
	On struct {
		Push struct {
			Branches []string `yaml:"branches"`
		} `yaml:"push"`
	} `yaml:"on"`
	Jobs map[string]struct {
		Strategy struct {
			Matrix struct {
				Include []struct {
					Role         string `yaml:"role"`
					Runner       string `yaml:"runner"`
					Capabilities string `yaml:"capabilities"`
				} `yaml:"include"`
			} `yaml:"matrix"`
		} `yaml:"strategy"`
	} `yaml:"jobs"`
}

func parseGenerated(t *testing.T, out string) generatedMatrix {
	t.Helper()
	var g generatedMatrix
	if err := yaml.Unmarshal([]byte(out), &g); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, out)
	}
	return g
}

// capsPipeline has a race module that needs cgo, tests that need docker,
// and a Windows build.
func capsPipeline() *Pipeline {
	noop := func(*Context) error { return nil }
	return NewPipeline().Add(
		Task("race", noop, RequiresCapability("cgo")),
		Task("integration", noop, RequiresCapability("docker")),
		Task("build-windows", noop, OnOS("windows")),
	)
}

func TestWorkflowWorkerFlag(t *testing.T) {
	// Without a worker that offers cgo, the hint says how to add one, with
	// options of this command only.
	code, _, errOut := runMain(t, capsPipeline(), nil, "workflow", "github", "--branch", "main")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, `capability "cgo"`) || !strings.Contains(errOut, "--worker cgo") {
		t.Errorf("stderr does not tell how to offer cgo with --worker:\n%s", errOut)
	}
	for _, unreachable := range []string{"Instance.", "--capability"} {
		if strings.Contains(errOut, unreachable) {
			t.Errorf("the hint names %q, which a user of `workflow github` cannot reach:\n%s", unreachable, errOut)
		}
	}

	code, out, errOut := runMain(t, capsPipeline(), nil, "workflow", "github", "--branch", "main", "--worker", "cgo,gcc", "--worker", "Cgo", "--extra-workers", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(errOut, `capability "cgo"`) {
		t.Errorf("a worker offers cgo, yet stderr says none does:\n%s", errOut)
	}
	if !strings.Contains(errOut, `--worker gcc: no module requires capability "gcc"`) {
		t.Errorf("stderr does not say that no module needs gcc:\n%s", errOut)
	}
	var got []string
	for _, in := range parseGenerated(t, out).Jobs["pipeline"].Strategy.Matrix.Include {
		got = append(got, in.Role+" "+in.Runner+" "+in.Capabilities)
	}
	want := []string{
		"master ubuntu-latest docker",
		"worker ubuntu-latest docker",
		"worker ubuntu-latest cgo,docker,gcc",
		"worker ubuntu-latest cgo,docker",
		"worker windows-latest ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("matrix\n got %q\nwant %q", got, want)
	}

	for _, bad := range []string{"windows", "a b", ","} {
		code, _, errOut := runMain(t, capsPipeline(), nil, "workflow", "github", "--worker", bad)
		if code != 2 || !strings.Contains(errOut, "--worker") || !strings.Contains(errOut, "worker 1") {
			t.Errorf("--worker %q: exit %d, stderr %q; want 2 and an error about --worker, worker 1", bad, code, errOut)
		}
	}
}

// A pipeline that needs no other runner gets one plain job.
func TestWorkflowSingleJobWhenOneRunnerIsEnough(t *testing.T) {
	for _, kind := range []string{"github", "gitlab"} {
		code, out, errOut := runMain(t, mainPipeline(), nil, "workflow", kind, "--branch", "main")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", kind, code, errOut)
		}
		for _, absent := range []string{"plan:", "REDIS_URL", "MODPIPE_", "matrix", "secrets."} {
			if strings.Contains(out, absent) {
				t.Errorf("%s: a run that needs one runner mentions %s:\n%s", kind, absent, out)
			}
		}
		if !strings.Contains(out, "go run ./ci --report modpipe-report.json\n") {
			t.Errorf("%s: no plain run of the pipeline:\n%s", kind, out)
		}
	}
}

// The header records the command with its arguments, quoted for a shell.
func TestWorkflowHeaderRecordsTheCommand(t *testing.T) {
	code, out, errOut := runMain(t, mainPipeline(), nil, "workflow", "github", "--name", "Build & test", "--branch", "main", "--branch=release/*")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "\n#   go run ./ci workflow github --name 'Build & test' --branch main '--branch=release/*'\n"
	if !strings.Contains(out, want) {
		t.Errorf("header does not record %q:\n%s", want, out[:min(len(out), 400)])
	}
	if got := parseGenerated(t, out).On.Push.Branches; !slices.Equal(got, []string{"main", "release/*"}) {
		t.Errorf("branches %q", got)
	}
	if strings.Contains(errOut, "pushes to") {
		t.Errorf("--branch given, yet stderr notes a detected branch: %s", errOut)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"./ci":          "./ci",
		"--name=x":      "--name=x",
		"cgo,docker":    "cgo,docker",
		"Build & test":  "'Build & test'",
		"it's":          `'it'\''s'`,
		"":              "''",
		"$HOME":         "'$HOME'",
		"release/**":    "'release/**'",
		"linux=my-host": "linux=my-host",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// Workers declared in code (DistributedOptions.WorkflowWorkers) come before
// those of --worker.
func TestWorkflowWorkersDeclaredInCode(t *testing.T) {
	p := capsPipeline().UseDistributed(DistributedOptions{WorkflowWorkers: [][]string{{"cgo"}}})
	code, out, errOut := runMain(t, p, nil, "workflow", "github", "--branch", "main", "--worker", "gpu")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(errOut, `capability "cgo"`) {
		t.Errorf("the worker declared in code offers cgo, yet stderr says none does:\n%s", errOut)
	}
	var got []string
	for _, in := range parseGenerated(t, out).Jobs["pipeline"].Strategy.Matrix.Include {
		got = append(got, in.Role+" "+in.Capabilities)
	}
	want := []string{"master docker", "worker cgo,docker", "worker docker,gpu", "worker "}
	if !slices.Equal(got, want) {
		t.Errorf("matrix\n got %q\nwant %q", got, want)
	}
	if code, _, errOut := runMain(t, capsPipeline().UseDistributed(DistributedOptions{WorkflowWorkers: [][]string{{"macos"}}}), nil, "workflow", "github"); code != 2 || !strings.Contains(errOut, "is an OS") {
		t.Errorf("a declared worker offering an OS: exit %d, %s; want 2", code, errOut)
	}
}

// TestWorkflowHelp: asking the subcommand for help (before naming github
// or gitlab) prints its usage and exits 0; a missing or unknown kind is a
// usage error (exit 2).
func TestWorkflowHelp(t *testing.T) {
	for _, args := range [][]string{{"workflow", "-h"}, {"workflow", "--help"}, {"workflow", "help"}} {
		code, out, errOut := runMain(t, capsPipeline(), nil, args...)
		if code != 0 || !strings.Contains(errOut, "workflow github|gitlab") || !strings.Contains(errOut, "--worker CAPS") {
			t.Errorf("%v: exit %d, want 0 and the usage\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"workflow"}, {"workflow", "jenkins"}} {
		code, _, errOut := runMain(t, capsPipeline(), nil, args...)
		if code != 2 || !strings.Contains(errOut, "workflow github|gitlab") {
			t.Errorf("%v: exit %d, want 2 and the usage\nstderr: %s", args, code, errOut)
		}
	}
}

// TestProgramNote: with --main left at ./ci, a program that is not a ci
// package is told that the workflow would run another program.
func TestProgramNote(t *testing.T) {
	for _, c := range []struct {
		main    string
		set     bool
		program string
		want    string // "" for no note
	}{
		{"./ci", false, "github.com/acme/app/examples/quickstart", "--main ./examples/quickstart"},
		{"./ci", false, "example.com/other/tool", "--main ./tool"}, // not in the module named
		{"./ci", false, "github.com/acme/app/ci", ""},
		{"./ci", false, "example.com/router/ci", ""}, // cd ci && go run .
		{"./ci/", false, "github.com/acme/app/ci", ""},
		{"./tools/pipeline", true, "github.com/acme/app/tools/pipeline", ""},
		{"./ci", true, "github.com/acme/app/build", ""}, // --main given: the user knows
		{"./ci", false, "github.com/acme/app.test", ""},
		{"./ci", false, "command-line-arguments", ""},
		{"./ci", false, "", ""},
	} {
		got := programNote(c.main, c.set, c.program, "github.com/acme/app")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("main %s (given: %v), program %s: note %q, want one containing %q", c.main, c.set, c.program, got, c.want)
		}
	}
}
