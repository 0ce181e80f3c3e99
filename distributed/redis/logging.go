package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/internal/redact"
)

// go-redis prints its own diagnostics ("pool.go: failed to dial after 5
// attempts: ...") through one process-wide logger, straight to stderr by
// default, and v9 has no per-client logger. modpipe installs, once per
// process, a router with no state of its own: each line goes to the logger
// of the coordinator whose call produced it (found in the call's context),
// redacted, at debug level; lines from no coordinator's call go to
// slog.Default at debug level. The errors behind those lines reach modpipe
// anyway, described, through the calls that failed.
var routeClientLogs = sync.OnceFunc(func() { goredis.SetLogger(logRouter{}) })

type logKey struct{}

// clientLog is what a coordinator puts in the contexts of its calls.
type clientLog struct {
	logger *slog.Logger
	url    string // redacted from the lines
}

type logRouter struct{}

// Printf implements go-redis's logging interface.
func (logRouter) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	if ctx == nil {
		ctx = context.Background()
	}
	if cl, ok := ctx.Value(logKey{}).(*clientLog); ok {
		cl.logger.Debug("redis client: "+redact.String(msg, cl.url), "source", "go-redis")
		return
	}
	slog.Default().Debug("redis client: "+redact.String(msg), "source", "go-redis")
}

// logCtx tags ctx so that go-redis lines caused by the call reach this
// coordinator's logger.
func (c *Coordinator) logCtx(ctx context.Context) context.Context {
	if c.log == nil {
		return ctx
	}
	return context.WithValue(ctx, logKey{}, c.log)
}
