package redis

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/redact"
)

// DefaultCacheRetention is how long a cache entry lives in Redis after it
// was last written, unless NewCacheStore is given another retention.
const DefaultCacheRetention = 7 * 24 * time.Hour

// cacheRunID names the key space of cache entries: they outlive runs, so
// they do not live under any run's id.
const cacheRunID = "modpipe-cache"

// NewCacheStore returns a store for modpipe's cache entries (pass it to
// Pipeline.UseCache): an ArtifactStore whose keys live under
// "<prefix>:{modpipe-cache}:art:", shared by every run, each expiring
// retention after its last write (0 means DefaultCacheRetention). Entries
// are small; the store has no byte budget of its own, so bound its size
// with the server's maxmemory and an evicting policy (volatile-ttl or
// allkeys-lru): an evicted entry is a miss, never an error.
func NewCacheStore(o Options, retention time.Duration) *ArtifactStore {
	if retention <= 0 {
		retention = DefaultCacheRetention
	}
	o.RunID = cacheRunID
	return NewArtifactStore(o, WithArtifactRetention(retention), WithArtifactBudget(math.MaxInt64/2))
}

// CacheStore opens the cache store --cache names with a redis:// or
// rediss:// URL (modpipe calls it; "" means the coordinator's server). The
// URL may carry retention=DURATION (such as retention=72h) to set how long
// entries live; the default is DefaultCacheRetention.
func (c *Coordinator) CacheStore(rawURL string) (artifact.Store, error) {
	c.mu.Lock()
	own := c.rawURL
	c.mu.Unlock()
	raw := rawURL
	if raw == "" {
		raw = own
	}
	if raw == "" {
		return nil, fmt.Errorf("redis coordinator: %w: no cache store before the coordinator is bound to a run", distributed.ErrNotConfigured)
	}
	raw, retention, err := cacheRetention(raw)
	if err != nil {
		return nil, err
	}
	o := c.opts
	o.URL = raw
	s := NewCacheStore(o, retention)
	if err := s.BindRun(distributed.RunBinding{RunID: cacheRunID, URL: raw}); err != nil {
		return nil, err
	}
	return s, nil
}

// cacheRetention takes the retention option out of a cache URL.
func cacheRetention(raw string) (string, time.Duration, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", 0, fmt.Errorf("redis cache store: the URL %s is not valid; use redis://[user:password@]host:port[/db][?retention=168h]", redact.URL(raw))
	}
	q := u.Query()
	v := q.Get("retention")
	if v == "" {
		return raw, 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return "", 0, fmt.Errorf("redis cache store: retention=%q is not a positive duration such as 72h", v)
	}
	q.Del("retention")
	u.RawQuery = q.Encode()
	return strings.TrimSuffix(u.String(), "?"), d, nil
}
