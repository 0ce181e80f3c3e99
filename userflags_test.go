package modpipe

import (
	"flag"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// A pipeline's own flags are parsed by Main with modpipe's: module bodies
// read the values, a repeatable flag collects each value once, and
// p.Flags() reports what was given, as if it had parsed the line itself.
func TestMainParsesPipelineFlags(t *testing.T) {
	p := NewPipeline()
	goVersion := p.Flags().String("go", "stable", "Go `VERSION` to test with")
	race := p.Flags().Bool("race", false, "run the tests with -race")
	var tags []string
	p.Flags().Func("tag", "a build `TAG` (repeatable)", func(v string) error { tags = append(tags, v); return nil })
	var seen atomic.Value
	p.Add(Task("test", func(c *Context) error {
		seen.Store(*goVersion + " race=" + map[bool]string{true: "on", false: "off"}[*race] + " tags=" + strings.Join(tags, ","))
		return nil
	}))
	code, out, errOut := runMain(t, p, nil, "--go", "1.24", "--tag", "a", "-race", "--continue-on-failure", "--tag=b")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if got, want := seen.Load(), "1.24 race=on tags=a,b"; got != want {
		t.Errorf("the module saw %q, want %q", got, want)
	}
	if !p.Flags().Parsed() {
		t.Error("p.Flags().Parsed() is false after Main parsed the command line")
	}
	var given []string
	p.Flags().Visit(func(f *flag.Flag) { given = append(given, f.Name) })
	if want := []string{"go", "race", "tag"}; !slices.Equal(given, want) {
		t.Errorf("p.Flags().Visit lists %v, want %v", given, want)
	}
	if !p.ContinueOnFailure {
		t.Error("modpipe's own flag --continue-on-failure was not applied beside the pipeline's flags")
	}
}

// --help lists modpipe's flags, then the pipeline's in their own section.
func TestMainHelpListsPipelineFlags(t *testing.T) {
	p := NewPipeline().Add(Task("a", func(*Context) error { return nil }))
	p.Flags().String("go", "stable", "Go `VERSION` to test with")
	code, out, errOut := runMain(t, p, nil, "--help")
	if code != 0 {
		t.Fatalf("--help exits %d\n%s", code, errOut)
	}
	own, user, ok := strings.Cut(errOut, "Pipeline flags")
	if !ok {
		t.Fatalf("--help has no section for the pipeline's flags:\n%s%s", out, errOut)
	}
	if !strings.Contains(own, "-only NAME") || !strings.Contains(own, "-cleanup-grace") || strings.Contains(own, "-go VERSION") {
		t.Errorf("modpipe's section should list its flags and not the pipeline's:\n%s", own)
	}
	if !strings.Contains(user, "-go VERSION") || !strings.Contains(user, "Go VERSION to test with") || !strings.Contains(user, `(default "stable")`) {
		t.Errorf("the pipeline's section misses -go:\n%s", user)
	}
}

// An unknown flag is an error naming it and --help; nothing runs.
func TestMainUnknownFlagIsNamed(t *testing.T) {
	var ran atomic.Bool
	p := NewPipeline().Add(Task("a", func(*Context) error { ran.Store(true); return nil }))
	p.Flags().String("go", "stable", "Go version")
	code, _, errOut := runMain(t, p, nil, "--goo", "1.24")
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(errOut, "unknown flag -goo") || !strings.Contains(errOut, "--help") {
		t.Errorf("stderr should name the flag and --help:\n%s", errOut)
	}
	if strings.Contains(errOut, "-only NAME") {
		t.Errorf("an unknown flag should not print the whole usage:\n%s", errOut)
	}
	if ran.Load() {
		t.Error("the module ran despite the unknown flag")
	}
}

// A pipeline flag with the name of one of modpipe's is refused (the flag
// package would panic on the redefinition).
func TestMainRefusesPipelineFlagNamedLikeModpipes(t *testing.T) {
	p := NewPipeline().Add(Task("a", func(*Context) error { return nil }))
	p.Flags().Bool("v", false, "verbose tests")
	code, _, errOut := runMain(t, p, nil)
	if code != 2 || !strings.Contains(errOut, "flag -v (p.Flags()) has the name of one of modpipe's own flags") {
		t.Errorf("exit %d, want 2 naming -v:\n%s", code, errOut)
	}
}

// --cleanup-grace and MODPIPE_CLEANUP_GRACE set CleanupGrace (flag over
// environment over code), and a value that is no positive duration is refused.
func TestMainCleanupGraceSettings(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want string
		code int
	}{
		{nil, "", "5s", 0},
		{nil, "7s", "7s", 0},
		{[]string{"--cleanup-grace", "9s"}, "7s", "9s", 0},
		{[]string{"--cleanup-grace", "0s"}, "", "", 2},
		{nil, "soon", "", 2},
	} {
		p := NewPipeline().Add(Task("a", func(*Context) error { return nil }))
		p.CleanupGrace = 5e9
		code, _, errOut := runMain(t, p, map[string]string{"MODPIPE_CLEANUP_GRACE": tc.env}, tc.args...)
		if code != tc.code {
			t.Errorf("%v env %q: exit %d, want %d\n%s", tc.args, tc.env, code, tc.code, errOut)
			continue
		}
		if tc.code == 0 && p.CleanupGrace.String() != tc.want {
			t.Errorf("%v env %q: CleanupGrace %s, want %s", tc.args, tc.env, p.CleanupGrace, tc.want)
		}
	}
}
