// Command slowlive is a test pipeline with modules slow enough to watch the
// live view in a terminal.
package main

import (
	"time"

	"github.com/modpipe/modpipe"
)

func main() {
	fast := modpipe.Task("fast", func(c *modpipe.Context) error {
		c.Logger().Info("fast is done")
		return nil
	})
	slow := modpipe.Task("slow-module", func(c *modpipe.Context) error {
		select {
		case <-time.After(4 * time.Second):
		case <-c.Done():
		}
		return nil
	}, modpipe.DependsOn(fast))
	modpipe.Main(modpipe.NewPipeline().Add(fast, slow))
}
