package modpipe

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/modpipe/modpipe/internal/graph"
)

// plan is a validated pipeline, expanded into nodes (a matrix module is one
// node per target), with the reason each node is skipped before anything
// runs, if it is.
type plan struct {
	nodes []planNode
	graph *graph.Graph
}

type planNode struct {
	def    *moduleDef
	name   string
	target string
	// deps are the node's resolved dependencies, with the module each came from.
	deps []planDep
	// skip is the reason the node is skipped without running ("" to run it).
	skip string
}

type planDep struct {
	def  *moduleDef
	node int
}

// planEnv is what static decisions depend on: where this instance runs and
// whether other instances can take the rest.
type planEnv struct {
	os          string
	distributed bool
}

// buildPlan validates the pipeline and expands it into nodes.
func (p *Pipeline) buildPlan(env planEnv) (*plan, error) {
	var errs []error
	// Variants of a matrix module are contiguous: byDef holds the first.
	byDef := make(map[*moduleDef]int, len(p.modules))
	pl := &plan{nodes: make([]planNode, 0, len(p.modules))} // more with matrix targets
	for k, v := range p.secrets {
		if err := checkSecret(v); err != nil {
			errs = append(errs, fmt.Errorf("p.Secrets: value #%d: %w", k+1, err))
		}
	}
	for k, d := range p.modules {
		if d == nil {
			errs = append(errs, fmt.Errorf("module #%d passed to Add is nil", k+1))
			continue
		}
		if _, dup := byDef[d]; dup {
			errs = append(errs, fmt.Errorf("module %q is added twice", d.name))
			continue
		}
		if err := d.validate(); err != nil {
			errs = append(errs, err)
		}
		byDef[d] = len(pl.nodes)
		if len(d.matrix) == 0 {
			pl.nodes = append(pl.nodes, planNode{def: d, name: d.name})
			continue
		}
		for _, t := range d.matrix {
			pl.nodes = append(pl.nodes, planNode{def: d, name: d.name + "[" + t + "]", target: t})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	specs := make([]graph.Spec, len(pl.nodes))
	// One backing array each for all edges: a large graph allocates a handful
	// of slices, not several per node.
	edges := 0
	for _, n := range pl.nodes {
		for _, ref := range n.def.deps {
			edges += max(1, len(ref.def.matrix))
		}
	}
	specStore := make([]graph.DepSpec, 0, edges)
	depStore := make([]planDep, 0, edges)
	for i := range pl.nodes {
		n := &pl.nodes[i]
		specs[i].Name = n.name
		s0, d0 := len(specStore), len(depStore)
		for _, ref := range n.def.deps {
			first, ok := byDef[ref.def]
			if !ok {
				if n.target == "" || n.target == n.def.matrix[0] { // once per module, not per variant
					errs = append(errs, fmt.Errorf("module %q depends on %q, which is not added to the pipeline; add it with p.Add", n.def.name, ref.def.name))
				}
				continue
			}
			// A matrix variant depending on a module with the same target
			// depends on that variant only.
			if n.target != "" && slices.Contains(ref.def.matrix, n.target) {
				j := first + slices.Index(ref.def.matrix, n.target)
				specStore = append(specStore, graph.DepSpec{Name: pl.nodes[j].name, Optional: ref.optional})
				depStore = append(depStore, planDep{def: ref.def, node: j})
				continue
			}
			for j := first; j < first+max(1, len(ref.def.matrix)); j++ {
				specStore = append(specStore, graph.DepSpec{Name: pl.nodes[j].name, Optional: ref.optional, Soft: len(ref.def.matrix) > 0})
				depStore = append(depStore, planDep{def: ref.def, node: j})
			}
		}
		specs[i].Deps = specStore[s0:len(specStore):len(specStore)]
		n.deps = depStore[d0:len(depStore):len(depStore)]
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	g, err := graph.Build(specs)
	if err != nil {
		return nil, err
	}
	pl.graph = g
	if err := pl.applyFilters(p); err != nil {
		return nil, err
	}
	pl.applyPlatform(env)
	return pl, nil
}

// applyFilters sets skip reasons from Only, Skip, Categories and
// IgnoreCategories. A name is a module name, a variant name ("name[target]")
// or, failing both, a path.Match glob over module and variant names
// ("xbuild-*"). Unknown names, globs matching nothing and unknown categories
// are errors.
func (pl *plan) applyFilters(p *Pipeline) error {
	var errs []error
	lookup := func(flag, name string) []int {
		if i, ok := pl.graph.Index[name]; ok {
			return []int{i}
		}
		var found []int
		for i, n := range pl.nodes {
			if n.def.name == name {
				found = append(found, i)
			}
		}
		if len(found) > 0 {
			return found
		}
		if !isGlob(name) {
			errs = append(errs, fmt.Errorf("%s: no module named %q; modules are: %s", flag, name, strings.Join(pl.moduleNames(), ", ")))
			return nil
		}
		if _, err := path.Match(name, ""); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a valid pattern (path.Match syntax: *, ?, [a-z], \\ to escape): %w", flag, name, err))
			return nil
		}
		for i, n := range pl.nodes {
			byModule, _ := path.Match(name, n.def.name)
			byNode, _ := path.Match(name, n.name)
			if byModule || byNode {
				found = append(found, i)
			}
		}
		if len(found) == 0 {
			errs = append(errs, fmt.Errorf("%s: pattern %q matches no module; modules are: %s", flag, name, strings.Join(pl.moduleNames(), ", ")))
		}
		return found
	}
	categories := map[string]bool{}
	for _, n := range pl.nodes {
		for _, c := range n.def.categories {
			categories[c] = true
		}
	}
	inCategories := func(flag string, cats []string) map[string]bool {
		set := map[string]bool{}
		for _, c := range cats {
			if !categories[c] {
				known := make([]string, 0, len(categories))
				for k := range categories {
					known = append(known, k)
				}
				slices.Sort(known)
				errs = append(errs, fmt.Errorf("%s: no module has category %q; categories are: %s", flag, c, strings.Join(known, ", ")))
			}
			set[c] = true
		}
		return set
	}
	// firstIn returns the first of the node's categories in set, or "".
	firstIn := func(n *planNode, set map[string]bool) string {
		for _, c := range n.def.categories {
			if set[c] {
				return c
			}
		}
		return ""
	}

	var roots []int
	for _, name := range p.Only {
		roots = append(roots, lookup("--only", name)...)
	}
	if len(p.Categories) > 0 {
		set := inCategories("--category", p.Categories)
		for i := range pl.nodes {
			if firstIn(&pl.nodes[i], set) != "" {
				roots = append(roots, i)
			}
		}
	}
	skipped := map[int]string{}
	for _, name := range p.Skip {
		for _, i := range lookup("--skip", name) {
			skipped[i] = "skipped by --skip"
		}
	}
	ignored := inCategories("--ignore-category", p.IgnoreCategories)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	var selected []bool
	if len(p.Only) > 0 || len(p.Categories) > 0 {
		selected = pl.graph.Closure(roots)
	}
	for i := range pl.nodes {
		n := &pl.nodes[i]
		switch {
		case selected != nil && !selected[i]:
			n.skip = "not selected (--only/--category)"
		case skipped[i] != "":
			n.skip = skipped[i]
		default:
			if c := firstIn(n, ignored); c != "" {
				n.skip = fmt.Sprintf("category %s ignored (--ignore-category)", c)
			}
		}
	}
	return nil
}

// isGlob reports whether name uses path.Match's special characters. It is
// asked only for names that are neither a module nor a variant, so
// "name[target]" keeps meaning that variant.
func isGlob(name string) bool { return strings.ContainsAny(name, `*?[\`) }

// applyPlatform skips what cannot run on this machine when there are no
// other instances to take it: OnOS modules for another OS and matrix
// variants whose target is another OS. Variants whose target is not an OS
// are parameters and run here.
func (pl *plan) applyPlatform(env planEnv) {
	if env.distributed {
		return
	}
	for i := range pl.nodes {
		n := &pl.nodes[i]
		if n.skip != "" {
			continue
		}
		if len(n.def.oses) > 0 && !slices.Contains(n.def.oses, env.os) {
			n.skip = fmt.Sprintf("runs on %s only; this is %s", strings.Join(n.def.oses, "/"), env.os)
			continue
		}
		if osName, ok := n.targetOS(); ok && osName != env.os {
			n.skip = fmt.Sprintf("matrix target %s needs a %s instance; this single instance is %s", n.target, n.target, env.os)
		}
	}
}

// targetOS returns the OS a matrix variant is routed to, and false when the
// node is not a variant or its target is a parameter rather than an OS.
func (n *planNode) targetOS() (string, bool) {
	if n.target == "" {
		return "", false
	}
	return normalizeOS(n.target)
}

func (pl *plan) moduleNames() []string {
	var names []string
	for i, n := range pl.nodes {
		if i == 0 || pl.nodes[i-1].def != n.def {
			names = append(names, n.def.name)
		}
	}
	return names
}
