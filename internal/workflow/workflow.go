// Package workflow turns a description of a distributed modpipe run into CI
// configuration: a GitHub Actions workflow (GitHub) or a .gitlab-ci.yml
// (GitLab).
//
// A distributed run is N instances of the same pipeline program, one per job
// of a CI matrix; instance 0 is the master. Plan chooses the instances from
// what the pipeline's modules need (operating systems and capabilities); the
// generators render them. The output is deterministic: the same Spec always
// gives the same bytes, so generated files can be checked in and compared.
package workflow

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Spec describes the run to generate a workflow for.
type Spec struct {
	// Name is the workflow name; default "pipeline".
	Name string
	// Main is the package path of the pipeline program, as given to
	// `go run` in the directory the pipeline runs in (the repository root,
	// or ModuleDir); default "./ci".
	Main string
	// ModuleDir is the directory, relative to the repository root and
	// slash-separated, of the Go module that holds Main when that is not the
	// root's module: a ci/ with its own go.mod, because the project's go.mod
	// promises an older Go than modpipe needs. The pipeline then runs there
	// (GitHub: the step's working-directory; GitLab: the script starts with
	// cd), actions/setup-go reads the Go version from its go.mod, and Main,
	// ArtifactsOut and the reports are relative to it. Empty: the root.
	ModuleDir string
	// GoVersion is the Go version (major.minor, e.g. "1.26") of the module
	// that is built: GitLab runs the job in the golang image of that
	// version (GitHub's setup-go reads it from go.mod itself). Default 1.26.
	GoVersion string
	// Command is the command that regenerates the file, run from the
	// repository root; the header records it so that "do not edit by hand"
	// can be honoured. Default: go run Main workflow github|gitlab.
	Command string
	// Branches are the branches whose pushes start a run; default ["main"].
	// A "*" matches any characters but "/", "**" any characters.
	Branches []string
	// PullRequest adds a pull request trigger. It is off by default: pull
	// requests from forks get no secrets, so they run on instance 0 alone
	// (modpipe's fork-safe fallback).
	PullRequest bool
	// RedisSecret is the name of the secret (GitHub) or CI/CD variable
	// (GitLab) holding the Redis URL; default "REDIS_URL".
	RedisSecret string
	// ArtifactsOut, when set, is the directory (relative to the directory
	// the pipeline runs in: the checkout, or ModuleDir) where the master
	// copies every artifact of the run (--artifacts-out);
	// the master's job then publishes it: an actions/upload-artifact step
	// named modpipe-artifacts (GitHub), artifacts paths (GitLab).
	ArtifactsOut string
	// Instances are the matrix entries. Instance 0 is the master; indexes
	// are 0..len-1 in order.
	Instances []Instance
}

// Instance is one matrix entry: one instance of the distributed run.
type Instance struct {
	// Index is the instance's index; it must equal its position in
	// Spec.Instances.
	Index int
	// OS is "linux", "windows" or "macos"; "freebsd" is accepted only with a
	// Runner override (there is no hosted FreeBSD runner).
	OS string
	// Runner is the runner label (GitHub) or runner tag (GitLab). Empty
	// means the default for the OS: ubuntu-latest, windows-latest,
	// macos-latest on GitHub; saas-linux-small-amd64,
	// saas-windows-medium-amd64, saas-macos-medium-m1 on GitLab.
	Runner string
	// Capabilities are the non-OS capabilities the instance offers (for
	// example "docker"), lower-case. The OS is offered by modpipe itself.
	Capabilities []string
}

// Operating systems modpipe knows, in the order workers are generated.
const (
	osLinux   = "linux"
	osWindows = "windows"
	osMacOS   = "macos"
	osFreeBSD = "freebsd"
)

var knownOS = []string{osLinux, osWindows, osMacOS, osFreeBSD}

// hostedRunners are the default runner labels per CI system and OS. An OS
// that is missing has no hosted runner and needs an override.
var (
	githubRunners = map[string]string{
		osLinux:   "ubuntu-latest",
		osWindows: "windows-latest",
		osMacOS:   "macos-latest",
	}
	gitlabRunners = map[string]string{
		osLinux:   "saas-linux-small-amd64",
		osWindows: "saas-windows-medium-amd64",
		osMacOS:   "saas-macos-medium-m1",
	}
)

// maxInstances bounds the matrix: GitHub runs at most 256 jobs per matrix.
const maxInstances = 256

var (
	mainRE   = regexp.MustCompile(`^[A-Za-z0-9._@/][A-Za-z0-9._@/-]*$`)
	secretRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	branchRE = regexp.MustCompile(`^[A-Za-z0-9._/@*][A-Za-z0-9._/@*-]*$`)
	runnerRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	capRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
)

// goVersionRE matches a Spec.GoVersion.
var goVersionRE = regexp.MustCompile(`^1\.[0-9]+$`)

// artifactsOutRE matches an --artifacts-out directory the generators accept.
var artifactsOutRE = regexp.MustCompile(`^[A-Za-z0-9._][A-Za-z0-9._/-]*$`)

// normalize returns s with defaults filled in, after checking every field.
// It never modifies the caller's slices.
func normalize(s Spec) (Spec, error) {
	if s.Name == "" {
		s.Name = "pipeline"
	}
	if strings.ContainsFunc(s.Name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return s, fmt.Errorf("workflow name %q contains control characters", s.Name)
	}
	if s.Main == "" {
		s.Main = "./ci"
	}
	if !mainRE.MatchString(s.Main) {
		return s, fmt.Errorf("main package %q is not a plain package path such as ./ci (letters, digits and . _ @ / - only, not starting with -)", s.Main)
	}
	if len(s.Branches) == 0 {
		s.Branches = []string{"main"}
	}
	for _, b := range s.Branches {
		if !branchRE.MatchString(b) {
			return s, fmt.Errorf("branch %q: use letters, digits, . _ / @ - and the wildcards * (any characters but /) and ** (any characters)", b)
		}
	}
	if s.RedisSecret == "" {
		s.RedisSecret = "REDIS_URL"
	}
	if !secretRE.MatchString(s.RedisSecret) {
		return s, fmt.Errorf("Redis secret name %q: use letters, digits and _, not starting with a digit", s.RedisSecret)
	}
	if strings.HasPrefix(strings.ToUpper(s.RedisSecret), "GITHUB_") {
		return s, fmt.Errorf("Redis secret name %q: names starting with GITHUB_ are reserved by GitHub", s.RedisSecret)
	}
	if s.ArtifactsOut != "" && (!artifactsOutRE.MatchString(s.ArtifactsOut) || slices.Contains(strings.Split(s.ArtifactsOut, "/"), "..")) {
		return s, fmt.Errorf("artifacts directory %q: use a relative path of letters, digits and . _ / - (no .., not starting with / or -)", s.ArtifactsOut)
	}
	if s.ModuleDir != "" && (!artifactsOutRE.MatchString(s.ModuleDir) || path.Clean(s.ModuleDir) != s.ModuleDir || s.ModuleDir == "." || slices.Contains(strings.Split(s.ModuleDir, "/"), "..")) {
		return s, fmt.Errorf("module directory %q: use a clean relative path below the repository root such as ci (letters, digits and . _ / -, no ..)", s.ModuleDir)
	}
	if s.GoVersion == "" {
		s.GoVersion = "1.26"
	}
	if !goVersionRE.MatchString(s.GoVersion) {
		return s, fmt.Errorf("Go version %q: want major.minor, such as 1.26", s.GoVersion)
	}
	if strings.ContainsFunc(s.Command, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return s, fmt.Errorf("command %q contains control characters", s.Command)
	}
	if len(s.Instances) == 0 {
		return s, fmt.Errorf("no instances: a run needs at least instance 0, the master (see Plan)")
	}
	if len(s.Instances) > maxInstances {
		return s, fmt.Errorf("%d instances: a GitHub matrix runs at most %d jobs", len(s.Instances), maxInstances)
	}
	for i, in := range s.Instances {
		if err := checkInstance(i, in); err != nil {
			return s, err
		}
	}
	return s, nil
}

// checkInstance checks the instance at position i.
func checkInstance(i int, in Instance) error {
	if in.Index != i {
		return fmt.Errorf("instance at position %d has index %d: indexes must be 0..N-1 in order", i, in.Index)
	}
	if !slices.Contains(knownOS, in.OS) {
		return fmt.Errorf("instance %d: unknown OS %q (want one of %s)", i, in.OS, strings.Join(knownOS, ", "))
	}
	if in.Runner == "" {
		if _, ok := githubRunners[in.OS]; !ok {
			return fmt.Errorf("instance %d: there is no hosted %s runner; register a self-hosted one and set its label as the instance's Runner", i, in.OS)
		}
	} else if !runnerRE.MatchString(in.Runner) {
		return fmt.Errorf("instance %d: runner label %q: use letters, digits and . _ / - only", i, in.Runner)
	}
	for j, c := range in.Capabilities {
		switch {
		case !capRE.MatchString(c):
			return fmt.Errorf("instance %d: capability %q: use lower-case letters, digits and . _ - only", i, c)
		case slices.Contains(knownOS, c):
			return fmt.Errorf("instance %d: capability %q is an OS: set the instance's OS instead", i, c)
		case slices.Contains(in.Capabilities[:j], c):
			return fmt.Errorf("instance %d: capability %q is listed twice", i, c)
		}
	}
	return nil
}

// role names instance i's role in the run.
func role(i int) string {
	if i == 0 {
		return "master"
	}
	return "worker"
}

// runnerFor returns the instance's runner label, or the default of table.
func runnerFor(in Instance, table map[string]string) string {
	if in.Runner != "" {
		return in.Runner
	}
	return table[in.OS]
}

// yamlReserved are plain scalars that some YAML parser would read as
// something other than a string.
var yamlReserved = []string{"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}

var plainRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_./-]*$`)

// str renders s as a YAML string scalar: plain when that is unambiguous,
// double-quoted otherwise.
func str(s string) string {
	if plainRE.MatchString(s) && !slices.Contains(yamlReserved, strings.ToLower(s)) {
		return s
	}
	return quote(s)
}

// quote renders s as a double-quoted YAML scalar. Go's escapes are a subset
// of YAML's double-quoted escapes.
func quote(s string) string {
	return strconv.Quote(s)
}

// writer accumulates YAML text line by line.
type writer struct {
	b strings.Builder
}

// line writes one line, formatted like fmt.Sprintf; an empty format writes an
// empty line.
func (w *writer) line(format string, args ...any) {
	if format != "" {
		fmt.Fprintf(&w.b, format, args...)
	}
	w.b.WriteByte('\n')
}

// comment writes text as comment lines indented by indent spaces.
func (w *writer) comment(indent int, text ...string) {
	pad := strings.Repeat(" ", indent)
	for _, t := range text {
		if t == "" {
			w.line("%s#", pad)
			continue
		}
		w.line("%s# %s", pad, t)
	}
}

func (w *writer) bytes() []byte { return []byte(w.b.String()) }

// header writes the comment every generated file starts with: where it
// comes from and the command that regenerates it.
// intro writes the comment under the header that says what the file
// runs: one plain job, or a distributed run, whose comment gets more.
func (w *writer) intro(s Spec, more ...string) {
	if s.single() {
		w.comment(0, "", "One run of "+s.program()+" in one job: no module needs another runner.")
		return
	}
	w.comment(0, append([]string{
		"",
		"One distributed run of " + s.program() + " as " + strconv.Itoa(len(s.Instances)) + " instances, one per matrix job,",
		"coordinated through Redis. Instance 0 is the master: its log is the run's log",
		"(every module's output, wherever it ran) and it prints the summary.",
	}, more...)...)
}

func (w *writer) header(s Spec) {
	w.comment(0,
		"Generated by modpipe. Do not edit by hand: edit the pipeline, then regenerate",
		"this file from the repository root with the command that wrote it (to stdout):",
		"  "+s.Command,
	)
}

// withCommand returns s with the default Command for the CI system kind
// ("github", "gitlab") when it has none.
func (s Spec) withCommand(kind string) Spec {
	if s.Command != "" {
		return s
	}
	s.Command = "go run " + s.Main + " workflow " + kind
	if s.ModuleDir != "" {
		s.Command = "cd " + s.ModuleDir + " && " + s.Command
	}
	return s
}

// single reports whether the run is one instance: it needs no other runner,
// so it is one plain job, with no coordinator and no distributed settings.
func (s Spec) single() bool { return len(s.Instances) == 1 }

// inModule returns p (relative to the directory the pipeline runs in) as a
// path relative to the repository root.
func (s Spec) inModule(p string) string {
	if s.ModuleDir == "" {
		return p
	}
	return s.ModuleDir + "/" + p
}

// program names the pipeline program for people: Main, or its path from the
// repository root when it is in a module of its own.
func (s Spec) program() string {
	if s.ModuleDir == "" {
		return s.Main
	}
	return "./" + path.Join(s.ModuleDir, s.Main)
}

// runCommand is the command line that runs the pipeline, writing its report
// to report.
func (s Spec) runCommand(report string) string {
	cmd := "go run " + s.Main + " --report " + report
	if s.ArtifactsOut != "" {
		cmd += " --artifacts-out " + s.ArtifactsOut
	}
	return cmd
}
