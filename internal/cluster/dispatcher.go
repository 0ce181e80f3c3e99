package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
)

// Dispatcher is the master's side of the queue: the scheduler hands it
// ready nodes (Dispatch); it enqueues them, awaits their results and
// delivers outcomes. It also owns the policy for lost instances and
// unroutable work (leases.go), which the Reaper applies periodically.
type Dispatcher struct {
	cfg   Config
	host  Host
	nodes []NodeInfo
	index map[string]int
	// topPriority lifts scarce work above the rest (precedence.go).
	topPriority int64

	life   context.Context // ends when the master stops awaiting results
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	flights   map[int]*flight
	instances []distributed.InstanceInfo
	refused   map[string]error // instances whose registration did not verify (sign.go)

	// Enqueues go through one flusher, so that modules becoming ready
	// together are queued in one round trip.
	pendingMu sync.Mutex
	pending   []int
	kick      chan struct{}
	flushed   chan struct{}
	// batched, once set, leaves the kick to Flush (see BatchDispatches).
	batched atomic.Bool
	// stopping, once set, is why modules that are not AlwaysRun are no
	// longer queued (the run stops after a failure).
	stopping string
	// lookup is Plan.Lookup (cachelookup.go).
	lookup func(ctx context.Context, i int) bool

	// Results the coordinator delivered, settled by one goroutine
	// (arrivals.go).
	arrived  chan arrival
	finished chan struct{}
	// watcher is the coordinator's ResultWatcher, if it has one: the
	// results of all queued nodes then come through it (arrivals.go),
	// posted to inbox, instead of one await goroutine per node.
	watcher distributed.ResultWatcher
	inMu    sync.Mutex
	inbox   []arrival
	inKick  chan struct{}
	// So that the reaper's periodic work does not grow with the number
	// of flights (leases.go), guarded by mu: maybeParked is set when a
	// flight parks, someWaiting when one has a waitingFrom; each is
	// cleared by the scan that finds none. reqSets lists the distinct
	// requirements of the nodes.
	maybeParked, someWaiting bool
	reqSets                  [][]string
}

// flight is a dispatched node whose result has not been delivered.
type flight struct {
	comp    *engine.Completion
	attempt int
	// parked is set while no instance can take the node; it is not queued.
	parked      bool
	waitingFrom time.Time // since when no live instance could take it
	dispatched  time.Time
	enqueued    time.Time // of the first attempt
	// holder is the instance last seen holding the node's lease (0: none
	// seen; the master's own executions are known locally).
	holder int
	// lostHolder is the instance that held the node's lease when it was
	// lost and the node failed for it (caploss.go); 0 otherwise.
	lostHolder int
	// stopAwait ends the wait for the node's result from the coordinator
	// (an await goroutine's; a watch ends with the dispatcher).
	stopAwait context.CancelFunc
	// awaited is set once its result is awaited from the coordinator.
	awaited bool
}

// NewDispatcher returns a dispatcher for nodes (indexed like the scheduler's).
func NewDispatcher(cfg Config, host Host, nodes []NodeInfo) *Dispatcher {
	life, cancel := context.WithCancel(context.Background())
	// Sized for the plan: a flat plan has every node in flight at once,
	// and growing the maps would copy them over and over.
	d := &Dispatcher{cfg: cfg, host: host, nodes: nodes, index: make(map[string]int, len(nodes)), life: life, cancel: cancel, flights: make(map[int]*flight, len(nodes)),
		kick: make(chan struct{}, 1), flushed: make(chan struct{}), arrived: make(chan arrival, 256), finished: make(chan struct{}), inKick: make(chan struct{}, 1)}
	d.watcher, _ = cfg.Coord.(distributed.ResultWatcher)
	for i, n := range nodes {
		d.index[n.Name] = i
	}
	d.topPriority = topPriorityOf(nodes)
	d.reqSets = distinctRequirements(nodes)
	go d.flusher()
	go d.finisher()
	return d
}

// flusher queues pending first attempts, all that are pending at once.
func (d *Dispatcher) flusher() {
	defer close(d.flushed)
	batcher, _ := d.cfg.Coord.(distributed.BatchEnqueuer)
	for {
		select {
		case <-d.life.Done():
			return
		case <-d.kick:
		}
		d.pendingMu.Lock()
		batch := d.pending
		d.pending = nil
		stopping := d.stopping
		d.pendingMu.Unlock()
		if stopping != "" {
			batch = slices.DeleteFunc(batch, func(i int) bool {
				if d.nodes[i].AlwaysRun {
					return false
				}
				d.cancelFlight(i, stopping)
				return true
			})
		}
		for len(batch) > 0 {
			n := min(len(batch), 256)
			chunk := batch[:n]
			batch = batch[n:]
			// Start awaiting each module once it is queued: a coordinator
			// then knows no result can have come before the wait began.
			if batcher == nil {
				// One at a time, a claimer may take from a half-queued
				// round: queue the most urgent first (precedence.go).
				d.byQueuePriority(chunk)
				queued := chunk[:0:0]
				for _, i := range chunk {
					if err := d.enqueue(i, 1); err != nil {
						d.fail(i, fmt.Errorf("could not queue %s: %w", d.nodes[i].Name, err), -1)
						continue
					}
					queued = append(queued, i)
				}
				d.awaitResults(queued)
				continue
			}
			as := make([]distributed.Assignment, len(chunk))
			for k, i := range chunk {
				as[k] = d.assignment(i, 1)
			}
			ctx, cancel := context.WithTimeout(d.life, d.cfg.LeaseTimeout)
			err := batcher.EnqueueBatch(ctx, as)
			cancel()
			if err != nil {
				for _, i := range chunk {
					d.fail(i, fmt.Errorf("could not queue %s: %w", d.nodes[i].Name, err), -1)
				}
				continue
			}
			d.awaitResults(chunk)
		}
	}
}

// Close stops awaiting results and waits for the awaiting goroutines.
func (d *Dispatcher) Close() {
	d.cancel()
	<-d.flushed // no await starts after this
	d.wg.Wait()
	<-d.finished
}

// Dispatch implements engine.Scheduler.Dispatch.
func (d *Dispatcher) Dispatch(_ context.Context, i int, c *engine.Completion) {
	f := &flight{comp: c, attempt: 1, dispatched: time.Now()}
	d.mu.Lock()
	d.flights[i] = f
	routable := d.routableLocked(i, false)
	d.mu.Unlock()
	if !routable {
		// The cached view may be stale: look again before parking.
		d.refreshInstances(d.life)
		d.mu.Lock()
		routable = d.routableLocked(i, false)
		if !routable {
			f.parked, f.waitingFrom = true, time.Now()
			d.maybeParked, d.someWaiting = true, true
		}
		d.mu.Unlock()
	}
	if routable {
		f.enqueued = time.Now()
		d.pendingMu.Lock()
		d.pending = append(d.pending, i)
		d.pendingMu.Unlock()
		if !d.batched.Load() {
			d.Flush()
		}
		return // the flusher starts awaiting once the module is queued
	}
	d.checkUnroutable(i)
	if d.watcher == nil {
		d.wg.Add(1)
		go d.await(i)
	} // else it is watched once queued (recheckParked)
}

// BatchDispatches makes Dispatch leave queueing to Flush, which the
// scheduler calls after each round of dispatches: modules that became
// ready together are queued together, so no instance claims from half a
// round (taking a general module before the one only it can run arrives).
func (d *Dispatcher) BatchDispatches() { d.batched.Store(true) }

// Flush has the flusher queue what Dispatch left pending.
func (d *Dispatcher) Flush() {
	select {
	case d.kick <- struct{}{}:
	default: // the flusher is already due
	}
}

func (d *Dispatcher) enqueue(i, attempt int) error {
	ctx, cancel := context.WithTimeout(d.life, d.cfg.LeaseTimeout)
	defer cancel()
	return d.cfg.Coord.Enqueue(ctx, d.assignment(i, attempt))
}

// await delivers node i's result when the coordinator announces it. A
// node only the master can run (PinToMaster) is not awaited through the
// coordinator: the master's executor hands its result over (Deliver); so
// does it for any other node it happens to run, ending the wait here.
func (d *Dispatcher) await(i int) {
	defer d.wg.Done()
	ctx, stop, ok := d.startAwait(i)
	defer stop()
	if !ok {
		return // delivered already, or only the master's executor runs it
	}
	var failingSince time.Time
	for {
		res, err := d.cfg.Coord.AwaitResult(ctx, d.nodes[i].Name)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			d.arrive(i, res)
			return
		}
		if !d.awaitFailed(ctx, i, err, &failingSince) {
			return
		}
	}
}

// startAwait returns the context of the wait for node i's result, which
// finish ends, and whether the coordinator is to be asked for it.
func (d *Dispatcher) startAwait(i int) (context.Context, context.CancelFunc, bool) {
	d.mu.Lock()
	f := d.flights[i]
	ctx, stop := context.WithCancel(d.life)
	if f != nil {
		f.stopAwait, f.awaited = stop, true
	}
	d.mu.Unlock()
	return ctx, stop, f != nil && !d.runsHere(i)
}

// awaitFailed handles an error awaiting node i's result, and reports
// whether to await again. (Kept out of await, whose goroutines number one
// per queued module: a small frame there keeps their stacks from growing.)
func (d *Dispatcher) awaitFailed(ctx context.Context, i int, err error, failingSince *time.Time) bool {
	if errors.Is(err, distributed.ErrRunEnded) {
		return false
	}
	if Fatal(err) {
		d.fail(i, err, -1) // no result can come any more
		return false
	}
	// Errors are retried as an outage for as long as an instance may be
	// unreachable (the lease timeout); a malformed result will not get
	// better.
	if failingSince.IsZero() {
		*failingSince = time.Now()
	}
	if errors.Is(err, distributed.ErrInvalid) || time.Since(*failingSince) > d.cfg.LeaseTimeout {
		d.fail(i, fmt.Errorf("the master could not obtain the result of %s from the coordinator (failing for %s; lease timeout %s): %w",
			d.nodes[i].Name, time.Since(*failingSince).Round(time.Millisecond), d.cfg.LeaseTimeout, err), -1)
		return false
	}
	d.cfg.Log.Warn("awaiting a result failed", "module", d.nodes[i].Name, "err", err)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d.cfg.Heartbeat):
	}
	return true
}

// runsHere reports whether node i can only run on this instance, whose
// executor delivers its result (a master with a local executor, and a node
// pinned to the master).
func (d *Dispatcher) runsHere(i int) bool {
	return d.cfg.Local != nil && slices.Contains(d.nodes[i].Requires, distributed.MasterCapability)
}

// Deliver hands over a result this instance's executor published and the
// coordinator accepted (so its lease was current): the node's outcome does
// not wait for the coordinator to announce it back.
func (d *Dispatcher) Deliver(res distributed.Result) {
	if i, ok := d.index[res.Module]; ok && d.life.Err() == nil {
		d.finish(i, res)
	}
}

// finish delivers res as node i's outcome, unless the node has ended.
func (d *Dispatcher) finish(i int, res distributed.Result) {
	o := outcomeOf(res, time.Now())
	d.mu.Lock()
	f := d.flights[i]
	delete(d.flights, i)
	d.mu.Unlock()
	if f == nil {
		return
	}
	if f.stopAwait != nil {
		f.stopAwait()
	}
	// Time parked on the master, waiting for a capable instance, is queue
	// time too.
	if !f.enqueued.IsZero() {
		o.QueueWait += f.enqueued.Sub(f.dispatched)
	}
	d.host.AppendLog(i, res.Log)
	f.comp.Finish(o)
}

// fail ends node i without a result from an instance.
func (d *Dispatcher) fail(i int, err error, instance int) {
	d.mu.Lock()
	f := d.flights[i]
	delete(d.flights, i)
	d.mu.Unlock()
	if f == nil {
		return
	}
	now := time.Now()
	o := engine.Outcome{Status: engine.Failed, Kind: engine.KindError, Err: err, Start: now, End: now, Attempts: f.attempt - 1, Dispatches: f.attempt - 1,
		LostHolder: f.lostHolder}
	if instance >= 0 {
		o.Instance = instance
	}
	f.comp.Finish(o)
}

// refreshInstances reloads the registered instances.
func (d *Dispatcher) refreshInstances(ctx context.Context) []distributed.InstanceInfo {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.LeaseTimeout)
	defer cancel()
	ins, err := d.cfg.Coord.Instances(ctx)
	if err != nil {
		if !Fatal(err) { // a fatal error ends the run through the heartbeat loop
			d.cfg.Log.Warn("listing instances failed", "err", err)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.instances
	}
	ins = d.signedInstances(ins)
	d.mu.Lock()
	d.instances = ins
	d.mu.Unlock()
	return ins
}

// routableLocked reports whether a registered (and, with liveOnly, live)
// instance can take node i.
func (d *Dispatcher) routableLocked(i int, liveOnly bool) bool {
	for _, in := range d.instances {
		if liveOnly && in.Age > d.cfg.LeaseTimeout {
			continue
		}
		if distributed.Satisfies(in.Capabilities, d.nodes[i].Requires) {
			return true
		}
	}
	return false
}

// allRegisteredLocked reports whether every expected instance has registered.
func (d *Dispatcher) allRegisteredLocked() bool {
	seen := map[int]bool{}
	for _, in := range d.instances {
		seen[in.Instance] = true
	}
	return len(seen) >= d.cfg.Total
}

// checkUnroutable fails parked node i at once when every expected instance
// has registered and none can take it, or when it has waited longer than
// CapabilityTimeout.
func (d *Dispatcher) checkUnroutable(i int) {
	d.mu.Lock()
	f := d.flights[i]
	if f == nil || !f.parked {
		d.mu.Unlock()
		return
	}
	var err error
	switch {
	case d.routableLocked(i, false):
		// A capable instance registered since the node parked: the
		// reaper's recheck (maybeParked is set) queues it.
	case d.allRegisteredLocked():
		err = fmt.Errorf("no instance can run %s: it requires %s; %s", d.nodes[i].Name, describeReqs(d.nodes[i].Requires), d.offersLocked())
	case time.Since(f.waitingFrom) > d.cfg.CapabilityTimeout:
		err = fmt.Errorf("no instance that can run %s (requires %s) registered within %s (CapabilityTimeout); %d of %d instances registered; %s",
			d.nodes[i].Name, describeReqs(d.nodes[i].Requires), d.cfg.CapabilityTimeout, len(d.instances), d.cfg.Total, d.offersLocked())
	}
	d.mu.Unlock()
	if err != nil {
		d.fail(i, err, -1)
	}
}

func (d *Dispatcher) offersLocked() string {
	parts := make([]string, 0, len(d.instances))
	for _, in := range d.instances {
		caps := slices.DeleteFunc(slices.Clone(in.Capabilities), func(c string) bool { return c == distributed.MasterCapability })
		parts = append(parts, fmt.Sprintf("instance %d offers %s", in.Instance, strings.Join(caps, ", ")))
	}
	parts = append(parts, d.refusedLocked()...)
	if len(parts) == 0 {
		return "no instance has registered"
	}
	return strings.Join(parts, "; ")
}

func describeReqs(reqs []string) string {
	return DescribeRequirements(reqs, "the master (PinToMaster)")
}

// DescribeRequirements lists a module's requirements for people: "a + b or
// c", master naming the master capability, "nothing" for none. Errors and
// the dry run's routing table (which says "the master") share it.
func DescribeRequirements(reqs []string, master string) string {
	var out []string
	for _, r := range reqs {
		if r == distributed.MasterCapability {
			out = append(out, master)
			continue
		}
		out = append(out, strings.ReplaceAll(r, "|", " or "))
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, " + ")
}

// CancelQueued ends, as Cancelled, every dispatched node that no instance
// has claimed: after a cancellation nobody will claim them. Claimed nodes
// end when their holders publish their (cancelled) results.
func (d *Dispatcher) CancelQueued(reason string) {
	if d.life.Err() != nil {
		return // the run is over
	}
	ctx, cancel := context.WithTimeout(d.life, d.cfg.LeaseTimeout)
	leases, err := d.cfg.Coord.Leases(ctx)
	cancel()
	if err != nil {
		d.cfg.Log.Warn("listing leases after cancellation failed; queued modules end after the grace period", "err", err)
		return
	}
	held := map[string]bool{}
	for _, l := range leases {
		held[l.Module] = true
	}
	var ended []*flight
	d.mu.Lock()
	for i, f := range d.flights {
		if !held[d.nodes[i].Name] {
			ended = append(ended, f)
			delete(d.flights, i)
		}
	}
	d.mu.Unlock()
	for _, f := range ended {
		// Withdrawn: an AlwaysRun module runs on the master as a cleanup.
		f.comp.Finish(engine.Outcome{Status: engine.Cancelled, Kind: engine.KindCancel, Reason: reason, Withdrawn: true})
	}
}

// Abandon ends every node still awaited when the master itself lost the
// coordinator (cause): no result can reach it any more. A node an instance
// was seen holding ends Cancelled on that instance with an unknown outcome;
// one no instance was seen running ends Cancelled, not started — neither
// is reported as abandoned by the master.
func (d *Dispatcher) Abandon(cause error) {
	flights := map[int]*flight{}
	d.mu.Lock()
	for i, f := range d.flights {
		if !d.cfg.Local.has(d.nodes[i].Name) { // running here: its own outcome arrives
			flights[i] = f
			delete(d.flights, i)
		}
	}
	d.mu.Unlock()
	now := time.Now()
	for i, f := range flights {
		o := engine.Outcome{Status: engine.Cancelled, Kind: engine.KindCancel, Start: now, End: now, Attempts: f.attempt - 1, Dispatches: f.attempt - 1}
		switch {
		case f.holder > 0:
			o.Instance, o.Attempts, o.Dispatches = f.holder, f.attempt, f.attempt
			o.Err = fmt.Errorf("instance %d was running %s when the master lost the coordinator; its outcome is unknown: %w", f.holder, d.nodes[i].Name, cause)
		default:
			o.Reason = fmt.Sprintf("not started by any instance the master knew of when the master lost the coordinator: %v", cause)
		}
		f.comp.Finish(o)
	}
}
