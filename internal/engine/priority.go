package engine

import (
	"slices"
	"time"

	"github.com/modpipe/modpipe/internal/graph"
)

// Priorities returns the priority of every node of g, for
// Scheduler.Priority and the distributed queue: the longest path from the
// node to the end of the graph, weighted by how long each node took in a
// previous run (durations, keyed by node name; nil or empty when nothing
// is known). Scheduling the highest value first shortens the makespan.
//
// A node without a known duration weighs the median of the known ones, so
// that a new module neither jumps the queue nor is starved; with no known
// duration at all every node weighs the same and the priority is the node
// count along the longest path.
//
// The values are dense ranks (1 is the lowest): ties stay ties, so they
// keep declaration order, and the numbers stay small whatever the
// durations, which a queue keyed by floating-point scores (Redis sorted
// sets) needs to order exactly.
func Priorities(g *graph.Graph, durations map[string]time.Duration) []int64 {
	n := len(g.Names)
	weight := make([]int64, n)
	var known []int64
	for i, name := range g.Names {
		if d, ok := durations[name]; ok && d >= 0 {
			// A node that took no measurable time still counts as a node.
			weight[i] = max(int64(d/time.Microsecond), 1)
			known = append(known, weight[i])
		}
	}
	fallback := int64(1)
	if len(known) > 0 {
		slices.Sort(known)
		fallback = known[len(known)/2]
	}
	for i, name := range g.Names {
		if _, ok := durations[name]; !ok || durations[name] < 0 {
			weight[i] = fallback
		}
	}
	return Rank(g.CriticalPath(func(i int) int64 { return weight[i] }))
}

// Rank replaces each value by its dense rank among values, from 1 for the
// smallest: equal values get equal ranks and the order is kept.
func Rank(values []int64) []int64 {
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	out := make([]int64, len(values))
	for i, v := range values {
		k, _ := slices.BinarySearch(sorted, v)
		out[i] = int64(k) + 1
	}
	return out
}
