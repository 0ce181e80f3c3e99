package workflow

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runBash runs script with bash in a temporary directory, with env added to
// the environment, and returns its output and exit code.
func runBash(t *testing.T, script string, env ...string) (string, int) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed to run the generated steps: %v", err)
	}
	cmd := exec.Command(bash, "-e", "-c", script)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	}
	t.Fatal(err)
	return "", 0
}

// TestGitHubScriptsRun runs the generated shell steps the way a runner would,
// with the expressions GitHub substitutes filled in.
func TestGitHubScriptsRun(t *testing.T) {
	b, err := GitHub(shapes(t)[0].spec)
	if err != nil {
		t.Fatal(err)
	}
	doc := parse(t, b).doc
	expr := strings.NewReplacer("${{ github.run_id }}", "4711", "${{ github.run_attempt }}", "2")

	out := filepath.Join(t.TempDir(), "output")
	script := expr.Replace(get(t, doc, "jobs", "plan", "steps", 0, "run").(string))
	if text, code := runBash(t, script, "GITHUB_OUTPUT="+out); code != 0 {
		t.Fatalf("plan step exited %d: %s", code, text)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "run-id=4711-2\nattempt=2\n"; string(got) != want {
		t.Errorf("plan step wrote %q, want %q", got, want)
	}

	guard := get(t, doc, "jobs", "pipeline", "steps", 0, "run").(string)
	text, code := runBash(t, guard, "GITHUB_RUN_ATTEMPT=2", "PLAN_ATTEMPT=1")
	if code != 1 || !strings.HasPrefix(text, "::error") || !strings.Contains(text, "attempt 2") ||
		!strings.Contains(text, "attempt 1") || !strings.Contains(text, "Re-run all jobs") || strings.Count(text, "\n") != 1 {
		t.Errorf("guard exited %d with %q; want 1 and one ::error line naming both attempts", code, text)
	}
}

// TestGitLabScriptRuns checks what the script passes to go run in a POSIX
// shell, where the matrix variable expands.
func TestGitLabScriptRuns(t *testing.T) {
	b, err := GitLab(shapes(t)[3].spec)
	if err != nil {
		t.Fatal(err)
	}
	script := get(t, parse(t, b).doc, "pipeline", "script", 0).(string)
	text, code := runBash(t, `go() { printf '%s\n' "$@"; }; `+script, "MODPIPE_INSTANCE=3")
	if want := "run\n./build/ci\n--report\nmodpipe-report-3.json\n"; code != 0 || text != want {
		t.Errorf("script ran %q (exit %d), want %q", text, code, want)
	}
}
