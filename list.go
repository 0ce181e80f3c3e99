package modpipe

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/render"
)

// writeList prints every module with its category, dependencies and options.
func (pl *plan) writeList(w io.Writer) error {
	rows := make([][]string, 0, len(pl.nodes))
	for i, n := range pl.nodes {
		var deps []string
		for _, d := range pl.graph.Deps[i] {
			name := pl.nodes[d.Node].name
			if d.Optional {
				name += " (optional)"
			}
			deps = append(deps, name)
		}
		rows = append(rows, []string{n.name, orDash(strings.Join(n.def.categories, ", ")), orDash(strings.Join(deps, ", ")), orDash(strings.Join(n.def.describe(), ", "))})
	}
	if err := render.Table(w, []string{"MODULE", "CATEGORY", "DEPENDS ON", "OPTIONS"}, rows); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d modules\n", len(pl.nodes))
	return err
}

// describe lists the module's options for --list and --dry-run.
func (d *moduleDef) describe() []string {
	var o []string
	if d.timeout > 0 {
		o = append(o, "timeout "+d.timeout.String())
	}
	if d.retry.Count > 0 {
		o = append(o, fmt.Sprintf("retry %d", d.retry.Count))
	}
	for _, c := range d.conds {
		if c.skipIf {
			o = append(o, fmt.Sprintf("skip if %q", c.reason))
		} else {
			o = append(o, fmt.Sprintf("run if %q", c.reason))
		}
	}
	if len(d.oses) > 0 {
		o = append(o, "on "+strings.Join(d.oses, "/"))
	}
	if d.ignoreFailure {
		o = append(o, "ignore failure")
	}
	if d.alwaysRun {
		o = append(o, "always run")
	}
	if d.exclusive {
		o = append(o, "runs alone")
	}
	if len(d.mutex) > 0 {
		o = append(o, "not in parallel with "+strings.Join(d.mutex, "/"))
	}
	if d.pinToMaster {
		o = append(o, "master only")
	}
	if len(d.caps) > 0 {
		o = append(o, "requires "+strings.Join(d.caps, "+"))
	}
	if d.notIdempotent {
		o = append(o, "not idempotent")
	}
	return o
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeDryRun prints the plan under title: waves of modules that would run together,
// what would be skipped and why, and which conditions are decided at run time.
func (pl *plan) writeDryRun(w io.Writer, title string) error {
	skip := pl.staticSkips()
	// Waves count only modules that would run: a module's wave is one more
	// than the latest wave among its running dependencies.
	wave := make([]int, len(pl.nodes))
	for _, i := range pl.graph.Order {
		for _, d := range pl.graph.Deps[i] {
			if skip[d.Node] == "" {
				wave[i] = max(wave[i], wave[d.Node]+1)
			}
		}
	}
	waves := map[int][]string{}
	maxWave := -1
	var skipped, conditional []string
	for i, n := range pl.nodes {
		if skip[i] != "" {
			skipped = append(skipped, fmt.Sprintf("  %s: %s", n.name, skip[i]))
			continue
		}
		wv := wave[i]
		waves[wv] = append(waves[wv], n.name)
		maxWave = max(maxWave, wv)
		for _, c := range n.def.conds {
			verb := "run only if"
			if c.skipIf {
				verb = "skip if"
			}
			conditional = append(conditional, fmt.Sprintf("  %s: %s %q (decided when it is ready)", n.name, verb, c.reason))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (dry run: nothing is executed)\n\n", title)
	for wv := 0; wv <= maxWave; wv++ {
		if len(waves[wv]) == 0 {
			continue
		}
		fmt.Fprintf(&b, "wave %d: %s\n", wv+1, strings.Join(waves[wv], ", "))
	}
	if len(skipped) > 0 {
		b.WriteString("\nwould be skipped:\n" + strings.Join(skipped, "\n") + "\n")
	}
	if len(conditional) > 0 {
		b.WriteString("\nconditional:\n" + strings.Join(conditional, "\n") + "\n")
	}
	run := 0
	for _, names := range waves {
		run += len(names)
	}
	fmt.Fprintf(&b, "\n%d of %d modules would run\n", run, len(pl.nodes))
	_, err := io.WriteString(w, b.String())
	return err
}

// staticSkips propagates skip reasons known before the run along required
// dependencies, the way the scheduler will.
func (pl *plan) staticSkips() []string {
	skip := make([]string, len(pl.nodes))
	for _, i := range pl.graph.Order {
		if pl.nodes[i].skip != "" {
			skip[i] = pl.nodes[i].skip
			continue
		}
		if pl.nodes[i].def.alwaysRun {
			continue
		}
		for _, d := range pl.graph.Deps[i] {
			if !d.Optional && !d.Soft && skip[d.Node] != "" {
				skip[i] = engine.DependencySkipped(pl.nodes[d.Node].name)
				break
			}
		}
	}
	return slices.Clip(skip)
}
