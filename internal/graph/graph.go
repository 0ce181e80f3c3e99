// Package graph validates a module graph and derives what the scheduler needs
// from it: a topological order, waves, dependents and critical-path lengths.
//
// It knows nothing about modules beyond names and edges, so that validation
// errors are produced in one place before anything runs.
package graph

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Spec describes one node as the user declared it.
type Spec struct {
	Name string
	Deps []DepSpec
}

// DepSpec is one declared dependency by name.
type DepSpec struct {
	Name string
	// Optional dependencies order execution but never block the dependent.
	Optional bool
	// Soft dependencies (edges to matrix variants) are not skipped with their
	// dependency: a variant that does not run here must not skip its dependents.
	Soft bool
}

// Dep is a resolved edge to the node at index Node.
type Dep struct {
	Node     int
	Optional bool
	Soft     bool
}

// Graph is a validated DAG. Node indices follow the order of the specs.
type Graph struct {
	Names      []string
	Index      map[string]int
	Deps       [][]Dep
	Dependents [][]int
	// Order lists node indices so that every node comes after its dependencies.
	Order []int
	// Wave is the length of the longest dependency chain below each node:
	// nodes of wave 0 have no dependencies.
	Wave []int
}

// Build resolves names, rejects duplicates, unknown dependencies and cycles,
// and returns the graph. All problems found are reported together.
func Build(specs []Spec) (*Graph, error) {
	n := len(specs)
	g := &Graph{
		Names:      make([]string, n),
		Index:      make(map[string]int, n),
		Deps:       make([][]Dep, n),
		Dependents: make([][]int, n),
	}
	var errs []error
	for i, s := range specs {
		g.Names[i] = s.Name
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("module #%d has an empty name; give every module a unique name", i+1))
			continue
		}
		if _, dup := g.Index[s.Name]; dup {
			errs = append(errs, fmt.Errorf("module %q is added twice; module names must be unique", s.Name))
			continue
		}
		g.Index[s.Name] = i
	}
	edges := 0
	for _, s := range specs {
		edges += len(s.Deps)
	}
	depStore := make([]Dep, 0, edges)
	for i, s := range specs {
		start := len(depStore)
		for _, d := range s.Deps {
			j, ok := g.Index[d.Name]
			if !ok {
				errs = append(errs, fmt.Errorf("module %q depends on %q, which is not added to the pipeline; add it with p.Add", s.Name, d.Name))
				continue
			}
			if j == i {
				errs = append(errs, fmt.Errorf("module %q depends on itself", s.Name))
				continue
			}
			depStore = append(depStore, Dep{Node: j, Optional: d.Optional, Soft: d.Soft})
		}
		g.Deps[i] = depStore[start:len(depStore):len(depStore)]
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	counts := make([]int, n)
	for i := range g.Deps {
		for _, d := range g.Deps[i] {
			counts[d.Node]++
		}
	}
	depStoreRev := make([]int, 0, len(depStore))
	for i := range counts {
		start := len(depStoreRev)
		depStoreRev = depStoreRev[:start+counts[i]]
		g.Dependents[i] = depStoreRev[start : start : start+counts[i]]
	}
	for i := range g.Deps {
		for _, d := range g.Deps[i] {
			g.Dependents[d.Node] = append(g.Dependents[d.Node], i)
		}
	}
	if err := g.sort(); err != nil {
		return nil, err
	}
	return g, nil
}

// sort computes Order and Wave with Kahn's algorithm and reports a cycle if
// one exists.
func (g *Graph) sort() error {
	n := len(g.Names)
	indeg := make([]int, n)
	for i := range g.Deps {
		indeg[i] = len(g.Deps[i])
	}
	g.Order = make([]int, 0, n)
	g.Wave = make([]int, n)
	for i := range indeg {
		if indeg[i] == 0 {
			g.Order = append(g.Order, i)
		}
	}
	for k := 0; k < len(g.Order); k++ {
		i := g.Order[k]
		for _, j := range g.Dependents[i] {
			if w := g.Wave[i] + 1; w > g.Wave[j] {
				g.Wave[j] = w
			}
			indeg[j]--
			if indeg[j] == 0 {
				g.Order = append(g.Order, j)
			}
		}
	}
	if len(g.Order) == n {
		return nil
	}
	return fmt.Errorf("dependency cycle: %s (a -> b: a depends on b); remove one of these dependencies", strings.Join(g.findCycle(indeg), " -> "))
}

// findCycle returns one cycle among the nodes Kahn's algorithm could not
// order (those with indeg > 0), as names with the first repeated at the end.
func (g *Graph) findCycle(indeg []int) []string {
	const (
		unvisited = iota
		onStack
		done
	)
	state := make([]int, len(g.Names))
	var stack []int
	var cycle []int
	var visit func(i int) bool
	visit = func(i int) bool {
		state[i] = onStack
		stack = append(stack, i)
		for _, d := range g.Deps[i] {
			j := d.Node
			if indeg[j] == 0 {
				continue
			}
			switch state[j] {
			case onStack:
				k := slices.Index(stack, j)
				cycle = append(slices.Clone(stack[k:]), j)
				return true
			case unvisited:
				if visit(j) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
		return false
	}
	for i := range g.Names {
		if indeg[i] > 0 && state[i] == unvisited && visit(i) {
			break
		}
	}
	names := make([]string, len(cycle))
	for k, i := range cycle {
		names[k] = g.Names[i]
	}
	return names
}

// Closure marks every node in roots and everything they depend on,
// transitively (optional dependencies included).
func (g *Graph) Closure(roots []int) []bool {
	in := make([]bool, len(g.Names))
	stack := slices.Clone(roots)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if in[i] {
			continue
		}
		in[i] = true
		for _, d := range g.Deps[i] {
			stack = append(stack, d.Node)
		}
	}
	return in
}

// CriticalPath returns, for every node, the largest sum of weights on a path
// from that node to the end of the graph (the node's own weight included).
// Scheduling the highest value first shortens the makespan.
func (g *Graph) CriticalPath(weight func(i int) int64) []int64 {
	cp := make([]int64, len(g.Names))
	for k := len(g.Order) - 1; k >= 0; k-- {
		i := g.Order[k]
		var best int64
		for _, j := range g.Dependents[i] {
			best = max(best, cp[j])
		}
		cp[i] = best + weight(i)
	}
	return cp
}
