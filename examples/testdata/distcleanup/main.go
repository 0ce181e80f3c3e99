// Command distcleanup is a test pipeline for cleanups in a distributed run
// over Redis: "work" runs on the instance offering "slow" until it is
// cancelled, "cleanup" is AlwaysRun after it, and every instance has a
// teardown hook. It prints what it does on stdout for the test to read.
package main

import (
	"context"
	"fmt"

	"github.com/modpipe/modpipe"
	"github.com/modpipe/modpipe/distributed/redis"
)

func main() {
	work := modpipe.Task("work", func(c *modpipe.Context) error {
		fmt.Printf("WORK STARTED on instance %d\n", c.Instance().Index) // the test signals then
		<-c.Done()
		return c.Err()
	}, modpipe.RequiresCapability("slow"))
	cleanup := modpipe.Task("cleanup", func(c *modpipe.Context) error {
		fmt.Printf("CLEANUP on instance %d (context: %v)\n", c.Instance().Index, c.Err())
		return nil
	}, modpipe.DependsOn(work), modpipe.AlwaysRun())
	p := modpipe.NewPipeline().Add(work, cleanup)
	p.UseCoordinator(redis.NewCoordinator(redis.Options{}))
	p.OnTeardown(func(ctx context.Context) error {
		fmt.Printf("TEARDOWN (context: %v)\n", ctx.Err())
		return nil
	})
	modpipe.Main(p)
}
