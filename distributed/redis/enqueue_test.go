package redis

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/redistest"
)

// TestEnqueueBatchMixedRequirements: in a batch whose requirements change
// from one assignment to the next (and come back, or are the same set in
// another order), every assignment lands in its requirement set's queue
// with its own requirements; and a batch that shares one set works its
// key and lower-cased list out once, not per assignment (enqueueArgs then
// allocates about two values per assignment: its module and its JSON as
// script arguments).
func TestEnqueueBatchMixedRequirements(t *testing.T) {
	reqs := [][]string{{"w"}, {"w"}, {"v"}, {"w"}, {"v", "w"}, {"w", "v"}, nil, {}, {"w"}, {"a|b"}, {"b|a"}, {"v"}}
	as := make([]distributed.Assignment, len(reqs))
	want := map[string][]string{} // requirement key -> members
	for i, r := range reqs {
		as[i] = distributed.Assignment{Module: "m" + strconv.Itoa(i), Attempt: 1, Requires: r, Priority: int64(i)}
		rk, err := reqKey(r)
		if err != nil {
			t.Fatal(err)
		}
		want[rk] = append(want[rk], as[i].Module+"#1")
	}
	srv := redistest.Start(t)
	master, _, ctx := pcRun(t, srv.URL(), "mixed", 0)
	if err := master.EnqueueBatch(ctx, as); err != nil {
		t.Fatal(err)
	}
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	for rk, members := range want {
		got, err := admin.ZRange(ctx, master.keys.queue(rk), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(members)
		if !slices.Equal(got, members) {
			t.Errorf("queue %q holds %q, want %q", rk, got, members)
		}
	}
	for i, a := range as {
		raw, err := admin.HGet(ctx, master.keys.asg(), a.Module+"#1").Result()
		if err != nil {
			t.Fatal(err)
		}
		var w wireAssignment
		if err := json.Unmarshal([]byte(raw), &w); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(w.Requires) != fmt.Sprint(reqs[i]) || w.Module != a.Module {
			t.Errorf("%s stored as %s, want requires %q", a.Module, raw, reqs[i])
		}
	}

	same := make([]distributed.Assignment, 64)
	for i := range same {
		same[i] = distributed.Assignment{Module: "m" + strconv.Itoa(i), Attempt: 1, Requires: []string{"linux", "docker|podman"}, Priority: 3}
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, _, err := enqueueArgs(same); err != nil {
			t.Fatal(err)
		}
	})
	if per := allocs / float64(len(same)); per > 2.5 {
		t.Errorf("enqueueArgs: %.2f allocations per assignment of a batch with one requirement set, want at most 2.5", per)
	}
}

// TestEnqueueStampsServerTime: the caller sends each assignment's JSON
// without its end, and the enqueue script (of EnqueueBatch and of
// Reclaim) appends the server time: the stored record is what
// json.Marshal writes with that time.
func TestEnqueueStampsServerTime(t *testing.T) {
	as := []distributed.Assignment{
		{Module: "a", Attempt: 1, Requires: []string{"w"}, Priority: 2},
		{Module: "b", Attempt: 3, Requires: []string{"w"}, Priority: -1, MAC: []byte("0123456789abcdef")},
	}
	_, args, err := enqueueArgs(as)
	if err != nil {
		t.Fatal(err)
	}
	for k := range as {
		member, payload := args[2+4*k], args[2+4*k+3]
		if member != as[k].Module+"#"+strconv.Itoa(as[k].Attempt) || !strings.HasSuffix(payload.(string), `"enq_ms":`) {
			t.Errorf("assignment %d sent as %q ... %q; want its member, and its JSON up to \"enq_ms\":", k, member, payload)
		}
	}

	srv := redistest.Start(t)
	master, worker, ctx := pcRun(t, srv.URL(), "stamp", 0)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	serverMS := func() int64 {
		tm, err := admin.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMilli()
	}
	check := func(a distributed.Assignment, before, after int64) {
		t.Helper()
		raw, err := admin.HGet(ctx, master.keys.asg(), a.Module+"#"+strconv.Itoa(a.Attempt)).Result()
		if err != nil {
			t.Fatal(err)
		}
		var w wireAssignment
		if err := json.Unmarshal([]byte(raw), &w); err != nil {
			t.Fatalf("stored %s: %v", raw, err)
		}
		want, _ := json.Marshal(wireAssignment{Module: a.Module, Attempt: a.Attempt, Requires: a.Requires, Priority: a.Priority, MAC: a.MAC, EnqMS: w.EnqMS})
		if raw != string(want) || w.EnqMS < before || w.EnqMS > after {
			t.Errorf("stored %s, want %s with enq_ms in [%d, %d]", raw, want, before, after)
		}
	}
	before := serverMS()
	if err := master.EnqueueBatch(ctx, as); err != nil {
		t.Fatal(err)
	}
	after := serverMS()
	for _, a := range as {
		check(a, before, after)
	}

	cl, err := worker.Claim(ctx, 1, []string{"w"})
	if err != nil {
		t.Fatal(err)
	}
	next := cl.Assignment
	next.Attempt++
	before = serverMS()
	if err := master.Reclaim(ctx, cl.Lease, &next); err != nil {
		t.Fatal(err)
	}
	check(next, before, serverMS())
}
