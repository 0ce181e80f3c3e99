package modpipe

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"
)

// The makespan of the router's pipeline shape (issue 13): a real HTTP
// router's CI as a new user wrote it — format, vet, tests split into
// modules, a long race run only the cgo worker can take, cross-builds for
// five OS/arch pairs, release notes on the master — on a master and two
// workers (one with cgo), each running one module at a time, in one
// process over the in-memory coordinator. Module bodies wait out their
// durations (in units of schedUnit).
//
//	go test -run X -bench RouterShapeMakespan -benchtime 3x .
//
// Each variant reports the makespan (first module start to last module
// end) as a ratio to the ideal computed from the same run's measured
// module durations: the larger of the longest dependency path and the
// total work spread over the three instances, a lower bound of any
// schedule (x-ideal; 1.00 is perfect):
//
//   - before: priority by module count, no precedence for scarce work
//     (modpipe before issue 13): the cgo worker takes general tests first;
//   - durations: priority by the previous run's durations (UseDurations);
//   - precedence: module counts, scarce work first on the instances that
//     have it;
//   - after: both, as modpipe schedules now.
func BenchmarkRouterShapeMakespan(b *testing.B) {
	mods, durations, deps := routerShape(schedUnit)
	for _, v := range []struct {
		name         string
		durations    bool
		noPrecedence bool
	}{
		{"before", false, true},
		{"durations", true, true},
		{"precedence", false, false},
		{"after", true, false},
	} {
		b.Run(v.name, func(b *testing.B) {
			var ratio, makespan, ideal float64
			for b.Loop() {
				p := NewPipeline().Add(mods...)
				p.Output = io.Discard
				p.noPrecedence = v.noPrecedence
				if v.durations {
					p.UseDurations(durations)
				}
				p.UseDistributed(DistributedOptions{Parallelism: 1, LocalCapabilities: map[int][]string{2: {"cgo"}}})
				s, err := p.runLocalInstances(context.Background(), 3, io.Discard)
				if err != nil || s.Failed() {
					b.Fatalf("run failed: %v", err)
				}
				m, id := makespanAndIdeal(s, deps, 3)
				ratio += float64(m) / float64(id)
				makespan += float64(m.Milliseconds())
				ideal += float64(id.Milliseconds())
			}
			n := float64(b.N)
			b.ReportMetric(ratio/n, "x-ideal")
			b.ReportMetric(makespan/n, "makespan-ms")
			b.ReportMetric(ideal/n, "ideal-ms")
		})
	}
}

// schedUnit scales the router shape: its race run takes 10 units.
const schedUnit = 100 * time.Millisecond

// routerShape returns the modules, their durations and their dependencies
// (by name), in the order a user adds them.
func routerShape(u time.Duration) ([]AnyModule, map[string]time.Duration, map[string][]string) {
	durations := map[string]time.Duration{}
	deps := map[string][]string{}
	var mods []AnyModule
	var all []AnyModule
	add := func(name string, d time.Duration, opts ...Option) *Module[None] {
		m := Task(name, func(c *Context) error {
			select {
			case <-time.After(d): // the module's work
				return nil
			case <-c.Done():
				return c.Err()
			}
		}, opts...)
		durations[name] = d
		mods = append(mods, m)
		return m
	}
	fmtMod := add("fmt", u)
	vet := add("vet", u, DependsOn(fmtMod))
	deps["vet"] = []string{"fmt"}
	all = append(all, fmtMod, vet)
	for i := range 5 {
		all = append(all, add(fmt.Sprintf("test-%d", i), 2*u))
	}
	all = append(all, add("race", 10*u, RequiresCapability("cgo")))
	for _, target := range []string{"linux-arm64", "windows-amd64", "darwin-amd64", "darwin-arm64", "freebsd-amd64"} {
		all = append(all, add("xbuild-"+target, 6*u/10))
	}
	add("notes", u/2, DependsOn(all...), PinToMaster())
	for name := range durations {
		if name != "notes" {
			deps["notes"] = append(deps["notes"], name)
		}
	}
	return mods, durations, deps
}

// makespanAndIdeal returns the run's makespan (first module start to last
// module end) and a lower bound of any schedule of the same measured
// module durations on instances: the longest dependency path, or all the
// work spread evenly, whichever is longer.
func makespanAndIdeal(s *Summary, deps map[string][]string, instances int) (time.Duration, time.Duration) {
	var first, last time.Time
	took := map[string]time.Duration{}
	var total time.Duration
	for _, m := range s.Modules {
		if first.IsZero() || m.Start.Before(first) {
			first = m.Start
		}
		if end := m.Start.Add(m.Duration); end.After(last) {
			last = end
		}
		took[m.Name] = m.Duration
		total += m.Duration
	}
	var path func(name string) time.Duration
	path = func(name string) time.Duration { // longest path ending with name
		var before time.Duration
		for _, d := range deps[name] {
			before = max(before, path(d))
		}
		return before + took[name]
	}
	ideal := total / time.Duration(instances)
	for name := range took {
		ideal = max(ideal, path(name))
	}
	return last.Sub(first), ideal
}
