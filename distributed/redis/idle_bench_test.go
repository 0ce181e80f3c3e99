package redis_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/distributed/redis"
	"github.com/modpipe/modpipe/internal/redistest"
)

// serverStats reads INFO's total_commands_processed (every command the
// server executed, those inside scripts included; this INFO not yet), the
// calls of one command from INFO commandstats, and how many clients are
// blocked (in BLPOP).
func serverStats(tb testing.TB, c *goredis.Client, cmd string) (total, calls, blocked int64) {
	tb.Helper()
	info, err := c.Info(context.Background(), "stats", "commandstats", "clients").Result()
	if err != nil {
		tb.Fatalf("INFO: %v", err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			total, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "blocked_clients:"); ok {
			blocked, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
			n, _, _ := strings.Cut(v, ",")
			calls, _ = strconv.ParseInt(n, 10, 64)
		}
	}
	return total, calls, blocked
}

// BenchmarkIdleWorker measures what an idle worker costs the Redis server,
// by INFO's total_commands_processed (commands inside scripts included):
// per heartbeat, per renewal of a blocking claim (its BLPOP timing out and
// the claim script that checks again), and per minute at the defaults
// (heartbeat 10s, BlockTimeout 30s): 6 heartbeats and 2 renewals. The
// client-sent figure counts a script call as one command.
//
//	go test -run '^$' -bench IdleWorker -benchtime 200x ./distributed/redis/
//
// idleRun registers a master and a worker (BlockTimeout 1s) of a fresh
// run on srv, heartbeats each once, and returns the worker and a plain
// client for INFO.
func idleRun(tb testing.TB) (worker *redis.Coordinator, admin *goredis.Client) {
	tb.Helper()
	srv := redistest.Start(tb)
	admin = goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	tb.Cleanup(func() { _ = admin.Close() })
	ctx := context.Background()
	runID := newRunID()
	master := redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: runID})
	tb.Cleanup(func() { _ = master.Close() })
	// A short BlockTimeout (1s, the least BLPOP takes) makes renewals
	// happen often enough to count; what one costs does not depend on its
	// length.
	worker = redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: runID, BlockTimeout: time.Second})
	tb.Cleanup(func() { _ = worker.Close() })
	for i, c := range []*redis.Coordinator{master, worker} {
		reg := distributed.Registration{Instance: i, Total: 2, Capabilities: []string{"linux"}, Fingerprint: "f", Session: "s" + strconv.Itoa(i), LeaseTimeout: time.Minute}
		if err := c.Register(ctx, reg); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := master.Heartbeat(ctx, 0); err != nil {
		tb.Fatal(err)
	}
	if _, err := worker.Heartbeat(ctx, 1); err != nil {
		tb.Fatal(err) // connects the worker before counting
	}
	return worker, admin
}

// heartbeatCost is the server-side commands of one worker heartbeat,
// averaged over n.
func heartbeatCost(tb testing.TB, worker *redis.Coordinator, admin *goredis.Client, n int) (server, client float64) {
	tb.Helper()
	ctx := context.Background()
	t0, _, _ := serverStats(tb, admin, "")
	c0 := worker.Commands()
	for range n {
		p, err := worker.Heartbeat(ctx, 1)
		if err != nil || !p.MasterRegistered || p.State.Registered != 2 {
			tb.Fatalf("heartbeat: %+v, %v; want the master registered and 2 instances", p, err)
		}
	}
	t1, _, _ := serverStats(tb, admin, "")
	return float64(t1-t0-1) / float64(n), float64(worker.Commands()-c0) / float64(n) // the first INFO counts too
}

// An idle instance's heartbeat costs the server at most 8 commands (the
// script call and 7 inside it; it was 11): one HMGET per hash read.
func TestHeartbeatServerCommands(t *testing.T) {
	worker, admin := idleRun(t)
	server, client := heartbeatCost(t, worker, admin, 10)
	if client != 1 || server > 8 {
		t.Errorf("a heartbeat costs %.1f server-side commands (%.1f sent); want 1 sent and at most 8 executed", server, client)
	}
}

func BenchmarkIdleWorker(b *testing.B) {
	worker, admin := idleRun(b)
	ctx := context.Background()
	b.ResetTimer()
	perBeat, clientPerBeat := heartbeatCost(b, worker, admin, b.N)
	b.StopTimer()

	// Idle claims: nothing is queued, so each blocks, and renews (its
	// BLPOP times out, its claim script checks again, it blocks again)
	// until its context ends. idleClaim(n) ends the claim in its n-th BLPOP
	// (n claim scripts have run and it is blocked), so that the difference
	// of two claims is whole renewals: what a claim costs once (its wake-up
	// and clean-up when the context ends) cancels out.
	idleClaim := func(n int64) (server, client int64) {
		s0, e0, _ := serverStats(b, admin, "evalsha")
		infos := int64(1)
		k0 := worker.Commands()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := worker.Claim(cctx, 1, []string{"linux"})
			done <- err
		}()
		for deadline := time.Now().Add(time.Duration(n+10) * 2 * time.Second); ; {
			_, e, blocked := serverStats(b, admin, "evalsha")
			infos++
			if e-e0 > n {
				b.Fatalf("%d claim scripts ran; the benchmark missed the %d-th BLPOP", e-e0, n)
			}
			if e-e0 == n && blocked == 1 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("the idle claim did not reach its %d-th BLPOP by %s (%d claim scripts so far)", n, deadline.Format(time.TimeOnly), e-e0)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			b.Fatalf("idle claim: %v; want it to end with its context", err)
		}
		s1, _, _ := serverStats(b, admin, "")
		return s1 - s0 - infos, int64(worker.Commands() - k0)
	}
	idleClaim(1) // loads the script and warms the connection pool
	shortS, shortC := idleClaim(2)
	longS, longC := idleClaim(6)
	perRenewal := float64(longS-shortS) / 4
	clientPerRenewal := float64(longC-shortC) / 4

	b.ReportMetric(perBeat, "server-cmds/heartbeat")
	b.ReportMetric(perRenewal, "server-cmds/renewal")
	b.ReportMetric(6*perBeat+2*perRenewal, "server-cmds/idle-min")
	b.ReportMetric(6*clientPerBeat+2*clientPerRenewal, "client-cmds/idle-min")
	b.ReportMetric(0, "ns/op")
}
