package workflow

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// gitTimeout bounds each git command the detection runs.
const gitTimeout = 10 * time.Second

// git runs git with args in dir and returns its trimmed stdout; ok is false
// when git is missing, fails or prints nothing.
func git(ctx context.Context, dir string, args ...string) (out string, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	b, err := cmd.Output()
	out = strings.TrimSpace(string(b))
	return out, err == nil && out != ""
}

// RepoRoot returns the root of the git work tree that holds dir, or dir
// itself when it is in none (or git is not installed).
func RepoRoot(ctx context.Context, dir string) string {
	if root, ok := git(ctx, dir, "rev-parse", "--show-toplevel"); ok {
		return filepath.FromSlash(root)
	}
	return dir
}

// DefaultBranch returns the branch whose pushes a generated workflow should
// run on for the repository in dir, and where it comes from (for a note):
// the remote's default branch (refs/remotes/origin/HEAD, set by git clone),
// else the branch checked out, else git's init.defaultBranch, else "main".
func DefaultBranch(ctx context.Context, dir string) (branch, source string) {
	if ref, ok := git(ctx, dir, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"); ok {
		if b, found := strings.CutPrefix(ref, "origin/"); found && b != "" {
			return b, "the default branch of origin"
		}
	}
	if b, ok := git(ctx, dir, "symbolic-ref", "--quiet", "--short", "HEAD"); ok {
		return b, "the branch checked out (origin has no default branch here)"
	}
	if b, ok := git(ctx, dir, "config", "init.defaultBranch"); ok {
		return b, "git's init.defaultBranch (no branch is checked out, and origin has no default branch here)"
	}
	return "main", "the default (no git repository, or no branch, found)"
}

// Layout is where a pipeline program sits in its repository.
type Layout struct {
	// ModuleDir is the directory of the Go module holding the program,
	// relative to the repository root and slash-separated; empty when that
	// is the root's module (see Spec.ModuleDir).
	ModuleDir string
	// Main is the program's package path as `go run` takes it in the
	// directory the pipeline runs in: the root, or ModuleDir.
	Main string
	// GoVersion is the language version (major.minor, e.g. "1.26") of the
	// go line of the module's go.mod; empty when there is none.
	GoVersion string
}

// goLineRE finds the go directive of a go.mod and its major.minor version.
var goLineRE = regexp.MustCompile(`(?m)^go[ \t]+(1\.[0-9]+)(?:\.[0-9]+|rc[0-9]+)?[ \t]*(?://.*)?\r?$`)

// goVersion returns the major.minor version of the go line of the go.mod
// at path, or "" when it has none.
func goVersion(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if m := goLineRE.FindSubmatch(b); m != nil {
		return string(m[1]), nil
	}
	return "", nil
}

// FindLayout finds the Go module of the pipeline program main, a package
// path relative to the repository root root such as ./ci: the nearest
// go.mod in main's directory or above it, up to root. When that is not the
// root's go.mod (a ci/ with its own go.mod), the layout names its directory
// and main relative to it. A main that is not a directory under root (an
// import path) is kept as it is, with a note.
func FindLayout(root, main string) (l Layout, note string, err error) {
	l.Main = main
	rel := filepath.Clean(filepath.FromSlash(main))
	if filepath.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return l, "", fmt.Errorf("--main %s: give the package path relative to the repository root %s, such as ./ci", main, root)
	}
	dir := filepath.Join(root, rel)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return l, fmt.Sprintf("%s is not a directory under the repository root %s: the workflow runs `go run %s` there and reads the Go version from go.mod; run this command from inside the repository, with --main relative to its root", main, root, main), nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		_, err := os.Stat(filepath.Join(d, "go.mod"))
		switch {
		case err == nil:
			if l.GoVersion, err = goVersion(filepath.Join(d, "go.mod")); err != nil {
				return l, "", fmt.Errorf("finding the Go version of %s: %w", main, err)
			}
			modRel, err := filepath.Rel(root, d)
			if err != nil {
				return l, "", fmt.Errorf("finding the Go module of %s: %w", main, err)
			}
			if modRel == "." {
				return l, "", nil
			}
			pkg, err := filepath.Rel(d, dir)
			if err != nil {
				return l, "", fmt.Errorf("finding the Go module of %s: %w", main, err)
			}
			l.ModuleDir = filepath.ToSlash(modRel)
			l.Main = "."
			if pkg != "." {
				l.Main = "./" + filepath.ToSlash(pkg)
			}
			return l, "", nil
		case !errors.Is(err, fs.ErrNotExist):
			return l, "", fmt.Errorf("finding the Go module of %s: %w", main, err)
		}
		if d == root || filepath.Dir(d) == d {
			return l, fmt.Sprintf("no go.mod found in %s or above it up to the repository root %s: the workflow reads the Go version from go.mod at the root", main, root), nil
		}
	}
}
