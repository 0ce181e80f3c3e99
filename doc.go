// Package modpipe writes CI/CD pipelines as Go code.
//
// A pipeline is a set of modules: units of work with a typed result and
// declared dependencies. modpipe validates the graph, runs it in parallel,
// with timeouts, retries, skip conditions and categories, prints each
// module's log as one group, and ends with a summary table and an exit code.
//
//	var Build = modpipe.New("build", func(c *modpipe.Context) (Artifact, error) {
//		res, err := c.Command("go", "build", "./...").Run()
//		...
//	})
//
//	var Test = modpipe.New("test", func(c *modpipe.Context) (int, error) {
//		art, err := modpipe.Result(c, Build) // typed result of a dependency
//		...
//	}, modpipe.DependsOn(Build), modpipe.Timeout(10*time.Minute), modpipe.Retry(2))
//
//	func main() {
//		modpipe.Main(modpipe.NewPipeline().Add(Build, Test))
//	}
//
// Run it with `go run ./ci`; `--list`, `--dry-run`, `--only`, `--skip`,
// `--category` and `--report` are described at Main.
//
// Semantics in short: modules start as soon as their dependencies have
// finished (highest critical path first). A failed dependency ends its
// dependents DependencyFailed and a skipped one skips them, except for
// AlwaysRun modules; optional dependencies never block. By default no new
// module starts after the first failure (AlwaysRun modules still do);
// Pipeline.ContinueOnFailure runs everything possible. Panics are recovered
// as failures. The run fails (exit code 1) when a module ends Failed,
// TimedOut, Cancelled or DependencyFailed; IgnoredFailure does not fail it.
package modpipe
