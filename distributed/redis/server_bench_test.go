package redis_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/distributed/redis"
)

// serverCPU reads the server's CPU time (user + system) and, per command,
// its time from INFO commandstats (a script's including what it ran).
func serverCPU(tb testing.TB, c *goredis.Client) (cpu time.Duration, usec map[string]int64) {
	tb.Helper()
	info, err := c.Info(context.Background(), "cpu", "commandstats").Result()
	if err != nil {
		tb.Fatalf("INFO: %v", err)
	}
	usec = map[string]int64{}
	var secs float64
	for line := range strings.SplitSeq(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			f, _ := strconv.ParseFloat(v, 64)
			secs += f
		}
		if name, ok := strings.CutPrefix(k, "cmdstat_"); ok {
			_, u, _ := strings.Cut(v, "usec=")
			u, _, _ = strings.Cut(u, ",")
			usec[name], _ = strconv.ParseInt(u, 10, 64)
		}
	}
	return time.Duration(secs * float64(time.Second)), usec
}

// BenchmarkServerPerModule measures what the Redis server spends per
// module on the path every module takes: queued by the master (batches of
// 256), claimed by one worker (batches of 8) and published (batches of 8),
// one client at a time, so the server's time is not inflated by other
// processes. server-µs/module is the server's CPU time (INFO cpu);
// script-µs/module its time inside scripts (commandstats), split into
// enqueue-, claim- and publish-µs/module.
//
//	go test -run '^$' -bench ServerPerModule -benchtime 20000x ./distributed/redis/
func BenchmarkServerPerModule(b *testing.B) {
	benchServerPerModule(b, false)
}

// BenchmarkServerPerModulePublishAndClaim is BenchmarkServerPerModule
// with the worker's path of PublishClaimer: after its first claim, one
// PublishAndClaim per batch hands over the batch's results and takes the
// next 8 (trip-µs/module: the scripts' time of those calls).
func BenchmarkServerPerModulePublishAndClaim(b *testing.B) {
	benchServerPerModule(b, true)
}

func benchServerPerModule(b *testing.B, together bool) {
	worker, admin := idleRun(b)
	master := redis.NewCoordinator(redis.Options{URL: "redis://" + admin.Options().Addr, RunID: worker.RunID()})
	b.Cleanup(func() { _ = master.Close() })
	ctx := context.Background()
	if err := master.Register(ctx, distributed.Registration{Instance: 0, Total: 2, Capabilities: []string{"linux", distributed.MasterCapability}, Fingerprint: "f", Session: "s0", LeaseTimeout: time.Minute}); err != nil {
		b.Fatal(err)
	}
	as := make([]distributed.Assignment, b.N)
	for i := range as {
		as[i] = distributed.Assignment{Module: "module-" + strconv.Itoa(i), Attempt: 1, Requires: []string{"linux"}, Priority: int64(i % 7)}
	}
	cpu0, us0 := serverCPU(b, admin)
	b.ResetTimer()
	for i := 0; i < len(as); i += 256 {
		if err := master.EnqueueBatch(ctx, as[i:min(i+256, len(as))]); err != nil {
			b.Fatal(err)
		}
	}
	_, usq := serverCPU(b, admin)
	enqUs := usq["evalsha"] - us0["evalsha"]
	results := func(claims []distributed.Claim) []distributed.Result {
		rs := make([]distributed.Result, len(claims))
		for k, cl := range claims {
			rs[k] = distributed.Result{Module: cl.Assignment.Module, Lease: cl.Lease, Status: distributed.StatusSucceeded,
				Value: []byte(`{}`), Attempts: 1, Duration: time.Microsecond, QueueWait: cl.QueueWait, Log: []byte("ok\n")}
		}
		return rs
	}
	var claimUs, pubUs, tripUs int64
	if together {
		claims, err := worker.ClaimBatch(ctx, 1, []string{"linux"}, 8)
		if err != nil {
			b.Fatal(err)
		}
		_, usc := serverCPU(b, admin)
		claimUs += usc["evalsha"] - usq["evalsha"]
		for done := 0; done < b.N; {
			errs, next, err := worker.PublishAndClaim(ctx, results(claims), 1, []string{"linux"}, 8)
			if err != nil {
				b.Fatal(err)
			}
			for _, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
			done += len(claims)
			claims = next
		}
		_, us := serverCPU(b, admin)
		tripUs = us["evalsha"] - usc["evalsha"]
	} else {
		for done := 0; done < b.N; {
			claims, err := worker.ClaimBatch(ctx, 1, []string{"linux"}, 8)
			if err != nil {
				b.Fatal(err)
			}
			_, usc := serverCPU(b, admin)
			claimUs += usc["evalsha"] - usq["evalsha"]
			for _, err := range worker.PublishBatch(ctx, results(claims)) {
				if err != nil {
					b.Fatal(err)
				}
			}
			done += len(claims)
			_, usq = serverCPU(b, admin)
			pubUs += usq["evalsha"] - usc["evalsha"]
		}
	}
	b.StopTimer()
	cpu1, us1 := serverCPU(b, admin)
	perModule := func(d float64) float64 { return d / float64(b.N) }
	b.ReportMetric(perModule(float64((cpu1 - cpu0).Microseconds())), "server-µs/module")
	b.ReportMetric(perModule(float64(us1["evalsha"]-us0["evalsha"])), "script-µs/module")
	b.ReportMetric(perModule(float64(enqUs)), "enqueue-µs/module")
	b.ReportMetric(perModule(float64(claimUs)), "claim-µs/module")
	if together {
		b.ReportMetric(perModule(float64(tripUs)), "trip-µs/module")
	} else {
		b.ReportMetric(perModule(float64(pubUs)), "publish-µs/module")
	}
}
