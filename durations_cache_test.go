package modpipe

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/internal/cache"
)

// cachedOrderPipeline is orderPipeline with every module cached, over a
// cache whose latest entries say race took 30 s and the chain 3 s (the
// entries' keys are not this run's: every module misses and runs).
func cachedOrderPipeline(t *testing.T) (*Pipeline, func() []string, artifact.Store) {
	t.Helper()
	p, order := orderPipeline()
	for _, d := range p.modules {
		d.cache = &cacheSpec{}
	}
	store := artifact.NewDirStore(t.TempDir())
	c := &cache.Cache{Store: store}
	for name, d := range map[string]time.Duration{"fmt": time.Second, "vet": 2 * time.Second, "race": 30 * time.Second} {
		key := strings.Repeat("ab", 32)
		if name != "fmt" {
			key = strings.Repeat(name[:1], 64)
		}
		c.Save(context.Background(), &cache.Entry{Key: key, Module: name, Created: time.Now(), Duration: d, Result: json.RawMessage("null")})
	}
	if d := cache.LastDurations(context.Background(), store, nil, []string{"fmt", "vet", "race"}); len(d) != 3 {
		t.Fatalf("the cache holds durations for %v, want all three modules", d)
	}
	return p, order, store
}

// Without --durations, MODPIPE_DURATIONS or a --report file, the cache's
// latest entries order the run (issue 13).
func TestMainOrdersByDurationsFromTheCache(t *testing.T) {
	p, order, store := cachedOrderPipeline(t)
	p.UseCache(store)
	if code, out, errOut := runMain(t, p, nil, "--parallel", "1"); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if got := order(); !slices.Equal(got, raceFirst) {
		t.Errorf("order %v, want %v: race took 30 s when its latest cache entry was stored", got, raceFirst)
	}
	if p.durations != nil {
		t.Errorf("the cache's durations outlived the run: %v", p.durations)
	}

	// With the cache off, modules are counted.
	p, order, store = cachedOrderPipeline(t)
	p.UseCache(store)
	if code, out, errOut := runMain(t, p, nil, "--parallel", "1", "--cache-mode", "off"); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if got := order(); !slices.Equal(got, []string{"fmt", "vet", "race"}) {
		t.Errorf("order %v: with the cache off, the longer chain comes first", got)
	}

	// Durations given otherwise win over the cache's.
	p, order, store = cachedOrderPipeline(t)
	p.UseCache(store).UseDurations(map[string]time.Duration{"fmt": time.Hour})
	if code, out, errOut := runMain(t, p, nil, "--parallel", "1"); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if got := order(); !slices.Equal(got, []string{"fmt", "vet", "race"}) {
		t.Errorf("order %v: durations from code (fmt 1h) should win over the cache's", got)
	}
}
