package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/redistest"
)

// pcRun is a run with a master (instance 0) and a worker (instance 1,
// capability "w") on srv, and n assignments m0..m<n-1> requiring "w"
// queued by the master.
func pcRun(t *testing.T, url, runID string, n int) (master, worker *Coordinator, ctx context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	master = NewCoordinator(Options{URL: url, RunID: runID})
	worker = NewCoordinator(Options{URL: url, RunID: runID})
	t.Cleanup(func() { _ = master.Close(); _ = worker.Close() })
	if err := master.Register(ctx, distributed.Registration{Instance: 0, Total: 3, Capabilities: []string{distributed.MasterCapability}, Fingerprint: "fp", Session: "s0", LeaseTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := worker.Register(ctx, distributed.Registration{Instance: 1, Total: 3, Capabilities: []string{"w"}, Fingerprint: "fp", Session: "s1", LeaseTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	as := make([]distributed.Assignment, n)
	for i := range as {
		as[i] = distributed.Assignment{Module: fmt.Sprintf("m%d", i), Attempt: 1, Requires: []string{"w"}, Priority: int64(n - i)}
	}
	if n > 0 {
		if err := master.EnqueueBatch(ctx, as); err != nil {
			t.Fatal(err)
		}
	}
	return master, worker, ctx
}

func succeeded(cl distributed.Claim) distributed.Result {
	return distributed.Result{Module: cl.Assignment.Module, Lease: cl.Lease, Status: distributed.StatusSucceeded,
		Value: []byte(`"` + cl.Assignment.Module + `"`), Attempts: 1, Duration: time.Millisecond, QueueWait: cl.QueueWait, Log: []byte("log of " + cl.Assignment.Module)}
}

func results(cls []distributed.Claim) []distributed.Result {
	rs := make([]distributed.Result, len(cls))
	for i, cl := range cls {
		rs[i] = succeeded(cl)
	}
	return rs
}

func modules(cls []distributed.Claim) string {
	var names []string
	for _, cl := range cls {
		names = append(names, cl.Assignment.Module)
	}
	return strings.Join(names, ",")
}

// tokensConsistent checks that the wake-up list of queue rk holds one
// token per queued assignment.
func tokensConsistent(t *testing.T, ctx context.Context, admin *goredis.Client, c *Coordinator, rk string) {
	t.Helper()
	q, err1 := admin.ZCard(ctx, c.keys.queue(rk)).Result()
	w, err2 := admin.LLen(ctx, c.keys.wake(rk)).Result()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if q != w {
		t.Errorf("queue %s holds %d assignments but %d wake-up tokens", rk, q, w)
	}
}

// TestPublishAndClaim: the results of a worker's batch are accepted,
// announced (the master hears them: AwaitResult answers from the
// announcement) and their leases end; the same trip takes the next
// assignments, best first, with fresh leases that fence later publishes;
// a result with a stale lease is refused and changes nothing; the wake-up
// tokens stay one per queued assignment, so a claimer blocked elsewhere
// still wakes for the work left.
func TestPublishAndClaim(t *testing.T) {
	srv := redistest.Start(t)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	master, worker, ctx := pcRun(t, srv.URL(), "pc", 7)
	first, err := worker.ClaimBatch(ctx, 1, []string{"w"}, 2)
	if err != nil || modules(first) != "m0,m1" {
		t.Fatalf("first claim: %s, %v", modules(first), err)
	}
	rs := results(first)
	stale := succeeded(first[0])
	stale.Lease.Token += "x"
	rs = append(rs, stale)
	errs, next, err := worker.PublishAndClaim(ctx, rs, 1, []string{"w"}, 3)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], distributed.ErrStaleLease) {
		t.Fatalf("publish errors %v, want nil, nil, ErrStaleLease", errs)
	}
	if modules(next) != "m2,m3,m4" {
		t.Fatalf("claimed %s, want m2,m3,m4 (best first)", modules(next))
	}
	for _, cl := range next {
		if cl.Lease.Holder != 1 || cl.Lease.Session != "s1" || cl.Lease.Attempt != 1 || cl.Lease.Token == "" {
			t.Errorf("lease of %s: %+v", cl.Assignment.Module, cl.Lease)
		}
	}
	for _, cl := range first {
		got, err := master.AwaitResult(ctx, cl.Assignment.Module)
		if err != nil || string(got.Value) != `"`+cl.Assignment.Module+`"` {
			t.Errorf("result of %s: %+v, %v", cl.Assignment.Module, got, err)
		}
		if !decodedOnArrival(master, cl.Assignment.Module) {
			t.Errorf("the result of %s was not announced to the master", cl.Assignment.Module)
		}
	}
	ls, err := master.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, l := range ls {
		held = append(held, l.Module)
	}
	if strings.Join(held, ",") != "m2,m3,m4" {
		t.Errorf("leases held: %v, want m2,m3,m4 (published ones end, claimed ones begin)", held)
	}
	tokensConsistent(t, ctx, admin, worker, "w")

	// The new leases fence: the master takes m2 back, after which the
	// worker's result for it is stale and the rest are accepted.
	if err := master.Reclaim(ctx, next[0].Lease, nil); err != nil {
		t.Fatal(err)
	}
	errs, more, err := worker.PublishAndClaim(ctx, results(next), 1, []string{"w"}, 1)
	if err != nil || !errors.Is(errs[0], distributed.ErrStaleLease) || errs[1] != nil || errs[2] != nil {
		t.Fatalf("publish after reclaim: %v (claim %v), want ErrStaleLease, nil, nil", errs, err)
	}
	if modules(more) != "m5" {
		t.Fatalf("claimed %s, want m5", modules(more))
	}
	tokensConsistent(t, ctx, admin, worker, "w")

	// A claimer blocked in another process wakes for the one left.
	other := NewCoordinator(Options{URL: srv.URL(), RunID: "pc"})
	t.Cleanup(func() { _ = other.Close() })
	if err := other.Register(ctx, distributed.Registration{Instance: 2, Total: 3, Capabilities: []string{"w"}, Fingerprint: "fp", Session: "s2", LeaseTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	got, err := other.Claim(ctx, 2, []string{"w"})
	if err != nil || got.Assignment.Module != "m6" {
		t.Fatalf("blocked claimer got %q, %v; want m6", got.Assignment.Module, err)
	}
	// Nothing left: the worker does not wait.
	errs, none, err := worker.PublishAndClaim(ctx, results(more), 1, []string{"w"}, 8)
	if err != nil || errs[0] != nil || len(none) != 0 {
		t.Fatalf("with nothing queued: %v, %s, %v", errs, modules(none), err)
	}
	tokensConsistent(t, ctx, admin, worker, "w")
}

// TestPublishAndClaimWakesOnlyForWorkLeft: a claimer blocked before the
// work was queued, and a worker taking part of it with PublishAndClaim,
// share it without a lost wake-up: the blocked one gets the rest.
func TestPublishAndClaimWakesOnlyForWorkLeft(t *testing.T) {
	srv := redistest.Start(t)
	master, worker, ctx := pcRun(t, srv.URL(), "pc-wake", 0)
	other := NewCoordinator(Options{URL: srv.URL(), RunID: "pc-wake"})
	t.Cleanup(func() { _ = other.Close() })
	if err := other.Register(ctx, distributed.Registration{Instance: 2, Total: 3, Capabilities: []string{"w"}, Fingerprint: "fp", Session: "s2", LeaseTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	got := make(chan distributed.Claim, 1)
	failed := make(chan error, 1)
	go func() {
		cl, err := other.Claim(ctx, 2, []string{"w"})
		if err != nil {
			failed <- err
			return
		}
		got <- cl
	}()
	if err := master.EnqueueBatch(ctx, []distributed.Assignment{{Module: "a", Attempt: 1, Requires: []string{"w"}, Priority: 2}, {Module: "b", Attempt: 1, Requires: []string{"w"}, Priority: 1}}); err != nil {
		t.Fatal(err)
	}
	_, mine, err := worker.PublishAndClaim(ctx, nil, 1, []string{"w"}, 1)
	if err != nil || len(mine) > 1 {
		t.Fatalf("PublishAndClaim: %s, %v", modules(mine), err)
	}
	select {
	case cl := <-got:
		if len(mine) == 1 && cl.Assignment.Module == mine[0].Assignment.Module {
			t.Fatalf("%s was claimed twice", cl.Assignment.Module)
		}
		if len(mine) == 0 {
			// The blocked claimer was first; the worker's next trip gets the other.
			if _, rest, err := worker.PublishAndClaim(ctx, nil, 1, []string{"w"}, 1); err != nil || len(rest) != 1 || rest[0].Assignment.Module == cl.Assignment.Module {
				t.Fatalf("the rest: %s, %v", modules(rest), err)
			}
		}
	case err := <-failed:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("the blocked claimer did not wake for the assignment left")
	}
}

// TestPublishAndClaimRefusals: the claim half follows ClaimBatch's rules
// (an unregistered or lost instance, an ended run: no claims, the error
// says why) while the publications of the same trip stand.
func TestPublishAndClaimRefusals(t *testing.T) {
	srv := redistest.Start(t)
	master, worker, ctx := pcRun(t, srv.URL(), "pc-refused", 4)
	cls, err := worker.ClaimBatch(ctx, 1, []string{"w"}, 3)
	if err != nil || len(cls) != 3 {
		t.Fatalf("claim: %d, %v", len(cls), err)
	}
	// Another process takes over index 1 after the lease timeout: the
	// old one is replaced; its result of m0 still counts (its lease is
	// current), its claim does not.
	if _, err := worker.Heartbeat(ctx, 1); err != nil {
		t.Fatal(err)
	}
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	// Make instance 1's registration lost (its last heartbeat long ago).
	if err := admin.HSet(ctx, worker.keys.beat(), "1", 1).Err(); err != nil {
		t.Fatal(err)
	}
	errs, got, err := worker.PublishAndClaim(ctx, results(cls[:1]), 1, []string{"w"}, 2)
	if !errors.Is(err, distributed.ErrNotRegistered) || len(got) != 0 {
		t.Fatalf("lost instance: claimed %s, %v; want ErrNotRegistered", modules(got), err)
	}
	if errs[0] != nil {
		t.Fatalf("the result of a lost instance's current lease: %v", errs[0])
	}
	if r, err := master.AwaitResult(ctx, "m0"); err != nil || r.Module != "m0" {
		t.Fatalf("m0: %+v, %v", r, err)
	}
	// An instance that never registered takes nothing.
	if _, got, err := worker.PublishAndClaim(ctx, nil, 7, []string{"w"}, 2); !errors.Is(err, distributed.ErrNotRegistered) || len(got) != 0 {
		t.Fatalf("unregistered instance: %s, %v", modules(got), err)
	}
	// Back alive (a heartbeat), then the run is cancelled: the claim
	// says the run ended, the result is accepted.
	if _, err := worker.Heartbeat(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := master.Cancel(ctx, 0, "stop"); err != nil {
		t.Fatal(err)
	}
	errs, got, err = worker.PublishAndClaim(ctx, results(cls[1:2]), 1, []string{"w"}, 2)
	if !errors.Is(err, distributed.ErrRunEnded) || len(got) != 0 || errs[0] != nil {
		t.Fatalf("cancelled run: %v, claimed %s, %v; want nil, none, ErrRunEnded", errs, modules(got), err)
	}
	if r, err := master.AwaitResult(ctx, "m1"); err != nil || r.Module != "m1" {
		t.Fatalf("m1: %+v, %v", r, err)
	}
}

// TestRetriedPublishAndClaimGetsTheSameAnswer: the script run again with
// the same arguments (its reply was lost) answers what it answered the
// first time: its results ok (not stale), announced once, the same
// claims, and nothing more taken.
func TestRetriedPublishAndClaimGetsTheSameAnswer(t *testing.T) {
	srv := redistest.Start(t)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	_, worker, ctx := pcRun(t, srv.URL(), "pc-retry", 6)
	cls, err := worker.ClaimBatch(ctx, 1, []string{"w"}, 2)
	if err != nil || len(cls) != 2 {
		t.Fatalf("claim: %d, %v", len(cls), err)
	}
	sub := admin.Subscribe(ctx, worker.keys.results())
	t.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	rs := results(cls)
	errs := make([]error, len(rs))
	args, sent := worker.publishArgs(rs, errs, []any{1, "req", 0, "0", 3, "s1", 1})
	if len(sent) != 2 {
		t.Fatalf("sent %v (%v)", sent, errs)
	}
	run := func() string {
		v, err := worker.run(ctx, scriptPublishClaim, worker.keys.with([]string{"w"}, worker.keys.ctl("req")), args...)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(v)
	}
	first, again := run(), run()
	if !strings.HasPrefix(first, "[[ok ok] [ok ") {
		t.Fatalf("first run: %s", first)
	}
	if first != again {
		t.Errorf("retried run answered %s, first %s", again, first)
	}
	if n, err := admin.ZCard(ctx, worker.keys.queue("w")).Result(); err != nil || n != 1 {
		t.Errorf("left in the queue: %d, %v; want 1", n, err)
	}
	tokensConsistent(t, ctx, admin, worker, "w")
	// One announcement for the batch, none for the retry.
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || !strings.HasPrefix(msg.Payload, "b:") {
		t.Fatalf("announcement: %v, %v", msg, err)
	}
	if err := admin.Publish(ctx, worker.keys.results(), "marker").Err(); err != nil {
		t.Fatal(err)
	}
	if msg, err := sub.ReceiveMessage(ctx); err != nil || msg.Payload != "marker" {
		t.Fatalf("after the retry: %v, %v; want only the marker", msg, err)
	}
}

// TestClusterPublishAndClaim: on a 3-master Redis Cluster, the one script
// declares every key it touches (all in the run's slot), so publishing
// and claiming in one trip works there too.
func TestClusterPublishAndClaim(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	master, worker, ctx := pcRun(t, cl.URL(), "pc-cluster", 5)
	first, err := worker.ClaimBatch(ctx, 1, []string{"w"}, 2)
	if err != nil || modules(first) != "m0,m1" {
		t.Fatalf("first claim: %s, %v", modules(first), err)
	}
	errs, next, err := worker.PublishAndClaim(ctx, results(first), 1, []string{"w"}, 8)
	if err != nil || errs[0] != nil || errs[1] != nil || modules(next) != "m2,m3,m4" {
		t.Fatalf("PublishAndClaim: %v, %s, %v", errs, modules(next), err)
	}
	for _, m := range []string{"m0", "m1"} {
		if r, err := master.AwaitResult(ctx, m); err != nil || r.Module != m {
			t.Fatalf("%s: %+v, %v", m, r, err)
		}
	}
}

// TestPublishFencesTokensWithQuotes: publish compares the lease record's
// beginning with the one the result's token makes; a token that JSON
// would escape (one that is no lease's, but whose raw text could extend a
// real token into the record's next field) is stale, not a match.
func TestPublishFencesTokensWithQuotes(t *testing.T) {
	srv := redistest.Start(t)
	_, worker, ctx := pcRun(t, srv.URL(), "pc-quotes", 1)
	cls, err := worker.ClaimBatch(ctx, 1, []string{"w"}, 1)
	if err != nil || len(cls) != 1 {
		t.Fatalf("claim: %d, %v", len(cls), err)
	}
	for _, forged := range []string{cls[0].Lease.Token + `","attempt`, cls[0].Lease.Token + `"`, cls[0].Lease.Token + `\`} {
		r := succeeded(cls[0])
		r.Lease.Token = forged
		if err := worker.Publish(ctx, r); !errors.Is(err, distributed.ErrStaleLease) {
			t.Errorf("token %q: %v, want ErrStaleLease", forged, err)
		}
	}
	if err := worker.Publish(ctx, succeeded(cls[0])); err != nil {
		t.Fatalf("the real token: %v", err)
	}
}

// TestAnnouncementOfLargeResults: a result too large to travel is
// announced by name only (length -1), next to a small one that travels,
// and alone as "r:<module>"; the master reads the large ones back.
func TestAnnouncementOfLargeResults(t *testing.T) {
	srv := redistest.Start(t)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	master, worker, ctx := pcRun(t, srv.URL(), "pc-large", 3)
	cls, err := worker.ClaimBatch(ctx, 1, []string{"w"}, 3)
	if err != nil || len(cls) != 3 {
		t.Fatalf("claim: %d, %v", len(cls), err)
	}
	sub := admin.Subscribe(ctx, worker.keys.results(), worker.keys.names())
	t.Cleanup(func() { _ = sub.Close() })
	for range 2 {
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rs := results(cls)
	big := strings.Repeat("x", maxAnnounced)
	rs[1].Log = []byte(big)
	rs[2].Log = []byte(big)
	for _, err := range worker.PublishBatch(ctx, rs[:2]) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := worker.Publish(ctx, rs[2]); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for range 4 {
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got[msg.Channel] += msg.Payload + "|"
	}
	small, _ := admin.HGet(ctx, worker.keys.res(), "m0").Result()
	wantResults := "b:2:m0" + fmt.Sprint(len(small)) + ":" + small + "2:m1-1:|r:m2|"
	if got[worker.keys.results()] != wantResults {
		t.Errorf("results channel: %.200q..., want %.200q...", got[worker.keys.results()], wantResults)
	}
	if want := "b:2:m0-1:2:m1-1:|r:m2|"; got[worker.keys.names()] != want {
		t.Errorf("names channel: %q, want %q", got[worker.keys.names()], want)
	}
	for _, m := range []string{"m0", "m1", "m2"} {
		r, err := master.AwaitResult(ctx, m)
		if err != nil || r.Module != m {
			t.Fatalf("%s: %v", m, err)
		}
		if m != "m0" && string(r.Log) != big {
			t.Errorf("%s: log of %d bytes, want %d", m, len(r.Log), len(big))
		}
	}
}
