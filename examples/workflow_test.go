package examples_test

import (
	"io"
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
