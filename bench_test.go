package modpipe

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/modpipe/modpipe/distributed"
)

// Shapes of the scheduling benchmarks: every module is a no-op, so what is
// measured is modpipe's own overhead.

// layeredDAG is 100 layers of 100 modules, each depending on 3 modules of
// the previous layer.
func layeredDAG(layers, width int) (mods []AnyModule, deps [][]int) {
	noop := func(*Context) error { return nil }
	all := make([]*Module[None], 0, layers*width)
	deps = make([][]int, 0, layers*width)
	for l := range layers {
		for w := range width {
			var opts []Option
			var d []int
			if l > 0 {
				prev := (l - 1) * width
				for k := range 3 {
					j := prev + (w+k*37)%width
					d = append(d, j)
					opts = append(opts, DependsOn(all[j]))
				}
			}
			all = append(all, Task(fmt.Sprintf("m%d-%d", l, w), noop, opts...))
			deps = append(deps, d)
		}
	}
	for _, m := range all {
		mods = append(mods, m)
	}
	return mods, deps
}

// chain is n modules, each depending on the one before.
func chain(n int) (mods []AnyModule, deps [][]int) {
	noop := func(*Context) error { return nil }
	var prev *Module[None]
	for i := range n {
		var opts []Option
		var d []int
		if prev != nil {
			opts = append(opts, DependsOn(prev))
			d = []int{i - 1}
		}
		prev = Task(fmt.Sprintf("c%d", i), noop, opts...)
		mods = append(mods, prev)
		deps = append(deps, d)
	}
	return mods, deps
}

// fanOutIn is one root, n modules depending on it, and one sink depending on all.
func fanOutIn(n int) (mods []AnyModule, deps [][]int) {
	noop := func(*Context) error { return nil }
	root := Task("root", noop)
	mods = append(mods, root)
	deps = append(deps, nil)
	sinkDeps := make([]AnyModule, 0, n)
	var sinkIdx []int
	for i := range n {
		m := Task(fmt.Sprintf("f%d", i), noop, DependsOn(root))
		mods = append(mods, m)
		deps = append(deps, []int{0})
		sinkDeps = append(sinkDeps, m)
		sinkIdx = append(sinkIdx, i+1)
	}
	mods = append(mods, Task("sink", noop, DependsOn(sinkDeps...)))
	deps = append(deps, sinkIdx)
	return mods, deps
}

var shapes = []struct {
	name  string
	build func() ([]AnyModule, [][]int)
}{
	{"dag10k", func() ([]AnyModule, [][]int) { return layeredDAG(100, 100) }},
	{"chain1000", func() ([]AnyModule, [][]int) { return chain(1000) }},
	{"fan5000", func() ([]AnyModule, [][]int) { return fanOutIn(5000) }},
}

// BenchmarkPipeline runs each shape end to end: validation, scheduling,
// execution, log groups and the summary table.
func BenchmarkPipeline(b *testing.B) {
	for _, s := range shapes {
		mods, _ := s.build()
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p := NewPipeline().Add(mods...)
				p.Output = io.Discard
				sum, err := p.Run(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if sum.Failed() {
					b.Fatal("run failed")
				}
				if err := sum.WriteText(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			reportPerModule(b, len(mods))
		})
	}
}

// BenchmarkFloor runs the same shapes with a bare goroutine-per-node
// executor (no logs, no statuses, no validation): the floor modpipe is
// compared with.
func BenchmarkFloor(b *testing.B) {
	for _, s := range shapes {
		_, deps := s.build()
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				runFloor(deps)
			}
			reportPerModule(b, len(deps))
		})
	}
}

func runFloor(deps [][]int) {
	done := make([]chan struct{}, len(deps))
	for i := range done {
		done[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	wg.Add(len(deps))
	for i := range deps {
		go func() {
			defer wg.Done()
			for _, d := range deps[i] {
				<-done[d]
			}
			close(done[i])
		}()
	}
	wg.Wait()
}

func reportPerModule(b *testing.B, modules int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(modules), "ns/module")
}

// BenchmarkDistributedOff runs the 10k DAG with distributed mode configured
// but off (one instance, a coordinator set): the same path as
// BenchmarkPipeline/dag10k, proving the distributed code costs nothing
// when it is not used. Compare the two in one run.
func BenchmarkDistributedOff(b *testing.B) {
	mods, _ := layeredDAG(100, 100)
	for _, mode := range []string{"plain", "configured-off"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p := NewPipeline().Add(mods...)
				p.Output = io.Discard
				if mode == "configured-off" {
					p.UseDistributed(DistributedOptions{TotalInstances: 1, Capabilities: []string{"docker"}}).UseCoordinator(panicCoordinator{})
				}
				sum, err := p.Run(context.Background())
				if err != nil || sum.Failed() || sum.Distributed {
					b.Fatal(err)
				}
			}
			reportPerModule(b, len(mods))
		})
	}
}

// panicCoordinator fails the benchmark if distributed mode, when off,
// touches the coordinator at all.
type panicCoordinator struct{ distributed.Coordinator }
