package cluster

import (
	"context"
	"fmt"
	"testing"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/logbuf"
)

// benchHost is a pipeline of no-op modules whose nodes cost nothing to
// build, so that benchmarks measure the executor.
type benchHost struct {
	index map[string]int
	nodes []engine.Node
}

func newBenchHost(names []string) *benchHost {
	h := &benchHost{index: make(map[string]int, len(names)), nodes: make([]engine.Node, len(names))}
	run := func(context.Context, int, int) (any, error) { return nil, nil }
	for i, n := range names {
		h.index[n] = i
		h.nodes[i] = engine.Node{ID: i, Name: n, Run: run}
	}
	return h
}

func (h *benchHost) Lookup(module string) (int, bool) {
	i, ok := h.index[module]
	return i, ok
}
func (h *benchHost) ExecNode(id int, _ *logbuf.Buffer) *engine.Node { return &h.nodes[id] }
func (h *benchHost) Executed(int, *engine.Outcome, []byte)          {}
func (h *benchHost) Note(int, string)                               {}
func (h *benchHost) AppendLog(int, []byte)                          {}
func (h *benchHost) Claimed(int, int)                               {}

// BenchmarkWorkerExecutorPerModule is a worker's executor claiming,
// executing and publishing b.N no-op modules through the in-memory
// coordinator (whose own costs are included), with a shared secret. The
// queue is kept short (the in-memory queue is a slice): each published
// result enqueues the next module.
func BenchmarkWorkerExecutorPerModule(b *testing.B) {
	const queued = 64
	names := make([]string, b.N)
	as := make([]distributed.Assignment, b.N)
	signer := NewSigner(testSecret, "run-1")
	for i := range names {
		names[i] = fmt.Sprintf("m%07d", i)
		as[i] = distributed.Assignment{Module: names[i], Attempt: 1}
		signer.SignAssignment(&as[i])
	}
	mem := distributed.NewInMemory()
	register(b, mem, 1, "linux")
	enqueue := func(i int) {
		if i < b.N {
			if err := mem.Enqueue(context.Background(), as[i]); err != nil {
				b.Error(err)
			}
		}
	}
	for i := range queued {
		enqueue(i)
	}
	cfg := testConfig(mem, 1)
	cfg.Parallelism, cfg.Signer = 8, signer
	published := make(chan struct{})
	count := 0
	deliver := func(distributed.Result) { // called by the one publisher
		enqueue(count + queued)
		if count++; count == b.N {
			close(published)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	e := StartExecutor(ctx, cfg, newBenchHost(names), NewValues(mem), deliver)
	<-published
	b.StopTimer()
	cancel()
	e.Wait()
}
