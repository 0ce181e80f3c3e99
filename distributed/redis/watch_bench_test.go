package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/redistest"
)

// BenchmarkMasterResultPath measures the master's path of a result, per
// module: the modules are watched as the dispatcher watches them (256 per
// WatchResults, queued here while subscribed), and their results arrive
// in batch announcements of 8 (a worker's publish), handled as the
// subscriber handles a message, up to their delivery to the watcher.
// Redis is not on the path (nothing is read back); cpu-ns/module is the
// process's CPU time, GC included.
//
//	go test -run '^$' -bench MasterResultPath -benchmem ./distributed/redis/
func BenchmarkMasterResultPath(b *testing.B) {
	srv := redistest.Start(b)
	master := NewCoordinator(Options{URL: srv.URL(), RunID: fmt.Sprintf("bench-%d", time.Now().UnixNano())})
	b.Cleanup(func() { _ = master.Close() })
	ctx := context.Background()
	reg := distributed.Registration{Instance: 0, Total: 2, Capabilities: []string{distributed.MasterCapability}, Fingerprint: "fp", Session: "s0", LeaseTimeout: time.Minute}
	if err := master.Register(ctx, reg); err != nil {
		b.Fatal(err)
	}
	if err := master.follow(ctx, master.keys.results()); err != nil {
		b.Fatal(err)
	}
	names := make([]string, b.N)
	anns := make([]announcement, b.N)
	for i := range names {
		names[i] = fmt.Sprintf("module-%d", i)
		w := toWireResult(distributed.Result{Module: names[i], Status: distributed.StatusSucceeded, Value: []byte(`{}`), Attempts: 1, Duration: time.Millisecond,
			MAC:   []byte("0123456789abcdef0123456789abcdef"),
			Lease: distributed.Lease{Module: names[i], Attempt: 1, Holder: 1, Session: "0123456789abcdef01234567", Token: "89abcdef0123456789abcdef.4"}})
		w.Nonce = "0123456789abcdef01234567"
		payload, err := json.Marshal(w)
		if err != nil {
			b.Fatal(err)
		}
		anns[i] = announcement{module: names[i], payload: string(payload), hasPayload: true}
		master.markEnqueued(ctx, []distributed.Assignment{{Module: names[i], Attempt: 1}})
	}
	var msgs []*goredis.Message
	for i := 0; i < b.N; i += 8 {
		msgs = append(msgs, &goredis.Message{Channel: master.keys.results(), Payload: encodeBatch(anns[i:min(i+8, b.N)])})
	}
	delivered := 0
	deliver := func(module string, _ distributed.Result, err error) {
		if err != nil {
			b.Errorf("%s: %v", module, err)
		}
		delivered++
	}
	cpu0, cpuOK := processCPU()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += 256 {
		n := min(256, b.N-i)
		if err := master.WatchResults(ctx, names[i:i+n], deliver); err != nil {
			b.Fatal(err)
		}
		for _, m := range msgs[i/8 : (i+n+7)/8] {
			master.events.handle(m)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu1, _ := processCPU()
	if delivered != b.N {
		b.Fatalf("delivered %d results of %d", delivered, b.N)
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "ns/module")
	if cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/module")
	}
}
