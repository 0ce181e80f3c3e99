package graph

import (
	"slices"
	"strings"
	"testing"
)

func spec(name string, deps ...string) Spec {
	s := Spec{Name: name}
	for _, d := range deps {
		s.Deps = append(s.Deps, DepSpec{Name: d})
	}
	return s
}

func TestBuildOrdersAndWaves(t *testing.T) {
	g, err := Build([]Spec{spec("d", "b", "c"), spec("b", "a"), spec("c", "a"), spec("a")})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for k, i := range g.Order {
		pos[g.Names[i]] = k
	}
	for _, e := range [][2]string{{"a", "b"}, {"a", "c"}, {"b", "d"}, {"c", "d"}} {
		if pos[e[0]] > pos[e[1]] {
			t.Errorf("%s ordered after %s: %v", e[0], e[1], g.Order)
		}
	}
	wantWave := map[string]int{"a": 0, "b": 1, "c": 1, "d": 2}
	for name, w := range wantWave {
		if got := g.Wave[g.Index[name]]; got != w {
			t.Errorf("wave of %s = %d, want %d", name, got, w)
		}
	}
	if got := len(g.Dependents[g.Index["a"]]); got != 2 {
		t.Errorf("a has %d dependents, want 2", got)
	}
}

func TestBuildReportsEveryProblem(t *testing.T) {
	_, err := Build([]Spec{spec("a"), spec("a"), spec("b", "missing"), spec("c", "c"), spec("")})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"a" is added twice`, `"b" depends on "missing", which is not added`, `"c" depends on itself`, "empty name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestBuildPrintsCycle(t *testing.T) {
	_, err := Build([]Spec{spec("root"), spec("a", "root", "c"), spec("b", "a"), spec("c", "b"), spec("leaf", "c")})
	if err == nil {
		t.Fatal("no error for a cycle")
	}
	msg := err.Error()
	if !strings.Contains(msg, "dependency cycle") {
		t.Fatalf("error %q does not say cycle", msg)
	}
	// The cycle must be printed as a closed path through exactly a, b and c.
	path := msg[strings.Index(msg, ": ")+2 : strings.Index(msg, " (")]
	names := strings.Split(path, " -> ")
	if len(names) != 4 || names[0] != names[3] {
		t.Fatalf("cycle path %q is not closed over three modules", path)
	}
	got := slices.Sorted(slices.Values(names[:3]))
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("cycle path %q, want a, b and c", path)
	}
	// Each step must be a real edge: x -> y means x depends on y.
	edges := map[string]string{"a": "c", "b": "a", "c": "b"}
	for k := 0; k < 3; k++ {
		if edges[names[k]] != names[k+1] {
			t.Errorf("%s -> %s is not a dependency", names[k], names[k+1])
		}
	}
}

func TestClosureFollowsDependencies(t *testing.T) {
	g, err := Build([]Spec{spec("a"), spec("b", "a"), spec("c", "b"), spec("x")})
	if err != nil {
		t.Fatal(err)
	}
	in := g.Closure([]int{g.Index["c"]})
	for name, want := range map[string]bool{"a": true, "b": true, "c": true, "x": false} {
		if in[g.Index[name]] != want {
			t.Errorf("closure[%s] = %v, want %v", name, in[g.Index[name]], want)
		}
	}
}

func TestCriticalPath(t *testing.T) {
	// a -> b -> c and a -> d: a's path is 3 long, d's 1.
	g, err := Build([]Spec{spec("a"), spec("b", "a"), spec("c", "b"), spec("d", "a")})
	if err != nil {
		t.Fatal(err)
	}
	cp := g.CriticalPath(func(int) int64 { return 1 })
	want := map[string]int64{"a": 3, "b": 2, "c": 1, "d": 1}
	for name, w := range want {
		if got := cp[g.Index[name]]; got != w {
			t.Errorf("critical path of %s = %d, want %d", name, got, w)
		}
	}
}
