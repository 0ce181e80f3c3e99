package modpipe_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/modpipe/modpipe"
)

// Cross-builds made in a loop: DependsOnAll spreads the []*Module[T] that
// DependsOn's ...AnyModule cannot, and Modules converts the slice for Add.
func ExampleDependsOnAll() {
	type BuildInfo struct{ Binary string }
	var xbuilds []*modpipe.Module[BuildInfo]
	for _, target := range []string{"linux/amd64", "windows/amd64", "darwin/arm64"} {
		goos, goarch, _ := strings.Cut(target, "/")
		xbuilds = append(xbuilds, modpipe.New("xbuild-"+goos+"-"+goarch, func(c *modpipe.Context) (BuildInfo, error) {
			// c.Command("go", "build", ...).Env("GOOS="+goos, "GOARCH="+goarch).Run()
			return BuildInfo{Binary: "dist/app-" + goos + "-" + goarch}, nil
		}, modpipe.Category("build", "cross")))
	}
	version := modpipe.New("version", func(*modpipe.Context) (string, error) { return "v1.4.0", nil })
	release := modpipe.Task("release", func(c *modpipe.Context) error {
		for _, b := range xbuilds {
			info, err := modpipe.Result(c, b) // typed: info is a BuildInfo
			if err != nil {
				return err
			}
			fmt.Println("release", info.Binary)
		}
		return nil
	}, modpipe.DependsOnAll(xbuilds...), modpipe.DependsOn(version))

	p := modpipe.NewPipeline().Add(modpipe.Modules(xbuilds)...).Add(version, release)
	p.Output = io.Discard
	summary, _ := p.Run(context.Background())
	fmt.Println(summary.Count(modpipe.Succeeded), "succeeded")
	// Output:
	// release dist/app-linux-amd64
	// release dist/app-windows-amd64
	// release dist/app-darwin-arm64
	// 5 succeeded
}

// --only and --skip take path.Match globs; a module may have several
// categories, and --category selects a module when any of them is named.
func ExamplePipeline_filters() {
	noop := func(*modpipe.Context) error { return nil }
	p := modpipe.NewPipeline().Add(
		modpipe.Task("xbuild-linux", noop, modpipe.Category("build")),
		modpipe.Task("xbuild-windows", noop, modpipe.Category("build", "windows")),
		modpipe.Task("unit", noop, modpipe.Category("test"), modpipe.Category("fast")),
	)
	p.Output = io.Discard
	p.Skip = []string{"xbuild-*"}         // --skip 'xbuild-*'
	p.IgnoreCategories = []string{"fast"} // --ignore-category fast
	summary, _ := p.Run(context.Background())
	for _, m := range summary.Modules {
		fmt.Println(m.Name, m.Status, "-", m.Reason)
	}
	// Output:
	// xbuild-linux skipped - skipped by --skip
	// xbuild-windows skipped - skipped by --skip
	// unit skipped - category fast ignored (--ignore-category)
}

// A matrix of parameters: targets that are not OS names run every variant,
// here on one machine; c.MatrixTarget() tells each variant its value.
func ExampleMatrixTarget_parameters() {
	tests := modpipe.New("tests", func(c *modpipe.Context) (string, error) {
		// c.Command("go", "test", "-tags", c.MatrixTarget(), "./...").Run()
		return "tags=" + c.MatrixTarget(), nil
	}, modpipe.MatrixTarget("sqlite", "postgres"))
	p := modpipe.NewPipeline().Add(tests)
	p.Output = io.Discard
	summary, _ := p.Run(context.Background())
	for _, m := range summary.Modules {
		fmt.Println(m.Name, m.Status)
	}
	// Output:
	// tests[sqlite] succeeded
	// tests[postgres] succeeded
}

// GoTest runs go test -json and returns a typed report; its error names the
// failing tests with file:line (and annotates them under GitHub Actions).
func ExampleGoTest() {
	unit := modpipe.New("unit-tests", func(c *modpipe.Context) (int, error) {
		report, err := modpipe.GoTest(c, "-race", "-count=1", "./...")
		if err != nil {
			// err reads like:
			//   go test: 1 failed:
			//     TestParse (example.com/app/parser, parse_test.go:42): got 3, want 4
			return 0, err
		}
		var slowest modpipe.GoTestCase
		for _, t := range report.Tests {
			if t.Elapsed > slowest.Elapsed {
				slowest = t
			}
		}
		c.Logger().Info("slowest test", "name", slowest.Name, "elapsed", slowest.Elapsed)
		return len(report.Tests), nil
	}, modpipe.Category("test"))
	modpipe.Main(modpipe.NewPipeline().Add(unit))
}
