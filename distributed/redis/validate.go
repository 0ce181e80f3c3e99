package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
)

// Every record read back from Redis goes through one of these decoders,
// which check more than the JSON shape: a record that decodes but could not
// have been written by this package (a lease without a token, a result
// filed under another module) is as corrupt as garbage.

// decodeLease decodes the lease stored for module (field of the lease hash).
func decodeLease(where, module, raw string) (wireLease, error) {
	var l wireLease
	if err := decodeJSON(where, raw, &l); err != nil {
		return l, err
	}
	var problem string
	switch {
	case module != "" && l.Module != module:
		problem = fmt.Sprintf("lease of %q filed under %q", l.Module, module)
	case l.Module == "":
		problem = "no module"
	case l.Attempt < 1:
		problem = fmt.Sprintf("attempt %d", l.Attempt)
	case l.Holder < 0:
		problem = fmt.Sprintf("holder %d", l.Holder)
	case l.Token == "":
		problem = "no token"
	case l.ClaimedMS <= 0:
		problem = fmt.Sprintf("claimed at %d ms", l.ClaimedMS)
	default:
		return l, nil
	}
	return l, malformed(where, errors.New(problem))
}

// decodeRegistration decodes an instance's registration; id is its field.
func decodeRegistration(where, id, raw string) (int, wireRegistration, error) {
	var reg wireRegistration
	n, err := strconv.Atoi(id)
	if err != nil || n < 0 || strconv.Itoa(n) != id {
		return 0, reg, malformed(where, fmt.Errorf("instance %q is not an index", id))
	}
	if err := decodeJSON(where, raw, &reg); err != nil {
		return 0, reg, err
	}
	if reg.Total < 0 {
		return 0, reg, malformed(where, fmt.Errorf("total %d", reg.Total))
	}
	for _, c := range reg.Caps {
		if c == "" || strings.Contains(c, ",") {
			return 0, reg, malformed(where, fmt.Errorf("capability %q", c))
		}
	}
	return n, reg, nil
}

// decodeBeat decodes a heartbeat time (server milliseconds).
func decodeBeat(where, raw string) (int64, error) {
	ms, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, malformed(where, err)
	}
	if ms <= 0 {
		return 0, malformed(where, fmt.Errorf("heartbeat at %d ms", ms))
	}
	return ms, nil
}

// decodeAssignment decodes a queued assignment; member is its field
// ("module#attempt"), "" when unknown. It also returns the server time the
// assignment was queued at (ms).
func decodeAssignment(where, member, raw string) (distributed.Assignment, int64, error) {
	a, ok := fastAssignment(raw)
	if !ok {
		a = wireAssignment{}
		if err := decodeJSON(where, raw, &a); err != nil {
			return distributed.Assignment{}, 0, err
		}
	}
	as := distributed.Assignment{Module: a.Module, Attempt: a.Attempt, Requires: a.Requires, Priority: a.Priority, MAC: a.MAC}
	if err := distributed.ValidateAssignment(as); err != nil {
		return as, 0, malformed(where, err)
	}
	if member != "" && member != a.Module+"#"+strconv.Itoa(a.Attempt) {
		return as, 0, malformed(where, fmt.Errorf("assignment of %s#%d filed under %q", a.Module, a.Attempt, member))
	}
	if a.EnqMS < 0 {
		return as, 0, malformed(where, fmt.Errorf("enqueued at %d ms", a.EnqMS))
	}
	return as, a.EnqMS, nil
}

// decodeWireResult decodes and validates the result stored or announced
// for module.
func decodeWireResult(where, module, raw string) (distributed.Result, error) {
	w, ok := fastResult(raw)
	if !ok {
		w = wireResult{}
		if err := decodeJSON(where, raw, &w); err != nil {
			return distributed.Result{}, err
		}
	}
	r, err := w.result()
	if err != nil {
		return distributed.Result{}, malformed(where, err)
	}
	if r.Module != module || r.Lease.Module != module {
		return distributed.Result{}, malformed(where, fmt.Errorf("result of %q (lease of %q) filed under %q", r.Module, r.Lease.Module, module))
	}
	return r, nil
}

// validateMeta checks the run's meta hash.
func validateMeta(where string, m map[string]string) error {
	switch m["state"] {
	case "", "running", "cancelled", "completed":
	default:
		return malformed(where+" field state", fmt.Errorf("unknown state %q", m["state"]))
	}
	switch m["failed"] {
	case "", "0", "1":
	default:
		return malformed(where+" field failed", fmt.Errorf("%q is not 0 or 1", m["failed"]))
	}
	for _, f := range []string{"by", "created_ms", "completed_ms", "nq"} {
		if v, ok := m[f]; ok && v != "" {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return malformed(where+" field "+f, err)
			}
		}
	}
	return nil
}

// validateClaimRecord checks a recorded claim reply (kept so a retried
// claim gets the same answer).
func validateClaimRecord(where, raw string) error {
	var v []any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return malformed(where, err)
	}
	if len(v) == 0 {
		return malformed(where, errors.New("empty claim"))
	}
	if s, ok := v[0].(string); !ok || s != "ok" {
		return malformed(where, fmt.Errorf("claim status %v", v[0]))
	}
	return nil
}

// findCorrupt reads every key of the run and checks its type and records.
// It returns an error naming the first malformed key (and field), nil when
// everything is well formed. It runs only after a failure, so its cost
// (one read of the run's working data) does not matter.
func (c *Coordinator) findCorrupt(ctx context.Context) error {
	k := c.keys
	want := []struct{ key, typ string }{
		{k.meta(), "hash"}, {k.inst(), "hash"}, {k.beat(), "hash"}, {k.seq(), "string"}, {k.queues(), "set"},
		{k.asg(), "hash"}, {k.lease(), "hash"}, {k.res(), "hash"}, {k.claims(), "hash"},
	}
	if rks, err := c.client.SMembers(ctx, k.queues()).Result(); err == nil {
		for _, rk := range rks {
			want = append(want, struct{ key, typ string }{k.queue(rk), "zset"}, struct{ key, typ string }{k.wake(rk), "list"})
		}
	}
	types := make([]*goredis.StatusCmd, len(want))
	pipe := c.client.Pipeline()
	for i, w := range want {
		types[i] = pipe.Type(ctx, w.key)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil // cannot tell; the caller reports the original error
	}
	for i, w := range want {
		if got := types[i].Val(); got != "none" && got != w.typ {
			return malformed("key "+w.key, fmt.Errorf("holds a %s, not a %s", got, w.typ))
		}
	}
	hash := func(key string) map[string]string {
		m, _ := c.client.HGetAll(ctx, key).Result()
		return m
	}
	if err := validateMeta("key "+k.meta(), hash(k.meta())); err != nil {
		return err
	}
	for id, raw := range hash(k.inst()) {
		if _, _, err := decodeRegistration("key "+k.inst()+" field "+id, id, raw); err != nil {
			return err
		}
	}
	for id, raw := range hash(k.beat()) {
		where := "key " + k.beat() + " field " + id
		if n, err := strconv.Atoi(id); err != nil || n < 0 {
			return malformed(where, fmt.Errorf("instance %q is not an index", id))
		}
		if _, err := decodeBeat(where, raw); err != nil {
			return err
		}
	}
	if v, err := c.client.Get(ctx, k.seq()).Result(); err == nil {
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return malformed("key "+k.seq(), err)
		}
	}
	for member, raw := range hash(k.asg()) {
		if _, _, err := decodeAssignment("key "+k.asg()+" field "+member, member, raw); err != nil {
			return err
		}
	}
	for mod, raw := range hash(k.lease()) {
		if _, err := decodeLease("key "+k.lease()+" field "+mod, mod, raw); err != nil {
			return err
		}
	}
	for mod, raw := range hash(k.res()) {
		if _, err := decodeWireResult("key "+k.res()+" field "+mod, mod, raw); err != nil {
			return err
		}
	}
	for id, raw := range hash(k.claims()) {
		if err := validateClaimRecord("key "+k.claims()+" field "+id, raw); err != nil {
			return err
		}
	}
	return nil
}
