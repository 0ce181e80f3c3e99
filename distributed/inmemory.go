package distributed

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modpipe/modpipe/internal/ident"
)

// InMemory is a Coordinator for the instances of one process: tests, and
// running several instances in one program (--local-instances). Create it
// with NewInMemory; share the one value between the instances.
//
// The in-memory coordinator is shared by the instances of one process, so
// it tells callers apart by index only: after a lost instance is replaced,
// calls made with its index act for the replacement.
type InMemory struct {
	mu        sync.Mutex
	instances map[int]*memInstance // accepted registrations
	refused   map[int]refusal      // workers the master's registration refused
	queue     []queued             // highest priority first, then enqueue order
	enqueued  map[string]bool      // module#attempt of every assignment ever enqueued
	seq       uint64
	leases    map[string]Lease
	claimedAt map[string]time.Time
	results   map[string]Result
	state     RunState
	changed   chan struct{} // closed and replaced on every change
}

type memInstance struct {
	reg  Registration
	seen time.Time
}

// alive reports whether the instance's last heartbeat is younger than its
// LeaseTimeout (always, without one).
func (in *memInstance) alive(now time.Time) bool {
	return in.reg.LeaseTimeout <= 0 || now.Sub(in.seen) <= in.reg.LeaseTimeout
}

// refusal is why a worker was refused when the master registered.
type refusal struct {
	session string
	err     error
}

// mismatch compares a worker's registration with the master's: nil when
// they agree, else an error wrapping ErrFingerprintMismatch naming both.
func mismatch(worker, master Registration) error {
	if worker.Fingerprint != master.Fingerprint {
		return fmt.Errorf("%w: instance %d presents pipeline %s but the run's master (instance 0) presents %s; every instance must run the same program and commit as the master",
			ErrFingerprintMismatch, worker.Instance, worker.Fingerprint, master.Fingerprint)
	}
	if worker.Total != master.Total {
		return fmt.Errorf("%w: instance %d expects %d instances (--total) but the run's master (instance 0) expects %d; give every instance the same --total",
			ErrFingerprintMismatch, worker.Instance, worker.Total, master.Total)
	}
	return nil
}

type queued struct {
	a   Assignment
	seq uint64
	at  time.Time
}

// NewInMemory returns an empty in-memory coordinator for one run.
func NewInMemory() *InMemory {
	return &InMemory{
		instances: map[int]*memInstance{},
		refused:   map[int]refusal{},
		enqueued:  map[string]bool{},
		leases:    map[string]Lease{},
		claimedAt: map[string]time.Time{},
		results:   map[string]Result{},
		changed:   make(chan struct{}),
	}
}

var (
	_ Coordinator    = (*InMemory)(nil)
	_ BatchClaimer   = (*InMemory)(nil)
	_ PublishClaimer = (*InMemory)(nil)
)

// broadcast wakes every waiter. Called with m.mu held.
func (m *InMemory) broadcast() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// wait blocks until the next change or ctx is done. Called with m.mu held;
// returns with it held.
func (m *InMemory) wait(ctx context.Context) error {
	ch := m.changed
	m.mu.Unlock()
	defer m.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Register implements Coordinator.
func (m *InMemory) Register(ctx context.Context, r Registration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state.Completed {
		return fmt.Errorf("%w: this run has already completed; use a new run id", ErrRunEnded)
	}
	now := time.Now()
	if cur, ok := m.instances[r.Instance]; ok && cur.reg.Session != r.Session && cur.alive(now) {
		return fmt.Errorf("%w: instance %d is held by a live instance (session %s, last heartbeat %s ago); give every instance its own index, or wait until the holder is lost (lease timeout %s)",
			ErrIndexTaken, r.Instance, cur.reg.Session, now.Sub(cur.seen).Round(time.Millisecond), cur.reg.LeaseTimeout)
	}
	r.Capabilities = ident.Lower(r.Capabilities)
	if r.Instance != 0 {
		if master, ok := m.instances[0]; ok {
			if err := mismatch(r, master.reg); err != nil {
				return err
			}
		}
	} else {
		// The master's fingerprint and total are the run's: refuse the
		// workers that registered before it with others.
		for i, in := range m.instances {
			if i == 0 {
				continue
			}
			if err := mismatch(in.reg, r); err != nil {
				m.refused[i] = refusal{session: in.reg.Session, err: err}
				delete(m.instances, i)
			}
		}
	}
	delete(m.refused, r.Instance)
	m.instances[r.Instance] = &memInstance{reg: r, seen: now}
	m.state.Registered = len(m.instances)
	m.broadcast()
	return nil
}

// checkLocked returns nil when instance is registered, accepted and alive,
// and otherwise an error wrapping ErrNotRegistered (and, for a refused
// worker, ErrFingerprintMismatch). Called with m.mu held.
func (m *InMemory) checkLocked(instance int, now time.Time) error {
	in, ok := m.instances[instance]
	if !ok {
		if ref, ok := m.refused[instance]; ok {
			return fmt.Errorf("%w: %w", ErrNotRegistered, ref.err)
		}
		return fmt.Errorf("%w: instance %d has not registered with this run", ErrNotRegistered, instance)
	}
	if !in.alive(now) {
		return fmt.Errorf("%w: instance %d sent no heartbeat for %s (lease timeout %s): it is lost and its work is being handed to others",
			ErrNotRegistered, instance, now.Sub(in.seen).Round(time.Millisecond), in.reg.LeaseTimeout)
	}
	return nil
}

// Heartbeat implements Coordinator.
func (m *InMemory) Heartbeat(ctx context.Context, instance int) (Pulse, error) {
	if err := ctx.Err(); err != nil {
		return Pulse{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	in, ok := m.instances[instance]
	if !ok {
		return Pulse{}, m.checkLocked(instance, time.Now())
	}
	in.seen = time.Now()
	p := Pulse{State: m.state}
	if master, ok := m.instances[0]; ok {
		p.MasterRegistered, p.MasterAge = true, time.Since(master.seen)
	}
	return p, nil
}

// Instances implements Coordinator.
func (m *InMemory) Instances(ctx context.Context) ([]InstanceInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]InstanceInfo, 0, len(m.instances))
	for _, in := range m.instances {
		out = append(out, InstanceInfo{Instance: in.reg.Instance, Capabilities: slices.Clone(in.reg.Capabilities), Session: in.reg.Session, Age: time.Since(in.seen),
			Fingerprint: in.reg.Fingerprint, Total: in.reg.Total, MAC: slices.Clone(in.reg.MAC)})
	}
	slices.SortFunc(out, func(a, b InstanceInfo) int { return a.Instance - b.Instance })
	return out, nil
}

// Enqueue implements Coordinator.
func (m *InMemory) Enqueue(ctx context.Context, a Assignment) error {
	if err := ValidateAssignment(a); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enqueueLocked(a)
	return nil
}

// enqueueLocked queues a, unless its module and attempt were enqueued
// before (see Coordinator.Enqueue). Called with m.mu held.
func (m *InMemory) enqueueLocked(a Assignment) {
	key := a.Module + "#" + strconv.Itoa(a.Attempt)
	if m.enqueued[key] {
		return
	}
	m.enqueued[key] = true
	m.seq++
	q := queued{a: a, seq: m.seq, at: time.Now()}
	i, _ := slices.BinarySearchFunc(m.queue, q, func(x, y queued) int {
		if x.a.Priority != y.a.Priority {
			if x.a.Priority > y.a.Priority {
				return -1
			}
			return 1
		}
		if x.seq < y.seq {
			return -1
		}
		return 1
	})
	m.queue = slices.Insert(m.queue, i, q)
	m.broadcast()
}

// Claim implements Coordinator.
func (m *InMemory) Claim(ctx context.Context, instance int, caps []string) (Claim, error) {
	cls, err := m.ClaimBatch(ctx, instance, caps, 1)
	if err != nil {
		return Claim{}, err
	}
	return cls[0], nil
}

// ClaimBatch implements BatchClaimer.
func (m *InMemory) ClaimBatch(ctx context.Context, instance int, caps []string, limit int) ([]Claim, error) {
	limit = min(MaxBatch, max(1, limit))
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if m.state.Cancelled || m.state.Completed {
			return nil, m.endedErr()
		}
		if err := m.checkLocked(instance, time.Now()); err != nil {
			return nil, err
		}
		if out := m.claimLocked(instance, caps, limit); len(out) > 0 {
			return out, nil
		}
		if err := m.wait(ctx); err != nil {
			return nil, err
		}
	}
}

// claimLocked takes up to limit queued assignments caps satisfies, best
// first, each with a fresh lease held by instance (which must be
// registered). Called with m.mu held.
func (m *InMemory) claimLocked(instance int, caps []string, limit int) []Claim {
	var out []Claim
	for i := 0; i < len(m.queue) && len(out) < limit; {
		q := m.queue[i]
		if !Satisfies(caps, q.a.Requires) {
			i++
			continue
		}
		m.queue = slices.Delete(m.queue, i, i+1)
		m.seq++
		l := Lease{Module: q.a.Module, Attempt: q.a.Attempt, Holder: instance, Session: m.instances[instance].reg.Session,
			Token: strconv.FormatUint(m.seq, 36) + "-" + strconv.Itoa(instance)}
		m.leases[q.a.Module] = l
		now := time.Now()
		m.claimedAt[q.a.Module] = now
		out = append(out, Claim{Assignment: q.a, Lease: l, QueueWait: now.Sub(q.at)})
	}
	return out
}

func (m *InMemory) endedErr() error {
	if m.state.Cancelled {
		return fmt.Errorf("%w: cancelled by instance %d: %s", ErrRunEnded, m.state.CancelledBy, m.state.CancelReason)
	}
	return fmt.Errorf("%w: the run has completed", ErrRunEnded)
}

// Leases implements Coordinator.
func (m *InMemory) Leases(ctx context.Context) ([]Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Lease, 0, len(m.leases))
	for mod, l := range m.leases {
		l.Age = time.Since(m.claimedAt[mod])
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Lease) int { return strings.Compare(a.Module, b.Module) })
	return out, nil
}

func (m *InMemory) current(l Lease) bool {
	cur, ok := m.leases[l.Module]
	return ok && cur.Token == l.Token && cur.Attempt == l.Attempt
}

// Reclaim implements Coordinator.
func (m *InMemory) Reclaim(ctx context.Context, l Lease, next *Assignment) error {
	if next != nil {
		if err := ValidateAssignment(*next); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.current(l) {
		return fmt.Errorf("%w: %s attempt %d (token %s) is not the current lease", ErrStaleLease, l.Module, l.Attempt, l.Token)
	}
	delete(m.leases, l.Module)
	delete(m.claimedAt, l.Module)
	if next != nil {
		m.enqueueLocked(*next)
	}
	return nil
}

// Publish implements Coordinator.
func (m *InMemory) Publish(ctx context.Context, r Result) error {
	if err := ValidateResult(r); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.publishLocked(r)
}

// publishLocked stores r (valid) if its lease is current. Called with m.mu
// held.
func (m *InMemory) publishLocked(r Result) error {
	if !m.current(r.Lease) {
		return fmt.Errorf("%w: result of %s from instance %d (attempt %d) is not from the current lease", ErrStaleLease, r.Module, r.Lease.Holder, r.Lease.Attempt)
	}
	delete(m.leases, r.Module)
	delete(m.claimedAt, r.Module)
	r.Value, r.Log = slices.Clone(r.Value), slices.Clone(r.Log)
	m.results[r.Module] = r
	m.broadcast()
	return nil
}

// AwaitResult implements Coordinator.
func (m *InMemory) AwaitResult(ctx context.Context, module string) (Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		if r, ok := m.results[module]; ok {
			return r, nil
		}
		if m.state.Completed {
			return Result{}, fmt.Errorf("%w: no result for %s", ErrRunEnded, module)
		}
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		if err := m.wait(ctx); err != nil {
			return Result{}, err
		}
	}
}

// Cancel implements Coordinator.
func (m *InMemory) Cancel(ctx context.Context, by int, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state.Cancelled || m.state.Completed {
		return nil
	}
	m.state.Cancelled, m.state.CancelledBy, m.state.CancelReason = true, by, reason
	m.broadcast()
	return nil
}

// Complete implements Coordinator.
func (m *InMemory) Complete(ctx context.Context, failed bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state.Completed {
		return nil
	}
	m.state.Completed, m.state.Failed = true, failed
	m.broadcast()
	return nil
}

// State returns the run's state. It is not part of Coordinator (modpipe
// reads the state through Heartbeat and AwaitState); tests use it.
func (m *InMemory) State(ctx context.Context) (RunState, error) {
	if err := ctx.Err(); err != nil {
		return RunState{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state, nil
}

// AwaitState implements Coordinator.
func (m *InMemory) AwaitState(ctx context.Context, known RunState) (RunState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.state == known {
		if err := m.wait(ctx); err != nil {
			return RunState{}, err
		}
	}
	return m.state, nil
}

// Close implements Coordinator; the in-memory coordinator holds nothing.
func (m *InMemory) Close() error { return nil }
