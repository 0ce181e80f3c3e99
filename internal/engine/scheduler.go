package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/modpipe/modpipe/internal/graph"
)

// DefaultGrace is the Grace of a run that sets none.
const DefaultGrace = 10 * time.Second

// Scheduler runs a graph of nodes: a node starts once all its dependencies
// have finished, highest critical path first, within MaxParallel and the
// NotInParallel keys. It is single-use.
type Scheduler struct {
	Graph *graph.Graph
	Nodes []Node
	// MaxParallel bounds nodes executing at once; 0 means no bound.
	MaxParallel int
	// ContinueOnFailure keeps scheduling after a failure; by default only
	// AlwaysRun nodes start once a node has failed.
	ContinueOnFailure bool
	// Grace bounds how long a node that ignores cancellation or its timeout
	// is awaited before it is abandoned; 0 means DefaultGrace.
	Grace time.Duration
	// Priority orders ready nodes, highest first (critical path); nil keeps
	// declaration order.
	Priority []int64
	// Dispatch starts node i and must finish c eventually; nil runs Exec in
	// a new goroutine.
	Dispatch func(ctx context.Context, i int, c *Completion)
	// OnFinish is called once per node with its final outcome, outside the
	// scheduler's lock, possibly from several goroutines at once.
	OnFinish func(i int, o *Outcome)
	// OnStart, if set, is called when a node is started (or dispatched),
	// outside the lock.
	OnStart func(i int)
	// Dispatched, if set, is called after each round of Dispatch calls
	// (nodes that became ready together), so that a dispatcher can queue
	// them in one go: a claimer then sees all of them, in priority order.
	Dispatched func()
	// CleanupGrace, when positive, lets AlwaysRun nodes still start after
	// the run's context is cancelled, like `if: always()` (see cleanup.go).
	// 0 keeps every node from starting after a cancellation.
	CleanupGrace time.Duration
	// CleanupHere, if set, says whether AlwaysRun node i can run in this
	// process after a cancellation, and if not, why; nil means it can.
	CleanupHere func(i int) (ok bool, why string)

	mu        sync.Mutex
	out       []Outcome
	remaining []int32
	ready     readyHeap
	blocked   []int
	held      map[string]bool
	running   int
	exclusive bool // an Exclusive node is running
	draining  bool // an Exclusive node waits for running nodes to end
	comps     []Completion
	done      int
	stopCause string
	finished  []int
	toStart   []int
	cancelled bool
	ctx       context.Context
	graceT    *time.Timer
	cleanup   cleanupState // cleanup.go
	notifying sync.WaitGroup
	allDone   chan struct{}
}

// Run executes the graph and returns one outcome per node. It returns when
// every node has an outcome; cancelling ctx cancels running nodes, marks the
// rest Cancelled and abandons nodes that do not return within Grace.
func (s *Scheduler) Run(ctx context.Context) []Outcome {
	n := len(s.Nodes)
	s.out = make([]Outcome, n)
	s.remaining = make([]int32, n)
	s.ready = readyHeap{prio: s.Priority}
	s.held = map[string]bool{}
	s.comps = make([]Completion, n)
	s.allDone = make(chan struct{})
	s.ctx = ctx
	if s.Grace <= 0 {
		s.Grace = DefaultGrace
	}
	if n == 0 {
		return s.out
	}
	stopWatch := context.AfterFunc(ctx, func() { s.cancel(ctx) })
	defer stopWatch()

	s.mu.Lock()
	var roots []int
	for i := range s.Nodes {
		s.remaining[i] = int32(len(s.Graph.Deps[i]))
		if s.remaining[i] == 0 {
			roots = append(roots, i)
		}
	}
	// Roots are collected first: deciding one may settle its dependents,
	// which must not be decided a second time here.
	for _, i := range roots {
		s.decide(i)
	}
	s.pump()
	s.unlockAndNotify(ctx)

	<-s.allDone
	s.notifying.Wait()
	s.mu.Lock()
	if s.graceT != nil {
		s.graceT.Stop()
	}
	s.cleanup.end()
	s.mu.Unlock()
	return s.out
}

// decide settles node i once its dependencies are done: it is either
// finished without running (skipped, dependency failed, stopped) or queued.
// Called with s.mu held.
func (s *Scheduler) decide(i int) {
	nd := &s.Nodes[i]
	now := time.Now()
	// A node skipped before the run (filters, platform) is skipped whatever
	// became of its dependencies or the run: it was never going to run, and
	// --dry-run gives the same reason.
	if nd.SkipReason != "" {
		s.complete(i, Outcome{Status: Skipped, Reason: nd.SkipReason})
		return
	}
	// The cancellation callback may not have run yet when a node that saw
	// the cancelled context finishes.
	s.noteCancel()
	if why := s.stopped(i); why != "" {
		s.complete(i, Outcome{Status: Cancelled, Kind: KindCancel, Reason: why})
		return
	}
	if !nd.AlwaysRun {
		for _, d := range nd.Deps {
			if d.Optional {
				continue
			}
			dep := &s.out[d.Node]
			if dep.Status.Bad() {
				s.complete(i, Outcome{Status: DependencyFailed, Reason: fmt.Sprintf("dependency %s %s", s.Nodes[d.Node].Name, dep.Status)})
				return
			}
			if dep.Status == Skipped && !d.Soft {
				s.complete(i, Outcome{Status: Skipped, Reason: DependencySkipped(s.Nodes[d.Node].Name)})
				return
			}
		}
	}
	s.out[i].Ready = now
	s.ready.push(i)
}

// DependencySkipped is the reason a node is skipped because its required
// dependency dep is: the run and --dry-run give the same text.
func DependencySkipped(dep string) string { return "dependency " + dep + " is skipped" }

// pump starts ready nodes while there is room. Called with s.mu held; the
// nodes are started by unlockAndNotify.
func (s *Scheduler) pump() {
	for s.ready.Len() > 0 && (s.MaxParallel <= 0 || s.running < s.MaxParallel) {
		i := s.ready.pop()
		nd := &s.Nodes[i]
		if why := s.stopped(i); why != "" {
			s.complete(i, Outcome{Status: Cancelled, Kind: KindCancel, Reason: why, Ready: s.out[i].Ready})
			continue
		}
		if s.exclusive || s.draining || (nd.Exclusive && s.running > 0) || s.keysHeld(nd.Mutex) {
			s.blocked = append(s.blocked, i)
			s.draining = s.draining || nd.Exclusive
			continue
		}
		s.exclusive = nd.Exclusive
		for _, k := range nd.Mutex {
			s.held[k] = true
		}
		s.running++
		s.cleanup.mark(i, s.cancelled)
		s.out[i].Status = Running
		s.out[i].Start = time.Now()
		s.toStart = append(s.toStart, i)
	}
}

func (s *Scheduler) keysHeld(keys []string) bool {
	for _, k := range keys {
		if s.held[k] {
			return true
		}
	}
	return false
}

// complete records node i's final outcome and settles its dependents.
// Called with s.mu held.
func (s *Scheduler) complete(i int, o Outcome) {
	nd := &s.Nodes[i]
	if nd.IgnoreFailure && (o.Status == Failed || o.Status == TimedOut) {
		o.Status = IgnoredFailure
	}
	if o.Ready.IsZero() {
		o.Ready = s.out[i].Ready
	}
	if o.Start.IsZero() {
		o.Start = s.out[i].Start
	}
	s.out[i] = o
	s.done++
	s.finished = append(s.finished, i)
	if o.Status.Bad() && o.Status != DependencyFailed && o.Status != Cancelled && !s.ContinueOnFailure && s.stopCause == "" {
		s.stopCause = fmt.Sprintf("stopping after %s %s (use --continue-on-failure to run everything possible)", nd.Name, o.Status)
	}
	for _, j := range s.Graph.Dependents[i] {
		s.remaining[j]--
		if s.remaining[j] == 0 {
			s.decide(j)
		}
	}
}

// finish is the Completion callback of a started node.
func (s *Scheduler) finish(ctx context.Context, i int, o Outcome) {
	s.mu.Lock()
	s.running--
	nd := &s.Nodes[i]
	for _, k := range nd.Mutex {
		delete(s.held, k)
	}
	if nd.Exclusive {
		s.exclusive = false
	}
	if len(s.blocked) > 0 {
		for _, b := range s.blocked {
			s.ready.push(b)
		}
		s.blocked = s.blocked[:0]
		s.draining = false
	}
	if !o.Withdrawn || !s.requeueCleanup(i, &o) { // cleanup.go
		s.complete(i, o)
	}
	s.pump()
	s.unlockAndNotify(ctx)
}

// unlockAndNotify releases s.mu, then starts queued nodes and reports
// finished ones, so that user callbacks and goroutine starts happen outside
// the lock.
func (s *Scheduler) unlockAndNotify(ctx context.Context) {
	// Copy the work lists so the shared ones can be reused; the common case
	// (a node or two) stays on the stack.
	var startBuf, finishedBuf [8]int
	start := append(startBuf[:0], s.toStart...)
	finished := append(finishedBuf[:0], s.finished...)
	s.toStart, s.finished = s.toStart[:0], s.finished[:0]
	s.notifying.Add(1)
	defer s.notifying.Done()
	var cleanBuf [8]bool
	clean := cleanBuf[:0]
	for _, i := range start {
		c := &s.comps[i]
		c.s, c.ctx, c.i = s, ctx, i
		clean = append(clean, s.cleanup.started(i))
	}
	cleanupCtx := s.cleanup.ctx
	allDone := s.done == len(s.Nodes)
	s.mu.Unlock()

	if s.OnFinish != nil {
		for _, i := range finished {
			s.OnFinish(i, &s.out[i])
		}
	}
	for k, i := range start {
		if s.OnStart != nil {
			s.OnStart(i)
		}
		if clean[k] {
			go Exec(cleanupCtx, &s.Nodes[i], &s.comps[i], s.Grace)
		} else if s.Dispatch != nil {
			s.Dispatch(ctx, i, &s.comps[i])
		} else {
			go Exec(ctx, &s.Nodes[i], &s.comps[i], s.Grace)
		}
	}
	if len(start) > 0 && s.Dispatch != nil && s.Dispatched != nil {
		s.Dispatched()
	}
	if allDone {
		close(s.allDone)
	}
}

// cancel runs when the run's context is cancelled: nothing new starts but
// AlwaysRun nodes when CleanupGrace allows (cleanup.go), and nodes still
// running after Grace are abandoned as Cancelled.
func (s *Scheduler) cancel(ctx context.Context) {
	s.mu.Lock()
	if s.done == len(s.Nodes) {
		s.mu.Unlock()
		return
	}
	s.noteCancel()
	notStarted := append(s.ready.idx, s.blocked...)
	s.ready.idx, s.blocked = nil, nil
	for _, i := range notStarted {
		if why := s.stopped(i); why != "" {
			s.complete(i, Outcome{Status: Cancelled, Kind: KindCancel, Reason: why, Ready: s.out[i].Ready})
		} else {
			s.ready.push(i) // a cleanup: it starts when there is room
		}
	}
	s.pump()
	s.graceT = time.AfterFunc(s.Grace, func() {
		s.mu.Lock()
		var late []*Completion
		for i := range s.out {
			if s.out[i].Status == Running && !s.cleanup.started(i) {
				late = append(late, &s.comps[i])
			}
		}
		s.mu.Unlock()
		for _, c := range late {
			c.Finish(Outcome{Status: Cancelled, Kind: KindCancel, End: time.Now(),
				Err: fmt.Errorf("run cancelled and the module did not return within %s; abandoned", s.Grace)})
		}
	})
	s.unlockAndNotify(ctx)
}

// noteCancel records that the run is cancelled, if it is. Called with s.mu held.
func (s *Scheduler) noteCancel() {
	if s.cancelled || s.ctx.Err() == nil {
		return
	}
	s.cancelled = true
	s.stopCause = fmt.Sprintf("run cancelled (%v)", context.Cause(s.ctx))
	s.startCleanup()
}

// readyHeap orders ready node indices by priority, then declaration order.
// It is written out rather than built on container/heap to avoid boxing an
// int per operation.
type readyHeap struct {
	idx  []int
	prio []int64
}

func (h *readyHeap) Len() int { return len(h.idx) }

func (h *readyHeap) less(a, b int) bool {
	i, j := h.idx[a], h.idx[b]
	if h.prio != nil && h.prio[i] != h.prio[j] {
		return h.prio[i] > h.prio[j]
	}
	return i < j
}

func (h *readyHeap) push(i int) {
	h.idx = append(h.idx, i)
	for k := len(h.idx) - 1; k > 0; {
		parent := (k - 1) / 2
		if !h.less(k, parent) {
			break
		}
		h.idx[k], h.idx[parent] = h.idx[parent], h.idx[k]
		k = parent
	}
}

func (h *readyHeap) pop() int {
	top := h.idx[0]
	last := len(h.idx) - 1
	h.idx[0] = h.idx[last]
	h.idx = h.idx[:last]
	for k := 0; ; {
		l, r, m := 2*k+1, 2*k+2, k
		if l < last && h.less(l, m) {
			m = l
		}
		if r < last && h.less(r, m) {
			m = r
		}
		if m == k {
			break
		}
		h.idx[k], h.idx[m] = h.idx[m], h.idx[k]
		k = m
	}
	return top
}

// Outcome returns node i's outcome. It may be called without locking only
// for a node known to have finished before the caller started, such as a
// dependency of the calling node.
func (s *Scheduler) Outcome(i int) *Outcome { return &s.out[i] }
