package modpipe

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/cluster"
	"github.com/modpipe/modpipe/internal/render"
)

// Routing in --dry-run: for distributed settings (--total above 1 or
// --local-instances), which instances can run each module, and what cannot
// be routed with the instances and capabilities known here.

// routeInstance is an instance of the run as the dry run sees it: its
// capabilities are known for this instance and for every instance of
// --local-instances; the other instances declare theirs on their own
// command lines.
type routeInstance struct {
	index int
	caps  []string // nil when not known here
}

// routing is what the dry run knows of a distributed run's instances.
type routing struct {
	instances []routeInstance
	this      int // this instance's index; -1 with --local-instances
	local     bool
}

// dryRunRouting returns the instances of the distributed run p is set up
// for, or nil when it runs alone.
func (p *Pipeline) dryRunRouting(localInstances int) (*routing, error) {
	n, this := p.dist.TotalInstances, p.dist.InstanceIndex
	if localInstances > 1 {
		n, this = localInstances, -1
	}
	if n <= 1 {
		return nil, nil
	}
	rt := &routing{this: this, local: localInstances > 1}
	for i := range n {
		ri := routeInstance{index: i}
		if rt.local || i == this {
			o := p.dist
			o.InstanceIndex = i
			if caps, ok := p.dist.LocalCapabilities[i]; ok && rt.local {
				o.Capabilities = caps
			}
			caps, _, err := o.capabilities()
			if err != nil {
				return nil, fmt.Errorf("instance %d: %w", i, err)
			}
			ri.caps = caps
		}
		rt.instances = append(rt.instances, ri)
	}
	return rt, nil
}

// unknown counts the instances whose capabilities are not known here, and
// says whether the master is among them.
func (rt *routing) unknown() (n int, master bool) {
	for _, in := range rt.instances {
		if in.caps == nil {
			n++
			master = master || in.index == 0
		}
	}
	return n, master
}

// writeRouting prints, for each module that would run, what it needs and
// where it can run, then what cannot be routed.
func (pl *plan) writeRouting(w io.Writer, rt *routing) error {
	var b strings.Builder
	unknown, masterUnknown := rt.unknown()
	fmt.Fprintf(&b, "\nRouting over %d instances", len(rt.instances))
	if rt.local {
		b.WriteString(" in this process (--local-instances)")
	} else {
		fmt.Fprintf(&b, " (--total %d; this is instance %d)", len(rt.instances), rt.this)
	}
	b.WriteString(":\n")
	for _, in := range rt.instances {
		if in.caps != nil {
			fmt.Fprintf(&b, "  instance %d%s: %s\n", in.index, roleNote(in.index, rt.this), describeCaps(in.caps))
		}
	}
	if unknown > 0 {
		fmt.Fprintf(&b, "  %s: not known here; each declares its own with --capability or MODPIPE_CAPABILITIES (its OS is added)\n", rt.unknownNames())
	}
	b.WriteString("\n")

	skip := pl.staticSkips()
	rows := [][]string{}
	var unroutable, elsewhere []string
	workerOS := map[string][]string{} // OS a module needs that no known instance offers -> modules
	for i, n := range pl.nodes {
		if skip[i] != "" {
			continue
		}
		req := pl.requirements(i)
		var where []string
		for _, in := range rt.instances {
			if in.caps != nil && distributed.Satisfies(in.caps, req) {
				where = append(where, fmt.Sprint(in.index))
			}
		}
		pinned := slices.Contains(req, distributed.MasterCapability)
		canUnknown := unknown > 0 && (!pinned || masterUnknown)
		anywhere := len(req) == 0 || len(where) == len(rt.instances)
		var on string
		switch {
		case anywhere:
			on = "any instance"
		case len(where) > 0:
			on = "instance " + strings.Join(where, ", ")
		}
		if !anywhere && canUnknown {
			if on != "" {
				on += ", or "
			}
			if pinned {
				on += "the master"
			} else {
				on += "another instance offering " + describeReqs(req)
			}
			if len(where) == 0 {
				elsewhere = append(elsewhere, fmt.Sprintf("  %s needs %s", n.name, describeReqs(req)))
				if osName := neededOS(req); osName != "" {
					workerOS[osName] = append(workerOS[osName], n.name)
				}
			}
		}
		if on == "" {
			on = "none: cannot be routed"
			unroutable = append(unroutable, fmt.Sprintf("  %s needs %s, which no instance offers", n.name, describeReqs(req)))
		}
		rows = append(rows, []string{n.name, describeReqs(req), on})
	}
	if len(workerOS) > unknown {
		oses := make([]string, 0, len(workerOS))
		for o := range workerOS {
			oses = append(oses, o)
		}
		slices.Sort(oses)
		var mods []string
		for _, o := range oses {
			mods = append(mods, workerOS[o]...)
		}
		unroutable = append(unroutable, fmt.Sprintf("  %s need %d operating systems %s (%s), but only %d other instance%s can take them (--total %d), each with one OS: raise --total",
			strings.Join(mods, ", "), len(oses), knownNote(rt), strings.Join(oses, ", "), unknown, plural(unknown), len(rt.instances)))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if err := render.Table(w, []string{"MODULE", "NEEDS", "CAN RUN ON"}, rows); err != nil {
		return err
	}
	tail := "\nevery module can be routed\n"
	if len(elsewhere) > 0 {
		tail = fmt.Sprintf("\nthese need %s, whose capabilities are not known here:\n%s\n", rt.unknownNames(), strings.Join(elsewhere, "\n"))
	}
	if len(unroutable) > 0 {
		tail += "\ncannot be routed:\n" + strings.Join(unroutable, "\n") + "\n"
	}
	_, err := io.WriteString(w, tail)
	return err
}

// unknownNames names the instances whose capabilities are not known here.
func (rt *routing) unknownNames() string {
	var idx []string
	for _, in := range rt.instances {
		if in.caps == nil {
			idx = append(idx, fmt.Sprint(in.index))
		}
	}
	if len(idx) == 1 {
		return "instance " + idx[0]
	}
	return "instances " + strings.Join(idx, ", ")
}

func knownNote(rt *routing) string {
	if rt.this == 0 {
		return "the master does not offer"
	}
	return "this instance does not offer"
}

func roleNote(index, this int) string {
	switch {
	case index == 0 && index == this:
		return " (master, this one)"
	case index == 0:
		return " (master)"
	case index == this:
		return " (this one)"
	}
	return ""
}

// describeCaps lists an instance's capabilities for people.
func describeCaps(caps []string) string {
	var out []string
	for _, c := range caps {
		if c != distributed.MasterCapability {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "no capabilities"
	}
	return strings.Join(out, ", ")
}

// describeReqs lists a module's requirements for people.
func describeReqs(req []string) string { return cluster.DescribeRequirements(req, "the master") }

// neededOS returns the one OS a requirement set names (not a choice of
// several), or "".
func neededOS(req []string) string {
	for _, r := range req {
		if osName, ok := normalizeOS(r); ok {
			return osName
		}
	}
	return ""
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
