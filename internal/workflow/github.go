package workflow

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// GitHub renders a GitHub Actions workflow (for .github/workflows/) that runs
// s. A run of several instances is one distributed run: a plan job that
// fixes the run id, then a matrix job with one entry per instance. A run of
// one instance needs no other runner and no coordinator: it is one plain
// job. It returns an error, and no output, when s is invalid.
func GitHub(s Spec) ([]byte, error) {
	s, err := normalize(s)
	if err != nil {
		return nil, err
	}
	s = s.withCommand("github")

	var w writer
	w.header(s)
	w.intro(s)
	if labels := customRunners(s.Instances); len(labels) > 0 {
		w.comment(0,
			"",
			"Self-hosted runner labels (for actionlint, list them in .github/actionlint.yaml",
			"under self-hosted-runner: labels:): "+strings.Join(labels, ", "),
		)
	}
	w.line("name: %s", str(s.Name))
	w.line("")
	githubTriggers(&w, s)
	w.line("")
	w.line("permissions:")
	w.line("  contents: read")
	w.line("")
	w.line("jobs:")
	if s.single() {
		githubSingleJob(&w, s)
	} else {
		githubDistributedJobs(&w, s)
	}
	return w.bytes(), nil
}

// githubTriggers writes the on: block.
func githubTriggers(w *writer, s Spec) {
	w.line("on:")
	w.line("  push:")
	w.line("    branches:")
	for _, b := range s.Branches {
		w.line("      - %s", str(b))
	}
	if s.PullRequest {
		if !s.single() {
			w.comment(2,
				"Secrets are not given to workflows run from forks: there the secret "+s.RedisSecret,
				"is empty and modpipe's fork-safe fallback runs everything on instance 0 alone",
				"(the other instances exit at once).",
			)
		}
		w.line("  pull_request:")
		w.line("    branches:")
		for _, b := range s.Branches {
			w.line("      - %s", str(b))
		}
	}
	w.line("  workflow_dispatch:")
}

// githubSingleJob writes the one job of a run that needs one runner.
func githubSingleJob(w *writer, s Spec) {
	w.line("  pipeline:")
	w.line("    runs-on: %s", str(runnerFor(s.Instances[0], githubRunners)))
	w.line("    steps:")
	githubSteps(w, s, "modpipe-report", "always()")
}

// githubDistributedJobs writes the plan job and the matrix job of a
// distributed run.
func githubDistributedJobs(w *writer, s Spec) {
	total := strconv.Itoa(len(s.Instances))
	w.line("  plan:")
	w.comment(4,
		"Fixes the run id once for every instance. \"Re-run failed jobs\" does not re-run",
		"this job, so a partial re-run keeps the old attempt and is refused below.",
	)
	w.line("    runs-on: %s", str(runnerFor(s.Instances[0], githubRunners)))
	w.line("    outputs:")
	w.line("      run-id: ${{ steps.run.outputs.run-id }}")
	w.line("      attempt: ${{ steps.run.outputs.attempt }}")
	w.line("    steps:")
	w.line("      - name: Fix the run id")
	w.line("        id: run")
	w.line("        shell: bash")
	w.line("        run: |")
	w.line(`          echo "run-id=${{ github.run_id }}-${{ github.run_attempt }}" >> "$GITHUB_OUTPUT"`)
	w.line(`          echo "attempt=${{ github.run_attempt }}" >> "$GITHUB_OUTPUT"`)
	w.line("")
	w.line("  pipeline:")
	w.line("    name: instance ${{ matrix.instance }} (${{ matrix.role }})")
	w.line("    needs: plan")
	w.line("    strategy:")
	w.comment(6, "A failing instance must not cancel the others: the master reports the run.")
	w.line("      fail-fast: false")
	w.line("      matrix:")
	w.line("        include:")
	for i, in := range s.Instances {
		w.line("          - instance: %d", i)
		w.line("            role: %s", role(i))
		w.line("            runner: %s", str(runnerFor(in, githubRunners)))
		w.line("            capabilities: %s", quote(strings.Join(in.Capabilities, ",")))
	}
	w.line("    runs-on: ${{ matrix.runner }}")
	w.line("    env:")
	w.line("      MODPIPE_RUN_ID: ${{ needs.plan.outputs.run-id }}")
	w.line("      MODPIPE_INSTANCE: ${{ matrix.instance }}")
	w.line("      MODPIPE_TOTAL: %s", quote(total))
	w.line("      MODPIPE_CAPABILITIES: ${{ matrix.capabilities }}")
	w.comment(6,
		"redis://user:password@host:6379 (rediss:// for TLS), from the repository secret",
		s.RedisSecret+". Without it instance 0 runs the whole pipeline alone.",
	)
	w.line("      REDIS_URL: ${{ secrets.%s }}", s.RedisSecret)
	w.comment(6,
		"Optional: with the repository secret MODPIPE_SHARED_SECRET (the same value for",
		"every instance, e.g. openssl rand -hex 32), the instances sign what they",
		"exchange and refuse results and work forged by others with access to Redis.",
	)
	w.line("      MODPIPE_SHARED_SECRET: ${{ secrets.MODPIPE_SHARED_SECRET }}")
	w.line("    steps:")
	w.line("      - name: Refuse a partial re-run")
	w.line("        if: needs.plan.outputs.attempt != format('{0}', github.run_attempt)")
	w.line("        shell: bash")
	w.line("        env:")
	w.line("          PLAN_ATTEMPT: ${{ needs.plan.outputs.attempt }}")
	w.line("        run: |")
	w.line(`          echo "::error title=Partial re-run refused::This job is attempt $GITHUB_RUN_ATTEMPT, but the run id was fixed by attempt $PLAN_ATTEMPT: only some instances were re-run (Re-run failed jobs), and they cannot join a distributed run that already ended. Re-run a distributed run as a whole, with Re-run all jobs."`)
	w.line("          exit 1")
	githubSteps(w, s, "modpipe-report-${{ matrix.instance }}", "always() && matrix.instance == 0")
}

// githubSteps writes the steps that check out, set up Go, run the pipeline
// with its report in report.json, upload the report, and upload the run's
// artifacts under the condition master (the job that has them).
func githubSteps(w *writer, s Spec, report, master string) {
	gomod := s.inModule("go.mod")
	w.line("      - uses: actions/checkout@v4")
	w.line("      - uses: actions/setup-go@v5")
	w.line("        with:")
	if s.ModuleDir != "" {
		w.comment(10, "The pipeline is its own Go module: the Go it needs is the one its go.mod names.")
	}
	w.line("          go-version-file: %s", str(gomod))
	if s.ModuleDir != "" {
		w.line("          cache-dependency-path: %s", str(s.inModule("go.sum")))
	}
	w.line("      - name: Run the pipeline")
	w.line("        shell: bash")
	if s.ModuleDir != "" {
		w.line("        working-directory: %s", str(s.ModuleDir))
	}
	w.line("        run: %s", s.runCommand(report+".json"))
	w.line("      - name: Upload the report")
	w.line("        if: always()")
	w.line("        uses: actions/upload-artifact@v4")
	w.line("        with:")
	w.line("          name: %s", report)
	w.line("          path: %s", s.inModule(report+".json"))
	w.line("          if-no-files-found: ignore")
	if s.ArtifactsOut != "" {
		out := s.inModule(s.ArtifactsOut)
		w.comment(6, "The master copied every artifact of the run into "+out+"/<artifact name>/.")
		w.line("      - name: Upload the run's artifacts")
		w.line("        if: %s", master)
		w.line("        uses: actions/upload-artifact@v4")
		w.line("        with:")
		w.line("          name: modpipe-artifacts")
		w.line("          path: %s", str(out))
		w.line("          if-no-files-found: ignore")
	}
}

// hostedLabelRE matches GitHub-hosted runner labels, which actionlint knows.
var hostedLabelRE = regexp.MustCompile(`^(ubuntu|windows|macos)-[a-z0-9.-]+$`)

// customRunners returns the sorted, distinct runner overrides of instances
// that do not look like GitHub-hosted runner labels.
func customRunners(instances []Instance) []string {
	var labels []string
	for _, in := range instances {
		if in.Runner == "" || hostedLabelRE.MatchString(in.Runner) {
			continue
		}
		if !slices.Contains(labels, in.Runner) {
			labels = append(labels, in.Runner)
		}
	}
	slices.Sort(labels)
	return labels
}
