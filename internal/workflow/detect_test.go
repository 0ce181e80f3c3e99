package workflow

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// isolateGit makes git ignore the user's and the system's configuration
// (init.defaultBranch there would change what the tests see).
func isolateGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed to test the detection: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", empty)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	for _, k := range []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// gitRun runs git in dir and fails the test when it fails.
func gitRun(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestDefaultBranch(t *testing.T) {
	isolateGit(t)
	ctx := context.Background()

	// A clone of a repository whose default branch is master, with a
	// feature branch checked out: origin's default wins.
	origin := t.TempDir()
	gitRun(t, origin, "init", "-q", "-b", "master")
	gitRun(t, origin, "commit", "-q", "--allow-empty", "-m", "first")
	clone := filepath.Join(t.TempDir(), "clone")
	gitRun(t, origin, "clone", "-q", origin, clone)
	gitRun(t, clone, "checkout", "-q", "-b", "feature")
	if b, src := DefaultBranch(ctx, clone); b != "master" || !strings.Contains(src, "origin") {
		t.Errorf("clone: %q (%s), want master from origin", b, src)
	}

	// No remote: the branch checked out, even before the first commit.
	fresh := t.TempDir()
	gitRun(t, fresh, "init", "-q", "-b", "trunk")
	if b, src := DefaultBranch(ctx, fresh); b != "trunk" || !strings.Contains(src, "checked out") {
		t.Errorf("fresh repository: %q (%s), want trunk, checked out", b, src)
	}

	// Detached HEAD, no remote: init.defaultBranch.
	gitRun(t, fresh, "commit", "-q", "--allow-empty", "-m", "first")
	gitRun(t, fresh, "checkout", "-q", "--detach")
	gitRun(t, fresh, "config", "init.defaultBranch", "develop")
	if b, src := DefaultBranch(ctx, fresh); b != "develop" || !strings.Contains(src, "init.defaultBranch") {
		t.Errorf("detached: %q (%s), want develop from init.defaultBranch", b, src)
	}

	// No repository at all.
	if b, src := DefaultBranch(ctx, t.TempDir()); b != "main" || !strings.Contains(src, "default") {
		t.Errorf("no repository: %q (%s), want main", b, src)
	}
}

func TestRepoRoot(t *testing.T) {
	isolateGit(t)
	repo := t.TempDir()
	gitRun(t, repo, "init", "-q")
	sub := filepath.Join(repo, "ci", "x")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	want, err := filepath.EvalSymlinks(repo)
	if err != nil {
		t.Fatal(err)
	}
	if got := RepoRoot(context.Background(), sub); got != want {
		t.Errorf("RepoRoot(%s) = %s, want %s", sub, got, want)
	}
	plain := t.TempDir()
	if got := RepoRoot(context.Background(), plain); got != plain {
		t.Errorf("outside a repository: RepoRoot = %s, want the directory itself", got)
	}
}

// writeFiles creates files (slash-separated paths under root) with content.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindLayout(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"go.mod":                     "module example.com/router\n\ngo 1.21\n",
		"ci/go.mod":                  "module example.com/router/ci\n\ngo 1.26.0\n",
		"ci/main.go":                 "package main\n",
		"ci/cmd/release/main.go":     "package main\n",
		"tools/pipeline/main.go":     "package main\n",
		"nested/mod/go.mod":          "module example.com/nested\n",
		"nested/mod/deep/ci/main.go": "package main\n",
	})
	for _, c := range []struct {
		main string
		want Layout
	}{
		{"./ci", Layout{ModuleDir: "ci", Main: ".", GoVersion: "1.26"}},
		{"ci", Layout{ModuleDir: "ci", Main: ".", GoVersion: "1.26"}},
		{"./ci/cmd/release", Layout{ModuleDir: "ci", Main: "./cmd/release", GoVersion: "1.26"}},
		{"./tools/pipeline", Layout{Main: "./tools/pipeline", GoVersion: "1.21"}},    // the root's module
		{"./nested/mod/deep/ci", Layout{ModuleDir: "nested/mod", Main: "./deep/ci"}}, // no go line
	} {
		got, note, err := FindLayout(root, c.main)
		if err != nil || note != "" || got != c.want {
			t.Errorf("FindLayout(%s) = %+v, note %q, err %v; want %+v", c.main, got, note, err, c.want)
		}
	}

	// Not a directory (an import path, or run outside the repository): kept
	// as it is, with a note that says why.
	got, note, err := FindLayout(root, "example.com/router/ci")
	if err != nil || got != (Layout{Main: "example.com/router/ci"}) || !strings.Contains(note, "not a directory") {
		t.Errorf("import path: %+v, note %q, err %v", got, note, err)
	}
	// No go.mod anywhere: the root's go.mod is assumed, with a note.
	bare := t.TempDir()
	writeFiles(t, bare, map[string]string{"ci/main.go": "package main\n"})
	got, note, err = FindLayout(bare, "./ci")
	if err != nil || got != (Layout{Main: "./ci"}) || !strings.Contains(note, "no go.mod") {
		t.Errorf("no go.mod: %+v, note %q, err %v", got, note, err)
	}
	// Outside the repository.
	for _, m := range []string{"../elsewhere", filepath.Join(t.TempDir(), "ci")} {
		if _, _, err := FindLayout(root, m); err == nil || !strings.Contains(err.Error(), "relative to the repository root") {
			t.Errorf("FindLayout(%s): error %v, want one asking for a path relative to the root", m, err)
		}
	}
}

func TestGoVersion(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"module m\n\ngo 1.21\n":                                               "1.21",
		"module m\n\ngo 1.26.0\n\nrequire x v1\n":                             "1.26",
		"module m\r\n\r\ngo 1.24.3\r\n":                                       "1.24",
		"module m\ngo 1.22rc1\n":                                              "1.22",
		"module m\n// go 1.9 in a comment\ngo 1.23 // the language version\n": "1.23",
		"module m\n":                     "",
		"module m\ntoolchain go1.26.1\n": "",
	} {
		p := filepath.Join(dir, "go.mod")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := goVersion(p); err != nil || got != want {
			t.Errorf("goVersion(%q) = %q, %v; want %q", content, got, err, want)
		}
	}
	if _, err := goVersion(filepath.Join(dir, "missing", "go.mod")); err == nil {
		t.Errorf("goVersion of a missing file: no error")
	}
}
