// Package cluster runs distributed runs: what each instance does around the
// coordinator's primitives. The root package prepares a Run (settings,
// plan, Host); Join registers the instance, then Member.RunMaster or
// Member.RunWorker takes part in the run until it ends:
//
//   - run.go:      Join, and what master and workers share (cancellation,
//     being cut off from the run);
//   - master.go:   the master: dispatcher, watcher, heartbeat, executor and
//     reaper, the scheduler, then the run's completion;
//   - worker.go:   a worker: watcher, heartbeat and executor until the run
//     completes.
//
// Each background loop lives in its own file with a start and a stop:
//
//   - heartbeat.go:  beats, notices a lost master or a lost coordinator;
//   - watcher.go:    follows the run state (cancellation, completion);
//   - executor.go:   claims work, runs it and publishes the results (master
//     and workers alike; the master's own results go straight to its
//     dispatcher once published); publishclaim.go publishes and claims
//     for the freed slots in one trip when the coordinator can;
//   - dispatcher.go: (master) hands ready modules to the queue and awaits
//     their results; its lease policy (re-queueing the work of lost
//     instances, failing unroutable work) is in leases.go;
//   - reaper.go:     (master) the ticker that applies the lease policy.
package cluster

import (
	"log/slog"
	"sync"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/logbuf"
)

// Config is one instance's view of a distributed run. Join sets Session,
// Signer and (on the master) Local; a zero Grace is engine.DefaultGrace.
type Config struct {
	Coord    distributed.Coordinator
	Instance int
	Total    int
	Caps     []string
	Session  string

	Heartbeat         time.Duration
	LeaseTimeout      time.Duration
	CapabilityTimeout time.Duration
	MasterTimeout     time.Duration
	Grace             time.Duration
	MaxAttempts       int
	Parallelism       int

	// Log receives diagnostics about the instance itself (not module logs).
	Log *slog.Logger
	// Local, when set, tracks the modules this instance is executing, so
	// that the master's reaper does not ask the coordinator about them.
	Local *LocalWork
	// Signer signs what this instance publishes and verifies what it
	// receives; nil when the run has no shared secret (see sign.go).
	Signer *Signer
	// Mask hides this instance's secrets in the text of what it publishes
	// (logs, error messages, skip reasons); nil leaves text unchanged.
	Mask func(string) string
	// Live, when set, is the instance's own liveness: the heartbeat loop
	// reports to it and the executor takes no work while it is cut off.
	Live *Liveness
	// NoPrecedence queues every assignment with its node's Priority as
	// is, without the precedence work that only some instances can run
	// gets on them (precedence.go); benchmarks set it to measure the gain.
	NoPrecedence bool
}

// LocalWork is the set of modules an instance is executing.
type LocalWork struct {
	mu sync.Mutex
	m  map[string]int
}

func (l *LocalWork) add(module string, delta int) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]int{}
	}
	if l.m[module] += delta; l.m[module] <= 0 {
		delete(l.m, module)
	}
}

func (l *LocalWork) has(module string) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[module] > 0
}

// Host is what the cluster needs from the pipeline.
type Host interface {
	// Lookup returns the index of the node named module.
	Lookup(module string) (int, bool)
	// ExecNode returns node id ready to execute, writing its log into log.
	ExecNode(id int, log *logbuf.Buffer) *engine.Node
	// Executed reports an execution this instance finished, with its log.
	Executed(id int, o *engine.Outcome, log []byte)
	// Note writes an engine note into node id's log on this instance.
	Note(id int, msg string)
	// AppendLog adds a log shipped from the executing instance to node id's
	// log on the master.
	AppendLog(id int, log []byte)
	// Claimed tells the master which instance holds node id.
	Claimed(id int, instance int)
}

// NodeInfo is what the master needs to dispatch a node.
type NodeInfo struct {
	Name          string
	Requires      []string
	Priority      int64
	NotIdempotent bool
	// AlwaysRun modules run even when the run stops after a failure: they
	// are not withdrawn from the queue.
	AlwaysRun bool
}
