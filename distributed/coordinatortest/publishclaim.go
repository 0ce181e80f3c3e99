package coordinatortest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// publishClaimerTests check PublishClaimer; Run appends them to its table.
var publishClaimerTests = []struct {
	name string
	fn   func(t *testing.T, c distributed.Coordinator)
}{
	{"PublishAndClaim", testPublishAndClaim},
	{"PublishAndClaimNeverBlocks", testPublishAndClaimNeverBlocks},
	{"PublishAndClaimRefusedClaimer", testPublishAndClaimRefusedClaimer},
	{"PublishAndClaimAfterRunEnded", testPublishAndClaimRunEnded},
	{"PublishAndClaimConcurrently", testPublishAndClaimConcurrently},
}

// testPublishAndClaim checks PublishAndClaim for coordinators that offer
// it: its publications follow PublishBatch's rules, its claims
// ClaimBatch's, and it never waits for work.
func testPublishAndClaim(t *testing.T, c distributed.Coordinator) {
	pc, ok := c.(distributed.PublishClaimer)
	if !ok {
		t.Skip("the coordinator does not implement distributed.PublishClaimer (optional: PublishBatch and ClaimBatch are enough)")
	}
	join(t, c, 1, 2)
	enqueue(t, c, "done1", 50)
	enqueue(t, c, "done2", 50)
	first := claim(t, c, 1)
	second := claim(t, c, 1)
	for i := range 4 {
		enqueue(t, c, fmt.Sprintf("n%d", i), int64(i))
	}
	enqueue(t, c, "gpu-only", 100, "gpu")
	stale := success(second, "9")
	stale.Lease.Token = "forged"
	invalid := success(second, "")
	invalid.Status = "exploded"

	errs, got, err := pc.PublishAndClaim(ctxFor(t), []distributed.Result{success(first, "1"), stale, invalid}, 1, []string{"linux"}, 3)
	must(t, err, "the claim part of PublishAndClaim")
	if len(errs) != 3 || errs[0] != nil || !errors.Is(errs[1], distributed.ErrStaleLease) || !errors.Is(errs[2], distributed.ErrInvalid) {
		t.Fatalf("PublishAndClaim errors %v, want nil, ErrStaleLease, ErrInvalid", errs)
	}
	var names []string
	tokens := map[string]bool{first.Lease.Token: true, second.Lease.Token: true}
	for _, cl := range got {
		names = append(names, cl.Assignment.Module)
		if tokens[cl.Lease.Token] || cl.Lease.Token == "" {
			t.Errorf("claim of %s has token %q, already used or empty: want a fresh one per claim", cl.Assignment.Module, cl.Lease.Token)
		}
		tokens[cl.Lease.Token] = true
		if cl.Lease.Holder != 1 || cl.Lease.Module != cl.Assignment.Module || cl.Lease.Attempt != cl.Assignment.Attempt || cl.Lease.Session != second.Lease.Session {
			t.Errorf("lease %+v for %s, want it held by instance 1 under its session %s", cl.Lease, cl.Assignment.Module, second.Lease.Session)
		}
	}
	if !slices.Equal(names, []string{"n3", "n2", "n1"}) {
		t.Fatalf("PublishAndClaim claimed %v, want [n3 n2 n1]: best first, and not gpu-only, which linux cannot take", names)
	}
	r, err := c.AwaitResult(ctxFor(t), "done1")
	must(t, err, "AwaitResult of the published result")
	if string(r.Value) != "1" || r.Lease.Token != first.Lease.Token {
		t.Errorf("accepted result of done1: value %s under token %s, want 1 under %s", r.Value, r.Lease.Token, first.Lease.Token)
	}
	leases, err := c.Leases(ctxFor(t))
	must(t, err, "Leases")
	var held []string
	for _, l := range leases {
		held = append(held, l.Module)
	}
	slices.Sort(held)
	if !slices.Equal(held, []string{"done2", "n1", "n2", "n3"}) {
		t.Errorf("leases %v, want done2 (its results were refused) and the 3 claims", held)
	}
	// The claims are fenced like any other: their results are accepted once.
	errs, more, err := pc.PublishAndClaim(ctxFor(t), []distributed.Result{success(got[0], "3"), success(got[0], "4")}, 1, []string{"linux"}, 10)
	must(t, err, "PublishAndClaim")
	if len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], distributed.ErrStaleLease) {
		t.Fatalf("two results for one lease in one call: %v, want nil then ErrStaleLease", errs)
	}
	if len(more) != 1 || more[0].Assignment.Module != "n0" {
		t.Fatalf("second claim took %d assignments (%v), want the one left that linux can take, n0", len(more), more)
	}
	if cl := claim(t, c, 2, "gpu"); cl.Assignment.Module != "gpu-only" {
		t.Errorf("gpu claimer got %s, want gpu-only", cl.Assignment.Module)
	}
}

// testPublishAndClaimNeverBlocks: with nothing to claim PublishAndClaim
// returns at once, without claims and without error; with limit 0 it only
// publishes.
func testPublishAndClaimNeverBlocks(t *testing.T, c distributed.Coordinator) {
	pc, ok := c.(distributed.PublishClaimer)
	if !ok {
		t.Skip("the coordinator does not implement distributed.PublishClaimer (optional)")
	}
	join(t, c, 1)
	enqueue(t, c, "m", 1)
	held := claim(t, c, 1)
	// A coordinator that waited for work would run into this context's
	// deadline and report it as the claim's error.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit/4)
	defer cancel()
	errs, got, err := pc.PublishAndClaim(ctx, []distributed.Result{success(held, "1")}, 1, nil, 4)
	if err != nil || len(got) != 0 || len(errs) != 1 || errs[0] != nil {
		t.Fatalf("PublishAndClaim on an empty queue: errs %v, %d claims, claim error %v; want the result accepted, no claims, no error, at once", errs, len(got), err)
	}
	errs, got, err = pc.PublishAndClaim(ctx, nil, 1, nil, 4)
	if err != nil || len(got) != 0 || len(errs) != 0 {
		t.Fatalf("PublishAndClaim of nothing on an empty queue: errs %v, %d claims, %v; want nothing and no error", errs, len(got), err)
	}
	// Limit 0 publishes and takes nothing, even with work queued.
	enqueue(t, c, "next", 1)
	enqueue(t, c, "last", 1)
	next := claim(t, c, 1)
	errs, got, err = pc.PublishAndClaim(ctxFor(t), []distributed.Result{success(next, "2")}, 1, nil, 0)
	if err != nil || len(got) != 0 || len(errs) != 1 || errs[0] != nil {
		t.Fatalf("PublishAndClaim with limit 0: errs %v, %d claims, %v; want the result accepted and no claim", errs, len(got), err)
	}
	if r, err := c.AwaitResult(ctxFor(t), "next"); err != nil || string(r.Value) != "2" {
		t.Errorf("result published with limit 0: %s, %v; want 2", r.Value, err)
	}
	if cl := claim(t, c, 1); cl.Assignment.Module != "last" {
		t.Errorf("claimed %s, want last, which limit 0 must have left queued", cl.Assignment.Module)
	}
	// The limit is at most MaxBatch.
	for i := range distributed.MaxBatch + 3 {
		enqueue(t, c, fmt.Sprintf("many%d", i), 1)
	}
	_, got, err = pc.PublishAndClaim(ctxFor(t), nil, 1, nil, distributed.MaxBatch+3)
	must(t, err, "PublishAndClaim above MaxBatch")
	if len(got) != distributed.MaxBatch {
		t.Errorf("PublishAndClaim with limit %d took %d, want MaxBatch (%d)", distributed.MaxBatch+3, len(got), distributed.MaxBatch)
	}
}

// testPublishAndClaimRefusedClaimer: an instance that is not registered,
// was refused by the master or is lost takes nothing, but its results
// stand (they are fenced by their leases, not by the caller's liveness).
func testPublishAndClaimRefusedClaimer(t *testing.T, c distributed.Coordinator) {
	pc, ok := c.(distributed.PublishClaimer)
	if !ok {
		t.Skip("the coordinator does not implement distributed.PublishClaimer (optional)")
	}
	// Instance 3 registers before the master, with another fingerprint,
	// and claims; the master's registration then refuses it.
	odd := registration(3, "linux")
	odd.Fingerprint = "fp-other"
	must(t, c.Register(ctxFor(t), odd), "Register(3) before the master")
	enqueue(t, c, "odd-work", 5)
	oddHeld := claim(t, c, 3, "linux")
	register(t, c, 0, "linux", distributed.MasterCapability)
	// Instance 6 claims and then goes silent until it is lost.
	lost := registration(6, "linux")
	lost.LeaseTimeout = shortLease
	must(t, c.Register(ctxFor(t), lost), "Register(6, short lease)")
	enqueue(t, c, "lost-work", 5)
	lostHeld := claim(t, c, 6, "linux")
	enqueue(t, c, "waiting", 1)
	awaitLost(t, c, 6)

	errs, got, err := pc.PublishAndClaim(ctxFor(t), []distributed.Result{success(oddHeld, `"odd"`)}, 3, []string{"linux"}, 4)
	if !errors.Is(err, distributed.ErrNotRegistered) || !errors.Is(err, distributed.ErrFingerprintMismatch) || len(got) != 0 {
		t.Fatalf("PublishAndClaim by a refused worker: %d claims, %v; want none and an error wrapping ErrNotRegistered and ErrFingerprintMismatch", len(got), err)
	}
	if len(errs) != 1 || errs[0] != nil {
		t.Fatalf("result published by a refused worker under its current lease: %v, want accepted", errs)
	}
	errs, got, err = pc.PublishAndClaim(ctxFor(t), []distributed.Result{success(lostHeld, `"lost"`)}, 6, []string{"linux"}, 4)
	if !errors.Is(err, distributed.ErrNotRegistered) || len(got) != 0 {
		t.Fatalf("PublishAndClaim by a lost instance: %d claims, %v; want none and ErrNotRegistered", len(got), err)
	}
	if len(errs) != 1 || errs[0] != nil {
		t.Fatalf("result published by a lost instance under its current lease: %v, want accepted", errs)
	}
	if _, got, err = pc.PublishAndClaim(ctxFor(t), nil, 5, nil, 4); !errors.Is(err, distributed.ErrNotRegistered) || len(got) != 0 {
		t.Fatalf("PublishAndClaim by an instance that never registered: %d claims, %v; want none and ErrNotRegistered", len(got), err)
	}
	for m, want := range map[string]string{"odd-work": `"odd"`, "lost-work": `"lost"`} {
		r, err := c.AwaitResult(ctxFor(t), m)
		must(t, err, "AwaitResult("+m+")")
		if string(r.Value) != want {
			t.Errorf("%s = %s, want %s", m, r.Value, want)
		}
	}
	join(t, c, 1)
	if cl := claim(t, c, 1, "linux"); cl.Assignment.Module != "waiting" {
		t.Errorf("a live instance claimed %s, want waiting, which the refused claims must have left queued", cl.Assignment.Module)
	}
}

// awaitLost waits until instance stopped beating for longer than its
// lease timeout (shortLease), as the coordinator reports its age.
func awaitLost(t *testing.T, c distributed.Coordinator, instance int) {
	t.Helper()
	ctx := ctxFor(t)
	for {
		ins, err := c.Instances(ctx)
		must(t, err, "Instances")
		for _, in := range ins {
			if in.Instance == instance && in.Age > shortLease+clockGrain {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("instance %d, silent, not older than its lease timeout %s after %s: %+v", instance, shortLease, waitLimit, ins)
		case <-time.After(shortLease / 4):
		}
	}
}

// testPublishAndClaimRunEnded: once the run is cancelled or completed,
// PublishAndClaim takes nothing and its claim fails with ErrRunEnded.
func testPublishAndClaimRunEnded(t *testing.T, c distributed.Coordinator) {
	pc, ok := c.(distributed.PublishClaimer)
	if !ok {
		t.Skip("the coordinator does not implement distributed.PublishClaimer (optional)")
	}
	join(t, c, 0, 1)
	enqueue(t, c, "queued", 1)
	must(t, c.Cancel(ctxFor(t), 0, "test"), "Cancel")
	if _, got, err := pc.PublishAndClaim(ctxFor(t), nil, 1, nil, 4); !errors.Is(err, distributed.ErrRunEnded) || len(got) != 0 {
		t.Fatalf("PublishAndClaim after Cancel: %d claims, %v; want none and ErrRunEnded", len(got), err)
	}
	must(t, c.Complete(ctxFor(t), true), "Complete")
	if _, got, err := pc.PublishAndClaim(ctxFor(t), nil, 1, nil, 4); !errors.Is(err, distributed.ErrRunEnded) || len(got) != 0 {
		t.Fatalf("PublishAndClaim after Complete: %d claims, %v; want none and ErrRunEnded", len(got), err)
	}
}

// testPublishAndClaimConcurrently: instances publishing and claiming at
// the same time never take one assignment twice, and every result stands.
func testPublishAndClaimConcurrently(t *testing.T, c distributed.Coordinator) {
	pc, ok := c.(distributed.PublishClaimer)
	if !ok {
		t.Skip("the coordinator does not implement distributed.PublishClaimer (optional)")
	}
	const n = 60
	join(t, c, 1, 2, 3)
	for i := range n {
		enqueue(t, c, fmt.Sprintf("c%d", i), 1)
	}
	var mu sync.Mutex
	taken := map[string]int{}
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	for inst := 1; inst <= 3; inst++ {
		wg.Go(func() {
			var held []distributed.Claim
			for {
				rs := make([]distributed.Result, len(held))
				for i, cl := range held {
					rs[i] = success(cl, "1")
				}
				errs, got, err := pc.PublishAndClaim(ctxFor(t), rs, inst, nil, 3)
				for i, e := range errs {
					if e != nil {
						errc <- fmt.Errorf("instance %d publishing %s: %w", inst, rs[i].Module, e)
						return
					}
				}
				if err != nil {
					errc <- fmt.Errorf("instance %d claiming: %w", inst, err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, cl := range got {
					taken[cl.Assignment.Module]++
				}
				mu.Unlock()
				held = got
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if len(taken) != n {
		t.Errorf("%d of %d assignments claimed", len(taken), n)
	}
	for m, k := range taken {
		if k != 1 {
			t.Errorf("%s claimed %d times", m, k)
		}
		if r, err := c.AwaitResult(ctxFor(t), m); err != nil || string(r.Value) != "1" {
			t.Errorf("result of %s: %s, %v", m, r.Value, err)
		}
	}
	if leases, _ := c.Leases(ctxFor(t)); len(leases) != 0 {
		t.Errorf("%d leases left, want none: every claim's result was accepted", len(leases))
	}
}
