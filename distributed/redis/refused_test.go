package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/distributed/redis"
	"github.com/modpipe/modpipe/internal/redistest"
)

// TestPermanentErrorsFailAtOnce: lasting refusals by the server are not
// ridden out as outages (OutageTolerance is a minute here): they fail at
// once with the server's own words, what to do, and distributed.ErrRefused
// (or distributed.ErrCorrupt naming the key, for WRONGTYPE).
func TestPermanentErrorsFailAtOnce(t *testing.T) {
	bg := context.Background()
	cases := []struct {
		name string
		// setup returns the URL to use and, optionally, what to break once
		// the instance has registered.
		setup    func(t *testing.T) (url string, runID string, after func())
		sentinel error
		want     []string
	}{
		{"OOM under maxmemory", func(t *testing.T) (string, string, func()) {
			srv := redistest.Start(t)
			return srv.URL(), newRunID(), func() {
				raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
				defer raw.Close()
				if err := raw.ConfigSet(bg, "maxmemory", "1").Err(); err != nil {
					t.Fatal(err)
				}
			}
		}, distributed.ErrRefused, []string{"OOM command not allowed", "raise maxmemory"}},
		{"READONLY replica", func(t *testing.T) (string, string, func()) {
			primary := redistest.Start(t)
			replica := redistest.Start(t, redistest.ReplicaOf(primary.Addr()))
			return replica.URL(), newRunID(), nil
		}, distributed.ErrRefused, []string{"READONLY", "point the Redis URL at the primary"}},
		{"NOPERM without EVAL", func(t *testing.T) (string, string, func()) {
			srv := redistest.Start(t)
			raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
			defer raw.Close()
			if err := raw.Do(bg, "ACL", "SETUSER", "ci", "on", ">ci-pass-9", "~*", "&*", "+@all", "-eval", "-evalsha").Err(); err != nil {
				t.Fatal(err)
			}
			return "redis://ci:ci-pass-9@" + srv.Addr(), newRunID(), nil
		}, distributed.ErrRefused, []string{"NOPERM", "grant it EVAL, EVALSHA", "ACL SETUSER"}},
		{"NOAUTH", func(t *testing.T) (string, string, func()) {
			srv := redistest.Start(t, redistest.Password("pw-needed-7"))
			return srv.URL(), newRunID(), nil
		}, distributed.ErrRefused, []string{"unauthenticated", "requires a password"}},
		{"WRONGTYPE", func(t *testing.T) (string, string, func()) {
			srv := redistest.Start(t)
			runID := newRunID()
			raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
			defer raw.Close()
			if err := raw.Set(bg, "modpipe:{"+runID+"}:meta", "a string", 0).Err(); err != nil {
				t.Fatal(err)
			}
			return srv.URL(), runID, nil
		}, distributed.ErrCorrupt, []string{"modpipe:{", "}:meta: holds a string, not a hash", "start a new run id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url, runID, after := tc.setup(t)
			c := redis.NewCoordinator(redis.Options{URL: url, RunID: runID, OutageTolerance: time.Minute})
			defer c.Close()
			cctx, cancel := context.WithTimeout(bg, 2*time.Minute)
			defer cancel()
			start := time.Now()
			err := c.Register(cctx, reg(0))
			if after != nil {
				if err != nil {
					t.Fatalf("registering before the fault: %v", err)
				}
				after()
				start = time.Now()
				_, err = c.Heartbeat(cctx, 0)
			}
			took := time.Since(start)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("got %v; want an error wrapping %v", err, tc.sentinel)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if took > 20*time.Second {
				t.Errorf("failed only after %s (retried as an outage)", took)
			}
			// Latched: later calls fail the same way without a round trip.
			if _, err2 := c.Leases(cctx); !errors.Is(err2, tc.sentinel) {
				t.Errorf("a later call: %v", err2)
			}
		})
	}
}

// TestBusyServerIsRiddenOut: BUSY (a script running too long on the
// server) is transient: the call keeps retrying and succeeds once the
// server is free again, as for an outage.
func TestBusyServerIsRiddenOut(t *testing.T) {
	bg := context.Background()
	srv := redistest.Start(t, redistest.Option{"--busy-reply-threshold", "50"})
	hog := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), ReadTimeout: -1, MaxRetries: -1})
	defer hog.Close()
	probe := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), MaxRetries: -1})
	defer probe.Close()
	hogDone := make(chan error, 1)
	go func() { hogDone <- hog.Eval(bg, "while true do end", nil).Err() }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if err := probe.Ping(bg).Err(); err != nil && strings.HasPrefix(err.Error(), "BUSY") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never became busy")
		}
	}
	c := redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: newRunID(), OutageTolerance: time.Minute})
	defer c.Close()
	done := make(chan error, 1)
	go func() { done <- c.Register(ctx(t), reg(0)) }()
	// Let the registration meet BUSY a few times, then free the server.
	for deadline := time.Now().Add(20 * time.Second); c.Commands() < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the registration did not retry: %d commands", c.Commands())
		}
	}
	select {
	case err := <-done:
		t.Fatalf("registration ended while the server was busy: %v", err)
	default:
	}
	if err := probe.Do(bg, "SCRIPT", "KILL").Err(); err != nil {
		t.Fatal(err)
	}
	<-hogDone
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("registration after the server was free again: %v", err)
		}
	case <-time.After(50 * time.Second):
		t.Fatal("registration still retrying after the server was free again")
	}
}
