// Command cacheprog is a pipeline of cached modules for the process tests
// of caching (distributed/redis/cache_process_test.go). Each body prints
// "RAN <module> on <instance>" so that tests see where bodies ran.
//
//	gen (cached) → compile (cached on src/*.txt, needs "docker") → wintest (cached, needs "windows")
//	lint (cached on lint.cfg)
//	publish (not cached, pinned to the master) after wintest and lint
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/modpipe/modpipe"
	"github.com/modpipe/modpipe/distributed/redis"
)

func ran(c *modpipe.Context) {
	fmt.Printf("RAN %s on %d\n", c.Name(), c.Instance().Index)
	c.Logger().Info(fmt.Sprintf("RAN %s on %d", c.Name(), c.Instance().Index))
}

func main() {
	// gen is cached too: a warm run then needs no worker at all.
	gen := modpipe.New("gen", func(c *modpipe.Context) (string, error) { return "v1", nil }, modpipe.Cache(modpipe.InputValue("gen", "v1")))
	compile := modpipe.New("compile", func(c *modpipe.Context) (int, error) {
		ran(c)
		m, err := filepath.Glob("src/*.txt")
		return len(m), err
	}, modpipe.DependsOn(gen), modpipe.RequiresCapability("docker"), modpipe.Cache(modpipe.InputFiles("src/*.txt")))
	wintest := modpipe.New("wintest", func(c *modpipe.Context) (string, error) {
		ran(c)
		n, err := modpipe.Result(c, compile)
		return fmt.Sprintf("tested %d", n), err
	}, modpipe.DependsOn(compile), modpipe.RequiresCapability("windows"), modpipe.Cache(modpipe.InputEnv("WINFLAGS")))
	lint := modpipe.Task("lint", func(c *modpipe.Context) error {
		ran(c)
		_, err := os.Stat("lint.cfg")
		return err
	}, modpipe.RequiresCapability("docker"), modpipe.Cache(modpipe.InputFiles("lint.cfg")))
	publish := modpipe.Task("publish", func(c *modpipe.Context) error {
		v, err := modpipe.Result(c, wintest)
		c.Logger().Info("publishing " + v)
		return err
	}, modpipe.DependsOn(wintest, lint), modpipe.PinToMaster())
	p := modpipe.NewPipeline().Add(gen, compile, wintest, lint, publish)
	p.UseCoordinator(redis.NewCoordinator(redis.Options{}))
	modpipe.Main(p)
}
