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

func reg(i int) distributed.Registration {
	return distributed.Registration{Instance: i, Total: 2, Fingerprint: "fp", Session: "s", Capabilities: []string{"linux"}}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// connectErr registers against url and returns the error.
func connectErr(t *testing.T, url string) error {
	t.Helper()
	c := redis.NewCoordinator(redis.Options{URL: url, RunID: newRunID(), OutageTolerance: 500 * time.Millisecond, ConnectTimeout: time.Second})
	defer c.Close()
	return c.Register(ctx(t), reg(0))
}

func TestWrongPassword(t *testing.T) {
	srv := redistest.Start(t, redistest.Password("right-horse-battery"))
	err := connectErr(t, "redis://:wrong-s3cret-pw@"+srv.Addr())
	if err == nil || !strings.Contains(err.Error(), "refused the credentials") {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-s3cret-pw") {
		t.Errorf("the error shows the password: %v", err)
	}
	if err := connectErr(t, "redis://:right-horse-battery@"+srv.Addr()); err != nil {
		t.Errorf("right password: %v", err)
	}
}

func TestUnreachableHost(t *testing.T) {
	srv := redistest.Start(t)
	addr := srv.Addr()
	srv.Stop()
	start := time.Now()
	err := connectErr(t, "redis://user:hunter2-secret@"+addr)
	if err == nil || !strings.Contains(err.Error(), "cannot reach Redis at redis://user:xxxxx@"+addr) {
		t.Fatalf("unreachable: %v", err)
	}
	if strings.Contains(err.Error(), "hunter2-secret") {
		t.Errorf("the error shows the password: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("gave up only after %s", d)
	}
}

func TestTLSMismatch(t *testing.T) {
	srv := redistest.Start(t)
	err := connectErr(t, "rediss://"+srv.Addr())
	if err == nil || !strings.Contains(err.Error(), "no TLS session with rediss://"+srv.Addr()+" (rediss://): if the server does not speak TLS, use redis://") {
		t.Fatalf("rediss:// to a plain server: %v", err)
	}
}

func TestMissingURLAndRunID(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	t.Setenv("MODPIPE_REDIS_URL", "")
	t.Setenv("MODPIPE_RUN_ID", "")
	t.Setenv("GITHUB_RUN_ID", "")
	c := redis.NewCoordinator(redis.Options{RunID: "x"})
	if err := c.BindRun(distributed.RunBinding{}); err == nil || !strings.Contains(err.Error(), "no Redis URL") {
		t.Errorf("no URL: %v", err)
	}
	c = redis.NewCoordinator(redis.Options{URL: "redis://127.0.0.1:1"})
	if err := c.BindRun(distributed.RunBinding{}); err == nil || !strings.Contains(err.Error(), "no run id") {
		t.Errorf("no run id: %v", err)
	}
	t.Setenv("GITHUB_RUN_ID", "777")
	t.Setenv("GITHUB_RUN_ATTEMPT", "2")
	c = redis.NewCoordinator(redis.Options{URL: "redis://127.0.0.1:1"})
	if err := c.BindRun(distributed.RunBinding{}); err != nil || c.RunID() != "777-2" {
		t.Errorf("GitHub run id: %v %q", err, c.RunID())
	}
	c.Close()
	c = redis.NewCoordinator(redis.Options{})
	if err := c.BindRun(distributed.RunBinding{URL: "redis://:pw-in-url@[bad", RunID: "r"}); err == nil || strings.Contains(err.Error(), "pw-in-url") {
		t.Errorf("bad URL: %v", err)
	}
}

// TestMalformedEntries writes garbage into a run's keys by hand: every read
// reports it clearly, nothing panics, and valid data stays usable.
func TestMalformedEntries(t *testing.T) {
	srv := redistest.Start(t)
	runID := newRunID()
	c := redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: runID})
	defer c.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Register(ctx(t), reg(0)))
	must(c.Enqueue(ctx(t), distributed.Assignment{Module: "good", Attempt: 1}))
	cl, err := c.Claim(ctx(t), 0, nil)
	must(err)

	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer raw.Close()
	base := "modpipe:{" + runID + "}:"
	must(raw.HSet(ctx(t), base+"lease", "evil", "{not json").Err())
	must(raw.HSet(ctx(t), base+"inst", "7", `{"caps":"not-a-list"}`).Err())
	must(raw.HSet(ctx(t), base+"res", "forged", `{"module":"forged","status":"exploded","lease":{"module":"forged","token":"t"}}`).Err())

	check := func(what, key string, err error) {
		t.Helper()
		if !errors.Is(err, distributed.ErrCorrupt) || !strings.Contains(err.Error(), "malformed data in Redis") || !strings.Contains(err.Error(), "start a new run id") ||
			!strings.Contains(err.Error(), key) {
			t.Errorf("%s with a malformed entry: %v; want ErrCorrupt naming %s", what, err, key)
		}
	}
	// Each read on a fresh coordinator (a coordinator that met corrupt
	// data keeps failing with that first error).
	fresh := func() *redis.Coordinator {
		c := redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: runID})
		t.Cleanup(func() { c.Close() })
		return c
	}
	_, err = c.Leases(ctx(t))
	check("Leases", base+"lease field evil", err)
	_, err = fresh().Instances(ctx(t))
	check("Instances", base+"inst field 7", err)
	_, err = fresh().AwaitResult(ctx(t), "forged")
	check("AwaitResult", base+"res field forged", err)
	err = c.Publish(ctx(t), distributed.Result{Module: "good", Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: []byte(`1`)})
	check("Publish after a corrupt read (latched)", base+"lease field evil", err)

	// Repair the hand-written keys: the run's own data was not lost.
	must(raw.HDel(ctx(t), base+"lease", "evil").Err())
	must(raw.HDel(ctx(t), base+"inst", "7").Err())
	c = fresh()
	must(c.Publish(ctx(t), distributed.Result{Module: "good", Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: []byte(`1`)}))
	r, err := c.AwaitResult(ctx(t), "good")
	if err != nil || string(r.Value) != "1" {
		t.Errorf("valid result after the repair: %v %s", err, r.Value)
	}
	must(raw.HSet(ctx(t), base+"meta", "state", "exploded").Err())
	if _, err := c.State(ctx(t)); err == nil || !strings.Contains(err.Error(), `unknown state "exploded"`) {
		t.Errorf("State with a malformed state: %v", err)
	}
}

func TestFinishedRunIDIsRefused(t *testing.T) {
	srv := redistest.Start(t)
	runID := newRunID()
	c := redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: runID})
	defer c.Close()
	if err := c.Register(ctx(t), reg(0)); err != nil {
		t.Fatal(err)
	}
	if err := c.Complete(ctx(t), false); err != nil {
		t.Fatal(err)
	}
	c2 := redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: runID})
	defer c2.Close()
	err := c2.Register(ctx(t), reg(0))
	if !errors.Is(err, distributed.ErrRunEnded) || !strings.Contains(err.Error(), "never reused") {
		t.Errorf("reusing a finished run id: %v", err)
	}
}

func TestCompletedRunKeysCleanedUpAndExpire(t *testing.T) {
	srv := redistest.Start(t)
	runID := newRunID()
	c := redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: runID, KeyTTL: time.Hour})
	defer c.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Register(ctx(t), reg(0)))
	must(c.Enqueue(ctx(t), distributed.Assignment{Module: "m", Attempt: 1, Requires: []string{"linux"}}))
	cl, err := c.Claim(ctx(t), 0, []string{"linux"})
	must(err)
	must(c.Publish(ctx(t), distributed.Result{Module: "m", Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: []byte(`"v"`)}))
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer raw.Close()
	keys, _ := raw.Keys(ctx(t), "modpipe:{"+runID+"}:*").Result()
	for _, k := range keys {
		if ttl, _ := raw.PTTL(ctx(t), k).Result(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("key %s has TTL %s, want up to 1h", k, ttl)
		}
	}
	must(c.Complete(ctx(t), false))
	left, _ := raw.Keys(ctx(t), "modpipe:{"+runID+"}:*").Result()
	if len(left) == 0 {
		t.Fatal("no key left after completion: the finished run id would be reusable at once")
	}
	for _, k := range left {
		if !strings.HasSuffix(k, ":meta") && !strings.HasSuffix(k, ":inst") && !strings.HasSuffix(k, ":beat") {
			t.Errorf("key %s left after completion", k)
		}
		// What stays must still expire: no key of a finished run lives
		// for ever.
		if ttl, err := raw.PTTL(ctx(t), k).Result(); err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("key %s has TTL %s after completion (%v), want up to 1h", k, ttl, err)
		}
	}
}
