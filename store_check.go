package modpipe

import (
	"fmt"
	"io"
	"strings"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/redact"
)

// cacheStorer is a coordinator that keeps a cache on its server (the
// Redis one).
type cacheStorer interface {
	CacheStore(url string) (artifact.Store, error)
}

// redisScheme reports a URL scheme naming a Redis server or cluster.
func redisScheme(scheme string) bool {
	switch scheme {
	case "redis", "rediss", "redis+cluster", "rediss+cluster":
		return true
	}
	return false
}

// checkStoreURLs refuses a malformed --artifact-store or --cache URL
// before anything runs (a usage error, exit 2) rather than when the first
// module uploads or looks the cache up. It checks only what needs no
// network: whether a store is reachable is known only once it is used,
// and an unreachable cache is a warning, never a failure.
func (p *Pipeline) checkStoreURLs() error {
	if p.art.store == nil && p.art.url != "" {
		open := func(raw string) (artifact.Store, error) { return openStoreURL(raw, nil) }
		if err := checkStoreURL("--artifact-store", p.art.url, open, p.redisArtifactsReady); err != nil {
			return err
		}
	}
	if p.cache.store == nil && p.cache.url != "" {
		if err := checkStoreURL("--cache", p.cache.url, p.openCacheURL, p.redisCacheReady); err != nil {
			return err
		}
	}
	return nil
}

// checkStoreURL checks one store URL: a Redis URL with redisReady (which
// says why this run cannot use it, if so), any other by opening it with
// open, which for file:// and s3:// needs no network.
func checkStoreURL(flagName, raw string, open func(string) (artifact.Store, error), redisReady func(raw string) error) error {
	scheme, _, ok := strings.Cut(raw, "://")
	if ok && redisScheme(scheme) {
		return redisReady(raw)
	}
	s, err := open(raw)
	if err != nil {
		return err
	}
	if c, ok := s.(io.Closer); ok {
		if err := c.Close(); err != nil {
			return fmt.Errorf("%s %s: closing the store opened to check the URL: %w", flagName, redact.URL(raw), err)
		}
	}
	return nil
}

// redisArtifactsReady: a Redis artifact store is opened through the Redis
// coordinator of a distributed run.
func (p *Pipeline) redisArtifactsReady(raw string) error {
	if _, ok := p.coord.(distributed.ArtifactStorer); !ok || !p.distributedOn() {
		return fmt.Errorf("--artifact-store %s: a Redis artifact store is kept through the run's Redis coordinator, and this run has none: give the pipeline one (p.UseCoordinator(redis.NewCoordinator(...))) and run it distributed with --redis-url and --total, or, on one instance, use --artifact-store file:///dir or s3://bucket/prefix", redact.URL(raw))
	}
	return nil
}

// redisCacheReady: a Redis cache is opened through the Redis coordinator.
func (p *Pipeline) redisCacheReady(raw string) error {
	if _, ok := p.coord.(cacheStorer); !ok {
		return fmt.Errorf("--cache %s: a Redis cache is opened through the Redis coordinator, and this pipeline has none: give it one (p.UseCoordinator(redis.NewCoordinator(...))), or call p.UseCache(redis.NewCacheStore(redis.Options{...}, retention)) in code, or use --cache file:///dir or s3://bucket/prefix", redact.URL(raw))
	}
	return nil
}
