package modpipe_test

import (
	"context"
	"fmt"
	"io"

	"github.com/modpipe/modpipe"
)

// A pipeline's own flags: Main parses them with its own and lists them in
// --help; modules read the variables when they run.
func ExamplePipeline_Flags() {
	p := modpipe.NewPipeline()
	toolchain := p.Flags().String("toolchain", "local", "Go `TOOLCHAIN` to test with (GOTOOLCHAIN)")
	race := p.Flags().Bool("race", false, "run the tests with -race")
	test := modpipe.Task("test", func(c *modpipe.Context) error {
		args := []string{"test", "./..."}
		if *race {
			args = append(args, "-race")
		}
		_, err := c.Command("go", args...).Env("GOTOOLCHAIN=" + *toolchain).Run()
		return err
	})
	modpipe.Main(p.Add(test)) // go run ./ci --toolchain go1.24.0 --race
}

// Teardown hooks run on every instance when its part of the run ends,
// however it ends; the last registered runs first.
func ExamplePipeline_OnTeardown() {
	build := modpipe.Task("build", func(c *modpipe.Context) error { return nil })
	p := modpipe.NewPipeline().Add(build)
	p.Output = io.Discard
	p.OnTeardown(func(ctx context.Context) error {
		fmt.Println("removing the scratch directory")
		return nil
	})
	p.OnTeardown(func(ctx context.Context) error {
		fmt.Println("stopping the test database") // e.g. docker compose down, bounded by ctx
		return nil
	})
	s, err := p.Run(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("failed:", s.Failed())
	// Output:
	// stopping the test database
	// removing the scratch directory
	// failed: false
}
