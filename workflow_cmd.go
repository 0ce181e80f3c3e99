package modpipe

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/modpipe/modpipe/internal/workflow"
)

// workflowOptions are the flags of `workflow github|gitlab`.
type workflowOptions struct {
	kind, main, secret, name string
	artifactsOut             string
	extra                    int
	pullRequest              bool
	mainSet                  bool // --main was given
	branches, runners        listFlag
	workers                  workerFlag
	// args are the subcommand's arguments as given ("github", flags...),
	// for the command recorded in the header.
	args []string
}

// workerFlag collects --worker: each value is one worker job, offering the
// comma-separated capabilities it names. The parts are kept as given
// (workflow.PlanWorkers trims them and drops empty ones), so that an error
// quotes the value given, such as --worker ",".
type workerFlag [][]string

func (w *workerFlag) String() string { return fmt.Sprint([][]string(*w)) }
func (w *workerFlag) Set(v string) error {
	*w = append(*w, strings.Split(v, ","))
	return nil
}

// mainWorkflow implements `workflow github|gitlab`: it writes a CI
// configuration for this pipeline to stdout. Parse, plan the instances,
// generate, print.
func (p *Pipeline) mainWorkflow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code := parseWorkflowFlags(args, stderr)
	if o == nil {
		return code
	}
	pl, err := p.buildPlan(planEnv{os: localOS(), distributed: true})
	if err != nil {
		fmt.Fprintf(stderr, "modpipe: invalid pipeline:\n%v\n", err)
		return 2
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(stderr, "modpipe: finding the repository: %v\n", err)
		return 2
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if note := programNote(o.main, o.mainSet, bi.Path, bi.Main.Path); note != "" {
			fmt.Fprintf(stderr, "note: %s\n", note)
		}
	}
	// Workers declared in code come first, then those of --worker.
	o.workers = append(slices.Clone(workerFlag(p.dist.WorkflowWorkers)), o.workers...)
	out, err := pl.workflow(ctx, o, wd, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "modpipe: %v\n", err)
		return 2
	}
	_, _ = stdout.Write(out)
	return 0
}

// parseWorkflowFlags parses the subcommand's arguments; without options it
// returns the exit code (0 after -h, 2 for a usage error).
func parseWorkflowFlags(args []string, stderr io.Writer) (*workflowOptions, int) {
	usage := "usage: workflow github|gitlab [--main ./ci] [--extra-workers N] [--worker CAPS] [--runner OS=LABEL] [--branch NAME] [--pull-request] [--redis-secret NAME] [--name NAME] [--artifacts-out DIR]"
	if len(args) > 0 && slices.Contains([]string{"-h", "-help", "--help", "help"}, args[0]) {
		fmt.Fprintln(stderr, usage+"\nwrites a CI configuration for this pipeline to stdout; `workflow github -h` describes the options")
		return nil, 0
	}
	if len(args) == 0 || (args[0] != "github" && args[0] != "gitlab") {
		fmt.Fprintln(stderr, "modpipe: "+usage)
		return nil, 2
	}
	o := &workflowOptions{kind: args[0], args: args}
	fs := flag.NewFlagSet("workflow "+o.kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.main, "main", "./ci", "package `PATH` of this pipeline program relative to the repository root, as `go run` takes it there; when it is a Go module of its own (ci/go.mod), the workflow runs it in its directory and sets up the Go its go.mod names")
	fs.IntVar(&o.extra, "extra-workers", 0, "`N` more Linux workers for parallelism")
	fs.BoolVar(&o.pullRequest, "pull-request", false, "also run on pull requests (only for trusted repositories: forks get no secrets, and the run falls back to instance 0 alone)")
	fs.StringVar(&o.secret, "redis-secret", "REDIS_URL", "`NAME` of the secret (GitHub) or CI/CD variable (GitLab) holding the Redis URL")
	fs.StringVar(&o.name, "name", "pipeline", "workflow `NAME`")
	fs.StringVar(&o.artifactsOut, "artifacts-out", "", "the master copies every artifact of the run into `DIR` (--artifacts-out; relative to where the pipeline runs), and its job publishes it (actions/upload-artifact, GitLab artifacts:)")
	fs.Var(&o.branches, "branch", "run on pushes to `BRANCH` (repeatable; default: the repository's default branch, from git)")
	fs.Var(&o.workers, "worker", "one more Linux worker job offering the comma-separated `CAPS` (repeatable), e.g. --worker cgo,docker for modules that RequiresCapability(\"cgo\")")
	fs.Var(&o.runners, "runner", "use runner label `OS=LABEL` for an OS (repeatable), e.g. freebsd=self-hosted-freebsd")
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			return nil, 0
		}
		return nil, 2
	}
	fs.Visit(func(f *flag.Flag) { o.mainSet = o.mainSet || f.Name == "main" })
	return o, 0
}

// programNote warns when --main was left at its default but this program,
// the package whose import path is program in the module module (from its
// build information), does not look like the package --main names: the
// workflow would run another program than the one that generated it. It
// is "" when there is nothing to say (also for test binaries and `go run
// file.go`).
func programNote(main string, mainSet bool, program, module string) string {
	if mainSet || program == "" || program == "command-line-arguments" || strings.HasSuffix(program, ".test") {
		return ""
	}
	if path.Base(program) == path.Base(path.Clean(main)) {
		return ""
	}
	dir := path.Base(program)
	if rest, ok := strings.CutPrefix(program, module+"/"); ok && module != "" {
		dir = rest // its directory in its module
	}
	return fmt.Sprintf("this program is %s, but the workflow runs %s (the default of --main): if that is another program, pass --main with this program's directory relative to the repository root, such as --main ./%s", program, main, dir)
}

// workflow plans the instances the pipeline needs and generates the CI
// configuration; notes on the plan go to stderr.
func (pl *plan) workflow(ctx context.Context, o *workflowOptions, wd string, stderr io.Writer) ([]byte, error) {
	need, caps := pl.routingNeeds()
	overrides := map[string]string{}
	for _, r := range o.runners {
		osName, label, ok := strings.Cut(r, "=")
		if !ok {
			return nil, fmt.Errorf("--runner %q: want OS=LABEL", r)
		}
		overrides[osName] = label
	}
	instances, notes, err := workflow.PlanWorkers(need, caps, o.extra, o.workers, overrides)
	if err != nil {
		return nil, err
	}
	root := workflow.RepoRoot(ctx, wd)
	layout, note, err := workflow.FindLayout(root, o.main)
	if err != nil {
		return nil, err
	}
	if note != "" {
		notes = append(notes, note)
	}
	branches := []string(o.branches)
	if len(branches) == 0 {
		branch, source := workflow.DefaultBranch(ctx, root)
		branches = []string{branch}
		notes = append(notes, fmt.Sprintf("the workflow runs on pushes to %s, %s; choose others with --branch", branch, source))
	}
	for _, n := range notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	spec := workflow.Spec{
		Name: o.name, Main: layout.Main, ModuleDir: layout.ModuleDir, GoVersion: layout.GoVersion, Command: o.command(layout),
		Branches: branches, PullRequest: o.pullRequest, RedisSecret: o.secret, ArtifactsOut: o.artifactsOut, Instances: instances,
	}
	if o.kind == "gitlab" {
		return workflow.GitLab(spec)
	}
	return workflow.GitHub(spec)
}

// routingNeeds lists the OSes modules need (OnOS, OS matrix targets) and
// the other capabilities they require. Matrix targets that are not OS
// names are parameters: they route nowhere.
func (pl *plan) routingNeeds() (oses, caps []string) {
	for _, n := range pl.nodes {
		oses = append(oses, n.def.oses...)
		if osName, ok := n.targetOS(); ok {
			oses = append(oses, osName)
		}
		caps = append(caps, n.def.caps...)
	}
	slices.Sort(oses)
	slices.Sort(caps)
	return slices.Compact(oses), slices.Compact(caps)
}

// command is the command line that regenerates the workflow, run from the
// repository root: this subcommand with its arguments as given.
func (o *workflowOptions) command(l workflow.Layout) string {
	run := "go run " + shellQuote(o.main)
	if l.ModuleDir != "" {
		run = "cd " + shellQuote(l.ModuleDir) + " && go run " + shellQuote(l.Main)
	}
	words := []string{run, "workflow"}
	for _, a := range o.args {
		words = append(words, shellQuote(a))
	}
	return strings.Join(words, " ")
}

// shellSafeRE matches words a POSIX shell takes literally.
var shellSafeRE = regexp.MustCompile(`^[A-Za-z0-9_./,=:@+-]+$`)

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if shellSafeRE.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
