package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/graph"
)

// Plan is what the master schedules: the scheduler's view of the pipeline
// and the dispatcher's view of each node, indexed alike.
type Plan struct {
	Graph    *graph.Graph
	Nodes    []engine.Node
	Info     []NodeInfo
	Priority []int64
	// ContinueOnFailure keeps dispatching after a failure; by default work
	// queued for other instances is withdrawn after the first one.
	ContinueOnFailure bool
	OnStart           func(i int)
	OnFinish          func(i int, o *engine.Outcome)
	// Finish is called with every node's outcome, and the coordinator's
	// command count when it keeps one, before the run is marked completed;
	// it returns whether the run failed.
	Finish func(outs []engine.Outcome, commands uint64) (failed bool)
	// Lookup, when set, is asked before node i is dispatched whether the
	// cache holds its result; a hit runs on the master (cachelookup.go).
	Lookup func(ctx context.Context, i int) (hit bool)
	// CleanupGrace lets AlwaysRun modules start after the run is cancelled
	// (engine.Scheduler.CleanupGrace): the master runs them itself, when
	// it has their capabilities, since the workers are stopping too.
	CleanupGrace time.Duration
}

// RunMaster runs the master's part of the run: it schedules p, dispatching
// every ready module through the coordinator (its own executor takes its
// share), and marks the run completed for the workers.
func (m *Member) RunMaster(ctx context.Context, p Plan) error {
	cfg := m.cfg
	in := begin(ctx, cfg)
	defer in.end()
	d := NewDispatcher(cfg, m.host, p.Info)
	d.lookup = p.Lookup
	watcher := StartWatcher(cfg, in.masterWatch(d))
	defer watcher.Stop()
	cfg.Live = NewLiveness(func(err error) {
		// No result reaches a master cut off from the coordinator: end
		// what it awaits now, saying where each module stood.
		d.Abandon(in.lose(err))
	})
	hb := StartHeartbeat(cfg, cfg.Live.Lose)
	defer hb.Stop()
	exec := StartExecutor(in.ctx, cfg, m.host, m.values, d.Deliver)

	reaper := StartReaper(d)
	outs := schedule(in.ctx, d, p, cfg.Grace)
	reaper.Stop()
	err := in.complete(p.Finish(outs, commands(cfg.Coord)))
	d.Close()
	in.cancel(errors.New("run ended"))
	exec.Wait()
	select {
	case lost := <-in.lost:
		err = errors.Join(err, lost)
	default:
	}
	return err
}

// masterWatch is how the master follows the run state: work parked for
// want of a capable instance may go as soon as an instance joins, and a
// cancellation ends the queued work nobody will claim.
func (in *instance) masterWatch(d *Dispatcher) func(distributed.RunState) {
	registered := 0
	return func(s distributed.RunState) {
		if s.Registered > registered && !s.Cancelled && !s.Completed {
			registered = s.Registered
			d.RecheckParked()
		}
		if s.Cancelled {
			in.cancel(cancelled(s))
			d.CancelQueued(fmt.Sprintf("not started: run cancelled by instance %d", s.CancelledBy))
		}
	}
}

// schedule runs the plan's scheduler over the dispatcher.
func schedule(ctx context.Context, d *Dispatcher, p Plan, grace time.Duration) []engine.Outcome {
	onFinish := p.OnFinish
	if !p.ContinueOnFailure {
		// The run stops after the first failure: work queued for other
		// instances must not start either, as in one process.
		onFinish = func(i int, o *engine.Outcome) {
			p.OnFinish(i, o)
			if o.Status.Bad() && o.Status != engine.DependencyFailed && o.Status != engine.Cancelled {
				d.StopAfterFailure(StopReason(p.Info[i].Name, o.Status))
			}
		}
	}
	d.BatchDispatches()
	s := &engine.Scheduler{
		Graph: p.Graph, Nodes: p.Nodes, ContinueOnFailure: p.ContinueOnFailure, Grace: grace,
		Priority: p.Priority, Dispatch: d.dispatchFunc(), OnFinish: onFinish, OnStart: p.OnStart,
		Dispatched:   d.Flush,
		CleanupGrace: p.CleanupGrace, CleanupHere: d.cleanupHere, // cleanup.go
	}
	return s.Run(ctx)
}

// complete tells the workers the run is over, and whether it failed.
func (in *instance) complete(failed bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), in.cfg.LeaseTimeout)
	defer cancel()
	if err := in.cfg.Coord.Complete(ctx, failed); err != nil {
		return fmt.Errorf("could not mark the run completed; workers will exit after MasterTimeout: %w", err)
	}
	return nil
}

// commands is the coordinator's command count, when it keeps one.
func commands(c distributed.Coordinator) uint64 {
	if cc, ok := c.(distributed.CommandCounter); ok {
		return cc.Commands()
	}
	return 0
}
