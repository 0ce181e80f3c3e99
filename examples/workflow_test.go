package examples_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"go.yaml.in/yaml/v3"
)

// TestGeneratedWorkflowsPassActionlint generates the GitHub workflow and the
// GitLab configuration of every example pipeline with `workflow github` /
// `workflow gitlab`, lints the GitHub one with actionlint and parses both.
func TestGeneratedWorkflowsPassActionlint(t *testing.T) {
	for _, ex := range []string{"quickstart", "failing", "distributed"} {
		t.Run(ex, func(t *testing.T) {
			bin := build(t, ex)
			gen := func(kind string) []byte {
				cmd := exec.Command(bin, "workflow", kind, "--main", "./examples/"+ex, "--extra-workers", "1")
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("workflow %s: %v", kind, err)
				}
				return out
			}
			gh := gen("github")
			dir := t.TempDir()
			l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{WorkingDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			errs, err := l.Lint(filepath.Join(dir, ".github", "workflows", "pipeline.yml"), gh, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range errs {
				t.Errorf("actionlint: %s", e.Error())
			}
			var doc struct {
				Jobs map[string]struct {
					Strategy struct {
						FailFast bool             `yaml:"fail-fast"`
						Matrix   map[string][]any `yaml:"matrix"`
					} `yaml:"strategy"`
				} `yaml:"jobs"`
			}
			if err := yaml.Unmarshal(gh, &doc); err != nil {
				t.Fatalf("GitHub workflow is not YAML: %v", err)
			}
			include := doc.Jobs["pipeline"].Strategy.Matrix["include"]
			// A master and the extra worker, plus one worker per OS that
			// modules need besides Linux: quickstart's installer is
			// Windows-only; distributed's matrix needs Windows and macOS.
			want := map[string]int{"quickstart": 3, "failing": 2, "distributed": 4}[ex]
			if len(include) != want || doc.Jobs["pipeline"].Strategy.FailFast {
				t.Errorf("matrix has %d instances (want %d), fail-fast %v", len(include), want, doc.Jobs["pipeline"].Strategy.FailFast)
			}
			var gl map[string]any
			if err := yaml.Unmarshal(gen("gitlab"), &gl); err != nil {
				t.Fatalf("GitLab configuration is not YAML: %v", err)
			}
			if _, ok := gl["pipeline"]; !ok {
				t.Errorf("GitLab configuration has no pipeline job")
			}
		})
	}
}

func TestWorkflowCommandErrors(t *testing.T) {
	bin := build(t, "quickstart")
	for _, args := range [][]string{{"workflow"}, {"workflow", "jenkins"}, {"workflow", "github", "--runner", "nonsense"}, {"workflow", "github", "--runner", "freebsd="}} {
		cmd := exec.Command(bin, args...)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "modpipe:") {
			t.Errorf("%v: exit %d:\n%s", args, cmd.ProcessState.ExitCode(), out)
		}
	}
}

// realProject is a copy of a real project's layout: a library whose go.mod
// promises an older Go (1.21) than modpipe needs, and its pipeline in ci/,
// a Go module of its own that uses the local modpipe checkout. The pipeline
// vets and tests the library from ci/ (Dir(".."), as its author runs it
// with `cd ci && go run .`), uploads release notes as an artifact, and has
// a race module that needs a worker with cgo.
var realProject = map[string]string{
	"go.mod":    "module example.com/router\n\ngo 1.21\n",
	"router.go": "// Package router routes.\npackage router\n\n// Route returns the handler name for path.\nfunc Route(path string) string { return \"handler\" + path }\n",
	"router_test.go": `package router

import "testing"

func TestRoute(t *testing.T) {
	if got := Route("/x"); got != "handler/x" {
		t.Fatalf("Route(/x) = %q", got)
	}
}
`,
	"ci/main.go": `// Command ci is the router's pipeline.
package main

import (
	"os"

	"github.com/modpipe/modpipe"
	"github.com/modpipe/modpipe/distributed/redis"
)

// root is the project, seen from ci/ where the pipeline runs.
const root = ".."

var vet = modpipe.Task("vet", func(c *modpipe.Context) error {
	_, err := c.Command("go", "vet", "./...").Dir(root).Run()
	return err
})

var test = modpipe.Task("test", func(c *modpipe.Context) error {
	_, err := c.Command("go", "test", "./...").Dir(root).Run()
	return err
}, modpipe.DependsOn(vet))

var race = modpipe.Task("race", func(c *modpipe.Context) error {
	_, err := c.Command("go", "env", "CGO_ENABLED").Run()
	return err
}, modpipe.RequiresCapability("cgo"))

var notes = modpipe.New("release-notes", func(c *modpipe.Context) (modpipe.Artifact, error) {
	if err := os.MkdirAll("out", 0o755); err != nil {
		return modpipe.Artifact{}, err
	}
	if err := os.WriteFile("out/NOTES.md", []byte("router: all tests pass\n"), 0o644); err != nil {
		return modpipe.Artifact{}, err
	}
	return c.Upload("release-notes", "out/NOTES.md")
}, modpipe.DependsOn(test, race))

func main() {
	p := modpipe.NewPipeline().Add(vet, test, race, notes)
	p.UseDistributed(modpipe.DistributedOptions{})
	p.UseCoordinator(redis.NewCoordinator(redis.Options{}))
	modpipe.Main(p)
}
`,
}

// ciGoMod is the go.mod of the project's ci module: modpipe, replaced by
// the checkout, and modpipe's own requirements with its go.sum, so that the
// module is complete without go mod tidy, which would look up the modules
// of the dependencies' tests and so needs the network on a cold module
// cache; the modules modpipe builds with are enough (go mod download).
func ciGoMod(t *testing.T, modpipeGoMod, checkout string) string {
	t.Helper()
	first, rest, ok := strings.Cut(modpipeGoMod, "\n")
	if !ok || strings.TrimSpace(first) != "module github.com/modpipe/modpipe" {
		t.Fatalf("modpipe's go.mod does not start with its module line: %q", first)
	}
	if strings.Contains(rest, "\nreplace") || strings.Contains(rest, "\nexclude") {
		t.Fatal("modpipe's go.mod has replace or exclude directives, which ciGoMod does not carry over; carry them over")
	}
	return "module example.com/router/ci\n" + rest +
		"\nrequire github.com/modpipe/modpipe v0.0.0\n\nreplace github.com/modpipe/modpipe => " + checkout + "\n"
}

// goEnv keeps the go command on this toolchain and out of any workspace.
// The modules the project needs are modpipe's, which the module cache has
// once modpipe is built (ciGoMod): the test runs with GOPROXY=off.
var goEnv = []string{"GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=", "GOPROXY=off"}

// runIn runs a command in dir with env added and fails the test unless it
// exits 0; it returns stdout and stderr.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), goEnv...), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s in %s: %v\n%s%s", name, strings.Join(args, " "), dir, err, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// newRealProject writes realProject into a git repository whose default
// branch is master, clones it (as a CI runner checks it out) and returns the
// clone.
func newRealProject(t *testing.T) string {
	t.Helper()
	checkout, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	goSum, err := os.ReadFile(filepath.Join(checkout, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	goMod, err := os.ReadFile(filepath.Join(checkout, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	origin := filepath.Join(t.TempDir(), "router")
	files := map[string]string{
		"ci/go.mod": ciGoMod(t, string(goMod), filepath.ToSlash(checkout)),
		"ci/go.sum": string(goSum),
	}
	for k, v := range realProject {
		files[k] = v
	}
	for name, content := range files {
		p := filepath.Join(origin, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// git ignores the user's settings (init.defaultBranch there must not matter).
	gitConfig := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(gitConfig, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	isolated := []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + gitConfig}
	git := func(dir string, args ...string) {
		runIn(t, dir, isolated, "git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	}
	git(origin, "init", "-q", "-b", "master")
	git(origin, "add", ".")
	git(origin, "commit", "-q", "-m", "router with its pipeline in ci/")
	clone := filepath.Join(t.TempDir(), "clone")
	git(origin, "clone", "-q", origin, clone)
	return clone
}

// step is a step of a generated GitHub job.
type step struct {
	Name             string            `yaml:"name"`
	If               string            `yaml:"if"`
	Uses             string            `yaml:"uses"`
	Run              string            `yaml:"run"`
	WorkingDirectory string            `yaml:"working-directory"`
	With             map[string]string `yaml:"with"`
}

// githubJob is the generated pipeline job.
type githubJob struct {
	Needs    any               `yaml:"needs"`
	Env      map[string]string `yaml:"env"`
	Strategy struct {
		Matrix struct {
			Include []map[string]any `yaml:"include"`
		} `yaml:"matrix"`
	} `yaml:"strategy"`
	Steps []step `yaml:"steps"`
}

// githubWorkflow is what the test reads of a generated workflow.
type githubWorkflow struct {
	On struct {
		Push struct {
			Branches []string `yaml:"branches"`
		} `yaml:"push"`
	} `yaml:"on"`
	Jobs map[string]githubJob `yaml:"jobs"`
}

// lintWorkflow fails the test when actionlint finds problems in gh.
func lintWorkflow(t *testing.T, gh []byte) {
	t.Helper()
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
}

// runSteps runs the job's run: steps that a runner runs when nothing
// failed, in bash in their working directory under the checkout clone, with
// env and the matrix values substituted; then every path an upload step
// publishes must exist (if-no-files-found: ignore would hide a wrong one).
func runSteps(t *testing.T, clone string, job githubJob, matrix map[string]string, env []string) {
	t.Helper()
	expr := func(s string) string {
		for k, v := range matrix {
			s = strings.ReplaceAll(s, "${{ matrix."+k+" }}", v)
		}
		return s
	}
	for k, v := range job.Env {
		if !strings.Contains(v, "${{") || strings.Contains(v, "${{ matrix.") {
			env = append(env, k+"="+expr(v))
		}
	}
	ran := 0
	for _, s := range job.Steps {
		if s.Run == "" || (s.If != "" && s.If != "always()") {
			continue // the partial re-run guard: its condition is false in a whole run
		}
		if strings.Contains(expr(s.Run), "${{") {
			t.Fatalf("step %q: unexpanded expression in %q", s.Name, s.Run)
		}
		dir := filepath.Join(clone, filepath.FromSlash(s.WorkingDirectory))
		runIn(t, dir, env, "bash", "-e", "-c", expr(s.Run))
		ran++
	}
	if ran == 0 {
		t.Fatal("the job has no run: step")
	}
	for _, s := range job.Steps {
		if !strings.HasPrefix(s.Uses, "actions/upload-artifact@") || (s.If != "always()" && s.If != "always() && matrix.instance == 0") {
			continue
		}
		if _, err := os.Stat(filepath.Join(clone, filepath.FromSlash(expr(s.With["path"])))); err != nil {
			t.Errorf("step %q uploads %s, which the run did not write: %v", s.Name, s.With["path"], err)
		}
	}
}

// TestRealLayoutWorkflowRunsAsGenerated generates the workflow of a real
// project's layout (its pipeline in a ci/ module of its own, master as the
// default branch, a go.mod promising Go 1.21), lints it with actionlint and
// runs its steps: the pipeline must run as generated, in its module, and
// what the upload steps publish must be there.
func TestRealLayoutWorkflowRunsAsGenerated(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("bash is needed to run the generated steps: %v", err)
	}
	clone := newRealProject(t)
	ci := filepath.Join(clone, "ci")
	// As its author would: cd ci && go run . workflow github.
	bin := filepath.Join(t.TempDir(), "ci")
	runIn(t, ci, nil, "go", "build", "-o", bin, ".")

	// One runner is enough until a worker offers cgo: one plain job.
	gh, hint := runIn(t, ci, nil, bin, "workflow", "github", "--artifacts-out", "dist")
	lintWorkflow(t, []byte(gh))
	if !strings.Contains(gh, "\n#   cd ci && go run . workflow github --artifacts-out dist\n") {
		t.Errorf("the header does not record the command that generated the file:\n%s", gh[:min(len(gh), 400)])
	}
	if !strings.Contains(hint, "--worker cgo") || strings.Contains(hint, "Instance.") || strings.Contains(hint, "--capability") {
		t.Errorf("the hint for the race module's cgo does not name --worker cgo, or names options the user cannot reach:\n%s", hint)
	}
	var single githubWorkflow
	if err := yaml.Unmarshal([]byte(gh), &single); err != nil {
		t.Fatal(err)
	}
	if got := single.On.Push.Branches; len(got) != 1 || got[0] != "master" {
		t.Errorf("push branches %q, want [master], the repository's default branch", got)
	}
	job, ok := single.Jobs["pipeline"]
	if len(single.Jobs) != 1 || !ok || job.Needs != nil || len(job.Env) != 0 || strings.Contains(gh, "REDIS_URL") || strings.Contains(gh, "MODPIPE_") {
		t.Errorf("want one plain job, with no plan job, Redis secret or distributed settings:\n%s", gh)
	}
	checkGoVersionFile(t, clone, job)
	runSteps(t, clone, job, nil, []string{"GITHUB_ACTIONS="})
	rep := readReport(t, filepath.Join(ci, "modpipe-report.json"))
	t.Logf("one job: %v", statuses(rep))
	if rep.Result != "succeeded" {
		t.Errorf("the run ended %s: %+v", rep.Result, rep.Modules)
	}
	for name, status := range map[string]string{"vet": "succeeded", "test": "succeeded", "release-notes": "succeeded"} {
		if got := statuses(rep)[name]; got != status {
			t.Errorf("module %s %s, want %s", name, got, status)
		}
	}
	if _, err := os.Stat(filepath.Join(ci, "dist", "release-notes", "NOTES.md")); err != nil {
		t.Errorf("the release notes are not where the artifacts upload step looks: %v", err)
	}

	// With a worker offering cgo: a distributed run, the worker in the matrix.
	gh, _ = runIn(t, ci, nil, bin, "workflow", "github", "--worker", "cgo", "--artifacts-out", "dist")
	lintWorkflow(t, []byte(gh))
	var dist githubWorkflow
	if err := yaml.Unmarshal([]byte(gh), &dist); err != nil {
		t.Fatal(err)
	}
	job = dist.Jobs["pipeline"]
	include := job.Strategy.Matrix.Include
	if len(include) != 2 || include[1]["capabilities"] != "cgo" || include[1]["role"] != "worker" {
		t.Fatalf("matrix %v, want the master and a worker offering cgo", include)
	}
	checkGoVersionFile(t, clone, job)
	// The master's steps, as on a fork, where the Redis secret is empty:
	// instance 0 runs the whole pipeline alone.
	_ = os.RemoveAll(filepath.Join(ci, "dist"))
	runSteps(t, clone, job, map[string]string{"instance": "0", "capabilities": ""},
		[]string{"GITHUB_ACTIONS=", "MODPIPE_RUN_ID=4711-1", "REDIS_URL=", "MODPIPE_SHARED_SECRET="})
	if rep := readReport(t, filepath.Join(ci, "modpipe-report-0.json")); rep.Result != "succeeded" {
		t.Errorf("the master's run ended %s: %+v", rep.Result, rep.Modules)
	}

	// GitLab runs the script from the project directory.
	gl, _ := runIn(t, ci, nil, bin, "workflow", "gitlab", "--artifacts-out", "dist")
	var glDoc struct {
		Pipeline struct {
			Image     string   `yaml:"image"`
			Script    []string `yaml:"script"`
			Artifacts struct {
				Paths []string `yaml:"paths"`
			} `yaml:"artifacts"`
		} `yaml:"pipeline"`
	}
	if err := yaml.Unmarshal([]byte(gl), &glDoc); err != nil {
		t.Fatal(err)
	}
	if glDoc.Pipeline.Image != "golang:1.26" {
		t.Errorf("GitLab image %q, want golang:1.26, the Go of ci/go.mod (not the project's 1.21)", glDoc.Pipeline.Image)
	}
	_ = os.RemoveAll(filepath.Join(ci, "dist"))
	runIn(t, clone, []string{"GITHUB_ACTIONS="}, "bash", "-e", "-c", strings.Join(glDoc.Pipeline.Script, "\n"))
	for _, p := range glDoc.Pipeline.Artifacts.Paths {
		if m, _ := filepath.Glob(filepath.Join(clone, filepath.FromSlash(p))); len(m) == 0 {
			t.Errorf("GitLab artifacts path %s matches nothing the script wrote", p)
		}
	}
}

// checkGoVersionFile checks that setup-go reads the Go version from the
// go.mod of the module that is built (ci/go.mod, go 1.26), not the
// project's (go 1.21).
func checkGoVersionFile(t *testing.T, clone string, job githubJob) {
	t.Helper()
	for _, s := range job.Steps {
		if !strings.HasPrefix(s.Uses, "actions/setup-go@") {
			continue
		}
		f := s.With["go-version-file"]
		b, err := os.ReadFile(filepath.Join(clone, filepath.FromSlash(f)))
		if err != nil || f != "ci/go.mod" || !strings.Contains(string(b), "\ngo 1.26") {
			t.Errorf("setup-go go-version-file %q (%v), want ci/go.mod, the module that is built", f, err)
		}
		return
	}
	t.Errorf("no setup-go step")
}

// TestWorkflowNotesAnotherProgram: run from the repository root without
// --main, an example pipeline's `workflow github` warns that the workflow
// runs ./ci, another program, and names the flag and directory that fix it;
// with --main it says nothing of the kind.
func TestWorkflowNotesAnotherProgram(t *testing.T) {
	bin := build(t, "quickstart")
	run := func(args ...string) string {
		cmd := exec.Command(bin, append([]string{"workflow", "github", "--branch", "main"}, args...)...)
		cmd.Dir = ".." // the repository root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("workflow github %v: %v\n%s", args, err, stderr.String())
		}
		return stderr.String()
	}
	if got := run(); !strings.Contains(got, "this program is github.com/modpipe/modpipe/examples/quickstart") || !strings.Contains(got, "--main ./examples/quickstart") {
		t.Errorf("without --main, stderr does not warn:\n%s", got)
	}
	if got := run("--main", "./examples/quickstart"); strings.Contains(got, "this program is") {
		t.Errorf("with --main, stderr still warns:\n%s", got)
	}
}
