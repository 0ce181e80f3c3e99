package engine

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/modpipe/modpipe/internal/graph"
)

func buildGraph(t *testing.T, g *tg) *graph.Graph {
	t.Helper()
	gr, err := graph.Build(g.specs)
	if err != nil {
		t.Fatal(err)
	}
	return gr
}

// With the durations of a previous run, a long module outranks a chain of
// more, but shorter, modules; without them the node count decides, as
// before.
func TestPrioritiesWeighDurations(t *testing.T) {
	g := newTG(t, "fmt:", "vet: fmt", "test: vet", "race:")
	gr := buildGraph(t, g)
	idx := func(name string) int { return gr.Index[name] }

	counts := Priorities(gr, nil)
	if counts[idx("fmt")] <= counts[idx("race")] {
		t.Errorf("without durations: fmt %d, race %d; the longer chain must come first", counts[idx("fmt")], counts[idx("race")])
	}
	if !slices.Equal(counts, Rank(gr.CriticalPath(func(int) int64 { return 1 }))) {
		t.Errorf("without durations the priorities %v are not the node-count critical path", counts)
	}

	timed := Priorities(gr, map[string]time.Duration{"fmt": time.Second, "vet": 2 * time.Second, "test": 5 * time.Second, "race": 30 * time.Second})
	if timed[idx("race")] <= timed[idx("fmt")] {
		t.Errorf("with durations: race %d, fmt %d; the 30 s race run must come before an 8 s chain", timed[idx("race")], timed[idx("fmt")])
	}
	if !(timed[idx("fmt")] > timed[idx("vet")] && timed[idx("vet")] > timed[idx("test")]) {
		t.Errorf("a chain's head must outrank its tail: %v", timed)
	}
}

// A module the previous run did not know weighs the median of the known
// ones: here 10 s, which puts the new module's chain ahead of a 12 s one
// only when the chain's known part makes up the difference.
func TestPrioritiesUnknownDurationIsTheMedian(t *testing.T) {
	g := newTG(t, "a:", "b:", "c:", "new: c", "solo:")
	gr := buildGraph(t, g)
	d := map[string]time.Duration{"a": 1 * time.Second, "b": 10 * time.Second, "c": 3 * time.Second, "solo": 12 * time.Second}
	p := Priorities(gr, d)
	// c's path is 3 s + the median (3 s of 1, 3, 10, 12 sorted is index 2: 10 s) = 13 s > solo's 12 s.
	if p[gr.Index["c"]] <= p[gr.Index["solo"]] {
		t.Errorf("c (3 s + new at the median 10 s) %d should outrank solo (12 s) %d", p[gr.Index["c"]], p[gr.Index["solo"]])
	}
	if p[gr.Index["new"]] >= p[gr.Index["solo"]] || p[gr.Index["new"]] != p[gr.Index["b"]] {
		t.Errorf("new weighs the median (10 s, like b): new %d, b %d, solo %d", p[gr.Index["new"]], p[gr.Index["b"]], p[gr.Index["solo"]])
	}
}

func TestRankKeepsOrderAndTies(t *testing.T) {
	got := Rank([]int64{50_000_000, 7, 7, 1 << 50, 3})
	if want := []int64{3, 2, 2, 4, 1}; !slices.Equal(got, want) {
		t.Errorf("Rank = %v, want %v", got, want)
	}
}

// The scheduler starts the module with the longest weighted path first
// when only one can run.
func TestSchedulerFollowsDurationPriorities(t *testing.T) {
	g := newTG(t, "fmt:", "vet: fmt", "race:")
	var order []string
	for i := range g.nodes {
		name := g.nodes[i].Name
		g.nodes[i].Run = func(context.Context, int, int) (any, error) { order = append(order, name); return nil, nil }
	}
	prio := Priorities(buildGraph(t, g), map[string]time.Duration{"fmt": time.Second, "vet": time.Second, "race": time.Minute})
	res := g.run(context.Background(), func(s *Scheduler) { s.MaxParallel = 1; s.Priority = prio })
	expectStatus(t, res, map[string]Status{"fmt": Succeeded, "vet": Succeeded, "race": Succeeded})
	if !slices.Equal(order, []string{"race", "fmt", "vet"}) {
		t.Errorf("order %v, want race (1 min) before the 2 s chain", order)
	}
}
