// Command ci is modpipe's own CI pipeline, written with modpipe: the format
// check, go vet, the test suite split in three, the Windows and macOS builds
// of every package and test binary, and the tests that only run on Windows
// or macOS runners.
//
// Locally, on one machine (the Windows and macOS modules are skipped):
//
//	go run ./ci --list
//	go run ./ci --dry-run
//	go run ./ci
//
// In CI it runs spread over Linux, Windows and macOS runners, from the
// workflow this program generates (keep it up to date; ci_test.go fails when
// it is not):
//
//	go run ./ci workflow github --extra-workers 1 --name modpipe --branch main > .github/workflows/modpipe.yml
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/modpipe/modpipe"
	"github.com/modpipe/modpipe/distributed/redis"
)

// testTimeout bounds one `go test` run; the modules get a little more.
const testTimeout = 20 * time.Minute

func main() {
	p := pipeline()
	// Used only when the run is spread over processes (--total above 1);
	// URL and run id come from --redis-url/REDIS_URL and --run-id.
	p.UseCoordinator(redis.NewCoordinator(redis.Options{}))
	modpipe.Main(p)
}

// pipeline is every module of modpipe's CI.
func pipeline() *modpipe.Pipeline {
	p := modpipe.NewPipeline().Add(
		gofmt, vet, testCore, testRedis, testExamples,
		crossBuild("windows", "amd64"), crossBuild("darwin", "amd64"), crossBuild("darwin", "arm64"),
		testWindows, testMacOS,
	)
	p.UseDistributed(modpipe.DistributedOptions{})
	return p
}

// gofmt fails when a tracked Go file is not gofmt-formatted. Linux only:
// Windows checkouts may convert line endings, which gofmt would flag.
var gofmt = modpipe.Task("gofmt", func(c *modpipe.Context) error {
	files, err := c.Command("git", "ls-files", "*.go").Quiet().Run()
	if err != nil {
		return err
	}
	res, err := c.Command("gofmt", append([]string{"-l"}, strings.Fields(files.Stdout)...)...).Quiet().Run()
	if err != nil {
		return err
	}
	if out := strings.TrimSpace(res.Stdout); out != "" {
		return fmt.Errorf("these files need gofmt (run gofmt -w on them):\n%s", out)
	}
	return nil
}, modpipe.Category("lint"), modpipe.OnOS("linux"))

var vet = modpipe.Task("vet", func(c *modpipe.Context) error {
	_, err := c.Command("go", "vet", "./...").Run()
	return err
}, modpipe.Category("lint"))

// packages lists the module's packages, split by whether they start with
// one of prefixes (relative to the module root, e.g. "examples").
func packages(c *modpipe.Context, prefixes ...string) (in, out []string, err error) {
	res, err := c.Command("go", "list", "-f", "{{.ImportPath}} {{.Module.Path}}", "./...").Quiet().Run()
	if err != nil {
		return nil, nil, err
	}
	for line := range strings.Lines(res.Stdout) {
		pkg, mod, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, mod), "/")
		matched := false
		for _, p := range prefixes {
			if rel == p || strings.HasPrefix(rel, p+"/") {
				matched = true
			}
		}
		if matched {
			in = append(in, pkg)
		} else {
			out = append(out, pkg)
		}
	}
	return in, out, nil
}

// ensureTools installs the Debian packages of missing commands (the Redis
// tests start redis-server, the live-output tests drive tmux), as
// scripts/test.sh does.
func ensureTools(c *modpipe.Context, cmds ...string) error {
	var missing []string
	for _, name := range cmds {
		if _, err := exec.LookPath(name); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	c.Logger().Info("installing from Debian packages", "packages", strings.Join(missing, " "))
	sudo := []string{}
	if os.Geteuid() != 0 {
		sudo = []string{"sudo"}
	}
	apt := func(args ...string) error {
		all := append(append([]string{}, sudo...), args...)
		_, err := c.Command(all[0], all[1:]...).Env("DEBIAN_FRONTEND=noninteractive").Run()
		return err
	}
	if err := apt("apt-get", "update", "-qq"); err != nil {
		return fmt.Errorf("installing %s: %w", strings.Join(missing, ", "), err)
	}
	if err := apt(append([]string{"apt-get", "install", "-y", "-qq"}, missing...)...); err != nil {
		return fmt.Errorf("installing %s: %w", strings.Join(missing, ", "), err)
	}
	return nil
}

// goTest runs the tests of pkgs with the race detector; a failure names the
// failing tests with file:line (and annotates them on GitHub).
func goTest(c *modpipe.Context, pkgs []string, extra ...string) error {
	if len(pkgs) == 0 {
		return errors.New("no packages to test: `go list ./...` found none where expected")
	}
	args := append([]string{"-race", "-count=1", "-timeout", testTimeout.String()}, extra...)
	_, err := modpipe.GoTest(c, append(args, pkgs...)...)
	return err
}

// testCore runs every package but the Redis coordinator's and the examples'.
var testCore = modpipe.Task("test-core", func(c *modpipe.Context) error {
	_, rest, err := packages(c, "distributed/redis", "examples")
	if err != nil {
		return err
	}
	if err := ensureTools(c, "redis-server", "tmux"); err != nil {
		return err
	}
	return goTest(c, rest)
}, modpipe.Category("test"), modpipe.OnOS("linux"), modpipe.Timeout(testTimeout+5*time.Minute))

// testRedis runs the Redis coordinator's tests, real redis-server included.
var testRedis = modpipe.Task("test-redis", func(c *modpipe.Context) error {
	pkgs, _, err := packages(c, "distributed/redis")
	if err != nil {
		return err
	}
	if err := ensureTools(c, "redis-server"); err != nil {
		return err
	}
	return goTest(c, pkgs)
}, modpipe.Category("test"), modpipe.OnOS("linux"), modpipe.Timeout(testTimeout+5*time.Minute))

// testExamples runs the examples' tests (built binaries, terminals, signals).
var testExamples = modpipe.Task("test-examples", func(c *modpipe.Context) error {
	pkgs, _, err := packages(c, "examples")
	if err != nil {
		return err
	}
	if err := ensureTools(c, "redis-server", "tmux"); err != nil {
		return err
	}
	return goTest(c, pkgs)
}, modpipe.Category("test"), modpipe.OnOS("linux"), modpipe.Timeout(testTimeout+5*time.Minute))

// crossBuild vets every package and compiles every test binary for goos and
// goarch, as scripts/crossos.sh does.
func crossBuild(goos, goarch string) *modpipe.Module[modpipe.None] {
	return modpipe.Task("cross-"+goos+"-"+goarch, func(c *modpipe.Context) error {
		env := []string{"GOOS=" + goos, "GOARCH=" + goarch, "CGO_ENABLED=0"}
		if _, err := c.Command("go", "vet", "./...").Env(env...).Run(); err != nil {
			return err
		}
		// -o /dev/null accepts several packages and discards the binaries.
		_, err := c.Command("go", "test", "-c", "-o", "/dev/null", "./...").Env(env...).Quiet().Run()
		return err
	}, modpipe.Category("cross"), modpipe.OnOS("linux"))
}

// testWindows runs the tests written for Windows: the job object that ends
// a command's whole process tree.
var testWindows = modpipe.Task("test-windows", func(c *modpipe.Context) error {
	_, err := c.Command("go", "test", "-count=1", "-timeout", testTimeout.String(), "-run", "^TestCommand", ".").Run()
	return err
}, modpipe.Category("test"), modpipe.OnOS("windows"), modpipe.Timeout(testTimeout+5*time.Minute))

// testMacOS runs the command tests (process groups, SIGTERM then SIGKILL)
// on macOS.
var testMacOS = modpipe.Task("test-macos", func(c *modpipe.Context) error {
	_, err := c.Command("go", "test", "-race", "-count=1", "-timeout", testTimeout.String(), "-run", "^TestCommand", ".").Run()
	return err
}, modpipe.Category("test"), modpipe.OnOS("macos"), modpipe.Timeout(testTimeout+5*time.Minute))
