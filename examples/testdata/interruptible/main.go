// Command interruptible is a test pipeline whose "wait" module runs until it
// is cancelled, so that tests can send SIGINT or SIGTERM to the process.
package main

import (
	"fmt"

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
	modpipe.Main(modpipe.NewPipeline().Add(first, wait, after))
}
