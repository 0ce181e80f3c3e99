package modpipe_test

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/modpipe/modpipe"
	art "github.com/modpipe/modpipe/artifact"
)

// A cached lint module, as in the README: the second run restores its
// result instead of running it.
func ExampleCache() {
	cfg := map[string]any{"enable": []string{"govet", "staticcheck"}}
	runs := 0
	lint := modpipe.Task("lint", func(c *modpipe.Context) error {
		runs++ // c.Command("golangci-lint", "run").Run()
		return nil
	}, modpipe.Cache(
		// Content of matching files, relative to the working directory;
		// a real lint would say "**/*.go", "go.sum", ".golangci.yml". The
		// example keeps to files no other test changes while it runs.
		modpipe.InputFiles("go.mod", "go.sum"),
		modpipe.InputEnv("GOFLAGS"),           // value hashed, never stored
		modpipe.InputCommand("go", "version"), // output of a command, run once per run
		modpipe.InputValue("config", cfg),     // any value, as JSON
		modpipe.CacheVersion("2"),             // bump when the code changes
	))

	dir, _ := os.MkdirTemp("", "modpipe-cache-example-")
	defer os.RemoveAll(dir)
	store := art.NewDirStore(dir) // or --cache URL; default: under the user cache dir
	for range 2 {
		p := modpipe.NewPipeline().Add(lint).UseCache(store)
		p.Output = io.Discard
		s, err := p.Run(context.Background())
		if err != nil {
			panic(err)
		}
		m, _ := s.Module("lint")
		fmt.Println(m.Status, "body runs:", runs)
	}
	// Output:
	// succeeded body runs: 1
	// cached body runs: 1
}
