package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/redact"
)

// Errors from the server fall in three classes:
//   - transient (network, timeouts, LOADING, BUSY, TRYAGAIN, CLUSTERDOWN,
//     MASTERDOWN): retried for up to OutageTolerance;
//   - refused (OOM, READONLY, NOPERM, NOAUTH, WRONGPASS, MISCONF, no
//     scripting): fatal at once, wrapping distributed.ErrRefused, with the
//     server's own words and what to change;
//   - the run's data is corrupt (WRONGTYPE, a script failing on a record):
//     fatal at once, wrapping distributed.ErrCorrupt and naming the key.
// A fatal error is latched: every later call but Cancel and Complete
// returns it, so that the engine's loops all stop on the same cause.

// transientPrefixes start server replies that a later retry may not get.
var transientPrefixes = []string{"LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN"}

// serverError returns the server's reply text when err is one (a RESP
// error), "" for network and client errors.
func serverError(err error) string {
	var re goredis.Error
	if !errors.As(err, &re) {
		return ""
	}
	return re.Error()
}

// refusal returns what to do about a lasting refusal by the server, or ""
// when the reply is not one.
func (c *Coordinator) refusal(msg string) string {
	code, _, _ := strings.Cut(msg, " ")
	switch {
	case code == "OOM":
		return "Redis is out of memory (maxmemory): raise maxmemory or free memory on the server, and keep maxmemory-policy noeviction so that a run's keys are never evicted"
	case code == "READONLY":
		return "the server is a read-only replica: point the Redis URL at the primary"
	case code == "NOPERM" || strings.Contains(msg, "no permissions to"):
		return fmt.Sprintf("the Redis user lacks a permission modpipe needs: grant it EVAL, EVALSHA, the commands the scripts call and the run's keys and channel, e.g. ACL SETUSER <user> +@read +@write +@scripting +@pubsub +@blocking +@connection ~%[1]s:* &%[1]s:*", c.opts.KeyPrefix)
	case code == "NOAUTH" || strings.Contains(msg, "Protocol error: unauthenticated"):
		return "Redis refused the credentials: the server requires a password; give the user and password in the Redis URL (redis://user:password@host:port)"
	case code == "WRONGPASS" || strings.Contains(msg, "invalid password") || strings.Contains(msg, "invalid username-password"):
		return "Redis refused the credentials: check the user and password in the Redis URL (redis://user:password@host:port)"
	case strings.Contains(msg, "cluster support disabled"):
		return "the server is not a Redis Cluster: use a redis:// (or rediss://) URL for a single server, redis+cluster:// only for a cluster"
	case code == "MISCONF":
		return "the server refuses writes because it cannot persist its data: fix its disk or persistence settings (see the server's log)"
	case code == "NOSCRIPT" || (code == "ERR" && (strings.Contains(msg, "unknown command") || strings.Contains(msg, "scripting is disabled"))):
		return "the server does not run Lua scripts (EVAL, EVALSHA): modpipe needs Redis 7 or a compatible server with scripting enabled"
	}
	return ""
}

// scriptFailed reports a Lua runtime error: a script met data it cannot
// read (the scripts themselves only fail on malformed records).
func scriptFailed(msg string) bool {
	return strings.Contains(msg, "user_script:") || strings.Contains(msg, "Error running script")
}

// classify turns the final error of an operation into a fatal one when it
// is; transient and unknown errors come back unchanged (nil, false).
func (c *Coordinator) classify(op string, err error) (error, bool) {
	if errors.Is(err, distributed.ErrCorrupt) || errors.Is(err, distributed.ErrRefused) {
		return err, true
	}
	msg := serverError(err)
	if msg == "" {
		return nil, false
	}
	if transientReply(msg) {
		return nil, false
	}
	if hint := c.refusal(msg); hint != "" {
		return fmt.Errorf("redis coordinator: %s: %w: %s: the server said %q", op, distributed.ErrRefused, hint, c.redactText(msg)), true
	}
	if strings.HasPrefix(msg, "WRONGTYPE") || scriptFailed(msg) {
		dctx, cancel := context.WithTimeout(context.Background(), c.opts.OperationTimeout)
		defer cancel()
		if cerr := c.findCorrupt(dctx); cerr != nil {
			return fmt.Errorf("redis coordinator: %s: %w", op, cerr), true
		}
		return fmt.Errorf("redis coordinator: %s: %w: the server said %q; a key of run %q was changed by something other than modpipe; start a new run id", op, distributed.ErrCorrupt, msg, c.RunID()), true
	}
	return nil, false
}

// latch records the first fatal error.
func (c *Coordinator) latch(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fatal == nil {
		c.fatal = err
		if c.dead != nil {
			close(c.dead) // waiters learn it at once
		}
	}
}

// failed returns the latched fatal error, if any.
func (c *Coordinator) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fatal
}

// fail latches err when it is fatal (corrupt data) and returns it.
func (c *Coordinator) fail(err error) error {
	if err != nil && (errors.Is(err, distributed.ErrCorrupt) || errors.Is(err, distributed.ErrRefused)) {
		c.latch(err)
	}
	return err
}

// redactText removes the Redis URL's secrets from a message.
func (c *Coordinator) redactText(s string) string {
	return redact.String(s, c.rawURL)
}

// transientReply reports a server reply a later retry may not get.
func transientReply(msg string) bool {
	for _, p := range transientPrefixes {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// waitEvents waits until the run's channel is subscribed; a refusal by the
// server is fatal.
func (c *Coordinator) waitEvents(ctx context.Context) error {
	err := c.events.waitReady(ctx)
	if err == nil || ctx.Err() != nil {
		return err
	}
	if fatal, ok := c.classify("subscribing to "+c.keys.events(), err); ok {
		return c.fail(fatal)
	}
	return c.describe("subscribing to "+c.keys.events(), err)
}
