package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed/redis"
	"github.com/modpipe/modpipe/internal/cache"
	"github.com/modpipe/modpipe/internal/redistest"
)

func commandsProcessed(t testing.TB, c *goredis.Client) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no total_commands_processed in INFO")
	return 0
}

// savedEntries stores n entries through a cache over a Redis cache store
// and returns the cache and their keys.
func savedEntries(t testing.TB, srv *redistest.Server, retention time.Duration, n int) (*cache.Cache, []string) {
	store := redis.NewCacheStore(redis.Options{URL: srv.URL()}, retention)
	t.Cleanup(func() { store.Close() })
	c := &cache.Cache{Store: store, Warn: func(m string) { t.Errorf("cache warning: %s", m) }}
	var keys []string
	for i := range n {
		k := fmt.Sprintf("%064x", i+1)
		c.Save(context.Background(), &cache.Entry{Key: k, Module: fmt.Sprint("m", i), Created: time.Now(), Duration: time.Second,
			Result: json.RawMessage(`{"ok":true}`), Inputs: cache.Fingerprints{"module:": fmt.Sprint(i)}})
		keys = append(keys, k)
	}
	return c, keys
}

// A hit costs at most 2 commands on the server (so at most 2 round
// trips): the blob's manifest and its one chunk. A miss costs 1.
func TestCacheStoreLookupRoundTrips(t *testing.T) {
	srv := redistest.Start(t)
	c, keys := savedEntries(t, srv, time.Hour, 20)
	probe := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer probe.Close()
	ctx := context.Background()
	c.Lookup(ctx, "warm", keys[0]) // connection set up, scripts loaded
	before := commandsProcessed(t, probe)
	for i, k := range keys {
		if e := c.Lookup(ctx, fmt.Sprint("m", i), k); e == nil {
			t.Fatalf("entry %d missed", i)
		}
	}
	hits := commandsProcessed(t, probe) - before - 1 // the INFO itself
	before = commandsProcessed(t, probe)
	for i := range keys {
		if c.Lookup(ctx, "m", fmt.Sprintf("%064x", 1000+i)) != nil {
			t.Fatal("an absent key hit")
		}
	}
	misses := commandsProcessed(t, probe) - before - 1
	t.Logf("%d hits: %d commands (%.2f each); %d misses: %d commands", len(keys), hits, float64(hits)/float64(len(keys)), len(keys), misses)
	if hits > int64(2*len(keys)) || misses > int64(len(keys)) {
		t.Errorf("hits cost %d commands and misses %d for %d lookups each; want at most 2 per hit and 1 per miss", hits, misses, len(keys))
	}
}

// Entries expire after the retention (the TTL is set on every key) and
// live outside any run's keys.
func TestCacheStoreRetention(t *testing.T) {
	srv := redistest.Start(t)
	savedEntries(t, srv, 90*time.Minute, 1)
	probe := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer probe.Close()
	ctx := context.Background()
	keys, err := probe.Keys(ctx, "*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "modpipe:{modpipe-cache}:art:") {
			t.Errorf("key %s is outside the cache's key space", k)
		}
		ttl, err := probe.PTTL(ctx, k).Result()
		if err != nil || ttl < 89*time.Minute || ttl > 90*time.Minute {
			t.Errorf("%s: TTL %s (%v), want the 90m retention", k, ttl, err)
		}
	}
}

func TestCacheStoreURLRetention(t *testing.T) {
	srv := redistest.Start(t)
	coord := redis.NewCoordinator(redis.Options{})
	defer coord.Close()
	s, err := coord.CacheStore(srv.URL() + "/0?retention=3h")
	if err != nil {
		t.Fatal(err)
	}
	defer s.(interface{ Close() error }).Close()
	c := &cache.Cache{Store: s}
	c.Save(context.Background(), &cache.Entry{Key: fmt.Sprintf("%064x", 7), Module: "m", Result: json.RawMessage("1")})
	probe := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer probe.Close()
	keys, _ := probe.Keys(context.Background(), "modpipe:{modpipe-cache}:art:m:*").Result()
	if len(keys) == 0 {
		t.Fatal("nothing stored")
	}
	if ttl := probe.PTTL(context.Background(), keys[0]).Val(); ttl < 179*time.Minute || ttl > 3*time.Hour {
		t.Errorf("TTL %s, want 3h from the URL", ttl)
	}
	for _, bad := range []string{"?retention=soon", "?retention=-1h"} {
		if _, err := coord.CacheStore(srv.URL() + bad); err == nil || !strings.Contains(err.Error(), "positive duration") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
