package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/distributed/redis"
	"github.com/modpipe/modpipe/internal/redistest"
)

// TestURLSecretsNeverPrinted tries every error path of connecting with a
// password in the URL's userinfo and in its query: the error explains the
// problem and never shows the password.
func TestURLSecretsNeverPrinted(t *testing.T) {
	const pw = "Zq-s3cret-9"
	plain := redistest.Start(t)
	auth := redistest.Start(t, redistest.Password("the-right-one"))
	stopped := redistest.Start(t)
	down := stopped.Addr()
	stopped.Stop()
	cases := []struct{ name, url, want string }{
		{"bad scheme", "http://u:" + pw + "@" + plain.Addr(), "is not valid"},
		{"bad scheme, query", "http://" + plain.Addr() + "/0?password=" + pw, "is not valid"},
		{"unparsable", "redis://u:" + pw + "@[bad", "is not valid"},
		{"unparsable, query", "redis://[bad/0?password=" + pw, "is not valid"},
		{"unknown query option", "redis://" + plain.Addr() + "/0?password=" + pw, "is not valid"},
		{"unreachable host", "redis://u:" + pw + "@" + down, "cannot reach Redis at redis://u:xxxxx@" + down},
		{"unresolvable host", "redis://u:" + pw + "@no-such-host.invalid:6379", "cannot reach Redis"},
		{"wrong password", "redis://:" + pw + "@" + auth.Addr(), "refused the credentials"},
		{"wrong user and password", "redis://someone:" + pw + "@" + auth.Addr(), "refused the credentials"},
		{"TLS against a plain server", "rediss://u:" + pw + "@" + plain.Addr(), "no TLS session"},
		{"escaped password", "redis://u:" + strings.ReplaceAll(pw, "-", "%2D") + "@" + down, "cannot reach Redis"},
		{"cluster, unreachable nodes", "redis+cluster://u:" + pw + "@" + down + "," + down, "cannot reach Redis"},
		{"cluster, unknown query option", "redis+cluster://u:" + pw + "@" + plain.Addr() + "?password=" + pw, "is not valid"},
		{"cluster URL against a plain server", "redis+cluster://u:" + pw + "@" + plain.Addr(), "refused the credentials"},
		{"cluster URL, no cluster", "redis+cluster://" + plain.Addr(), "is not a Redis Cluster: use a redis://"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := redis.NewCoordinator(redis.Options{URL: tc.url, RunID: newRunID(), OutageTolerance: 500 * time.Millisecond, ConnectTimeout: time.Second})
			defer c.Close()
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := c.BindRun(distributed.RunBinding{})
			if err == nil {
				err = c.Register(cctx, reg(0))
			}
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error lacks %q: %s", tc.want, msg)
			}
			for _, leak := range []string{pw, strings.ReplaceAll(pw, "-", "%2D")} {
				if strings.Contains(msg, leak) {
					t.Errorf("the error shows the password: %s", msg)
				}
			}
		})
	}
}
