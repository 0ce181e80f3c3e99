package workflow

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
)

// lint runs actionlint on a GitHub workflow, with the spec's self-hosted
// runner labels declared the way the generated header comment says.
func lint(t *testing.T, name string, content []byte, selfHosted []string) []*actionlint.Error {
	t.Helper()
	dir := t.TempDir()
	cfg := "self-hosted-runner:\n  labels: []\n"
	if len(selfHosted) > 0 {
		cfg = "self-hosted-runner:\n  labels:\n"
		for _, l := range selfHosted {
			cfg += "    - " + l + "\n"
		}
	}
	cfgPath := filepath.Join(dir, "actionlint.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{ConfigFile: cfgPath, WorkingDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.Lint(filepath.Join(dir, ".github", "workflows", name+".yml"), content, nil)
	if err != nil {
		t.Fatalf("actionlint could not lint %s: %v", name, err)
	}
	return errs
}

func formatLintErrors(errs []*actionlint.Error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n  " + e.Error())
	}
	return b.String()
}

// lintSpecs are more runs than the golden shapes, to lint every option.
func lintSpecs(t *testing.T) []shape {
	specs := shapes(t)
	one, _, err := Plan(nil, nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	many, _, err := Plan([]string{"windows", "macos"}, []string{"docker", "gpu"}, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	return append(specs,
		shape{"single", Spec{Instances: one}},
		shape{"many", Spec{Instances: many, PullRequest: true, Name: "Build & test: all", Branches: []string{"*", "v*/**"}}},
		shape{"hosted-override", Spec{Instances: []Instance{{Index: 0, OS: "linux", Runner: "ubuntu-24.04-arm", Capabilities: []string{"docker", "arm64"}}}}},
	)
}

func TestActionlintAcceptsGenerated(t *testing.T) {
	for _, sh := range lintSpecs(t) {
		t.Run(sh.name, func(t *testing.T) {
			b, err := GitHub(sh.spec)
			if err != nil {
				t.Fatal(err)
			}
			if errs := lint(t, sh.name, b, customRunners(sh.spec.Instances)); len(errs) > 0 {
				t.Errorf("actionlint found %d problems in the generated workflow:%s\n\n%s", len(errs), formatLintErrors(errs), b)
			}
		})
	}
}

// TestActionlintAcceptsGoldenFiles lints the checked-in files themselves.
func TestActionlintAcceptsGoldenFiles(t *testing.T) {
	for _, sh := range shapes(t) {
		b, err := os.ReadFile(goldenPath(sh.name, "github"))
		if err != nil {
			t.Fatal(err)
		}
		if errs := lint(t, sh.name, b, customRunners(sh.spec.Instances)); len(errs) > 0 {
			t.Errorf("%s: actionlint found problems:%s", sh.name, formatLintErrors(errs))
		}
	}
}

// TestActionlintRejectsBroken proves the lint check can fail: broken
// workflows, and broken variants of a generated one, get actionlint errors.
func TestActionlintRejectsBroken(t *testing.T) {
	const broken = `name: broken
on:
  push:
    branches: [main]
jobs:
  pipeline:
    runs-on: ${{ matrix.runner }}
    needs: plan
    steps:
      - run: echo ${{ matrix.nope }}
      - uses: actions/checkout@v4
        with:
          no-such-input: true
`
	if errs := lint(t, "broken", []byte(broken), nil); len(errs) == 0 {
		t.Errorf("actionlint found nothing wrong in a broken workflow")
	}

	sh := shapes(t)[3] // with self-hosted runners
	good, err := GitHub(sh.spec)
	if err != nil {
		t.Fatal(err)
	}
	labels := customRunners(sh.spec.Instances)
	if errs := lint(t, "good", good, labels); len(errs) > 0 {
		t.Fatalf("the unbroken workflow already has problems:%s", formatLintErrors(errs))
	}
	mutations := []struct{ old, new string }{
		{"needs: plan", "needs: planning"},                                                          // a job that does not exist
		{"${{ matrix.runner }}", "${{ matrix.runners }}"},                                           // a matrix key that does not exist
		{"needs.plan.outputs.attempt !=", "needs.plan.outputs.attempts !="},                         // an output that does not exist
		{"fail-fast: false", "fail-fast: maybe"},                                                    // not a boolean
		{"go-version-file: go.mod", "go-version-fil: go.mod"},                                       // not an input of setup-go
		{"${{ secrets." + sh.spec.RedisSecret + " }}", "${{ secret." + sh.spec.RedisSecret + " }}"}, // unknown context
	}
	for _, m := range mutations {
		if !strings.Contains(string(good), m.old) {
			t.Errorf("mutation %q: not in the generated workflow", m.old)
			continue
		}
		bad := strings.Replace(string(good), m.old, m.new, 1)
		if errs := lint(t, "mutated", []byte(bad), labels); len(errs) == 0 {
			t.Errorf("actionlint accepted the workflow with %q replaced by %q", m.old, m.new)
		}
	}
	// Without the labels the header comment asks for, the self-hosted ones are unknown.
	if errs := lint(t, "good", good, nil); len(errs) == 0 {
		t.Errorf("actionlint accepted unknown self-hosted runner labels %q", labels)
	}
}
