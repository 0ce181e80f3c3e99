package workflow

import (
	"slices"
	"strconv"
	"strings"
)

// GitLab renders a .gitlab-ci.yml that runs s. A run of several instances
// is one distributed run: one job, pipeline, with a parallel matrix entry
// per instance. A run of one instance needs no other runner and no
// coordinator: it is one plain job. It returns an error, and no output, when
// s is invalid.
func GitLab(s Spec) ([]byte, error) {
	s, err := normalize(s)
	if err != nil {
		return nil, err
	}
	s = s.withCommand("gitlab")
	total := strconv.Itoa(len(s.Instances))
	docker := slices.ContainsFunc(s.Instances, func(in Instance) bool { return slices.Contains(in.Capabilities, "docker") })

	var w writer
	w.header(s)
	w.intro(s,
		"",
		"Redis: add a masked (and protected) CI/CD variable "+s.RedisSecret+" holding",
		"redis://user:password@host:6379 (rediss:// for TLS) under Settings > CI/CD >",
		"Variables. Without it instance 0 runs the whole pipeline alone.",
		"",
		"Optional: a masked CI/CD variable MODPIPE_SHARED_SECRET (the same value for",
		"every instance, e.g. openssl rand -hex 32) makes the instances sign what they",
		"exchange and refuse results and work forged by others with access to Redis.",
		"GitLab passes CI/CD variables to every job, so it needs no line below.",
	)
	w.line("")
	w.line("workflow:")
	w.line("  rules:")
	for _, b := range s.Branches {
		w.line("    - if: %s", quote(`$CI_PIPELINE_SOURCE == "push" && `+gitlabBranchCond(b)))
	}
	w.comment(4, `"Run pipeline" in the web UI, like GitHub's workflow_dispatch.`)
	w.line("    - if: %s", quote(`$CI_PIPELINE_SOURCE == "web"`))
	if s.PullRequest {
		if s.single() {
			w.comment(4, "Merge requests.")
		} else {
			w.comment(4,
				"Merge requests. Pipelines of merge requests from forks run without this",
				"project's CI/CD variables: there "+s.RedisSecret+" is empty and modpipe's",
				"fork-safe fallback runs everything on instance 0 alone.",
			)
		}
		w.line("    - if: %s", quote(`$CI_PIPELINE_SOURCE == "merge_request_event"`))
	}
	w.line("")
	w.line("stages:")
	w.line("  - pipeline")
	w.line("")
	if !s.single() {
		w.line("variables:")
		w.line("  MODPIPE_TOTAL: %s", quote(total))
		w.comment(2,
			"One run id for every instance. A new pipeline gets a new id; retrying jobs",
			"of a finished pipeline reuses its id, and the coordinator refuses a run id",
			"that has already ended: re-run by starting a new pipeline.",
		)
		w.line("  MODPIPE_RUN_ID: %s", quote("$CI_PIPELINE_ID"))
		if s.RedisSecret != "REDIS_URL" {
			w.comment(2, "The Redis URL, from the masked CI/CD variable "+s.RedisSecret+".")
			w.line("  REDIS_URL: %s", quote("$"+s.RedisSecret))
		}
		w.line("")
	}
	w.line("pipeline:")
	w.line("  stage: pipeline")
	w.comment(2,
		"Linux runners run the job in this image, of the Go that the pipeline's go.mod names;",
		"Windows, macOS and other shell runners ignore it.",
	)
	w.line("  image: golang:%s", s.GoVersion)
	if docker {
		w.comment(2,
			"Instances offering docker need Docker inside the job: on GitLab.com's Linux",
			"runners add a docker:dind service (with DOCKER_HOST and a docker client in the",
			"image), or tag a runner of your own that has Docker.",
		)
	}
	report := "modpipe-report"
	reportGlob := "modpipe-report.json"
	if s.single() {
		w.line("  tags:")
		w.line("    - %s", quote(runnerFor(s.Instances[0], gitlabRunners)))
	} else {
		report = "modpipe-report-$MODPIPE_INSTANCE"
		reportGlob = "modpipe-report-*.json"
		w.comment(2, "GitLab expands the matrix variable RUNNER_TAG in tags.")
		w.line("  tags:")
		w.line("    - %s", quote("$RUNNER_TAG"))
		w.line("  parallel:")
		w.line("    matrix:")
		for i, in := range s.Instances {
			w.line("      - MODPIPE_INSTANCE: %s", quote(strconv.Itoa(i)))
			w.line("        MODPIPE_CAPABILITIES: %s", quote(strings.Join(in.Capabilities, ",")))
			w.line("        RUNNER_TAG: %s", quote(runnerFor(in, gitlabRunners)))
		}
	}
	w.line("  script:")
	if s.ModuleDir != "" {
		w.comment(4, "The pipeline is its own Go module, in "+s.ModuleDir+"/ (cd works in sh, bash and PowerShell).")
		w.line("    - cd %s", s.ModuleDir)
	}
	w.line("    - %s", s.runCommand(report+".json"))
	w.line("  artifacts:")
	w.line("    name: %s", quote(report))
	w.line("    when: always")
	if !s.single() {
		w.comment(4,
			"A glob: PowerShell (Windows runners) reads $MODPIPE_INSTANCE in the script as",
			"its own, empty variable, which names the report modpipe-report-.json.",
		)
	}
	w.line("    paths:")
	w.line("      - %s", quote(s.inModule(reportGlob)))
	if s.ArtifactsOut != "" {
		if s.single() {
			w.comment(6, "Every artifact of the run is copied here.")
		} else {
			w.comment(6, "The master copies every artifact of the run here; other instances leave it empty.")
		}
		w.line("      - %s", quote(s.inModule(s.ArtifactsOut)))
	}
	return w.bytes(), nil
}

// gitlabBranchCond renders a rules condition matching the branch pattern b
// (see Spec.Branches).
func gitlabBranchCond(b string) string {
	if !strings.Contains(b, "*") {
		return `$CI_COMMIT_BRANCH == "` + b + `"`
	}
	var re strings.Builder
	re.WriteString("/^")
	for rest := b; rest != ""; {
		switch {
		case strings.HasPrefix(rest, "**"):
			re.WriteString(".*")
			rest = rest[2:]
		case rest[0] == '*':
			re.WriteString(`[^\/]*`)
			rest = rest[1:]
		default:
			if strings.ContainsRune(`./`, rune(rest[0])) {
				re.WriteByte('\\')
			}
			re.WriteByte(rest[0])
			rest = rest[1:]
		}
	}
	re.WriteString("$/")
	return "$CI_COMMIT_BRANCH =~ " + re.String()
}
