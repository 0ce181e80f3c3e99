package modpipe

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/modpipe/modpipe/artifact"
)

// cacheBenchPipeline is 100 cached modules of 200 ms in 10 layers of 10,
// each depending on every module of the layer before.
func cacheBenchPipeline(store artifact.Store, mode string) *Pipeline {
	return cacheBenchPipelineOf(store, mode, 200*time.Millisecond)
}

// cacheBenchPipelineOf is cacheBenchPipeline with modules that take d.
func cacheBenchPipelineOf(store artifact.Store, mode string, d time.Duration) *Pipeline {
	p := NewPipeline()
	p.Output = io.Discard
	var prev []*Module[int]
	for layer := range 10 {
		var cur []*Module[int]
		for j := range 10 {
			n := layer*10 + j
			deps := prev
			cur = append(cur, New(fmt.Sprintf("m%03d", n), func(c *Context) (int, error) {
				sum := n
				for _, d := range deps {
					v, err := Result(c, d)
					if err != nil {
						return 0, err
					}
					sum += v
				}
				time.Sleep(d)
				return sum % 1000, nil
			}, DependsOnAll(deps...), Cache(InputValue("n", n), InputEnv("BENCH_FLAGS"))))
		}
		p.Add(Modules(cur)...)
		prev = cur
	}
	p.UseCache(store)
	p.cache.mode = mode
	return p
}

// BenchmarkCachedPipeline runs the 100-module pipeline: "cold-cache-off"
// with --cache-mode off (the baseline), "cold-cache-on" against an empty
// store each time (keys computed, entries stored), "cached" against a
// store holding every entry. Compare ns/op within one run.
func BenchmarkCachedPipeline(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, p *Pipeline) {
		s, err := p.Run(ctx)
		if err != nil || s.Failed() {
			b.Fatalf("run failed: %v", err)
		}
	}
	b.Run("cold-cache-off", func(b *testing.B) {
		for b.Loop() {
			run(b, cacheBenchPipeline(artifact.NewDirStore(b.TempDir()), "off"))
		}
	})
	b.Run("cold-cache-on", func(b *testing.B) {
		for b.Loop() {
			run(b, cacheBenchPipeline(artifact.NewDirStore(b.TempDir()), "readwrite"))
		}
	})
	b.Run("cached", func(b *testing.B) {
		store := artifact.NewDirStore(b.TempDir())
		run(b, cacheBenchPipeline(store, "readwrite"))
		for b.Loop() {
			p := cacheBenchPipeline(store, "readwrite")
			s, err := p.Run(ctx)
			if err != nil || s.Count(Cached) != 100 {
				b.Fatalf("not all cached: %v", err)
			}
		}
	})
}

// BenchmarkCacheOverhead runs the same 100 modules with bodies that do
// nothing, so that ns/op is the cost of the machinery: "off" with
// --cache-mode off, "miss" computing keys, looking up and storing every
// entry in a directory store, "hit" restoring every module.
func BenchmarkCacheOverhead(b *testing.B) {
	ctx := context.Background()
	for _, mode := range []string{"off", "miss", "hit"} {
		b.Run(mode, func(b *testing.B) {
			store := artifact.NewDirStore(b.TempDir())
			if mode == "hit" {
				_, _ = cacheBenchPipelineOf(store, "readwrite", 0).Run(ctx)
			}
			for b.Loop() {
				if mode == "miss" {
					store = artifact.NewDirStore(b.TempDir())
				}
				m := map[string]string{"off": "off", "miss": "readwrite", "hit": "readwrite"}[mode]
				s, err := cacheBenchPipelineOf(store, m, 0).Run(ctx)
				if err != nil || s.Failed() {
					b.Fatalf("run failed: %v", err)
				}
			}
		})
	}
}
