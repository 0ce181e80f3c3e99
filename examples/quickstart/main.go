// Command quickstart is a small, real pipeline: it writes a tiny Go program
// into a temporary workspace, vets and tests it in parallel, builds it,
// checksums the binary and cleans up. It needs nothing but Go.
//
//	go run ./examples/quickstart            # run it
//	go run ./examples/quickstart --list     # show the modules
//	go run ./examples/quickstart --dry-run  # show the plan
//
// The graph is a diamond (workspace → vet, test → build) with typed results
// flowing along it, a module skipped by a condition (publish), one skipped
// because it only runs on Windows (installer) and a cleanup that always runs.
//
// vet, test and build are cached (modpipe.Cache): their inputs are the
// sample's sources, the Go version and the workspace's result, so a second
// run restores their results instead of running them; build's binary is an
// artifact, kept in the cache's store, that smoke downloads and runs.
//
//	go run ./examples/quickstart --explain-cache   # say why each miss missed
//	go run ./examples/quickstart --cache-mode off  # run everything
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/modpipe/modpipe"
)

// Workspace is where the sample program lives.
type Workspace struct {
	Dir string
}

// TestReport counts the tests that passed.
type TestReport struct {
	Passed int
}

// Binary is a built program: the artifact holding it, its size and digest.
type Binary struct {
	Artifact modpipe.Artifact
	Name     string
	Size     int64
	SHA256   string
}

// sources is the sample program; it is also the cached modules' input.
var sources = map[string]string{
	"go.mod":       "module example.com/hello\n\ngo 1.22\n",
	"main.go":      "package main\n\nimport \"fmt\"\n\nfunc Greet(name string) string { return \"hello, \" + name }\n\nfunc main() { fmt.Println(Greet(\"modpipe\")) }\n",
	"main_test.go": "package main\n\nimport \"testing\"\n\nfunc TestGreet(t *testing.T) {\n\tif Greet(\"x\") != \"hello, x\" {\n\t\tt.Fatal(\"bad greeting\")\n\t}\n}\n\nfunc TestGreetEmpty(t *testing.T) {\n\tif Greet(\"\") != \"hello, \" {\n\t\tt.Fatal(\"bad greeting\")\n\t}\n}\n",
}

// cached is the cache declaration shared by vet, test and build: the
// sources and the toolchain. The workspace's result (a dependency) is
// covered by the key without being named.
var cached = modpipe.Cache(modpipe.InputValue("sources", sources), modpipe.InputCommand("go", "version"), modpipe.CacheVersion("1"))

var workspace = modpipe.New("workspace", func(c *modpipe.Context) (Workspace, error) {
	// A fixed path, so that the workspace's result (a dependency of the
	// cached modules, and so part of their keys) is the same every run.
	dir := filepath.Join(os.TempDir(), "modpipe-quickstart")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Workspace{}, err
	}
	files := sources
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return Workspace{}, err
		}
	}
	c.Logger().Info("wrote sample program", "dir", dir, "files", len(files))
	return Workspace{Dir: dir}, nil
}, modpipe.Category("setup"))

var vet = modpipe.Task("vet", func(c *modpipe.Context) error {
	ws, err := modpipe.Result(c, workspace)
	if err != nil {
		return err
	}
	_, err = c.Command("go", "vet", "./...").Dir(ws.Dir).Run()
	return err
}, modpipe.DependsOn(workspace), modpipe.Category("check"), modpipe.Timeout(2*time.Minute), cached)

var test = modpipe.New("test", func(c *modpipe.Context) (TestReport, error) {
	ws, err := modpipe.Result(c, workspace)
	if err != nil {
		return TestReport{}, err
	}
	res, err := c.Command("go", "test", "-count=1", "-v", "./...").Dir(ws.Dir).Run()
	if err != nil {
		return TestReport{}, err
	}
	report := TestReport{Passed: strings.Count(res.Stdout, "--- PASS")}
	c.Logger().Info("tests passed", "count", report.Passed)
	return report, nil
}, modpipe.DependsOn(workspace), modpipe.Category("check"), modpipe.Timeout(2*time.Minute), modpipe.Retry(1, modpipe.Backoff(time.Second, time.Second)), cached)

var build = modpipe.New("build", func(c *modpipe.Context) (Binary, error) {
	ws, err := modpipe.Result(c, workspace)
	if err != nil {
		return Binary{}, err
	}
	report, err := modpipe.Result(c, test)
	if err != nil {
		return Binary{}, err
	}
	if report.Passed == 0 {
		return Binary{}, errors.New("no test passed; refusing to build")
	}
	name := "hello"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	// Upload takes paths relative to the working directory: build into a
	// scratch directory here, removed once the artifact is stored.
	tmp, err := os.MkdirTemp(".", ".quickstart-build-")
	if err != nil {
		return Binary{}, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, name)
	abs, err := filepath.Abs(out)
	if err != nil {
		return Binary{}, err
	}
	if _, err := c.Command("go", "build", "-o", abs, ".").Dir(ws.Dir).Run(); err != nil {
		return Binary{}, err
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return Binary{}, err
	}
	sum := sha256.Sum256(data)
	// An artifact outlives the workspace: a cached build restores it from
	// the store instead of building again.
	art, err := c.Upload("hello", out)
	if err != nil {
		return Binary{}, err
	}
	b := Binary{Artifact: art, Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	c.Logger().Info("built", "binary", name, "bytes", b.Size, "sha256", b.SHA256[:12])
	return b, nil
}, modpipe.DependsOn(workspace, vet, test), modpipe.Category("build"), cached)

var smoke = modpipe.New("smoke", func(c *modpipe.Context) (string, error) {
	b, err := modpipe.Result(c, build)
	if err != nil {
		return "", err
	}
	ws, err := modpipe.Result(c, workspace)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(ws.Dir, "smoke")
	if err := c.Download(b.Artifact, dir); err != nil {
		return "", err
	}
	res, err := c.Command(filepath.Join(dir, b.Name)).Run()
	if err != nil {
		return "", err
	}
	got := strings.TrimSpace(res.Stdout)
	if got != "hello, modpipe" {
		return "", fmt.Errorf("binary printed %q, want %q", got, "hello, modpipe")
	}
	return got, nil
}, modpipe.DependsOn(build, workspace), modpipe.Category("check"))

var publish = modpipe.Task("publish", func(c *modpipe.Context) error {
	b, err := modpipe.Result(c, build)
	if err != nil {
		return err
	}
	c.Logger().Info("would upload", "artifact", b.Artifact.Name, "sha256", b.SHA256)
	return nil
}, modpipe.DependsOn(build, smoke), modpipe.Category("release"),
	modpipe.RunIf("building a release tag", func(*modpipe.Context) bool {
		return strings.HasPrefix(os.Getenv("GITHUB_REF"), "refs/tags/")
	}))

var installer = modpipe.Task("installer", func(c *modpipe.Context) error {
	c.Logger().Info("building the MSI installer")
	return nil
}, modpipe.DependsOn(build), modpipe.OnOS("windows"), modpipe.Category("release"))

var cleanup = modpipe.Task("cleanup", func(c *modpipe.Context) error {
	ws, err := modpipe.Result(c, workspace)
	if err != nil {
		return nil // nothing was created
	}
	c.Logger().Info("removing workspace", "dir", ws.Dir)
	return os.RemoveAll(ws.Dir)
}, modpipe.DependsOn(workspace), modpipe.DependsOnOptional(build, smoke, publish, installer), modpipe.AlwaysRun())

func main() {
	p := modpipe.NewPipeline()
	p.Add(workspace, vet, test, build, smoke, publish, installer, cleanup)
	modpipe.Main(p)
}
