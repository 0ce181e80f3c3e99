// Package bench compares modpipe's scheduling overhead with goyek's and with
// a bare goroutine-per-node executor on the same no-op shapes. It is a
// separate module so that modpipe itself does not depend on goyek.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/goyek/goyek/v3"
	"github.com/goyek/goyek/v3/middleware"
	"github.com/modpipe/modpipe"
)

// prepareFunc builds a shape's definitions once, outside any timed loop,
// with act(i) as the action of node i, and returns a function that runs the
// shape once, end to end.
type prepareFunc func(deps [][]int, act func(int)) (run func() error)

var runners = []struct {
	name    string
	prepare prepareFunc
}{
	{"Modpipe", prepareModpipe},
	{"Goyek", prepareGoyek(false)},
	{"GoyekReport", prepareGoyek(true)},
	{"Floor", prepareFloor},
}

// prepareModpipe builds one modpipe module per node. Each run makes a fresh
// Pipeline (a Pipeline runs once), runs it and writes the summary table, as
// the main module's BenchmarkPipeline does.
func prepareModpipe(deps [][]int, act func(int)) func() error {
	mods := make([]*modpipe.Module[modpipe.None], len(deps))
	all := make([]modpipe.AnyModule, len(deps))
	for i, d := range deps {
		var opts []modpipe.Option
		if len(d) > 0 {
			on := make([]modpipe.AnyModule, len(d))
			for k, j := range d {
				on[k] = mods[j]
			}
			opts = append(opts, modpipe.DependsOn(on...))
		}
		mods[i] = modpipe.Task(nodeName(i), func(*modpipe.Context) error {
			act(i)
			return nil
		}, opts...)
		all[i] = mods[i]
	}
	return func() error {
		p := modpipe.NewPipeline().Add(all...)
		p.Output = io.Discard
		sum, err := p.Run(context.Background())
		if err != nil {
			return err
		}
		if sum.Failed() {
			return errors.New("modpipe: run failed")
		}
		if len(sum.Modules) != len(deps) {
			return fmt.Errorf("modpipe: %d module results, want %d", len(sum.Modules), len(deps))
		}
		return sum.WriteText(io.Discard)
	}
}

// prepareGoyek defines one goyek task per node in a Flow built once; each
// run is one Flow.Execute of the shape's sinks (the nodes nothing depends
// on), which runs them and all their dependencies. Execute keeps no state
// in the Flow, so the Flow is reused across runs.
//
// goyek runs the tasks one after another. Task.Parallel is left unset: in
// goyek v3.0.0 it lets a task start before a parallel dependency has
// finished (see README.md), so it is no fair DAG executor to compare with.
//
// With report, the Flow uses the ReportStatus and ReportFlow middlewares of
// goyek's usual setup (a status line per task and a final "ok" line),
// written to io.Discard like modpipe's logs and summary table.
func prepareGoyek(report bool) prepareFunc {
	return func(deps [][]int, act func(int)) func() error {
		flow := &goyek.Flow{}
		flow.SetOutput(io.Discard)
		flow.SetLogger(goyek.FmtLogger{})
		if report {
			flow.Use(middleware.ReportStatus)
			flow.UseExecutor(middleware.ReportFlow)
		}
		defined := make([]*goyek.DefinedTask, len(deps))
		for i, d := range deps {
			on := make(goyek.Deps, len(d))
			for k, j := range d {
				on[k] = defined[j]
			}
			defined[i] = flow.Define(goyek.Task{
				Name:   nodeName(i),
				Action: func(*goyek.A) { act(i) },
				Deps:   on,
			})
		}
		var targets []string
		for _, i := range sinks(deps) {
			targets = append(targets, nodeName(i))
		}
		return func() error {
			return flow.Execute(context.Background(), targets)
		}
	}
}

// prepareFloor runs the shape with a bare goroutine-per-node executor (no
// logs, no statuses, no validation): the floor both are compared with.
func prepareFloor(deps [][]int, act func(int)) func() error {
	return func() error {
		runFloor(deps, act)
		return nil
	}
}

func runFloor(deps [][]int, act func(int)) {
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
			act(i)
			close(done[i])
		}()
	}
	wg.Wait()
}

func noop(int) {}

func benchShapes(b *testing.B, prepare prepareFunc) {
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			run := prepare(s.deps, noop)
			b.ReportAllocs()
			for b.Loop() {
				if err := run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(s.deps)), "ns/module")
		})
	}
}

func BenchmarkModpipe(b *testing.B)     { benchShapes(b, prepareModpipe) }
func BenchmarkGoyek(b *testing.B)       { benchShapes(b, prepareGoyek(false)) }
func BenchmarkGoyekReport(b *testing.B) { benchShapes(b, prepareGoyek(true)) }
func BenchmarkFloor(b *testing.B)       { benchShapes(b, prepareFloor) }
