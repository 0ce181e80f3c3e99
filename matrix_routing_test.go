package modpipe

import (
	"slices"
	"testing"
)

// In distributed mode a parameter target is no capability to route by:
// before, "matrix[go1.26]" required an instance advertising "go1.26", which
// none does, and waited for one.
func TestMatrixRequirementsRouteOnlyOSTargets(t *testing.T) {
	noop := func(*Context) error { return nil }
	m := Task("m", noop, MatrixTarget("darwin", "go1.26"), RequiresCapability("cgo"))
	o := Task("o", noop, MatrixTarget("p"), OnOS("windows"))
	p := NewPipeline().Add(m, o)
	pl, err := p.buildPlan(planEnv{os: "linux", distributed: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"m[macos]":  {"cgo", "macos"},
		"m[go1.26]": {"cgo"},
		"o[p]":      {"windows"},
	}
	for i, n := range pl.nodes {
		if got := pl.requirements(i); !slices.Equal(got, want[n.name]) {
			t.Errorf("%s requires %v, want %v", n.name, got, want[n.name])
		}
	}
}

// The workflow generator asks for runners only for what routes: parameter
// values ("go1.26", "p") must not become worker jobs.
func TestRoutingNeedsIgnoreParameterTargets(t *testing.T) {
	noop := func(*Context) error { return nil }
	m := Task("m", noop, MatrixTarget("darwin", "go1.26"), RequiresCapability("cgo"))
	o := Task("o", noop, MatrixTarget("p"), OnOS("windows"))
	pl, err := NewPipeline().Add(m, o).buildPlan(planEnv{os: "linux", distributed: true})
	if err != nil {
		t.Fatal(err)
	}
	oses, caps := pl.routingNeeds()
	if !slices.Equal(oses, []string{"macos", "windows"}) || !slices.Equal(caps, []string{"cgo"}) {
		t.Errorf("routing needs: OSes %v, capabilities %v; want [macos windows] and [cgo]", oses, caps)
	}
}
