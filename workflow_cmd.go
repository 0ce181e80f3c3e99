package modpipe

import (
	"flag"
	"fmt"
	"io"
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
	branches, runners        listFlag
}

// mainWorkflow implements `workflow github|gitlab`: it writes a CI
// configuration for this pipeline to stdout. Parse, plan the instances,
// generate, print.
func (p *Pipeline) mainWorkflow(args []string, stdout, stderr io.Writer) int {
	o, code := parseWorkflowFlags(args, stderr)
	if o == nil {
		return code
	}
	pl, err := p.buildPlan(planEnv{os: localOS(), distributed: true})
	if err != nil {
		fmt.Fprintf(stderr, "modpipe: invalid pipeline:\n%v\n", err)
		return 2
	}
	out, err := pl.workflow(o, stderr)
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
	usage := "usage: workflow github|gitlab [--main ./ci] [--extra-workers N] [--runner OS=LABEL] [--branch NAME] [--pull-request] [--redis-secret NAME] [--artifacts-out DIR]"
	if len(args) == 0 || (args[0] != "github" && args[0] != "gitlab") {
		fmt.Fprintln(stderr, "modpipe: "+usage)
		return nil, 2
	}
	o := &workflowOptions{kind: args[0]}
	fs := flag.NewFlagSet("workflow "+o.kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.main, "main", "./ci", "package `PATH` of this pipeline program, as `go run` takes it")
	fs.IntVar(&o.extra, "extra-workers", 0, "`N` more Linux workers for parallelism")
	fs.BoolVar(&o.pullRequest, "pull-request", false, "also run on pull requests (only for trusted repositories: forks get no secrets, and the run falls back to instance 0 alone)")
	fs.StringVar(&o.secret, "redis-secret", "REDIS_URL", "`NAME` of the secret (GitHub) or CI/CD variable (GitLab) holding the Redis URL")
	fs.StringVar(&o.name, "name", "pipeline", "workflow `NAME`")
	fs.StringVar(&o.artifactsOut, "artifacts-out", "", "the master copies every artifact of the run into `DIR` (--artifacts-out), and its job publishes it")
	fs.Var(&o.branches, "branch", "run on pushes to `BRANCH` (repeatable; default main)")
	fs.Var(&o.runners, "runner", "use runner label `OS=LABEL` for an OS (repeatable), e.g. freebsd=self-hosted-freebsd")
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			return nil, 0
		}
		return nil, 2
	}
	return o, 0
}

// workflow plans the instances the pipeline needs and generates the CI
// configuration; notes on the plan go to stderr.
func (pl *plan) workflow(o *workflowOptions, stderr io.Writer) ([]byte, error) {
	need, caps := pl.routingNeeds()
	overrides := map[string]string{}
	for _, r := range o.runners {
		osName, label, ok := strings.Cut(r, "=")
		if !ok {
			return nil, fmt.Errorf("--runner %q: want OS=LABEL", r)
		}
		overrides[osName] = label
	}
	instances, notes, err := workflow.Plan(need, caps, o.extra, overrides)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	spec := workflow.Spec{Name: o.name, Main: o.main, Branches: o.branches, PullRequest: o.pullRequest, RedisSecret: o.secret, ArtifactsOut: o.artifactsOut, Instances: instances}
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
