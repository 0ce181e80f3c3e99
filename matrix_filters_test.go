package modpipe_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modpipe/modpipe"
)

// targetRecorder records the MatrixTarget of every variant that runs.
type targetRecorder struct {
	mu  sync.Mutex
	got []string
}

func (r *targetRecorder) record(c *modpipe.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, c.MatrixTarget())
}

func (r *targetRecorder) sorted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.got)
	slices.Sort(out)
	return out
}

// Before parameters, every variant whose target was not the local OS was
// skipped on a single instance ("needs a go1.25 instance") and the run
// exited 0 having run nothing.
func TestParameterMatrixRunsEveryVariantInOneProcess(t *testing.T) {
	var rec targetRecorder
	tests := modpipe.New("tests", func(c *modpipe.Context) (string, error) {
		rec.record(c)
		return "ok-" + c.MatrixTarget(), nil
	}, modpipe.MatrixTarget("go1.25", "go1.26", "Race"))
	var collected map[string]string
	collect := modpipe.Task("collect", func(c *modpipe.Context) error {
		var err error
		collected, err = modpipe.MatrixResults(c, tests)
		return err
	}, modpipe.DependsOn(tests))
	s, _ := run(t, nil, tests, collect)
	status(t, s, map[string]modpipe.Status{
		"tests[go1.25]": modpipe.Succeeded, "tests[go1.26]": modpipe.Succeeded, "tests[race]": modpipe.Succeeded,
		"collect": modpipe.Succeeded,
	})
	if got, want := rec.sorted(), []string{"go1.25", "go1.26", "race"}; !slices.Equal(got, want) {
		t.Errorf("MatrixTarget() values = %v, want %v", got, want)
	}
	if len(collected) != 3 || collected["go1.26"] != "ok-go1.26" {
		t.Errorf("MatrixResults = %v", collected)
	}
	if s.Count(modpipe.Succeeded) != 4 {
		t.Errorf("%d succeeded, want 4", s.Count(modpipe.Succeeded))
	}
}

func TestMixedMatrixRoutesOSTargetsAndRunsParameters(t *testing.T) {
	var rec targetRecorder
	mixed := modpipe.Task("mixed", func(c *modpipe.Context) error {
		rec.record(c)
		return nil
	}, modpipe.MatrixTarget(thisOS(), otherOS(), "amd64", "arm64"))
	s, _ := run(t, nil, mixed)
	status(t, s, map[string]modpipe.Status{
		"mixed[" + thisOS() + "]": modpipe.Succeeded, "mixed[" + otherOS() + "]": modpipe.Skipped,
		"mixed[amd64]": modpipe.Succeeded, "mixed[arm64]": modpipe.Succeeded,
	})
	want := []string{"amd64", "arm64", thisOS()}
	slices.Sort(want)
	if got := rec.sorted(); !slices.Equal(got, want) {
		t.Errorf("ran %v, want %v", got, want)
	}
}

// A parameter variant of a module restricted by OnOS still obeys OnOS.
func TestParameterMatrixKeepsOnOS(t *testing.T) {
	noop := func(*modpipe.Context) error { return nil }
	here := modpipe.Task("here", noop, modpipe.MatrixTarget("a", "b"), modpipe.OnOS(thisOS()))
	there := modpipe.Task("there", noop, modpipe.MatrixTarget("a", "b"), modpipe.OnOS(otherOS()))
	s, _ := run(t, nil, here, there)
	status(t, s, map[string]modpipe.Status{
		"here[a]": modpipe.Succeeded, "here[b]": modpipe.Succeeded,
		"there[a]": modpipe.Skipped, "there[b]": modpipe.Skipped,
	})
}

func TestDependsOnAllTakesASliceBuiltInALoop(t *testing.T) {
	type buildInfo struct{ Target string }
	var builds []*modpipe.Module[buildInfo]
	for _, target := range []string{"linux-amd64", "windows-arm64", "darwin-arm64"} {
		builds = append(builds, modpipe.New("xbuild-"+target, func(*modpipe.Context) (buildInfo, error) {
			return buildInfo{Target: target}, nil
		}))
	}
	version := modpipe.New("version", func(*modpipe.Context) (string, error) { return "v1", nil })
	var got []string
	release := modpipe.Task("release", func(c *modpipe.Context) error {
		for _, b := range builds {
			info, err := modpipe.Result(c, b)
			if err != nil {
				return err
			}
			got = append(got, info.Target)
		}
		v, err := modpipe.Result(c, version)
		got = append(got, v)
		return err
	}, modpipe.DependsOnAll(builds...), modpipe.DependsOn(version))
	s, _ := run(t, nil, append(modpipe.Modules(builds), version, release)...)
	status(t, s, map[string]modpipe.Status{"release": modpipe.Succeeded})
	if want := []string{"linux-amd64", "windows-arm64", "darwin-arm64", "v1"}; !slices.Equal(got, want) {
		t.Errorf("release read %v, want %v", got, want)
	}
}

func TestDependsOnAllRejectsANilModule(t *testing.T) {
	var builds []*modpipe.Module[int]
	builds = append(builds, modpipe.New("a", func(*modpipe.Context) (int, error) { return 1, nil }), nil)
	after := modpipe.Task("after", func(*modpipe.Context) error { return nil }, modpipe.DependsOnAll(builds...))
	p := modpipe.NewPipeline().Add(builds[0], after)
	p.Output = io.Discard
	_, err := p.Run(context.Background())
	if !errors.Is(err, modpipe.ErrInvalidPipeline) || !strings.Contains(err.Error(), "a dependency is nil") {
		t.Fatalf("Run = %v, want an invalid pipeline naming the nil dependency", err)
	}
}

// filterPipeline has cross-builds named for a glob, a matrix module and
// modules with several categories.
func filterPipeline() []modpipe.AnyModule {
	noop := func(*modpipe.Context) error { return nil }
	return []modpipe.AnyModule{
		modpipe.Task("xbuild-linux", noop, modpipe.Category("build")),
		modpipe.Task("xbuild-windows", noop, modpipe.Category("build", "windows")),
		modpipe.Task("lint", noop, modpipe.Category("check"), modpipe.Category("fast")),
		modpipe.Task("unit", noop, modpipe.Category("test", "fast")),
		modpipe.Task("cross", noop, modpipe.MatrixTarget("p1", "p2")),
	}
}

func runFiltered(t *testing.T, configure func(p *modpipe.Pipeline)) (*modpipe.Summary, error) {
	t.Helper()
	p := modpipe.NewPipeline().Add(filterPipeline()...)
	p.Output = io.Discard
	configure(p)
	return p.Run(context.Background())
}

func ran(s *modpipe.Summary) []string {
	var out []string
	for _, m := range s.Modules {
		if m.Status == modpipe.Succeeded {
			out = append(out, m.Name)
		}
	}
	return out
}

func TestOnlyAndSkipAcceptGlobs(t *testing.T) {
	cases := []struct {
		name      string
		configure func(p *modpipe.Pipeline)
		want      []string
	}{
		{"only glob", func(p *modpipe.Pipeline) { p.Only = []string{"xbuild-*"} }, []string{"xbuild-linux", "xbuild-windows"}},
		{"skip glob", func(p *modpipe.Pipeline) { p.Skip = []string{"xbuild-*", "cross"} }, []string{"lint", "unit"}},
		{"glob over variants", func(p *modpipe.Pipeline) { p.Only = []string{`cross\[p?\]`} }, []string{"cross[p1]", "cross[p2]"}},
		{"variant name is not a glob", func(p *modpipe.Pipeline) { p.Only = []string{"cross[p2]"} }, []string{"cross[p2]"}},
		{"question mark", func(p *modpipe.Pipeline) { p.Only = []string{"lin?"} }, []string{"lint"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := runFiltered(t, tc.configure)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := ran(s); !slices.Equal(got, tc.want) {
				t.Errorf("ran %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFilterErrorsForUnknownNamesAndEmptyGlobs(t *testing.T) {
	cases := []struct {
		name      string
		configure func(p *modpipe.Pipeline)
		want      string
	}{
		{"unknown name", func(p *modpipe.Pipeline) { p.Only = []string{"xbuild"} }, `--only: no module named "xbuild"`},
		{"glob matching nothing", func(p *modpipe.Pipeline) { p.Skip = []string{"deploy-*"} }, `--skip: pattern "deploy-*" matches no module`},
		{"bad pattern", func(p *modpipe.Pipeline) { p.Only = []string{"x[build"} }, `--only: "x[build" is not a valid pattern`},
		{"unknown category", func(p *modpipe.Pipeline) { p.Categories = []string{"slow"} }, `--category: no module has category "slow"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runFiltered(t, tc.configure)
			if !errors.Is(err, modpipe.ErrInvalidPipeline) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an invalid pipeline saying %q", err, tc.want)
			}
		})
	}
}

func TestSeveralCategoriesMatchAny(t *testing.T) {
	s, err := runFiltered(t, func(p *modpipe.Pipeline) { p.Categories = []string{"fast"} })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ran(s), []string{"lint", "unit"}; !slices.Equal(got, want) {
		t.Errorf("--category fast ran %v, want %v", got, want)
	}
	s, err = runFiltered(t, func(p *modpipe.Pipeline) { p.Categories = []string{"windows"} })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ran(s), []string{"xbuild-windows"}; !slices.Equal(got, want) {
		t.Errorf("--category windows ran %v, want %v", got, want)
	}
	s, err = runFiltered(t, func(p *modpipe.Pipeline) { p.IgnoreCategories = []string{"fast", "windows"} })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ran(s), []string{"xbuild-linux", "cross[p1]", "cross[p2]"}; !slices.Equal(got, want) {
		t.Errorf("--ignore-category fast,windows ran %v, want %v", got, want)
	}
	m, _ := s.Module("lint")
	if m.Reason != "category fast ignored (--ignore-category)" {
		t.Errorf("lint reason %q", m.Reason)
	}
	if m, _ := s.Module("xbuild-windows"); m.Category != "build,windows" {
		t.Errorf("summary category %q, want build,windows", m.Category)
	}
}

func TestCategoryRejectsEmptyNames(t *testing.T) {
	bad := modpipe.Task("bad", func(*modpipe.Context) error { return nil }, modpipe.Category("a", ""))
	p := modpipe.NewPipeline().Add(bad)
	p.Output = io.Discard
	_, err := p.Run(context.Background())
	if !errors.Is(err, modpipe.ErrInvalidPipeline) || !strings.Contains(err.Error(), `invalid category ""`) {
		t.Fatalf("Run = %v, want the empty category refused", err)
	}
}

// Distributed: a parameter variant needs no instance advertising its value
// (before, "go1.26" was required as a capability no instance offers, and
// the run failed as unroutable); OS variants still route.
func TestDistributedParameterMatrixRunsAnywhere(t *testing.T) {
	var ran ranOn
	mixed := ran.task("mixed", modpipe.MatrixTarget("windows", "go1.25", "go1.26"))
	docker := ran.task("docker", modpipe.MatrixTarget("a", "b"), modpipe.RequiresCapability("docker"))
	c := newCluster(t, 2, mixed, docker)
	master := c.start(0, "linux")
	w := c.start(1, "windows", "docker")
	master.wait(t)
	w.wait(t)
	if master.err != nil || master.summary.Failed() {
		t.Fatalf("run failed: %v\n%s", master.err, master.out)
	}
	for name, where := range map[string][]int{
		"mixed[windows]": {1}, "mixed[go1.25]": {0, 1}, "mixed[go1.26]": {0, 1},
		"docker[a]": {1}, "docker[b]": {1},
	} {
		got := ran.get(name)
		if len(got) != 1 || !slices.Contains(where, got[0]) {
			t.Errorf("%s ran on %v, want once on one of %v", name, got, where)
		}
	}
}
