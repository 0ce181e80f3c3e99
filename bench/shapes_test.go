package bench

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A shape is a DAG given as, for each node, the indexes of the nodes it
// depends on. Every dependency has a smaller index than its dependent, so
// index order is a topological order. The shapes are the ones of the main
// module's bench_test.go.
type shape struct {
	name string
	deps [][]int
}

var shapes = []shape{
	{"dag10k", layeredDAG(100, 100)},
	{"chain1000", chain(1000)},
	{"fan5000", fanOutIn(5000)},
}

// layeredDAG is layers of width nodes, each depending on 3 nodes of the
// previous layer.
func layeredDAG(layers, width int) [][]int {
	deps := make([][]int, 0, layers*width)
	for l := range layers {
		for w := range width {
			var d []int
			if l > 0 {
				prev := (l - 1) * width
				for k := range 3 {
					d = append(d, prev+(w+k*37)%width)
				}
			}
			deps = append(deps, d)
		}
	}
	return deps
}

// chain is n nodes, each depending on the one before.
func chain(n int) [][]int {
	deps := make([][]int, n)
	for i := 1; i < n; i++ {
		deps[i] = []int{i - 1}
	}
	return deps
}

// fanOutIn is one root, n nodes depending on it, and one sink depending on
// all of them: n+2 nodes.
func fanOutIn(n int) [][]int {
	deps := make([][]int, 0, n+2)
	deps = append(deps, nil)
	sink := make([]int, 0, n)
	for i := range n {
		deps = append(deps, []int{0})
		sink = append(sink, i+1)
	}
	return append(deps, sink)
}

// sinks returns the nodes nothing depends on, in index order: the targets
// to ask a runner for when it runs only what the targets need (goyek).
func sinks(deps [][]int) []int {
	needed := make([]bool, len(deps))
	for _, d := range deps {
		for _, j := range d {
			needed[j] = true
		}
	}
	var out []int
	for i, n := range needed {
		if !n {
			out = append(out, i)
		}
	}
	return out
}

func nodeName(i int) string { return fmt.Sprintf("n%05d", i) }

// recorder counts how many times each node ran, when it last ran and how
// many nodes ran at once at most.
type recorder struct {
	seq         atomic.Int64
	count       []atomic.Int32
	last        []atomic.Int64
	running     atomic.Int32
	maxParallel atomic.Int32
	hold        time.Duration // how long each node runs
}

func newRecorder(n int) *recorder {
	return &recorder{count: make([]atomic.Int32, n), last: make([]atomic.Int64, n)}
}

// act is the action of node i.
func (r *recorder) act(i int) {
	n := r.running.Add(1)
	for m := r.maxParallel.Load(); n > m && !r.maxParallel.CompareAndSwap(m, n); m = r.maxParallel.Load() {
	}
	r.count[i].Add(1)
	r.last[i].Store(r.seq.Add(1))
	if r.hold > 0 {
		time.Sleep(r.hold)
	}
	r.running.Add(-1)
}

// check reports whether every node ran exactly runs times and, in the last
// run, after all its dependencies.
func (r *recorder) check(deps [][]int, runs int) error {
	if len(r.count) != len(deps) {
		return fmt.Errorf("recorder has %d nodes, shape has %d", len(r.count), len(deps))
	}
	total := 0
	for i := range deps {
		n := int(r.count[i].Load())
		total += n
		if n != runs {
			return fmt.Errorf("node %d ran %d times, want %d", i, n, runs)
		}
	}
	if want := runs * len(deps); total != want {
		return fmt.Errorf("%d node runs, want %d", total, want)
	}
	for i, d := range deps {
		for _, j := range d {
			if r.last[j].Load() >= r.last[i].Load() {
				return fmt.Errorf("node %d ran before its dependency %d", i, j)
			}
		}
	}
	return nil
}

// TestRunnersRunEveryNodeOnce runs each shape twice with each runner, from
// definitions built once as the benchmarks do, and checks that every node
// ran exactly once per run and after its dependencies: a runner that
// silently did nothing would make its benchmark meaningless.
func TestRunnersRunEveryNodeOnce(t *testing.T) {
	const runs = 2
	for _, r := range runners {
		for _, s := range shapes {
			t.Run(r.name+"/"+s.name, func(t *testing.T) {
				if testing.Short() && s.name == "dag10k" {
					t.Skip("short")
				}
				rec := newRecorder(len(s.deps))
				run := r.prepare(s.deps, rec.act)
				for range runs {
					if err := run(); err != nil {
						t.Fatal(err)
					}
				}
				if err := rec.check(s.deps, runs); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// TestCheckCatchesMistakes makes sure the check above can fail: runners
// that skip a node, run one twice or ignore dependencies are caught.
func TestCheckCatchesMistakes(t *testing.T) {
	deps := layeredDAG(4, 5)
	n := len(deps)
	broken := map[string]func(act func(int)){
		"skips a node": func(act func(int)) {
			runFloor(deps[:n-1], act)
		},
		"runs a node twice": func(act func(int)) {
			runFloor(deps, act)
			act(n / 2)
		},
		"ignores dependencies": func(act func(int)) {
			for i := n - 1; i >= 0; i-- {
				act(i)
			}
		},
		"does nothing": func(func(int)) {},
	}
	for name, run := range broken {
		rec := newRecorder(n)
		run(rec.act)
		if err := rec.check(deps, 1); err == nil {
			t.Errorf("a runner that %s passed the check", name)
		}
	}
	rec := newRecorder(n)
	runFloor(deps, rec.act)
	if err := rec.check(deps, 1); err != nil {
		t.Errorf("the floor runner failed the check: %v", err)
	}
}

// TestGoyekIsSequential checks what the comparison assumes: goyek, as set
// up here, runs one task at a time where modpipe and the floor run the
// ready ones at once. Each node sleeps a little so that concurrent nodes
// overlap.
func TestGoyekIsSequential(t *testing.T) {
	deps := fanOutIn(50)
	for _, r := range runners {
		rec := newRecorder(len(deps))
		rec.hold = time.Millisecond
		if err := r.prepare(deps, rec.act)(); err != nil {
			t.Fatal(err)
		}
		if err := rec.check(deps, 1); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		n := rec.maxParallel.Load()
		t.Logf("%s: up to %d nodes at once", r.name, n)
		if sequential := strings.HasPrefix(r.name, "Goyek"); sequential != (n == 1) {
			t.Errorf("%s ran up to %d nodes at once", r.name, n)
		}
	}
}

func TestShapes(t *testing.T) {
	for _, tc := range []struct {
		name         string
		deps         [][]int
		nodes, edges int
		sinks        int
	}{
		{"dag10k", layeredDAG(100, 100), 10000, 99 * 100 * 3, 100},
		{"chain1000", chain(1000), 1000, 999, 1},
		{"fan5000", fanOutIn(5000), 5002, 2 * 5000, 1},
	} {
		edges := 0
		for i, d := range tc.deps {
			edges += len(d)
			for _, j := range d {
				if j >= i {
					t.Errorf("%s: node %d depends on %d: not in topological order", tc.name, i, j)
				}
			}
		}
		if len(tc.deps) != tc.nodes || edges != tc.edges || len(sinks(tc.deps)) != tc.sinks {
			t.Errorf("%s: %d nodes, %d edges, %d sinks; want %d, %d, %d", tc.name,
				len(tc.deps), edges, len(sinks(tc.deps)), tc.nodes, tc.edges, tc.sinks)
		}
	}
}
