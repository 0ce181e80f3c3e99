// Command distributed is a pipeline built to be spread over several
// machines: a CI matrix whose instance 0 is the master. It shows module
// pinning, capability routing, an OS matrix, typed results crossing
// instances, and an artifact: a real Go binary built on the docker
// instance, downloaded and run on the master, and published with
// --artifacts-out DIR.
//
// Try it on one machine first, as four instances in one process (the
// in-memory coordinator; instance 1 offers docker, 2 poses as Windows, 3 as
// macOS):
//
//	go run ./examples/distributed --local-instances 4
//
// Or alone, as a plain single-instance pipeline: the Windows and macOS
// variants are skipped, and capabilities and pinning have no effect:
//
//	go run ./examples/distributed
//
// As separate processes, each instance runs the same binary with its index
// and the shared coordinator's settings (see the distributed-mode guide).
//
// Demo switches, to watch failure handling (the repository's tests use
// them too): DEMO_FAIL=<module> makes that module fail; DEMO_SLOW=<module>=<duration>[,...]
// makes modules take longer; DEMO_TOOL_PAD=<bytes> adds that many random
// bytes to the hello-tool artifact; DEMO_EXTRA=1 adds a module, so the instance
// runs a different pipeline and is refused by the others.
package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/modpipe/modpipe"
	"github.com/modpipe/modpipe/distributed/redis"
)

// Version is the version being built.
type Version struct {
	Semver string
	Commit string
}

// Build is what the compile step produced.
type Build struct {
	Version  Version
	Packages int
	BuiltOn  int // instance index
}

// Image is a container image reference.
type Image struct {
	Ref string
}

// TestReport is one OS's test run.
type TestReport struct {
	OS     string
	Passed int
}

// work simulates d of work that stops when the module is cancelled.
func work(c *modpipe.Context, d time.Duration) error {
	if os.Getenv("DEMO_FAIL") == c.Name() {
		c.Logger().Error("failing on purpose (DEMO_FAIL)", "instance", c.Instance().Index)
		return fmt.Errorf("%s failed on instance %d (DEMO_FAIL)", c.Name(), c.Instance().Index)
	}
	for spec := range strings.SplitSeq(os.Getenv("DEMO_SLOW"), ",") {
		if name, dur, ok := strings.Cut(spec, "="); ok && name == c.Name() {
			if v, err := time.ParseDuration(dur); err == nil {
				d = v
			}
		}
	}
	c.Logger().Info("working", "for", d.String(), "instance", c.Instance().Index)
	select {
	case <-time.After(d):
		return nil
	case <-c.Done():
		return c.Err()
	}
}

var version = modpipe.New("version", func(c *modpipe.Context) (Version, error) {
	if err := work(c, 0); err != nil {
		return Version{}, err
	}
	res, err := c.Command("go", "env", "GOVERSION").Quiet().Run()
	if err != nil {
		return Version{}, err
	}
	v := Version{Semver: "1.8.0", Commit: "toolchain-" + strings.TrimSpace(res.Stdout)}
	c.Logger().Info("resolved version", "semver", v.Semver, "commit", v.Commit)
	return v, nil
}, modpipe.Category("build"))

var compile = modpipe.New("compile", func(c *modpipe.Context) (Build, error) {
	v, err := modpipe.Result(c, version)
	if err != nil {
		return Build{}, err
	}
	c.Logger().Info("compiling", "version", v.Semver, "instance", c.Instance().Index)
	if err := work(c, 300*time.Millisecond); err != nil {
		return Build{}, err
	}
	return Build{Version: v, Packages: 42, BuiltOn: c.Instance().Index}, nil
}, modpipe.DependsOn(version), modpipe.Category("build"), modpipe.Timeout(5*time.Minute))

var unitTests = modpipe.New("unit-tests", func(c *modpipe.Context) (TestReport, error) {
	b, err := modpipe.Result(c, compile)
	if err != nil {
		return TestReport{}, err
	}
	c.Logger().Info("testing packages", "packages", b.Packages, "compiled_on", b.BuiltOn)
	if err := work(c, 400*time.Millisecond); err != nil {
		return TestReport{}, err
	}
	return TestReport{OS: "any", Passed: b.Packages * 10}, nil
}, modpipe.DependsOn(compile), modpipe.Category("test"), modpipe.Retry(1, modpipe.Backoff(100*time.Millisecond, time.Second)))

var dockerImage = modpipe.New("docker-image", func(c *modpipe.Context) (Image, error) {
	b, err := modpipe.Result(c, compile)
	if err != nil {
		return Image{}, err
	}
	c.Logger().Info("building image", "instance", c.Instance().Index, "capabilities", strings.Join(c.Instance().Capabilities, ","))
	if err := work(c, 500*time.Millisecond); err != nil {
		return Image{}, err
	}
	return Image{Ref: "ghcr.io/acme/app:" + b.Version.Semver}, nil
}, modpipe.DependsOn(compile), modpipe.RequiresCapability("docker"), modpipe.Category("package"))

var crossTests = modpipe.New("cross-tests", func(c *modpipe.Context) (TestReport, error) {
	b, err := modpipe.Result(c, compile)
	if err != nil {
		return TestReport{}, err
	}
	c.Logger().Info("running the suite", "target", c.MatrixTarget(), "instance", c.Instance().Index, "version", b.Version.Semver)
	if err := work(c, 600*time.Millisecond); err != nil {
		return TestReport{}, err
	}
	return TestReport{OS: c.MatrixTarget(), Passed: 128}, nil
}, modpipe.DependsOn(compile), modpipe.MatrixTarget("linux", "windows", "macos"), modpipe.Category("test"))

// Tool is the result of build-tool: the binary, as an artifact.
type Tool struct {
	Binary  modpipe.Artifact
	BuiltOn int
}

// helloSource is the program build-tool compiles.
const helloSource = `package main

import "fmt"

func main() { fmt.Println("hello from the tool") }
`

// buildTool compiles a real Go binary and uploads it: its manifest travels
// as the result, its bytes go to the run's artifact store.
var buildTool = modpipe.New("build-tool", func(c *modpipe.Context) (Tool, error) {
	if _, err := modpipe.Result(c, compile); err != nil {
		return Tool{}, err
	}
	if err := work(c, 0); err != nil {
		return Tool{}, err
	}
	// Upload takes paths relative to the working directory.
	dir, err := os.MkdirTemp(".", ".build-tool-")
	if err != nil {
		return Tool{}, err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return Tool{}, err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644); err != nil {
		return Tool{}, err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(helloSource), 0o644); err != nil {
		return Tool{}, err
	}
	out, err := filepath.Abs(filepath.Join(dir, "bin", "hello"+exeSuffix()))
	if err != nil {
		return Tool{}, err
	}
	if _, err := c.Command("go", "build", "-o", out, ".").Dir(src).Env("CGO_ENABLED=0").Quiet().Run(); err != nil {
		return Tool{}, err
	}
	if err := pad(filepath.Join(dir, "bin", "pad")); err != nil {
		return Tool{}, err
	}
	// The artifact's root is the paths' deepest common directory: it
	// holds "hello", not the temporary directory's name.
	art, err := c.Upload("hello-tool", filepath.Join(dir, "bin"))
	if err != nil {
		return Tool{}, err
	}
	return Tool{Binary: art, BuiltOn: c.Instance().Index}, nil
}, modpipe.DependsOn(compile), modpipe.RequiresCapability("docker"), modpipe.Category("build"))

// smokeTest downloads the binary on another instance and runs it.
var smokeTest = modpipe.Task("smoke-test", func(c *modpipe.Context) error {
	tool, err := modpipe.Result(c, buildTool)
	if err != nil {
		return err
	}
	if err := work(c, 0); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "smoke-test-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := c.Download(tool.Binary, dir); err != nil {
		return err
	}
	bin := filepath.Join(dir, "hello"+exeSuffix())
	res, err := c.Command(bin).Quiet().Run()
	if err != nil {
		return err
	}
	c.Logger().Info("ran the tool", "built_on", tool.BuiltOn, "instance", c.Instance().Index, "said", strings.TrimSpace(res.Stdout))
	return nil
}, modpipe.DependsOn(buildTool), modpipe.PinToMaster(), modpipe.Category("test"))

// toolCheck downloads the binary on the Windows instance too: Download
// verifies every byte against the manifest's SHA-256 (the binary is built
// for the docker instance's OS, so it is not run here).
var toolCheck = modpipe.Task("tool-check", func(c *modpipe.Context) error {
	tool, err := modpipe.Result(c, buildTool)
	if err != nil {
		return err
	}
	if err := work(c, 0); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tool-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := c.Download(tool.Binary, dir); err != nil {
		return err
	}
	c.Logger().Info("verified the tool", "bytes", tool.Binary.Bytes(), "instance", c.Instance().Index)
	return nil
}, modpipe.DependsOn(buildTool), modpipe.OnOS("windows"), modpipe.Category("test"))

// pad adds DEMO_TOOL_PAD random bytes to the artifact, so that its upload
// takes a while (the repository's tests kill a worker mid-upload).
func pad(path string) error {
	n, _ := strconv.ParseInt(os.Getenv("DEMO_TOOL_PAD"), 10, 64)
	if n <= 0 {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func exeSuffix() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}

var publish = modpipe.Task("publish", func(c *modpipe.Context) error {
	img, err := modpipe.Result(c, dockerImage)
	if err != nil {
		return err
	}
	unit, err := modpipe.Result(c, unitTests)
	if err != nil {
		return err
	}
	cross, err := modpipe.MatrixResults(c, crossTests)
	if err != nil {
		return err
	}
	if err := work(c, 0); err != nil {
		return err
	}
	var oses []string
	for os, r := range cross {
		oses = append(oses, fmt.Sprintf("%s:%d", os, r.Passed))
	}
	c.Logger().Info("publishing", "image", img.Ref, "unit_tests", unit.Passed, "cross", strings.Join(oses, " "), "instance", c.Instance().Index)
	return nil
}, modpipe.DependsOn(dockerImage, unitTests, crossTests), modpipe.PinToMaster(), modpipe.NotIdempotent(), modpipe.Category("release"))

func main() {
	p := modpipe.NewPipeline()
	p.Add(version, compile, unitTests, dockerImage, crossTests, buildTool, smokeTest, toolCheck, publish)
	if os.Getenv("DEMO_EXTRA") == "1" {
		p.Add(modpipe.Task("extra", func(*modpipe.Context) error { return nil }))
	}
	caps := []string{}
	if os.Getenv("DOCKER_AVAILABLE") == "true" {
		caps = append(caps, "docker")
	}
	p.UseDistributed(modpipe.DistributedOptions{
		Capabilities: caps,
		// What the simulated instances of --local-instances offer.
		LocalCapabilities: map[int][]string{1: {"docker"}, 2: {"windows"}, 3: {"macos"}},
		HeartbeatInterval: time.Second,
		LeaseTimeout:      5 * time.Second,
	})
	// Used only when the run is spread over processes (--total above 1);
	// URL and run id come from --redis-url/REDIS_URL and --run-id.
	p.UseCoordinator(redis.NewCoordinator(redis.Options{}))
	// Artifacts go to the coordinator's Redis by default;
	// --artifact-store s3://bucket/prefix chooses an S3-compatible service.
	modpipe.Main(p)
}
