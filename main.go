package modpipe

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/modpipe/modpipe/internal/live"
)

// Main runs the pipeline as a command-line program and exits: it parses
// flags and environment variables (flags override the environment, which
// overrides settings made in code; a flag given replaces the setting, so
// --only replaces p.Only rather than adding to it and
// --continue-on-failure=false switches it off), runs the pipeline, prints
// the summary and exits 0 when no module failed, 1 when one did and 2 for
// usage or validation errors. Ctrl-C or SIGTERM cancels running modules,
// still runs AlwaysRun modules within CleanupGrace (--cleanup-grace) and
// the teardown hooks (OnTeardown), and prints the summary; a second one
// exits at once (code 128+signal: 130 for Ctrl-C).
//
// Flags:
//
//	--only NAME              run NAME and its dependencies (repeatable, comma-separated)
//	--skip NAME              skip NAME and so its dependents (repeatable)
//	--category CAT           run modules of category CAT and their dependencies (repeatable)
//	--ignore-category CAT    skip modules of category CAT (repeatable)
//	--continue-on-failure    keep running what can run after a failure
//	--parallel N             run at most N modules at once (0: no bound)
//	--list                   list modules, dependencies and categories, then exit
//	--dry-run                show the plan (waves, skips and why) without running
//	--report FILE            write the JSON run report to FILE
//	--durations FILE         order modules by the durations in an earlier run's report (default: the --report file, if it exists)
//	-v                       include debug-level module logs
//	--no-live                no live view of running modules (env MODPIPE_LIVE=0; MODPIPE_LIVE=1 shows it under CI too)
//	--artifact-store URL     artifact store: file:///dir, s3://bucket/prefix, redis://, rediss://, redis+cluster:// (env MODPIPE_ARTIFACT_STORE)
//	--artifacts-out DIR      copy every artifact of the run into DIR/<name>/ at the end (env MODPIPE_ARTIFACTS_OUT)
//	--cache URL              cache store for modules declared with Cache: file:///dir, s3://, redis://, redis+cluster:// (env MODPIPE_CACHE; default a directory under the user cache dir)
//	--cache-mode MODE        readwrite, read or off (env MODPIPE_CACHE_MODE; pull/merge-request runs default to read)
//	--explain-cache          for each cache miss, say which inputs changed since the module's previous entry
//	--cleanup-grace D        how long AlwaysRun modules may run after Ctrl-C/SIGTERM (env MODPIPE_CLEANUP_GRACE; default 30s)
//
// The pipeline's own flags (p.Flags()) are parsed too, and listed by
// --help in their own section.
//
// Distributed mode adds --instance, --total, --capability, --run-id,
// --redis-url, --heartbeat, --lease-timeout, --master-timeout,
// --capability-timeout and --local-instances (see docs/distributed.md).
//
// The subcommand `workflow github` (or `workflow gitlab`) writes a CI
// configuration that runs this pipeline as a matrix (see docs/ci.md).
func Main(p *Pipeline) {
	ctx, stop := signalContext(os.Stderr)
	code := p.main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

type cliOptions struct {
	list, dryRun, verbose, continueOnFailure bool
	parallel                                 int
	report, durations                        string
	only, skip, category, ignoreCategory     listFlag

	instance, total, localInstances int
	capabilities                    listFlag
	runID, coordinatorURL           string

	heartbeat, leaseTimeout, masterTimeout, capabilityTimeout time.Duration
	noLive                                                    bool
	artifactStore, artifactsOut                               string // artifact_run.go
	cacheURL, cacheMode                                       string // cache.go
	explainCache                                              bool
	cleanupGrace                                              time.Duration

	// given names the flags present on the command line: a flag given
	// replaces the setting made in code or by the environment, even with
	// an empty list or false, and one not given leaves it alone.
	given map[string]bool
}

func parseFlags(p *Pipeline, args []string, stderr io.Writer) (*cliOptions, *flag.FlagSet, error) {
	o := &cliOptions{given: map[string]bool{}}
	fs := flag.NewFlagSet("pipeline", flag.ContinueOnError)
	// Errors are returned, not printed with the whole usage; --help prints
	// the usage with the pipeline's own flags in their section (userflags.go).
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.Var(&o.only, "only", "run only `NAME` and its dependencies (repeatable, comma-separated)")
	fs.Var(&o.skip, "skip", "skip `NAME` and so its dependents (repeatable, comma-separated)")
	fs.Var(&o.category, "category", "run only modules of category `CAT` and their dependencies (repeatable)")
	fs.Var(&o.ignoreCategory, "ignore-category", "skip modules of category `CAT` (repeatable)")
	fs.BoolVar(&o.continueOnFailure, "continue-on-failure", false, "keep running everything possible after a module failed")
	fs.IntVar(&o.parallel, "parallel", 0, "run at most `N` modules at once on this instance (0: no bound)")
	fs.BoolVar(&o.list, "list", false, "list modules, dependencies and categories, then exit")
	fs.BoolVar(&o.dryRun, "dry-run", false, "show the plan (waves, what would be skipped and why) without running anything")
	fs.StringVar(&o.report, "report", "", "write the JSON run report to `FILE`")
	fs.StringVar(&o.durations, "durations", "", "order modules by the durations in `FILE`, the --report of an earlier run (env MODPIPE_DURATIONS; default: the --report file, if it exists, before it is overwritten)")
	fs.BoolVar(&o.verbose, "v", false, "include debug-level module logs")
	fs.BoolVar(&o.noLive, "no-live", false, "no live view of running modules (shown only in an interactive terminal, never under CI; env MODPIPE_LIVE=0 turns it off, MODPIPE_LIVE=1 shows it under CI too)")
	fs.IntVar(&o.instance, "instance", 0, "this instance's `INDEX` in a distributed run (0 is the master; env MODPIPE_INSTANCE)")
	fs.IntVar(&o.total, "total", 0, "`N` instances take part in the run (env MODPIPE_TOTAL)")
	fs.Var(&o.capabilities, "capability", "a `CAPABILITY` this instance offers (repeatable; env MODPIPE_CAPABILITIES, comma-separated)")
	fs.StringVar(&o.runID, "run-id", "", "the run's `ID`, the same on every instance (env MODPIPE_RUN_ID; default from GITHUB_RUN_ID and GITHUB_RUN_ATTEMPT)")
	fs.StringVar(&o.coordinatorURL, "redis-url", "", "Redis `URL` for the Redis coordinator (env MODPIPE_REDIS_URL, then REDIS_URL)")
	fs.DurationVar(&o.heartbeat, "heartbeat", 0, "distributed: heartbeat `INTERVAL` (env MODPIPE_HEARTBEAT; default 10s)")
	fs.DurationVar(&o.leaseTimeout, "lease-timeout", 0, "distributed: `DURATION` without heartbeats before an instance's work is re-queued (env MODPIPE_LEASE_TIMEOUT; default 30s)")
	fs.DurationVar(&o.masterTimeout, "master-timeout", 0, "distributed: how long a worker waits for a missing or silent master (env MODPIPE_MASTER_TIMEOUT; default 2m)")
	fs.DurationVar(&o.capabilityTimeout, "capability-timeout", 0, "distributed: how long a module waits for a capable instance (env MODPIPE_CAPABILITY_TIMEOUT; default 5m)")
	fs.IntVar(&o.localInstances, "local-instances", 0, "run `N` instances inside this process over the in-memory coordinator, to try distributed mode without Redis")
	fs.StringVar(&o.artifactStore, "artifact-store", "", "artifact store `URL` every instance reaches: file:///dir, s3://bucket/prefix, redis://, rediss:// or redis+cluster:// (env MODPIPE_ARTIFACT_STORE; default: a directory of this run, or the Redis coordinator's server)")
	fs.StringVar(&o.artifactsOut, "artifacts-out", "", "copy every artifact of the run into `DIR`/<artifact name>/ at the end (master only; env MODPIPE_ARTIFACTS_OUT)")
	fs.StringVar(&o.cacheURL, "cache", "", "cache store `URL` for modules declared with Cache: file:///dir, s3://bucket/prefix, redis://, rediss:// or redis+cluster:// (env MODPIPE_CACHE; default a directory under the user cache dir)")
	fs.StringVar(&o.cacheMode, "cache-mode", "", "`MODE` readwrite, read or off (env MODPIPE_CACHE_MODE; default readwrite, read for pull-request and merge-request runs)")
	fs.BoolVar(&o.explainCache, "explain-cache", false, "for each cache miss, say which inputs changed since the module's previous entry")
	fs.DurationVar(&o.cleanupGrace, "cleanup-grace", 0, "how long AlwaysRun modules may still run after Ctrl-C or SIGTERM (env MODPIPE_CLEANUP_GRACE; default 30s; a second signal exits at once)")
	if err := p.addUserFlags(fs); err != nil {
		return nil, fs, err
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		p.usage(stderr, fs)
		writeSubcommandUsage(stderr)
		return nil, fs, err
	} else if err != nil {
		return nil, fs, unknownFlag(err)
	}
	if fs.NArg() > 0 {
		return nil, fs, fmt.Errorf("unexpected argument %q; flags start with - (see -h)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { o.given[f.Name] = true })
	p.markUserFlags(o.given, fs)
	if o.given["parallel"] && o.parallel < 0 {
		return nil, fs, fmt.Errorf("--parallel %d is negative; use 0 for no bound", o.parallel)
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"cleanup-grace", o.cleanupGrace}, {"heartbeat", o.heartbeat}, {"lease-timeout", o.leaseTimeout}, {"master-timeout", o.masterTimeout}, {"capability-timeout", o.capabilityTimeout}} {
		if o.given[d.name] && d.value <= 0 {
			return nil, fs, fmt.Errorf("--%s %s is not a positive duration such as 30s or 2m", d.name, d.value)
		}
	}
	return o, fs, nil
}

// main is Main without the process: it returns the exit code. It reads as
// one flow: parse, resolve the settings (flags over environment over
// code), choose the mode, run, present.
func (p *Pipeline) main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	// `go run ./ci -- --help` passes the "--" on; one is dropped so that
	// the flags after it are parsed.
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) > 0 && args[0] == "workflow" {
		return p.mainWorkflow(ctx, args[1:], stdout, stderr)
	}
	o, _, err := parseFlags(p, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = p.resolveSettings(o, getenv, stdout)
	}
	if err == nil {
		p.applyDurations(o, getenv, stderr) // durations.go
	}
	if err != nil {
		fmt.Fprintf(stderr, "modpipe: %v\n", err)
		return 2
	}
	if o.list || o.dryRun {
		return p.showPlan(o, stdout, stderr)
	}
	summary, err := p.runMode(ctx, o, getenv, stdout, stderr)
	return p.present(summary, err, o.report, getenv, stdout, stderr)
}

// writeSubcommandUsage ends --help with the subcommands, which have their
// own flags and help.
func writeSubcommandUsage(w io.Writer) {
	prog := filepath.Base(os.Args[0])
	fmt.Fprintf(w, "\nSubcommands:\n  workflow github|gitlab [flags]\n    \twrite a GitHub Actions or GitLab CI configuration that runs this pipeline\n    \tas a matrix of instances (its flags: %s workflow -h)\n", prog)
}

// resolveSettings applies the flags and the environment over what code set.
func (p *Pipeline) resolveSettings(o *cliOptions, getenv func(string) string, stdout io.Writer) error {
	p.applyFlags(o)
	p.applyArtifactSettings(o, getenv) // artifact_run.go
	// cache.go
	if err := p.applyCacheSettings(o, getenv); err != nil {
		return err
	}
	// cleanup_settings.go
	if err := p.applyCleanupSettings(o, getenv); err != nil {
		return err
	}
	if getenv("GITHUB_ACTIONS") == "true" {
		p.GitHubActions = true
	}
	if p.Output == nil {
		p.Output = stdout
	}
	if err := p.applyDistributedSettings(o, getenv); err != nil {
		return err
	}
	return p.checkStoreURLs() // store_check.go
}

// showPlan prints the module list (--list) or the plan (--dry-run); for
// distributed settings the dry run adds where each module can run
// (dryrun_routing.go).
func (p *Pipeline) showPlan(o *cliOptions, stdout, stderr io.Writer) int {
	rt, err := p.dryRunRouting(o.localInstances)
	if err != nil {
		fmt.Fprintf(stderr, "modpipe: %v\n", err)
		return 2
	}
	env, title := planEnv{os: localOS()}, fmt.Sprintf("Plan for a single instance on %s", localOS())
	if rt != nil {
		env.distributed, title = true, fmt.Sprintf("Plan for a distributed run over %d instances", len(rt.instances))
	}
	pl, err := p.buildPlan(env)
	if err != nil {
		fmt.Fprintf(stderr, "modpipe: invalid pipeline:\n%v\n", err)
		return 2
	}
	switch {
	case o.list:
		err = pl.writeList(stdout)
	case rt != nil:
		err = pl.writeDryRun(stdout, title)
		if err == nil {
			err = pl.writeRouting(stdout, rt)
		}
	default:
		err = pl.writeDryRun(stdout, title)
	}
	if err != nil {
		fmt.Fprintf(stderr, "modpipe: %v\n", err)
		return 1
	}
	return 0
}

// runMode runs the pipeline: as several instances in this process
// (--local-instances), or as this instance alone or of a distributed run,
// with the live view when the terminal shows it.
func (p *Pipeline) runMode(ctx context.Context, o *cliOptions, getenv func(string) string, stdout, stderr io.Writer) (*Summary, error) {
	if liveWanted(o, getenv) && p.Output == stdout && live.Enabled(stdout, getenv) {
		p.live = live.Start(stdout)
		// The summary goes below the groups, with no live lines left.
		defer p.live.Stop()
	}
	if o.localInstances > 1 {
		return p.runLocalInstances(ctx, o.localInstances, stderr)
	}
	return p.Run(ctx)
}

// present prints the outcome of a run (summary, errors, job summary,
// report) and returns the exit code.
func (p *Pipeline) present(summary *Summary, err error, report string, getenv func(string) string, stdout, stderr io.Writer) int {
	if errors.Is(err, ErrInvalidPipeline) || errors.Is(err, ErrBadConfig) {
		fmt.Fprintf(stderr, "modpipe: %v\n", err)
		return 2
	}
	if summary != nil {
		// Reported, but the run's verdict stands (OnTeardown).
		for _, e := range summary.TeardownErrors {
			fmt.Fprintf(stderr, "modpipe: %s\n", e)
		}
	}
	if err == nil && summary != nil && summary.Fallback && summary.Role == RoleWorker {
		return 0 // the reason is on stderr already
	}
	if summary != nil && err != nil && summary.Role == RoleWorker {
		if len(summary.Modules) == 0 {
			summary = nil // a worker that ran nothing and failed: the error says it all
		} else {
			summary.workerCutOff = true // never "Run succeeded" from a worker that did not see the end
		}
	}
	code := 1
	if summary != nil {
		code = p.writeSummary(summary, err, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "modpipe: %v\n", err)
		code = 1
	}
	if path := getenv("GITHUB_STEP_SUMMARY"); path != "" && summary != nil && summary.Role != RoleWorker {
		if err := appendJobSummary(path, summary); err != nil {
			fmt.Fprintf(stderr, "modpipe: %v\n", err)
		}
	}
	if report != "" && summary != nil {
		if err := writeReport(report, summary); err != nil {
			fmt.Fprintf(stderr, "modpipe: %v\n", err)
			code = max(code, 1)
		}
	}
	return code
}

// writeSummary prints the summary (for a worker, a line on the run first)
// and returns its exit code.
func (p *Pipeline) writeSummary(summary *Summary, err error, stdout, stderr io.Writer) int {
	fmt.Fprintln(stdout)
	if summary.Role == RoleWorker && err == nil {
		verdict := "succeeded"
		if summary.Failed() {
			verdict = "FAILED"
		}
		ran := fmt.Sprintf("ran %d modules", len(summary.Modules))
		if len(summary.Modules) == 0 {
			ran = "ran no modules"
		}
		run := "the run"
		if summary.RunID != "" {
			run = "run " + summary.RunID
		}
		fmt.Fprintf(stdout, "Worker %d %s; %s %s. The full summary is in instance 0's output.\n\n", p.dist.InstanceIndex, ran, run, verdict)
	}
	if err := summary.WriteText(stdout); err != nil {
		fmt.Fprintf(stderr, "modpipe: writing summary: %v\n", err)
	}
	return summary.ExitCode()
}

// applyFlags applies the pipeline settings given on the command line. A
// flag given replaces what code set: list flags replace the list (they do
// not add to it) and boolean flags switch a setting on or off
// (--continue-on-failure=false).
func (p *Pipeline) applyFlags(o *cliOptions) {
	if o.given["only"] {
		p.Only = o.only
	}
	if o.given["skip"] {
		p.Skip = o.skip
	}
	if o.given["category"] {
		p.Categories = o.category
	}
	if o.given["ignore-category"] {
		p.IgnoreCategories = o.ignoreCategory
	}
	if o.given["continue-on-failure"] {
		p.ContinueOnFailure = o.continueOnFailure
	}
	if o.given["v"] {
		p.Verbose = o.verbose
	}
	if o.given["parallel"] {
		p.MaxParallel = o.parallel
	}
}

// liveWanted reports whether the live view may be shown: --no-live (or
// --no-live=false) decides when given, then MODPIPE_LIVE=0 turns it off;
// live.Enabled still requires an interactive terminal.
func liveWanted(o *cliOptions, getenv func(string) string) bool {
	if o.given["no-live"] {
		return !o.noLive
	}
	return strings.TrimSpace(getenv("MODPIPE_LIVE")) != "0"
}

// writeReport writes the JSON report atomically: a reader never sees half a file.
func writeReport(path string, s *Summary) error {
	tmp := path + ".tmp-" + fmt.Sprint(time.Now().UnixNano())
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	if err := s.WriteJSON(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("writing report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing report %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing report %s: %w", path, err)
	}
	return nil
}
