package workflow

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the generators' output")

// shape is one kind of run that the generators are checked against.
type shape struct {
	name string
	spec Spec
}

// shapes returns the runs covered by golden files, each built with Plan the
// way the CLI builds them.
func shapes(t *testing.T) []shape {
	t.Helper()
	plan := func(need, caps []string, extra int, runners map[string]string) []Instance {
		t.Helper()
		in, _, err := Plan(need, caps, extra, runners)
		if err != nil {
			t.Fatalf("Plan(%q, %q, %d, %v): %v", need, caps, extra, runners, err)
		}
		return in
	}
	return []shape{
		{"linux-docker", Spec{
			Instances: plan([]string{"linux"}, []string{"docker"}, 1, nil),
		}},
		{"cross-os", Spec{
			Instances: plan([]string{"linux", "windows", "macos"}, nil, 0, nil),
		}},
		{"pull-request", Spec{
			Name:        "ci",
			Branches:    []string{"main", "release/**"},
			PullRequest: true,
			Instances:   plan([]string{"linux", "windows"}, []string{"docker"}, 0, nil),
		}},
		{"runner-override", Spec{
			Main:        "./build/ci",
			RedisSecret: "MODPIPE_REDIS",
			Instances: plan([]string{"linux", "macos", "freebsd"}, []string{"docker"}, 1, map[string]string{
				"linux":   "linux-large",
				"freebsd": "self-hosted-freebsd",
			}),
		}},
		{"artifacts-out", Spec{
			ArtifactsOut: "dist/artifacts",
			Instances:    plan([]string{"linux"}, []string{"docker"}, 0, nil),
		}},
		// The pipeline in a Go module of its own (ci/go.mod), a worker
		// offering cgo for the race tests, master as the default branch.
		{"own-module", Spec{
			Main:         ".",
			ModuleDir:    "ci",
			GoVersion:    "1.27",
			Branches:     []string{"master"},
			ArtifactsOut: "dist",
			Instances: func() []Instance {
				t.Helper()
				in, _, err := PlanWorkers([]string{"linux"}, []string{"cgo"}, 0, [][]string{{"cgo"}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				return in
			}(),
		}},
		{"own-module-single", Spec{
			Main:      "./cmd/pipeline",
			ModuleDir: "build/ci",
			Name:      "Build & test",
			Instances: plan([]string{"linux"}, nil, 0, nil),
		}},
	}
}

// generators are the renderers under test, keyed by golden file suffix.
var generators = []struct {
	kind string
	gen  func(Spec) ([]byte, error)
}{
	{"github", GitHub},
	{"gitlab", GitLab},
}

func goldenPath(shape, kind string) string {
	return filepath.Join("testdata", shape+"."+kind+".yml")
}

func TestGolden(t *testing.T) {
	for _, sh := range shapes(t) {
		for _, g := range generators {
			t.Run(sh.name+"/"+g.kind, func(t *testing.T) {
				got, err := g.gen(sh.spec)
				if err != nil {
					t.Fatal(err)
				}
				path := goldenPath(sh.name, g.kind)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./internal/workflow -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the generated output (run go test ./internal/workflow -update if the change is intended):\n%s", path, lineDiff(want, got))
				}
			})
		}
	}
}

// TestNoStaleGoldenFiles makes sure every file in testdata/ belongs to a shape.
func TestNoStaleGoldenFiles(t *testing.T) {
	var want []string
	for _, sh := range shapes(t) {
		for _, g := range generators {
			want = append(want, goldenPath(sh.name, g.kind))
		}
	}
	got, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got {
		if !slices.Contains(want, f) {
			t.Errorf("%s is not produced by any shape: delete it", f)
		}
	}
}

func TestDeterministic(t *testing.T) {
	for _, sh := range shapes(t) {
		for _, g := range generators {
			a, err := g.gen(sh.spec)
			if err != nil {
				t.Fatal(err)
			}
			for range 5 {
				b, err := g.gen(sh.spec)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(a, b) {
					t.Fatalf("%s/%s: two renderings of the same spec differ:\n%s", sh.name, g.kind, lineDiff(a, b))
				}
			}
		}
	}
	// Plan does not depend on the order or case of its inputs.
	a, an, err := Plan([]string{"macos", "linux", "windows"}, []string{"gpu", "docker"}, 1, map[string]string{"linux": "x", "windows": "y"})
	if err != nil {
		t.Fatal(err)
	}
	b, bn, err := Plan([]string{"Windows", "LINUX", "macos", "windows"}, []string{"Docker", "gpu", "docker"}, 1, map[string]string{"windows": "y", "linux": "x"})
	if err != nil {
		t.Fatal(err)
	}
	ga, _ := GitHub(Spec{Instances: a})
	gb, _ := GitHub(Spec{Instances: b})
	if !bytes.Equal(ga, gb) || !slices.Equal(an, bn) {
		t.Errorf("Plan depends on input order:\n%s\n%q\n%q", lineDiff(ga, gb), an, bn)
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got []byte) string {
	w := strings.Split(string(want), "\n")
	g := strings.Split(string(got), "\n")
	var out strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			out.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			shown++
		}
	}
	return out.String()
}
