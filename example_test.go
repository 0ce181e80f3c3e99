package modpipe_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/modpipe/modpipe"
)

// A pipeline of three modules: the typed result of "version" flows into
// "build", and "notify" is skipped by its condition.
func Example() {
	version := modpipe.New("version", func(c *modpipe.Context) (string, error) {
		return "1.4.0", nil
	})
	build := modpipe.New("build", func(c *modpipe.Context) (string, error) {
		v, err := modpipe.Result(c, version)
		if err != nil {
			return "", err
		}
		c.Logger().Info("building", "version", v)
		return "app-" + v + ".tar.gz", nil
	}, modpipe.DependsOn(version), modpipe.Timeout(10*time.Minute), modpipe.Retry(2))
	notify := modpipe.Task("notify", func(c *modpipe.Context) error {
		return nil
	}, modpipe.DependsOn(build), modpipe.RunIf("on the main branch", func(*modpipe.Context) bool { return false }))

	p := modpipe.NewPipeline().Add(version, build, notify)
	p.Output = io.Discard // module logs; modpipe.Main prints them to stdout
	summary, err := p.Run(context.Background())
	if err != nil {
		panic(err)
	}
	for _, m := range summary.Modules {
		fmt.Println(strings.TrimSpace(fmt.Sprint(m.Name, " ", m.Status, " ", m.Reason)))
	}
	fmt.Println("exit code", summary.ExitCode())
	// Output:
	// version succeeded
	// build succeeded
	// notify skipped condition not met: on the main branch
	// exit code 0
}

// Commands run with the module's context, log their output into the
// module's group and return what they printed.
func ExampleContext_Command() {
	goVersion := modpipe.New("go-version", func(c *modpipe.Context) (string, error) {
		res, err := c.Command("go", "env", "GOOS").Run()
		if err != nil {
			return "", err // a *CommandError quoting the command and its output
		}
		return strings.TrimSpace(res.Stdout), nil
	})
	p := modpipe.NewPipeline().Add(goVersion)
	p.Output = io.Discard
	summary, _ := p.Run(context.Background())
	m, _ := summary.Module("go-version")
	fmt.Println(m.Status)
	// Output: succeeded
}

// MatrixTarget expands a module per OS; on one machine only the local
// variant runs and MatrixResults collects what ran.
func ExampleMatrixTarget() {
	tests := modpipe.New("cross-tests", func(c *modpipe.Context) (int, error) {
		return 42, nil // run the tests for c.MatrixTarget()
	}, modpipe.MatrixTarget("linux", "windows", "macos"))
	report := modpipe.Task("report", func(c *modpipe.Context) error {
		results, err := modpipe.MatrixResults(c, tests)
		c.Logger().Info("collected", "targets", len(results))
		return err
	}, modpipe.DependsOn(tests))
	p := modpipe.NewPipeline().Add(tests, report)
	p.Output = io.Discard
	summary, _ := p.Run(context.Background())
	fmt.Println(len(summary.Modules), "modules,", summary.Count(modpipe.Succeeded), "succeeded")
	// Output: 4 modules, 2 succeeded
}
