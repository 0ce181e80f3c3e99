package modpipe

import (
	"regexp"
	"strings"
	"testing"
)

func routingPipeline() *Pipeline {
	noop := func(*Context) error { return nil }
	return NewPipeline().Add(
		Task("lint", noop),
		Task("release", noop, PinToMaster()),
		Task("image", noop, RequiresCapability("docker")),
		Task("train", noop, RequiresCapability("gpu")),
		Task("race", noop, RequiresCapability("cgo")),
		Task("xtest", noop, MatrixTarget("linux", "windows", "macos")),
		Task("bench", noop, MatrixTarget("small", "large")), // parameters, not routing
	)
}

// row finds a module's row in the routing table: its NEEDS and CAN RUN ON.
func row(t *testing.T, out, module string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(module) + ` +(.*)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no routing row for %s:\n%s", module, out)
	}
	return strings.Join(strings.Fields(m[1]), " ")
}

// With --local-instances every instance's capabilities are known: the dry
// run says where each module can run and names what no instance offers.
func TestMainDryRunShowsRoutingOfLocalInstances(t *testing.T) {
	p := routingPipeline()
	p.UseDistributed(DistributedOptions{LocalCapabilities: map[int][]string{0: {"linux"}, 1: {"docker", "cgo", "linux"}, 2: {"windows"}}})
	code, out, errOut := runMain(t, p, nil, "--dry-run", "--local-instances", "3")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	want := map[string]string{
		"lint":           "nothing any instance",
		"release":        "the master instance 0",
		"image":          "docker instance 1",
		"race":           "cgo instance 1",
		"train":          "gpu none: cannot be routed",
		"xtest[linux]":   "linux instance 0, 1",
		"xtest[windows]": "windows instance 2",
		"xtest[macos]":   "macos none: cannot be routed",
		"bench[large]":   "nothing any instance",
	}
	for mod, w := range want {
		if got := row(t, out, mod); got != w {
			t.Errorf("%s: %q, want %q", mod, got, w)
		}
	}
	for _, w := range []string{
		"Plan for a distributed run over 3 instances", "Routing over 3 instances in this process",
		"instance 1: docker, cgo, linux", "instance 2: windows",
		"cannot be routed:\n", "train needs gpu, which no instance offers", "xtest[macos] needs macos, which no instance offers",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("--dry-run lacks %q:\n%s", w, out)
		}
	}
}

// With --total, only this instance's capabilities are known: modules it
// cannot run need the others, and needing more operating systems than
// there are other instances cannot be routed.
func TestMainDryRunShowsRoutingForTotal(t *testing.T) {
	code, out, errOut := runMain(t, routingPipeline(), map[string]string{"MODPIPE_CAPABILITIES": "cgo"}, "--dry-run", "--total", "2")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	os := localOS()
	if got := row(t, out, "race"); got != "cgo instance 0, or another instance offering cgo" {
		t.Errorf("race: %q", got)
	}
	if got := row(t, out, "release"); got != "the master instance 0" {
		t.Errorf("release: %q", got)
	}
	if got := row(t, out, "train"); got != "gpu another instance offering gpu" {
		t.Errorf("train: %q", got)
	}
	for _, w := range []string{
		"Routing over 2 instances (--total 2; this is instance 0)", "instance 0 (master, this one): cgo, " + os,
		"instance 1: not known here", "these need instance 1, whose capabilities are not known here:", "  train needs gpu",
		"need 2 operating systems the master does not offer", "but only 1 other instance can take them (--total 2), each with one OS: raise --total",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("--dry-run lacks %q:\n%s", w, out)
		}
	}
}

// Without distributed settings the dry run is the single instance's plan,
// with no routing section.
func TestMainDryRunAloneHasNoRouting(t *testing.T) {
	code, out, _ := runMain(t, routingPipeline(), nil, "--dry-run")
	if code != 0 || strings.Contains(out, "Routing") || !strings.Contains(out, "Plan for a single instance") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}
