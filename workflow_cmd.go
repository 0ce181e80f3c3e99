package modpipe

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/modpipe/modpipe/internal/workflow"
)

// mainWorkflow implements `workflow github|gitlab`: it writes a CI
// configuration for this pipeline to stdout.
func (p *Pipeline) mainWorkflow(args []string, stdout, stderr io.Writer) int {
	usage := "usage: workflow github|gitlab [--main ./ci] [--extra-workers N] [--runner OS=LABEL] [--branch NAME] [--pull-request] [--redis-secret NAME] [--artifacts-out DIR]"
	if len(args) == 0 || (args[0] != "github" && args[0] != "gitlab") {
		fmt.Fprintln(stderr, "modpipe: "+usage)
		return 2
	}
	kind := args[0]
	fs := flag.NewFlagSet("workflow "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	mainPkg := fs.String("main", "./ci", "package `PATH` of this pipeline program, as `go run` takes it")
	extra := fs.Int("extra-workers", 0, "`N` more Linux workers for parallelism")
	pr := fs.Bool("pull-request", false, "also run on pull requests (only for trusted repositories: forks get no secrets, and the run falls back to instance 0 alone)")
	secret := fs.String("redis-secret", "REDIS_URL", "`NAME` of the secret (GitHub) or CI/CD variable (GitLab) holding the Redis URL")
	name := fs.String("name", "pipeline", "workflow `NAME`")
	artifactsOut := fs.String("artifacts-out", "", "the master copies every artifact of the run into `DIR` (--artifacts-out), and its job publishes it")
	var branches, runners listFlag
	fs.Var(&branches, "branch", "run on pushes to `BRANCH` (repeatable; default main)")
	fs.Var(&runners, "runner", "use runner label `OS=LABEL` for an OS (repeatable), e.g. freebsd=self-hosted-freebsd")
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	pl, err := p.buildPlan(planEnv{os: localOS(), distributed: true})
	if err != nil {
		fmt.Fprintf(stderr, "modpipe: invalid pipeline:\n%v\n", err)
		return 2
	}
	need, caps := pl.routingNeeds()
	overrides := map[string]string{}
	for _, r := range runners {
		osName, label, ok := strings.Cut(r, "=")
		if !ok {
			fmt.Fprintf(stderr, "modpipe: --runner %q: want OS=LABEL\n", r)
			return 2
		}
		overrides[osName] = label
	}
	instances, notes, err := workflow.Plan(need, caps, *extra, overrides)
	if err != nil {
		fmt.Fprintf(stderr, "modpipe: %v\n", err)
		return 2
	}
	for _, n := range notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	spec := workflow.Spec{Name: *name, Main: *mainPkg, Branches: branches, PullRequest: *pr, RedisSecret: *secret, ArtifactsOut: *artifactsOut, Instances: instances}
	gen := workflow.GitHub
	if kind == "gitlab" {
		gen = workflow.GitLab
	}
	out, err := gen(spec)
	if err != nil {
		fmt.Fprintf(stderr, "modpipe: %v\n", err)
		return 2
	}
	_, _ = stdout.Write(out)
	return 0
}

// routingNeeds lists the OSes modules need (OnOS, OS matrix targets) and
// the other capabilities they require.
func (pl *plan) routingNeeds() (oses, caps []string) {
	for _, n := range pl.nodes {
		oses = append(oses, n.def.oses...)
		if n.target != "" {
			if osName, ok := normalizeOS(n.target); ok {
				oses = append(oses, osName)
			} else {
				caps = append(caps, n.target)
			}
		}
		caps = append(caps, n.def.caps...)
	}
	slices.Sort(oses)
	slices.Sort(caps)
	return slices.Compact(oses), slices.Compact(caps)
}
