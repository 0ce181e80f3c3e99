// Package redis is the Redis coordinator for distributed modpipe runs:
// the production transport for CI matrices, built on go-redis v9 for Redis
// 7 (or a compatible server, such as a hosted one with TLS).
//
//	p.UseCoordinator(redis.NewCoordinator(redis.Options{})) // URL from --redis-url, MODPIPE_REDIS_URL or REDIS_URL
//
// Claims, fenced results and reclaims are single Lua scripts; idle instances
// block on lists (BLPOP) and follow the run over pub/sub, so nothing polls.
// Every key of a run lives under "<prefix>:{<run id>}:" with a TTL; the
// names are built in keys.go, which also says how scripts learn the keys
// of the per-requirement queues. Scripts receive every key they touch in
// KEYS, and a run's keys share one hash tag, so the coordinator also works
// on Redis Cluster: name it with a redis+cluster:// URL (see Options.URL).
// Announcements use plain PUBLISH and SUBSCRIBE, which work on a cluster
// (a message reaches subscribers on every node, carried over the cluster
// bus); Redis 7's sharded pub/sub (SPUBLISH, SSUBSCRIBE) would keep it on
// the run's node, and is left for later.
package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/defaults"
	"github.com/modpipe/modpipe/internal/redact"
)

// Options configure a Coordinator. Zero values take the defaults shown.
type Options struct {
	// URL of the server: redis://[user:password@]host:port[/db], or
	// rediss:// for TLS. Empty: modpipe's --redis-url flag, then the
	// MODPIPE_REDIS_URL and REDIS_URL environment variables.
	//
	// A Redis Cluster is named by redis+cluster:// (rediss+cluster:// for
	// TLS) and one or more of its nodes, comma-separated:
	// redis+cluster://[user:password@]host1:port1,host2:port2. The client
	// learns the rest of the cluster from them. Every key of a run shares
	// the hash tag {run id}, so a run lives on one node and runs spread
	// over the cluster.
	URL string
	// KeyPrefix starts every key (default "modpipe").
	KeyPrefix string
	// RunID names the run's namespace. Empty: modpipe's --run-id flag,
	// MODPIPE_RUN_ID, or GitHub's run id and attempt.
	RunID string
	// KeyTTL is how long a run's keys live after their last write
	// (default 24h). A finished run's id stays refused until then.
	KeyTTL time.Duration
	// ConnectTimeout bounds dialing (default 5s).
	ConnectTimeout time.Duration
	// OperationTimeout bounds one command (default 5s); blocking waits are
	// bounded separately.
	OperationTimeout time.Duration
	// OutageTolerance is how long an operation retries while the server is
	// unreachable before it returns an error (default 20s). Longer outages
	// are judged by modpipe's lease and master timeouts.
	OutageTolerance time.Duration
	// BlockTimeout is how long one blocking wait lasts before it is renewed
	// (default 30s). It bounds how stale a dead connection can go unnoticed.
	BlockTimeout time.Duration
	// Logger receives the Redis client library's own diagnostics, redacted,
	// at debug level (default slog.Default()). They never go to stderr raw.
	Logger *slog.Logger
}

// Coordinator is a distributed.Coordinator on Redis. Create it with
// NewCoordinator; it connects on first use.
type Coordinator struct {
	opts Options

	mu       sync.Mutex
	client   goredis.UniversalClient
	keys     keys
	events   *subscriber
	counter  counter
	bindErr  error
	bound    bool
	redacted string
	rawURL   string // for ArtifactStore (coordinator_artifacts.go), and to redact it from messages
	tls      bool
	closed   bool
	fatal    error         // the first fatal error (see errors.go)
	dead     chan struct{} // closed when fatal is set
	log      *clientLog
	ids      idSource // claim request ids and result nonces

	enqueued sync.Map // module -> subscription epoch at enqueue
	ownRes   sync.Map // module -> true: this process published its result
	sessions sync.Map // instance index -> session this value registered it with
	waiting  sync.Map // claim request id -> *waiter: Claim calls of this process

	rkMu sync.Mutex
	rks  []string // requirement keys known to have a queue (see keys.go)
}

var (
	_ distributed.Coordinator    = (*Coordinator)(nil)
	_ distributed.BatchClaimer   = (*Coordinator)(nil)
	_ distributed.BatchEnqueuer  = (*Coordinator)(nil)
	_ distributed.BatchPublisher = (*Coordinator)(nil)
	_ distributed.RunBinder      = (*Coordinator)(nil)
)

// NewCoordinator returns a coordinator; nothing is contacted until the run
// starts.
func NewCoordinator(o Options) *Coordinator {
	o = o.withDefaults()
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	routeClientLogs()
	return &Coordinator{opts: o, dead: make(chan struct{})}
}

// withDefaults fills the unset fields of o (durations that are not
// positive, an empty KeyPrefix) with the defaults its doc names; the
// coordinator and the artifact store share them.
func (o Options) withDefaults() Options {
	defaults.Positive(&o.KeyTTL, 24*time.Hour)
	defaults.Positive(&o.ConnectTimeout, 5*time.Second)
	defaults.Positive(&o.OperationTimeout, 5*time.Second)
	defaults.Positive(&o.OutageTolerance, 20*time.Second)
	defaults.Positive(&o.BlockTimeout, 30*time.Second)
	o.KeyPrefix = cmp.Or(o.KeyPrefix, "modpipe")
	return o
}

// BindRun implements distributed.RunBinder: modpipe passes the run id and
// URL it resolved from flags and environment; Options set in code win.
func (c *Coordinator) BindRun(b distributed.RunBinding) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bound {
		return c.bindErr
	}
	c.bound = true
	c.bindErr = c.connectLocked(b)
	return c.bindErr
}

// connect makes sure the client exists (for library users who skip BindRun).
func (c *Coordinator) connect() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.bound {
		c.bound = true
		c.bindErr = c.connectLocked(distributed.RunBinding{})
	}
	return c.bindErr
}

func (c *Coordinator) connectLocked(b distributed.RunBinding) error {
	raw, runID, err := resolveRun("redis coordinator", c.opts, b)
	if err != nil {
		return err
	}
	c.rawURL = raw
	c.log = &clientLog{logger: c.opts.Logger, url: raw}
	c.redacted = redact.URL(raw)
	c.tls = strings.HasPrefix(raw, "rediss://")
	client, err := newClient(raw, c.opts)
	if err != nil {
		// Parse errors can quote the URL; never show the password.
		return fmt.Errorf("redis coordinator: the Redis URL %s is not valid (%s); use redis://[user:password@]host:port[/db], rediss:// for TLS, or redis+cluster://host1:port1,host2:port2 for a Redis Cluster", c.redacted, redact.String(err.Error(), raw))
	}
	client.AddHook(&c.counter)
	c.client = client
	c.keys = newKeys(c.opts.KeyPrefix, runID)
	c.events = startSubscriber(c.logCtx(context.Background()), client, c.keys.events(), c.wakeClaimers, c.awaits, c.decodeAnnounced)
	return nil
}

// newClient makes a client for raw: a cluster client for
// redis+cluster:// and rediss+cluster:// URLs, else a plain one.
func newClient(raw string, o Options) (goredis.UniversalClient, error) {
	if scheme, rest, ok := strings.Cut(raw, "+cluster://"); ok && (scheme == "redis" || scheme == "rediss") {
		opts, err := goredis.ParseClusterURL(clusterURL(scheme, rest))
		if err != nil {
			return nil, err
		}
		opts.DialTimeout = o.ConnectTimeout
		opts.ReadTimeout = o.OperationTimeout
		opts.WriteTimeout = o.OperationTimeout
		opts.MaxRetries = -1 // retries are ours (withRetry), with fencing in mind
		opts.PoolSize = max(opts.PoolSize, 16)
		return goredis.NewClusterClient(opts), nil
	}
	opts, err := goredis.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	opts.DialTimeout = o.ConnectTimeout
	opts.ReadTimeout = o.OperationTimeout
	opts.WriteTimeout = o.OperationTimeout
	opts.MaxRetries = -1
	opts.PoolSize = max(opts.PoolSize, 16)
	return goredis.NewClient(opts), nil
}

// clusterURL turns the part after "<scheme>+cluster://" (user info, a
// comma-separated node list, then path and query) into the URL go-redis's
// ParseClusterURL reads: the first node as host, the others as addr
// parameters.
func clusterURL(scheme, rest string) string {
	hostEnd := strings.IndexAny(rest, "/?")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	hosts, tail := rest[:hostEnd], rest[hostEnd:]
	user := ""
	if at := strings.LastIndex(hosts, "@"); at >= 0 {
		user, hosts = hosts[:at+1], hosts[at+1:]
	}
	nodes := strings.Split(hosts, ",")
	path, query, _ := strings.Cut(tail, "?")
	var extra []string
	for _, n := range nodes[1:] {
		if n != "" {
			extra = append(extra, "addr="+n)
		}
	}
	if query != "" {
		extra = append(extra, query)
	}
	out := scheme + "://" + user + nodes[0] + path
	if len(extra) > 0 {
		out += "?" + strings.Join(extra, "&")
	}
	return out
}

// Close implements distributed.Coordinator.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil || c.closed {
		return nil
	}
	c.closed = true
	c.events.stop()
	return c.client.Close()
}

// RunID returns the run id in use ("" before the coordinator connected).
func (c *Coordinator) RunID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		return ""
	}
	return strings.TrimSuffix(strings.TrimPrefix(c.keys.base, c.opts.KeyPrefix+":{"), "}:")
}

// Commands reports how many Redis commands this coordinator has sent
// (scripts count as one, blocking waits as one each).
func (c *Coordinator) Commands() uint64 { return c.counter.n.Load() }

// describe turns a client error into one that says what to do, without
// the URL's secrets.
func (c *Coordinator) describe(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, distributed.ErrCorrupt) || errors.Is(err, distributed.ErrRefused) {
		return err // classified already, with what to do
	}
	msg := err.Error()
	hint := ""
	switch {
	case c.tls && (strings.Contains(msg, "deadline exceeded") || strings.Contains(msg, "i/o timeout") || strings.Contains(msg, "EOF")):
		hint = "no TLS session with " + c.redacted + " (rediss://): if the server does not speak TLS, use redis://"
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") || strings.Contains(msg, "i/o timeout"):
		hint = "cannot reach Redis at " + c.redacted + ": check the URL and that the server is up and reachable from this runner"
	case strings.Contains(msg, "tls:") || strings.Contains(msg, "x509") || strings.Contains(msg, "first record does not look like a TLS handshake") || strings.Contains(msg, "malformed HTTP response"):
		hint = "TLS handshake with " + c.redacted + " failed: use rediss:// only for servers that speak TLS, redis:// otherwise"
	case strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset"):
		hint = "the connection to " + c.redacted + " dropped (a TLS server reached with redis://, or the server went away)"
	}
	// Dial errors may quote the address, and the URL's secrets with it.
	clean := redactedError{err: err, msg: c.redactText(msg)}
	if hint != "" {
		return fmt.Errorf("redis coordinator: %s: %s: %w", op, hint, clean)
	}
	return fmt.Errorf("redis coordinator: %s: %w", op, clean)
}

// redactedError shows a redacted text but keeps the original for errors.Is.
type redactedError struct {
	err error
	msg string
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// withRetry runs op, retrying network errors with backoff for up to
// OutageTolerance. Only operations that are safe to repeat (reads, and
// scripts made idempotent by tokens) go through it.
func (c *Coordinator) withRetry(ctx context.Context, name string, op func(ctx context.Context) error) error {
	deadline := time.Now().Add(c.opts.OutageTolerance)
	wait := 50 * time.Millisecond
	for {
		octx, cancel := context.WithTimeout(c.logCtx(ctx), c.opts.OperationTimeout)
		err := op(octx)
		cancel()
		if err != nil {
			if fatal, ok := c.classify(name, err); ok {
				// Retrying cannot help: fail at once, and make every
				// later call fail the same way.
				return c.fail(fatal)
			}
		}
		if err == nil || !retryable(err) || ctx.Err() != nil || time.Now().After(deadline) {
			if ctx.Err() != nil && err != nil {
				return ctx.Err()
			}
			return c.describe(name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// retryable reports errors worth repeating: the network and a server that
// is loading, busy or failing over (see errors.go for the fatal ones).
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, distributed.ErrCorrupt) || errors.Is(err, distributed.ErrRefused) {
		return false
	}
	if msg := serverError(err); msg != "" {
		return transientReply(msg) // any other reply is an answer, not an outage
	}
	return true
}

// resolveRun finds the Redis URL and run id of a coordinator or artifact
// store (who, for messages): Options set in code first, then what modpipe
// resolved from flags (b), then the environment; under GitHub Actions the
// run id defaults to GITHUB_RUN_ID-GITHUB_RUN_ATTEMPT.
func resolveRun(who string, o Options, b distributed.RunBinding) (raw, runID string, err error) {
	raw = cmp.Or(o.URL, b.URL, os.Getenv("MODPIPE_REDIS_URL"), os.Getenv("REDIS_URL"))
	if raw == "" {
		return "", "", fmt.Errorf("%s: %w: no Redis URL; pass --redis-url, or set MODPIPE_REDIS_URL or REDIS_URL (redis://user:password@host:6379/0, rediss:// for TLS)", who, distributed.ErrNotConfigured)
	}
	runID = cmp.Or(o.RunID, b.RunID, os.Getenv("MODPIPE_RUN_ID"))
	if runID == "" && os.Getenv("GITHUB_RUN_ID") != "" {
		runID = os.Getenv("GITHUB_RUN_ID") + "-" + cmp.Or(os.Getenv("GITHUB_RUN_ATTEMPT"), "1")
	}
	if runID == "" {
		return "", "", fmt.Errorf("%s: no run id; every instance of a run must use the same one: pass --run-id or set MODPIPE_RUN_ID (under GitHub Actions it defaults to GITHUB_RUN_ID-GITHUB_RUN_ATTEMPT)", who)
	}
	if strings.ContainsAny(runID, "{}") {
		return "", "", fmt.Errorf("%s: run id %q may not contain braces", who, runID)
	}
	return raw, runID, nil
}
