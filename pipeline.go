package modpipe

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/live"
)

// Pipeline is a set of modules to run together. Create it with NewPipeline,
// Add modules, then call Run, or hand it to Main to get the command line.
//
// The exported fields are settings a program may set in code; Main lets
// flags and environment variables override them.
type Pipeline struct {
	// MaxParallel bounds how many modules execute at once on this instance.
	// 0, the default, means no bound: every ready module starts at once.
	// In distributed mode it is each instance's Parallelism unless
	// DistributedOptions.Parallelism is set.
	MaxParallel int
	// ContinueOnFailure keeps running everything whose dependencies allow it
	// after a module failed. By default no new module starts after the first
	// failure, except AlwaysRun modules.
	ContinueOnFailure bool
	// Only runs the named modules and their dependencies.
	Only []string
	// Skip skips the named modules (and so their dependents).
	Skip []string
	// Categories runs only modules in these categories, with their dependencies.
	Categories []string
	// IgnoreCategories skips modules in these categories.
	IgnoreCategories []string
	// Output receives module logs; nil means os.Stdout.
	Output io.Writer
	// Verbose includes debug-level records in module logs.
	Verbose bool
	// GitHubActions prints logs with ::group:: and failures as ::error::
	// annotations. Main sets it when GITHUB_ACTIONS=true.
	GitHubActions bool
	// Grace is how long a module that ignores its cancelled context (after a
	// timeout or Ctrl-C) is awaited before it is abandoned. Default 10s.
	Grace time.Duration
	// CleanupGrace is how long AlwaysRun modules may still run after the
	// run is cancelled (Ctrl-C, SIGTERM, a cancelled context, another
	// instance's cancellation), counted from the cancellation, like
	// `if: always()` in GitHub Actions. Default 30s; negative means
	// AlwaysRun modules do not start after a cancellation. Main sets it
	// from --cleanup-grace or MODPIPE_CLEANUP_GRACE.
	CleanupGrace time.Duration
	// TeardownTimeout bounds each teardown hook (see OnTeardown).
	// Default 1m.
	TeardownTimeout time.Duration

	modules []*moduleDef
	secrets []string
	dist    DistributedOptions
	coord   distributed.Coordinator
	// coordinatorURL is where the coordinator finds its backend (--redis-url
	// and its environment variables); it reaches the coordinator through
	// distributed.RunBinder.
	coordinatorURL string
	live           *live.View
	art            artifactSettings // artifact_run.go
	cache          cacheSettings    // cache.go

	// durations orders ready modules (durations.go).
	durations map[string]time.Duration
	// noPrecedence queues scarce work without precedence, as before it
	// existed: the scheduling benchmark's baseline (sched_bench_test.go).
	noPrecedence bool

	userFlags *flag.FlagSet                 // userflags.go
	teardowns []func(context.Context) error // teardown.go
}

// NewPipeline returns an empty pipeline.
func NewPipeline() *Pipeline { return &Pipeline{} }

// Add adds modules to the pipeline. Dependencies are not added implicitly:
// a module that depends on a module not added is reported when the
// pipeline is validated.
func (p *Pipeline) Add(mods ...AnyModule) *Pipeline {
	for _, m := range mods {
		if m == nil {
			p.modules = append(p.modules, nil)
			continue
		}
		p.modules = append(p.modules, m.definition())
	}
	return p
}

// Secrets registers values to mask as *** in every log line, error and
// report. Empty values are ignored; a value of 1 or 2 bytes cannot be masked
// without mangling all output, so the pipeline fails validation (Run
// returns ErrInvalidPipeline, Main exits 2).
func (p *Pipeline) Secrets(values ...string) *Pipeline {
	p.secrets = append(p.secrets, values...)
	return p
}
