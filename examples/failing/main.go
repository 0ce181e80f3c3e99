// Command failing is a pipeline that fails on purpose, to show (and test)
// what a failure looks like: the failing command's output in its module's
// group, dependents marked dependency-failed, an ignored failure that does
// not fail the run, a cleanup that still runs, and exit code 1.
//
//	go run ./examples/failing; echo "exit code $?"
package main

import (
	"errors"

	"github.com/modpipe/modpipe"
)

var compile = modpipe.Task("compile", func(c *modpipe.Context) error {
	c.Logger().Info("compiling", "packages", 12)
	return nil
})

var unitTests = modpipe.Task("unit-tests", func(c *modpipe.Context) error {
	// A real command that fails: go vet on a package that does not exist.
	_, err := c.Command("go", "vet", "./this/package/does/not/exist").Run()
	return err
}, modpipe.DependsOn(compile))

var lint = modpipe.Task("lint", func(c *modpipe.Context) error {
	c.Logger().Warn("style check found 3 problems")
	return errors.New("3 lint problems (not blocking)")
}, modpipe.DependsOn(compile), modpipe.IgnoreFailure())

var pkg = modpipe.Task("package", func(c *modpipe.Context) error {
	c.Logger().Info("packaging")
	return nil
}, modpipe.DependsOn(unitTests, lint))

var report = modpipe.Task("report", func(c *modpipe.Context) error {
	c.Logger().Info("collecting results even though the run failed")
	return nil
}, modpipe.DependsOnOptional(unitTests, pkg), modpipe.AlwaysRun())

func main() {
	p := modpipe.NewPipeline()
	p.Add(compile, unitTests, lint, pkg, report)
	modpipe.Main(p)
}
