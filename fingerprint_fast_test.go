package modpipe

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/modpipe/modpipe/distributed"
)

// referenceRequirements and referenceFingerprint are requirements and
// fingerprint as they were written before their allocation-free rewrite:
// the rewrite must give instances the same fingerprints (an instance that
// computed another would be refused by the master).
func referenceRequirements(pl *plan, i int) []string {
	n := &pl.nodes[i]
	req := slices.Clone(n.def.caps)
	if osName, ok := n.targetOS(); ok {
		req = append(req, osName)
	} else if len(n.def.oses) > 0 {
		req = append(req, strings.Join(n.def.oses, "|"))
	}
	if n.def.pinToMaster {
		req = append(req, distributed.MasterCapability)
	}
	slices.Sort(req)
	return slices.Compact(req)
}

func referenceFingerprint(pl *plan) string {
	h := sha256.New()
	order := make([]int, len(pl.nodes))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(pl.nodes[a].name, pl.nodes[b].name) })
	for _, i := range order {
		n := &pl.nodes[i]
		deps := make([]string, 0, len(pl.graph.Deps[i]))
		for _, d := range pl.graph.Deps[i] {
			deps = append(deps, fmt.Sprintf("%s/%t", pl.nodes[d.Node].name, d.Optional))
		}
		slices.Sort(deps)
		fmt.Fprintf(h, "%s|%s|%s|%s|%t|%t|%t\n", n.name, strings.Join(deps, ","), strings.Join(referenceRequirements(pl, i), ","),
			n.def.resultType, n.def.notIdempotent, n.def.alwaysRun, n.def.ignoreFailure)
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

type fingerprintResult struct{ N int }

// Every kind of requirement and option the fingerprint covers, in modules
// whose capabilities are given sorted, unsorted and repeated.
func fingerprintPipeline() *Pipeline {
	noop := func(*Context) error { return nil }
	a := Task("a", noop, RequiresCapability("docker", "cgo", "docker"))
	b := New("b", func(*Context) (fingerprintResult, error) { return fingerprintResult{}, nil },
		DependsOn(a), RequiresCapability("arm64", "gpu"), NotIdempotent())
	c := Task("c", noop, DependsOn(a, b), OnOS("windows", "macos"), IgnoreFailure())
	d := Task("d", noop, PinToMaster(), AlwaysRun(), RequiresCapability("zeta"))
	e := Task("e", noop, MatrixTarget("linux", "darwin", "go1.26"), RequiresCapability("cgo"), DependsOn(c))
	f := New("f", func(*Context) (map[string][]int, error) { return nil, nil }, DependsOnOptional(d))
	g := Task("g", noop, RequiresCapability("a", "b", "c"))
	return NewPipeline().Add(a, b, c, d, e, f, g)
}

func TestFingerprintAndRequirementsMatchTheReference(t *testing.T) {
	pl, err := fingerprintPipeline().buildPlan(planEnv{os: "linux", distributed: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range pl.nodes {
		got, want := pl.requirements(i), referenceRequirements(pl, i)
		if !slices.Equal(got, want) {
			t.Errorf("%s requires %v, want %v", n.name, got, want)
		}
		// A caller appending to the returned slice must not change the
		// module's own capabilities.
		before := slices.Clone(n.def.caps)
		_ = append(got, "appended")
		if !slices.Equal(n.def.caps, before) {
			t.Errorf("%s: appending to its requirements changed its capabilities to %v", n.name, n.def.caps)
		}
	}
	if got, want := pl.fingerprint(), referenceFingerprint(pl); got != want {
		t.Errorf("fingerprint %s, want %s (as before the rewrite)", got, want)
	}
}

func TestCheckJSONReportsEveryModuleOfABadType(t *testing.T) {
	type bad struct{ F func() }
	mk := func(name string) AnyModule {
		return New(name, func(*Context) (bad, error) { return bad{}, nil })
	}
	pl, err := NewPipeline().Add(mk("x"), mk("y"), Task("z", func(*Context) error { return nil })).buildPlan(planEnv{os: "linux", distributed: true})
	if err != nil {
		t.Fatal(err)
	}
	err = pl.checkJSON()
	for _, name := range []string{`"x"`, `"y"`} {
		if err == nil || !strings.Contains(err.Error(), "module "+name) || !strings.Contains(err.Error(), "field F: func values are not JSON") {
			t.Errorf("checkJSON: %v; want module %s refused for its func field", err, name)
		}
	}
	if err != nil && strings.Contains(err.Error(), `"z"`) {
		t.Errorf("checkJSON refused z, whose result is None: %v", err)
	}
}
