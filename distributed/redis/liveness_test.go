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

// TestReplacedInstanceTakesNothing: two processes (two Coordinator values)
// present index 1 in turn. After the first is lost and replaced, its claims
// and heartbeats fail with ErrNotRegistered, also for a claim that was
// already waiting, and the work goes to the replacement.
func TestReplacedInstanceTakesNothing(t *testing.T) {
	srv := redistest.Start(t)
	runID := newRunID()
	open := func() *redis.Coordinator {
		c := redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: runID})
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := func(c *redis.Coordinator, instance int, session string, lease time.Duration) error {
		return c.Register(ctx, distributed.Registration{Instance: instance, Total: 2, Fingerprint: "fp", Session: session, LeaseTimeout: lease})
	}
	master, old, repl := open(), open(), open()
	if err := reg(master, 0, "m", time.Hour); err != nil {
		t.Fatal(err)
	}
	const lease = 100 * time.Millisecond
	start := time.Now()
	if err := reg(old, 1, "old", lease); err != nil {
		t.Fatal(err)
	}
	if err := reg(repl, 1, "new", time.Hour); !errors.Is(err, distributed.ErrIndexTaken) && time.Since(start) < lease {
		t.Fatalf("second registration of live instance 1: %v, want ErrIndexTaken", err)
	}
	// The old instance waits for work, then falls silent and is replaced.
	waiting := make(chan error, 1)
	go func() {
		cl, err := old.Claim(ctx, 1, nil)
		if err == nil {
			err = errors.New("claimed " + cl.Assignment.Module)
		}
		waiting <- err
	}()
	for {
		err := reg(repl, 1, "new", time.Hour)
		if err == nil {
			break
		}
		if !errors.Is(err, distributed.ErrIndexTaken) || ctx.Err() != nil {
			t.Fatalf("replacing lost instance 1: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(start); d < lease {
		t.Fatalf("instance 1 replaced %s after registering, before its lease timeout %s", d, lease)
	}
	if err := master.Enqueue(ctx, distributed.Assignment{Module: "m", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, distributed.ErrNotRegistered) {
		t.Fatalf("waiting claim of the replaced instance: %v, want ErrNotRegistered", err)
	}
	if _, err := old.Heartbeat(ctx, 1); !errors.Is(err, distributed.ErrNotRegistered) {
		t.Errorf("heartbeat of the replaced instance: %v, want ErrNotRegistered", err)
	}
	if _, err := old.ClaimBatch(ctx, 1, nil, 4); !errors.Is(err, distributed.ErrNotRegistered) {
		t.Errorf("batch claim of the replaced instance: %v, want ErrNotRegistered", err)
	}
	cl, err := repl.Claim(ctx, 1, nil)
	if err != nil || cl.Assignment.Module != "m" || cl.Lease.Session != "new" {
		t.Fatalf("replacement claimed %+v, %v; want m under session new", cl, err)
	}
	if _, err := repl.Heartbeat(ctx, 1); err != nil {
		t.Errorf("heartbeat of the replacement: %v", err)
	}
}

// TestCorruptRegistrationRecords: a registration record that is not JSON
// fails the scripts that check registrations with an error naming the key
// and field, instead of a Lua error.
func TestCorruptRegistrationRecords(t *testing.T) {
	srv := redistest.Start(t)
	runID := newRunID()
	c := redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: runID})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Register(ctx, distributed.Registration{Instance: 1, Total: 2, Fingerprint: "fp", Session: "w", LeaseTimeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer raw.Close()
	key := "modpipe:{" + runID + "}:inst"
	if err := raw.HSet(ctx, key, "1", "{not json").Err(); err != nil {
		t.Fatal(err)
	}
	check := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "malformed data in Redis") || !strings.Contains(err.Error(), key+" field 1") {
			t.Errorf("%s with a corrupt registration of instance 1: %v, want malformed data naming %s field 1", what, err, key)
		}
	}
	_, err := c.Heartbeat(ctx, 1)
	check("Heartbeat", err)
	_, err = c.Claim(ctx, 1, nil)
	check("Claim", err)
	err = c.Register(ctx, distributed.Registration{Instance: 0, Total: 2, Fingerprint: "fp", Session: "m", LeaseTimeout: time.Hour})
	check("Register(master)", err)
}
