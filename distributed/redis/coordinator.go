package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/ident"
)

// run calls a script with keys (nil: the run's fixed keys) and the common
// arguments.
func (c *Coordinator) run(ctx context.Context, s *goredis.Script, keys []string, args ...any) (any, error) {
	if keys == nil {
		keys = c.keys.all()
	}
	all := append([]any{c.keys.events(), c.opts.KeyTTL.Milliseconds()}, args...)
	return s.Run(ctx, c.client, keys, all...).Result()
}

// runRetry is run through withRetry, for scripts that are safe to repeat,
// with the run's fixed keys.
func (c *Coordinator) runRetry(ctx context.Context, name string, s *goredis.Script, args ...any) (any, error) {
	return c.runRetryKeys(ctx, name, s, nil, args...)
}

// runRetryKeys is runRetry with the keys given (see keys.with).
func (c *Coordinator) runRetryKeys(ctx context.Context, name string, s *goredis.Script, keys []string, args ...any) (any, error) {
	if err := c.connect(); err != nil {
		return nil, err
	}
	if err := c.failed(); err != nil && s != scriptCancel && s != scriptComplete {
		// A fatal error ends the run; Cancel and Complete still try to
		// tell the other instances.
		return nil, err
	}
	var out any
	err := c.withRetry(ctx, name, func(ctx context.Context) error {
		var err error
		out, err = c.run(ctx, s, keys, args...)
		return err
	})
	return out, err
}

// enqueueArgs lays out assignments as enqueue() in scripts.go reads them,
// and returns the requirement keys they need (pass them to keys.with).
func enqueueArgs(as []distributed.Assignment) (rks []string, args []any, err error) {
	index := map[string]int{}
	groups := make([]any, 0, 4*len(as))
	// All the assignments' members and JSON go into one buffer, made one
	// string at the end: one allocation per batch, not some per assignment.
	var buf []byte
	ends := make([]int, 0, 2*len(as))
	// A batch's assignments mostly share their requirements: the key and
	// the lower-cased list are made again only when they change.
	var prev, lower []string
	i := 0
	for n, a := range as {
		if err := distributed.ValidateAssignment(a); err != nil {
			return nil, nil, err
		}
		if n == 0 || !slices.Equal(a.Requires, prev) {
			rk, err := reqKey(a.Requires)
			if err != nil {
				return nil, nil, err
			}
			var ok bool
			if i, ok = index[rk]; !ok {
				rks = append(rks, rk)
				i = len(rks)
				index[rk] = i
			}
			prev, lower = a.Requires, ident.Lower(a.Requires)
		}
		w := wireAssignment{Module: a.Module, Attempt: a.Attempt, Requires: lower, Priority: a.Priority, MAC: a.MAC}
		if buf == nil {
			buf = make([]byte, 0, len(as)*assignmentSize(&w))
		}
		// the member ("module#attempt"), then the JSON without the
		// "0}" that ends it: the script appends the time it is queued
		buf = strconv.AppendInt(append(append(buf, a.Module...), '#'), int64(a.Attempt), 10)
		ends = append(ends, len(buf))
		buf = appendAssignment(buf, &w)
		buf = buf[:len(buf)-len("0}")]
		ends = append(ends, len(buf))
		groups = append(groups, nil, i, a.Priority, nil)
	}
	all, start := string(buf), 0
	for k, end := range ends {
		groups[4*(k/2)+3*(k%2)] = all[start:end] // member and JSON: the first and last of a group
		start = end
	}
	args = make([]any, 0, 1+len(rks)+len(groups))
	args = append(args, len(rks))
	for _, rk := range rks {
		args = append(args, rk)
	}
	return rks, append(args, groups...), nil
}

// knownRKs returns the requirement keys this coordinator knows to have a
// queue; learnRKs replaces them with what a script read from qs, addRKs
// adds the ones an enqueue just created (qs only grows during a run).
func (c *Coordinator) knownRKs() []string {
	c.rkMu.Lock()
	defer c.rkMu.Unlock()
	return c.rks
}

func (c *Coordinator) learnRKs(rks []string) {
	c.rkMu.Lock()
	defer c.rkMu.Unlock()
	c.rks = slices.Clip(rks)
}

func (c *Coordinator) addRKs(rks []string) {
	c.rkMu.Lock()
	defer c.rkMu.Unlock()
	for _, rk := range rks {
		if !slices.Contains(c.rks, rk) {
			c.rks = append(slices.Clip(c.rks), rk)
		}
	}
}

// staleRKs reads a {'rks', key...} reply. A list as long as the one sent
// means meta's queue count disagrees with qs itself: the run's data is
// corrupt, and asking again would loop.
func (c *Coordinator) staleRKs(arr []any, sent int) ([]string, error) {
	rks := make([]string, 0, len(arr)-1)
	for _, v := range arr[1:] {
		s, err := asString("requirement key", v)
		if err != nil {
			return nil, c.fail(err)
		}
		rks = append(rks, s)
	}
	if len(rks) == sent {
		return nil, c.fail(malformed("key "+c.keys.meta()+" field nq", fmt.Errorf("counts queues but %s holds %d requirement keys", c.keys.queues(), len(rks))))
	}
	return rks, nil
}

// satisfies reports whether caps (a set) meet requirement key rk ("a,b|c"
// means a and (b or c)).
func satisfies(rk string, caps map[string]bool) bool {
	if rk == "" {
		return true
	}
	for req := range strings.SplitSeq(rk, ",") {
		ok := false
		for alt := range strings.SplitSeq(req, "|") {
			if caps[alt] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func reply(where string, v any) ([]any, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return nil, malformed(where, fmt.Errorf("unexpected script reply %T", v))
	}
	return arr, nil
}

// Register implements distributed.Coordinator.
func (c *Coordinator) Register(ctx context.Context, r distributed.Registration) error {
	reg, _ := json.Marshal(wireRegistration{Caps: ident.Lower(r.Capabilities), Session: r.Session, Total: r.Total,
		Fingerprint: r.Fingerprint, LeaseMS: r.LeaseTimeout.Milliseconds(), MAC: r.MAC})
	v, err := c.runRetry(ctx, "registering instance "+strconv.Itoa(r.Instance), scriptRegister,
		r.Instance, r.Fingerprint, string(reg), r.Session, r.Total, r.LeaseTimeout.Milliseconds())
	if err != nil {
		return err
	}
	arr, err := reply("register", v)
	if err != nil {
		return err
	}
	detail := func(i int) string {
		if i < len(arr) {
			return fmt.Sprint(arr[i])
		}
		return "?"
	}
	switch arr[0] {
	case "ok":
		c.sessions.Store(r.Instance, r.Session)
		// Announcements must reach this instance from now on.
		if err := c.waitEvents(ctx); err != nil || r.Instance != 0 {
			return err
		}
		// The master queues the work and awaits every result: it hears
		// them from the start (see keys.results, EnqueueBatch).
		return c.follow(ctx, c.keys.results())
	case "ended":
		return fmt.Errorf("%w: run %q has already completed; a run id is never reused: start a new run (re-run the workflow, or pass a new --run-id)", distributed.ErrRunEnded, c.RunID())
	case "taken":
		return fmt.Errorf("%w: instance %d of run %q is held by a live instance (session %s, last heartbeat %sms ago, lease timeout %sms); two jobs present the same --instance index: give each its own, or wait until the holder is lost to replace it",
			distributed.ErrIndexTaken, r.Instance, c.RunID(), detail(1), detail(2), detail(3))
	case "mismatch":
		return fmt.Errorf("%w: instance %d presents pipeline %s but the master (instance 0) of run %q presents %s; every instance must run the same program and commit as the master",
			distributed.ErrFingerprintMismatch, r.Instance, r.Fingerprint, c.RunID(), detail(1))
	case "corrupt":
		return corrupt(arr)
	case "total":
		return fmt.Errorf("%w: instance %d expects %d instances (--total) but the master (instance 0) of run %q expects %s; give every instance the same --total",
			distributed.ErrFingerprintMismatch, r.Instance, r.Total, c.RunID(), detail(1))
	}
	return malformed("register reply", fmt.Errorf("%v", arr[0]))
}

// session returns the session this value registered instance with ("" if
// none: the scripts then treat the caller as not registered).
func (c *Coordinator) session(instance int) string {
	s, _ := c.sessions.Load(instance)
	str, _ := s.(string)
	return str
}

// notLive turns a refused or notreg script reply into an error wrapping
// ErrNotRegistered (and ErrFingerprintMismatch for a refused worker).
func (c *Coordinator) notLive(instance int, arr []any) error {
	str := func(i int) string {
		if i < len(arr) {
			s, _ := arr[i].(string)
			return s
		}
		return ""
	}
	if arr[0] == "refused" {
		return fmt.Errorf("%w: %w: %s", distributed.ErrNotRegistered, distributed.ErrFingerprintMismatch, str(1))
	}
	switch str(1) {
	case "gone":
		return fmt.Errorf("%w: the keys of run %q are gone (Redis restarted without persistence, was flushed, or the TTL passed); the run cannot continue",
			distributed.ErrNotRegistered, c.RunID())
	case "replaced":
		return fmt.Errorf("%w: instance %d of run %q was replaced by another registration (session %s) after this one was declared lost; this process must stop",
			distributed.ErrNotRegistered, instance, c.RunID(), str(2))
	case "lost":
		return fmt.Errorf("%w: instance %d of run %q sent no heartbeat for %s: it is lost and its work is being handed to others",
			distributed.ErrNotRegistered, instance, c.RunID(), str(2))
	}
	return fmt.Errorf("%w: instance %d is not registered in run %q (it never registered through this coordinator, or its registration was lost)",
		distributed.ErrNotRegistered, instance, c.RunID())
}

// corrupt reports a registration record a script could not decode
// (reply {'corrupt', key, field}).
func corrupt(arr []any) error {
	where := "registration record"
	if len(arr) == 3 {
		where = fmt.Sprintf("%v field %v", arr[1], arr[2])
	}
	return malformed(where, errors.New("not a JSON registration"))
}

// Heartbeat implements distributed.Coordinator.
func (c *Coordinator) Heartbeat(ctx context.Context, instance int) (distributed.Pulse, error) {
	v, err := c.runRetry(ctx, "heartbeat", scriptHeartbeat, instance, c.session(instance))
	if err != nil {
		return distributed.Pulse{}, err
	}
	arr, err := reply("heartbeat", v)
	if err != nil {
		return distributed.Pulse{}, err
	}
	switch arr[0] {
	case "lost":
		return distributed.Pulse{}, fmt.Errorf("redis coordinator: the keys of run %q are gone (Redis restarted without persistence, was flushed, or the TTL passed); the run cannot continue", c.RunID())
	case "refused", "notreg":
		return distributed.Pulse{}, c.notLive(instance, arr)
	case "corrupt":
		return distributed.Pulse{}, corrupt(arr)
	}
	if len(arr) != 8 {
		return distributed.Pulse{}, malformed("heartbeat reply", fmt.Errorf("%d fields", len(arr)))
	}
	reg, err1 := asInt64("heartbeat master flag", arr[1])
	age, err2 := asInt64("heartbeat master age", arr[2])
	st, err3 := parseState(c.keys.meta(), arr[3], arr[4], arr[5], arr[6], arr[7])
	if err := errors.Join(err1, err2, err3); err != nil {
		return distributed.Pulse{}, c.fail(err)
	}
	return distributed.Pulse{MasterRegistered: reg == 1, MasterAge: time.Duration(age) * time.Millisecond, State: st}, nil
}

// Instances implements distributed.Coordinator.
func (c *Coordinator) Instances(ctx context.Context) ([]distributed.InstanceInfo, error) {
	v, err := c.runRetry(ctx, "listing instances", scriptInstances)
	if err != nil {
		return nil, err
	}
	arr, err := reply("instances", v)
	if err != nil || len(arr) != 3 {
		return nil, errors.Join(err, malformed("instances reply", errors.New("want 3 parts")))
	}
	now, err1 := asInt64("server time", arr[0])
	inst, err2 := pairs("key "+c.keys.inst(), arr[1])
	beats, err3 := pairs("key "+c.keys.beat(), arr[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, c.fail(err)
	}
	for id, b := range beats {
		if _, err := decodeBeat("key "+c.keys.beat()+" field "+id, b); err != nil {
			return nil, c.fail(err)
		}
	}
	out := make([]distributed.InstanceInfo, 0, len(inst))
	for id, raw := range inst {
		n, reg, err := decodeRegistration("key "+c.keys.inst()+" field "+id, id, raw)
		if err != nil {
			return nil, c.fail(err)
		}
		info := distributed.InstanceInfo{Instance: n, Capabilities: reg.Caps, Session: reg.Session, Fingerprint: reg.Fingerprint, Total: reg.Total, MAC: reg.MAC}
		if b, ok := beats[id]; ok {
			ms, err := decodeBeat("key "+c.keys.beat()+" field "+id, b)
			if err != nil {
				return nil, c.fail(err)
			}
			info.Age = time.Duration(max(0, now-ms)) * time.Millisecond
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b distributed.InstanceInfo) int { return a.Instance - b.Instance })
	return out, nil
}

// Enqueue implements distributed.Coordinator.
func (c *Coordinator) Enqueue(ctx context.Context, a distributed.Assignment) error {
	return c.EnqueueBatch(ctx, []distributed.Assignment{a})
}

// EnqueueBatch implements distributed.BatchEnqueuer: one script queues them all.
func (c *Coordinator) EnqueueBatch(ctx context.Context, as []distributed.Assignment) error {
	rks, args, err := enqueueArgs(as)
	if err != nil {
		return err
	}
	if len(as) == 0 {
		return nil
	}
	if err := c.connect(); err != nil {
		return err
	}
	c.markEnqueued(ctx, as)
	v, err := c.runRetryKeys(ctx, "enqueueing "+as[0].Module, scriptEnqueue, c.keys.with(rks), args...)
	if err != nil {
		return err
	}
	if v == "ended" {
		return fmt.Errorf("%w: cannot enqueue %s", distributed.ErrRunEnded, as[0].Module)
	}
	c.addRKs(rks)
	return nil
}

// markEnqueued remembers that each module of as was queued by this coordinator while
// its subscription was live, so AwaitResult can wait for the announcement
// without a first read.
//
// The process that queues work awaits its results: it follows the channel
// that carries them (see keys.results). It does not wait here for that
// subscription (a master subscribed when it registered): a module queued
// before it was confirmed has its result read once when awaited.
//
// The subscription's state is read once for the batch (as), not once per
// assignment: the batch is queued by one script, after this.
func (c *Coordinator) markEnqueued(ctx context.Context, as []distributed.Assignment) {
	confirmed := c.events.startFollow(c.logCtx(ctx), c.keys.results())
	heard := false
	select {
	case <-confirmed:
		heard = true
	default:
	}
	var mark any = enqueueMark{epoch: c.events.currentEpoch(), heard: heard} // boxed once
	for _, a := range as {
		c.enqueued.Store(a.Module, mark)
	}
}

// enqueueMark is what markEnqueued records: the subscription epoch, and
// whether the results channel was confirmed before the module was queued
// (else its result may have been announced unheard: read it once).
type enqueueMark struct {
	epoch uint64
	heard bool
}

// Claim implements distributed.Coordinator.
func (c *Coordinator) Claim(ctx context.Context, instance int, caps []string) (distributed.Claim, error) {
	cls, err := c.ClaimBatch(ctx, instance, caps, 1)
	if err != nil {
		return distributed.Claim{}, err
	}
	return cls[0], nil
}

// waiter is a Claim call of this process: its control list, whether a
// wake-up was pushed to it since its last claim script, and whether the
// call has returned (then nothing is pushed any more). mu is held across
// a push, so a returning call that deletes its list does so after it.
type waiter struct {
	ctl    string
	mu     sync.Mutex
	pushed bool
	done   bool
}

// takePushed reports whether a wake-up was pushed since the last call, and
// forgets it.
func (w *waiter) takePushed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pushed
	w.pushed = false
	return p
}

// finish marks the call returned and reports whether its list may still
// hold a wake-up.
func (w *waiter) finish() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	return w.pushed
}

// wakeClaimers pushes a wake-up to the control list of every Claim call
// of this process. The subscriber calls it when the run's state changes, a
// new queue appears, or it resubscribed (announcements may have been
// missed): waiting claimers then claim again, with fresh queue keys.
func (c *Coordinator) wakeClaimers() {
	var ws []*waiter
	c.waiting.Range(func(_, v any) bool {
		w := v.(*waiter)
		w.mu.Lock() // held until the push is done; see waiter
		if w.done {
			w.mu.Unlock()
		} else {
			w.pushed = true
			ws = append(ws, w)
		}
		return true
	})
	if len(ws) == 0 {
		return
	}
	defer func() {
		for _, w := range ws {
			w.mu.Unlock()
		}
	}()
	ctx, cancel := context.WithTimeout(c.logCtx(context.Background()), c.opts.OperationTimeout)
	defer cancel()
	pipe := c.client.Pipeline()
	for _, w := range ws {
		pipe.LPush(ctx, w.ctl, "x")
		// A token matters only until the call's next wait, at most an
		// outage plus a block later.
		pipe.PExpire(ctx, w.ctl, c.opts.OutageTolerance+2*c.opts.BlockTimeout)
	}
	// A failure means the connection is down: the subscription's
	// reconnection wakes everyone again.
	_, _ = pipe.Exec(ctx)
}

// ClaimBatch implements distributed.BatchClaimer: one script takes up to
// limit assignments, best first.
func (c *Coordinator) ClaimBatch(ctx context.Context, instance int, caps []string, limit int) ([]distributed.Claim, error) {
	if err := c.connect(); err != nil {
		return nil, err
	}
	limit = min(max(1, limit), distributed.MaxBatch)
	capSet := capabilitySet(caps)
	reqID := c.ids.next()
	// Registered before the first script runs, so no announcement made
	// after it can be missed (see keys.go).
	w := &waiter{ctl: c.keys.ctl(reqID)}
	c.waiting.Store(reqID, w)
	defer c.waiting.Delete(reqID)
	// go-redis cannot interrupt a blocking command when its context ends;
	// a wake-up pushed to this call's control list ends the wait.
	client := c.client
	stopWake := context.AfterFunc(ctx, func() {
		wctx, cancel := context.WithTimeout(context.Background(), c.opts.OperationTimeout)
		defer cancel()
		// It may land after the call deleted the list: let it expire.
		pipe := client.Pipeline()
		pipe.LPush(wctx, w.ctl, "x")
		pipe.PExpire(wctx, w.ctl, c.opts.OutageTolerance+2*c.opts.BlockTimeout)
		_, _ = pipe.Exec(wctx)
	})
	defer stopWake()
	defer func() {
		if w.finish() || ctx.Err() != nil {
			// Leave no wake-ups behind (a push after the last script, or
			// the one that ended the wait when ctx ended).
			cctx, cancel := context.WithTimeout(context.Background(), c.opts.OperationTimeout)
			defer cancel()
			c.client.Del(cctx, w.ctl)
		}
	}()
	consumed, session := "", c.session(instance)
	for {
		eligible, known := c.eligible(capSet)
		consumedAt := 0
		for i, rk := range eligible {
			if c.keys.wake(rk) == consumed {
				consumedAt = i + 1
			}
		}
		waited := "0"
		if w.takePushed() {
			waited = "1" // the script deletes the list
		}
		v, err := c.runRetryKeys(ctx, "claiming work", scriptClaim, c.keys.with(eligible, w.ctl),
			instance, reqID, consumedAt, waited, limit, session, len(known))
		if err != nil {
			return nil, err
		}
		arr, err := reply("claim", v)
		if err != nil {
			return nil, err
		}
		switch arr[0] {
		case "ok":
			return c.parseClaims(arr, instance, session, reqID)
		case "ended":
			return nil, c.endedErr(ctx)
		case "refused", "notreg":
			return nil, c.notLive(instance, arr)
		case "corrupt":
			return nil, corrupt(arr)
		case "rks":
			// Our queue list was stale: claim again with the run's.
			rks, err := c.staleRKs(arr, len(known))
			if err != nil {
				return nil, err
			}
			c.learnRKs(rks)
			continue
		case "empty":
		default:
			return nil, malformed("claim reply", fmt.Errorf("%v", arr[0]))
		}
		// A token consumed for an empty queue was one too many: dropped.
		consumed = ""
		wake := []string{w.ctl}
		for _, rk := range eligible {
			wake = append(wake, c.keys.wake(rk))
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		popped, err := c.client.BLPop(c.logCtx(ctx), c.opts.BlockTimeout, wake...).Result()
		if err == nil && len(popped) == 2 && popped[0] != w.ctl {
			consumed = popped[0]
		}
		if ctx.Err() != nil {
			if consumed != "" {
				// Give the token back for another claimer.
				bctx, cancel := context.WithTimeout(context.Background(), c.opts.OperationTimeout)
				c.client.LPush(bctx, consumed, "x")
				cancel()
			}
			return nil, ctx.Err()
		}
		if err != nil && !errors.Is(err, goredis.Nil) {
			// The connection failed mid-wait: the next claim attempt goes
			// through withRetry, which rides out short outages.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// capabilitySet is caps, lower-cased, as a set.
func capabilitySet(caps []string) map[string]bool {
	set := map[string]bool{}
	for _, cp := range ident.Lower(caps) {
		set[cp] = true
	}
	return set
}

// eligible returns the requirement keys this process knows of (known)
// and those of them that an instance with capSet satisfies.
func (c *Coordinator) eligible(capSet map[string]bool) (eligible, known []string) {
	known = c.knownRKs()
	eligible = make([]string, 0, len(known))
	for _, rk := range known {
		if satisfies(rk, capSet) {
			eligible = append(eligible, rk)
		}
	}
	return eligible, known
}

// parseClaims reads a claim reply: {'ok', now_ms, member, assignment JSON,
// ...}. The leases are not sent back: this call made them (scriptClaim),
// so their fields are known here.
func (c *Coordinator) parseClaims(arr []any, instance int, session, reqID string) ([]distributed.Claim, error) {
	if len(arr) < 4 || len(arr)%2 != 0 {
		return nil, malformed("claim reply", fmt.Errorf("%d fields", len(arr)))
	}
	now, err := asInt64("claim time", arr[1])
	if err != nil {
		return nil, err
	}
	out := make([]distributed.Claim, 0, (len(arr)-2)/2)
	for k := 2; k < len(arr); k += 2 {
		member, err1 := asString("claimed member", arr[k])
		payload, err2 := asString("claimed assignment", arr[k+1])
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if member == "" { // decodeAssignment reads "" as "member unknown"; a claim always names it
			return nil, c.fail(malformed("key "+c.keys.asg(), errors.New("claimed an assignment with an empty field name")))
		}
		as, enqMS, err := decodeAssignment("key "+c.keys.asg()+" field "+member, member, payload)
		if err != nil {
			return nil, c.fail(err)
		}
		l := distributed.Lease{Module: as.Module, Attempt: as.Attempt, Holder: instance, Session: session, Token: reqID + "." + strconv.Itoa(k/2)}
		out = append(out, distributed.Claim{Assignment: as, Lease: l, QueueWait: time.Duration(max(0, now-enqMS)) * time.Millisecond})
	}
	return out, nil
}

// Leases implements distributed.Coordinator.
func (c *Coordinator) Leases(ctx context.Context) ([]distributed.Lease, error) {
	v, err := c.runRetry(ctx, "listing leases", scriptLeases)
	if err != nil {
		return nil, err
	}
	arr, err := reply("leases", v)
	if err != nil || len(arr) != 2 {
		return nil, errors.Join(err, malformed("leases reply", errors.New("want 2 parts")))
	}
	now, err1 := asInt64("server time", arr[0])
	m, err2 := pairs("key "+c.keys.lease(), arr[1])
	if err := errors.Join(err1, err2); err != nil {
		return nil, c.fail(err)
	}
	out := make([]distributed.Lease, 0, len(m))
	for mod, raw := range m {
		l, err := decodeLease("key "+c.keys.lease()+" field "+mod, mod, raw)
		if err != nil {
			return nil, c.fail(err)
		}
		out = append(out, l.lease(now))
	}
	slices.SortFunc(out, func(a, b distributed.Lease) int { return strings.Compare(a.Module, b.Module) })
	return out, nil
}

// Reclaim implements distributed.Coordinator.
func (c *Coordinator) Reclaim(ctx context.Context, l distributed.Lease, next *distributed.Assignment) error {
	if err := c.connect(); err != nil {
		return err
	}
	var rks []string
	args := []any{l.Module, l.Token}
	if next != nil {
		var more []any
		var err error
		if rks, more, err = enqueueArgs([]distributed.Assignment{*next}); err != nil {
			return err
		}
		args = append(args, more...)
		c.markEnqueued(ctx, []distributed.Assignment{*next})
	}
	v, err := c.runRetryKeys(ctx, "reclaiming "+l.Module, scriptReclaim, c.keys.with(rks), args...)
	if err != nil {
		return err
	}
	if v == "ok" {
		c.addRKs(rks)
	}
	if v == "stale" {
		return fmt.Errorf("%w: %s attempt %d (token %s) is not the current lease", distributed.ErrStaleLease, l.Module, l.Attempt, l.Token)
	}
	return nil
}

// Publish implements distributed.Coordinator.
func (c *Coordinator) Publish(ctx context.Context, r distributed.Result) error {
	return c.PublishBatch(ctx, []distributed.Result{r})[0]
}

// PublishBatch implements distributed.BatchPublisher: one script fences and
// stores them all; the error of each result is at its index.
func (c *Coordinator) PublishBatch(ctx context.Context, rs []distributed.Result) []error {
	errs := make([]error, len(rs))
	if err := c.connect(); err != nil { // the channels' names need the run
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	args, sent := c.publishArgs(rs, errs, make([]any, 0, 2+6*len(rs)))
	if len(sent) == 0 {
		return errs
	}
	v, err := c.runRetry(ctx, "publishing the result of "+rs[sent[0]].Module, scriptPublish, args...)
	if err == nil {
		var arr []any
		if arr, err = reply("publish", v); err == nil {
			return c.publishErrs(rs, errs, sent, arr)
		}
	}
	for _, i := range sent {
		errs[i] = err
	}
	return errs
}

// maxAnnounced is the largest result (JSON bytes) that travels with its
// announcement; larger ones are read back by those who await them.
const maxAnnounced = 65536

// publishArgs appends to args the arguments of luaPublish (scripts.go) for
// the results of rs that are valid, and returns them with the indexes of
// rs they carry; errs[i] gets the error of each invalid one.
func (c *Coordinator) publishArgs(rs []distributed.Result, errs []error, args []any) ([]any, []int) {
	args = append(args, c.keys.results(), c.keys.names())
	var sent []int
	// The strings made for the results (their JSON, lease heads and
	// announcement pieces) go into one buffer, made one string at the end:
	// one allocation per batch rather than four per result.
	var buf []byte
	var at, ends []int // where each piece goes in args, and its end in buf
	piece := func(arg int) {
		at = append(at, arg)
		ends = append(ends, len(buf))
	}
	for i, r := range rs {
		if err := distributed.ValidateResult(r); err != nil {
			errs[i] = err
			continue
		}
		w := toWireResult(r)
		w.Nonce = c.ids.next()
		if buf == nil {
			buf = make([]byte, 0, len(rs)*(resultSize(&w)+2*len(r.Module)+len(r.Lease.Token)+32))
		}
		start := len(buf)
		var err error
		if buf, err = appendResult(buf, &w); err != nil {
			buf = buf[:start]
			errs[i] = fmt.Errorf("%w: result of %s: %v", distributed.ErrInvalid, r.Module, err)
			continue
		}
		n := len(args)
		size := len(buf) - start
		piece(n + 2)
		buf = appendLeaseHead(buf, r.Lease.Token)
		piece(n + 1)
		buf = append(append(strconv.AppendInt(buf, int64(len(r.Module)), 10), ':'), r.Module...)
		piece(n + 3)
		if size <= maxAnnounced {
			buf = append(strconv.AppendInt(buf, int64(size), 10), ':')
		} else {
			buf = append(buf, "-1:"...)
		}
		piece(n + 4)
		args = append(args, r.Module, nil, nil, nil, nil)
		sent = append(sent, i)
		c.ownRes.Store(r.Module, true)
	}
	all, start := string(buf), 0
	for k, end := range ends {
		args[at[k]] = all[start:end]
		start = end
	}
	return args, sent
}

// appendLeaseHead appends to b how the lease record with token begins
// (the claim script writes the token first, as is: it makes tokens of
// letters, digits and dots). A token that JSON would escape is no lease's: its head is one
// that no record begins with.
func appendLeaseHead(b []byte, token string) []byte {
	if strings.ContainsAny(token, `"\`) || strings.ContainsFunc(token, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return append(b, '!')
	}
	return append(append(append(b, `{"token":"`...), token...), '"')
}

// publishErrs reads luaPublish's reply arr for the results sent (indexes
// of rs) into errs.
func (c *Coordinator) publishErrs(rs []distributed.Result, errs []error, sent []int, arr []any) []error {
	if len(arr) != len(sent) {
		err := malformed("publish reply", fmt.Errorf("%d answers for %d results", len(arr), len(sent)))
		for _, i := range sent {
			errs[i] = err
		}
		return errs
	}
	for k, i := range sent {
		if arr[k] == "stale" {
			r := rs[i]
			errs[i] = fmt.Errorf("%w: result of %s from instance %d (attempt %d) is not from the current lease", distributed.ErrStaleLease, r.Module, r.Lease.Holder, r.Lease.Attempt)
		}
	}
	return errs
}

// AwaitResult implements distributed.Coordinator. It reads Redis only when
// the module was announced, when the run's state changed, or once per
// subscription epoch (announcements can be missed while disconnected).
//
// The master has one goroutine in it per queued module: the work besides
// waiting is in helpers (awaitStart, awaitLook), which keeps this frame,
// and so those goroutines' stacks, small.
func (c *Coordinator) AwaitResult(ctx context.Context, module string) (r distributed.Result, err error) {
	var w awaitState
	if err := c.awaitStart(ctx, module, &w); err != nil {
		return r, err
	}
	for {
		epoch, announced, stateSeq, moduleNext, globalNext := c.events.snapshot(module)
		if announced || !w.checked || epoch != w.epoch || stateSeq != w.state {
			if done, err := c.awaitLook(ctx, module, announced, &r); done || err != nil {
				return r, err
			}
			w = awaitState{checked: true, epoch: epoch, state: stateSeq}
		}
		select {
		case <-moduleNext:
		case <-globalNext:
		case <-c.dead:
			return r, c.failed()
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}
}

// awaitState is what an AwaitResult call knows: whether Redis had no
// result for it in the subscription epoch and state sequence given.
type awaitState struct {
	checked      bool
	epoch, state uint64
}

// awaitStart prepares AwaitResult for module.
func (c *Coordinator) awaitStart(ctx context.Context, module string, w *awaitState) error {
	if err := c.connect(); err != nil {
		return err
	}
	if err := c.waitEvents(ctx); err != nil {
		return err
	}
	if e, ok := c.enqueued.Load(module); ok {
		m := e.(enqueueMark)
		if !m.heard {
			// Queued before the results channel was confirmed: once it
			// is, read (the first look below).
			return c.follow(ctx, c.keys.results())
		}
		// Queued by us while subscribed: it cannot have been published
		// unannounced in this epoch.
		w.checked, w.epoch = true, m.epoch
		_, _, w.state, _, _ = c.events.snapshot(module)
		return nil
	}
	// Not queued here: hear the names of results (keys.names) before the
	// first read.
	return c.follow(ctx, c.keys.names())
}

// awaitLook looks for module's result: the announced one, or the one in
// Redis. done: *r is the result.
func (c *Coordinator) awaitLook(ctx context.Context, module string, announced bool, r *distributed.Result) (done bool, err error) {
	if announced {
		if d, ok := c.events.result(module); ok {
			*r = d.res
			return true, c.fail(d.err)
		}
		if raw, ok := c.events.payload(module); ok {
			res, err := decodeWireResult("announcement on channel "+c.keys.events()+" for "+module, module, raw)
			*r = res
			return true, c.fail(err)
		}
	}
	res, found, st, err := c.readResult(ctx, module)
	if err != nil {
		return false, err
	}
	if found {
		*r = res
		return true, nil
	}
	if st == "completed" {
		return false, fmt.Errorf("%w: no result for %s", distributed.ErrRunEnded, module)
	}
	return false, nil
}

// follow subscribes to channel (see subscriber.follow).
func (c *Coordinator) follow(ctx context.Context, channel string) error {
	err := c.events.follow(ctx, channel)
	if err == nil || ctx.Err() != nil {
		return err
	}
	if fatal, ok := c.classify("subscribing to "+channel, err); ok {
		return c.fail(fatal)
	}
	return c.describe("subscribing to "+channel, err)
}

// awaits reports whether this process queued module, so will await its
// result (the master), and did not publish that result itself: the
// master's own executor hands its results to its dispatcher directly, so
// the announcement of one is not decoded again (it stays available, raw).
func (c *Coordinator) awaits(module string) bool {
	_, queued := c.enqueued.Load(module)
	_, own := c.ownRes.Load(module)
	return queued && !own
}

// decodeAnnounced decodes the result announced for module.
func (c *Coordinator) decodeAnnounced(module, raw string) (distributed.Result, error) {
	r, err := decodeWireResult("", module, raw)
	if err != nil { // decoded again to say where: that string is built only on error
		_, err = decodeWireResult("announcement on channel "+c.keys.events()+" for "+module, module, raw)
	}
	return r, err
}

func (c *Coordinator) readResult(ctx context.Context, module string) (distributed.Result, bool, string, error) {
	v, err := c.runRetry(ctx, "reading the result of "+module, scriptResult, module)
	if err != nil {
		return distributed.Result{}, false, "", err
	}
	arr, err := reply("result", v)
	if err != nil || len(arr) != 2 {
		return distributed.Result{}, false, "", errors.Join(err, malformed("result reply", errors.New("want 2 parts")))
	}
	st, _ := arr[0].(string)
	raw, ok := arr[1].(string)
	if !ok {
		return distributed.Result{}, false, st, nil
	}
	r, err := c.decodeResult(module, raw)
	return r, err == nil, st, err
}

// decodeResult decodes and validates a stored result.
func (c *Coordinator) decodeResult(module, raw string) (distributed.Result, error) {
	r, err := decodeWireResult("key "+c.keys.res()+" field "+module, module, raw)
	return r, c.fail(err)
}

// Cancel implements distributed.Coordinator.
func (c *Coordinator) Cancel(ctx context.Context, by int, reason string) error {
	_, err := c.runRetry(ctx, "cancelling the run", scriptCancel, by, reason)
	return err
}

// Complete implements distributed.Coordinator.
func (c *Coordinator) Complete(ctx context.Context, failed bool) error {
	f := 0
	if failed {
		f = 1
	}
	for {
		known := c.knownRKs()
		v, err := c.runRetryKeys(ctx, "completing the run", scriptComplete, c.keys.with(known), f, len(known))
		if err != nil {
			return err
		}
		arr, ok := v.([]any)
		if !ok || len(arr) == 0 || arr[0] != "rks" {
			return nil
		}
		// The run is marked completed; deleting its queues needs their keys.
		rks, err := c.staleRKs(arr, len(known))
		if err != nil {
			return err
		}
		c.learnRKs(rks)
	}
}

// State returns the run's state. It is not part of distributed.Coordinator;
// AwaitState uses it.
func (c *Coordinator) State(ctx context.Context) (distributed.RunState, error) {
	v, err := c.runRetry(ctx, "reading the run state", scriptState)
	if err != nil {
		return distributed.RunState{}, err
	}
	arr, err := reply("state", v)
	if err != nil || len(arr) != 5 {
		return distributed.RunState{}, errors.Join(err, malformed("state reply", errors.New("want 5 parts")))
	}
	st, err := parseState(c.keys.meta(), arr[0], arr[1], arr[2], arr[3], arr[4])
	return st, c.fail(err)
}

// AwaitState implements distributed.Coordinator.
func (c *Coordinator) AwaitState(ctx context.Context, known distributed.RunState) (distributed.RunState, error) {
	if err := c.connect(); err != nil {
		return distributed.RunState{}, err
	}
	if err := c.waitEvents(ctx); err != nil {
		return distributed.RunState{}, err
	}
	checked := false
	var checkedEpoch, checkedState uint64
	for {
		epoch, _, stateSeq, _, next := c.events.snapshot("")
		if !checked || epoch != checkedEpoch || stateSeq != checkedState {
			s, err := c.State(ctx)
			if err != nil {
				return distributed.RunState{}, err
			}
			if s != known {
				return s, nil
			}
			checked, checkedEpoch, checkedState = true, epoch, stateSeq
		}
		select {
		case <-next:
		case <-c.dead:
			return distributed.RunState{}, c.failed()
		case <-ctx.Done():
			return distributed.RunState{}, ctx.Err()
		}
	}
}

func (c *Coordinator) endedErr(ctx context.Context) error {
	s, err := c.State(ctx)
	if err == nil && s.Cancelled {
		return fmt.Errorf("%w: cancelled by instance %d: %s", distributed.ErrRunEnded, s.CancelledBy, s.CancelReason)
	}
	return fmt.Errorf("%w: the run has completed", distributed.ErrRunEnded)
}

// parseState reads the run's state from the fields of meta (its key).
func parseState(meta string, state, by, reason, failed, registered any) (distributed.RunState, error) {
	str := func(v any) string { s, _ := v.(string); return s }
	var s distributed.RunState
	if n, ok := registered.(int64); ok {
		s.Registered = int(n)
	}
	where := "key " + meta + " field "
	switch str(state) {
	case "", "running":
	case "cancelled":
		s.Cancelled = true
	case "completed":
		s.Completed = true
	default:
		return s, malformed(where+"state", fmt.Errorf("unknown state %q", str(state)))
	}
	if b := str(by); b != "" {
		n, err := strconv.Atoi(b)
		if err != nil || n < 0 {
			return s, malformed(where+"by", fmt.Errorf("%q is not an instance index", b))
		}
		s.Cancelled, s.CancelledBy, s.CancelReason = true, n, str(reason)
	}
	switch str(failed) {
	case "":
	case "0":
	case "1":
		s.Failed = true
	default:
		return s, malformed(where+"failed", fmt.Errorf("%q is not 0 or 1", str(failed)))
	}
	return s, nil
}
