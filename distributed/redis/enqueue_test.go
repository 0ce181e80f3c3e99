package redis

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
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
