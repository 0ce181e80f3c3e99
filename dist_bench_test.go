package modpipe

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/logbuf"
)

// noopWorkerModules is n independent no-op modules that only a "worker"
// instance can run, as bench/distbench's throughput runs have them.
func noopWorkerModules(n int) []AnyModule {
	noop := func(*Context) error { return nil }
	mods := make([]AnyModule, n)
	for i := range n {
		mods[i] = Task(fmt.Sprintf("m%05d", i), noop, RequiresCapability("worker"))
	}
	return mods
}

// BenchmarkDistributedNoop runs a master and one worker of 8 slots in this
// process over the in-memory coordinator, with no-op modules that only the
// worker can run: what a module costs both sides of a distributed run
// outside Redis (the in-memory coordinator's own cost included). Compare
// cpu-ns/module and allocs/module: the wall time per module mostly
// measures the in-memory coordinator's waits.
func BenchmarkDistributedNoop(b *testing.B) {
	const n = 2000
	mods := noopWorkerModules(n)
	b.ReportAllocs()
	m := startMallocs()
	cpu0, cpuOK := processCPU()
	for b.Loop() {
		coord := distributed.NewInMemory()
		var wg sync.WaitGroup
		sums := make([]*Summary, 2)
		errs := make([]error, 2)
		for i, caps := range [][]string{nil, {"worker"}} {
			p := NewPipeline().Add(mods...)
			p.Output = io.Discard
			p.UseDistributed(DistributedOptions{InstanceIndex: i, TotalInstances: 2, Capabilities: caps, Parallelism: 8,
				HeartbeatInterval: 200 * time.Millisecond, LeaseTimeout: 2 * time.Second}).UseCoordinator(coord)
			wg.Go(func() { sums[i], errs[i] = p.Run(context.Background()) })
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			b.Fatalf("run failed: master: %v; worker: %v", errs[0], errs[1])
		}
		if sums[0].Failed() || len(sums[0].Modules) != n || len(sums[1].Modules) != n {
			var bad []string
			for _, m := range sums[0].Modules {
				if m.Status != Succeeded && m.Status != Cancelled && len(bad) < 3 {
					bad = append(bad, fmt.Sprintf("%s %s on %d: %s %s", m.Name, m.Status, m.Instance, m.Reason, m.Error))
				}
			}
			b.Fatalf("run failed: master summary of %d modules, worker summary of %d; first failures: %v", len(sums[0].Modules), len(sums[1].Modules), bad)
		}
	}
	if cpu1, ok := processCPU(); ok && cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/module")
	}
	m.report(b, n)
	reportPerModule(b, n)
}

// mallocs counts heap allocations from its start, for an allocs/module
// metric (ReportAllocs gives allocs per run of many modules).
type mallocs uint64

func startMallocs() mallocs {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mallocs(ms.Mallocs)
}

func (m mallocs) report(b *testing.B, modules int) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.Mallocs-uint64(m))/float64(b.N)/float64(modules), "allocs/module")
}

// BenchmarkWorkerHostPerModule is the root package's and the engine's part
// of executing one no-op module on a worker, as the executor drives it:
// Lookup, ExecNode, Exec, Executed (which prints the module's group), and
// the worker's summary at the end of its run.
func BenchmarkWorkerHostPerModule(b *testing.B) {
	const n = 4096 // modules per run: a fresh run for each
	p := NewPipeline().Add(noopWorkerModules(n)...)
	p.Output = io.Discard
	pl, err := p.buildPlan(planEnv{os: "linux", distributed: true})
	if err != nil {
		b.Fatal(err)
	}
	var r *run
	newWorkerRun := func() *run {
		r := p.newRun(pl)
		r.instance = Instance{Index: 1, Role: RoleWorker}
		r.dist = &distState{outs: make([]engine.Outcome, len(pl.nodes)), base: r.engineNodes(pl), index: pl.graph.Index}
		return r
	}
	start := time.Now()
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		if k%n == 0 {
			if r != nil && len(r.workerSummary(start).Modules) != n {
				b.Fatal("the worker's summary lacks modules")
			}
			r = newWorkerRun()
		}
		id, ok := r.Lookup(pl.nodes[k%n].name)
		if !ok {
			b.Fatal("module not found")
		}
		var buf logbuf.Buffer
		var o engine.Outcome
		engine.Exec(context.Background(), r.ExecNode(id, &buf), engine.NewCompletion(func(got engine.Outcome) { o = got }), time.Second)
		if o.Status != engine.Succeeded {
			b.Fatalf("module %s: %v", pl.nodes[id].name, o.Err)
		}
		o.Instance = 1
		r.Executed(id, &o, buf.Bytes())
		k++
	}
}
