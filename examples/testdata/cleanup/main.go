// Command cleanup is a test pipeline for cleanups after a signal: "wait"
// runs until it is cancelled, "cleanup" is AlwaysRun after it, and a
// teardown hook runs at the end. With CLEANUP_BLOCK=1 the cleanup waits
// for its own context to end, so that tests can see the cleanup grace
// bound it and a second signal end the process at once.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/modpipe/modpipe"
)

func main() {
	first := modpipe.Task("first", func(c *modpipe.Context) error { return nil })
	wait := modpipe.Task("wait", func(c *modpipe.Context) error {
		fmt.Println("READY") // the test waits for this line before signalling
		<-c.Done()
		return c.Err()
	}, modpipe.DependsOn(first))
	after := modpipe.Task("after", func(c *modpipe.Context) error { return nil }, modpipe.DependsOn(wait))
	cleanup := modpipe.Task("cleanup", func(c *modpipe.Context) error {
		fmt.Printf("CLEANUP STARTED (context: %v)\n", c.Err())
		if os.Getenv("CLEANUP_BLOCK") == "1" {
			<-c.Done()
			return c.Err()
		}
		return nil
	}, modpipe.DependsOn(wait), modpipe.AlwaysRun())
	p := modpipe.NewPipeline().Add(first, wait, after, cleanup)
	p.OnTeardown(func(ctx context.Context) error {
		fmt.Printf("TEARDOWN (context: %v)\n", ctx.Err())
		return nil
	})
	modpipe.Main(p)
}
