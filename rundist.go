package modpipe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/cluster"
	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/logbuf"
)

// ErrInvalidPipeline is wrapped by Run's error when the pipeline cannot run
// at all: an invalid graph or options, unknown filter names, or — in
// distributed mode — an instance whose pipeline differs from the run's.
var ErrInvalidPipeline = errors.New("invalid pipeline")

// ErrBadConfig is wrapped by Run's error when distributed settings are
// missing or wrong: no coordinator, no run id or URL for it, an instance
// index out of range.
var ErrBadConfig = errors.New("bad configuration")

// ErrMasterLost is wrapped by a worker's Run error when the master never
// registered, or stopped sending heartbeats, within MasterTimeout.
var ErrMasterLost = cluster.ErrMasterLost

// distState is a run's distributed half.
type distState struct {
	values *cluster.Values
	base   []engine.Node  // nodes as the plan made them; executions copy them
	index  map[string]int // node names

	mu       sync.Mutex
	executed []int // nodes this instance ran, for a worker's summary
	outs     map[int]engine.Outcome
}

// runDistributed runs this instance's part of a distributed run.
func (p *Pipeline) runDistributed(ctx context.Context) (*Summary, error) {
	start := time.Now()
	if p.coord == nil {
		return nil, fmt.Errorf("%w: distributed mode with %d instances needs a coordinator the instances share: add p.UseCoordinator(redis.NewCoordinator(redis.Options{})) (package github.com/modpipe/modpipe/distributed/redis), or try --local-instances",
			ErrBadConfig, p.dist.TotalInstances)
	}
	dist := p.dist
	if dist.Parallelism <= 0 && p.MaxParallel > 0 {
		dist.Parallelism = p.MaxParallel // --parallel bounds each instance
	}
	opts, err := dist.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	caps, osName, err := opts.capabilities()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	pl, err := p.buildPlan(planEnv{os: osName, distributed: true})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPipeline, err)
	}
	if err := pl.checkJSON(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPipeline, err)
	}
	master := opts.InstanceIndex == 0
	role := RoleWorker
	if master {
		role = RoleMaster
	}
	r := p.newRun(pl)
	r.secrets.Add(opts.SharedSecret)
	r.instance = Instance{Index: opts.InstanceIndex, Role: role, Capabilities: caps}
	r.dist = &distState{values: cluster.NewValues(p.coord), outs: map[int]engine.Outcome{}}
	r.dist.base = r.engineNodes(pl)
	r.dist.index = pl.graph.Index
	cfg := cluster.Config{
		Coord: p.coord, Instance: opts.InstanceIndex, Total: opts.TotalInstances, Caps: caps, Session: newSession(),
		Heartbeat: opts.HeartbeatInterval, LeaseTimeout: opts.LeaseTimeout, CapabilityTimeout: opts.CapabilityTimeout,
		MasterTimeout: opts.MasterTimeout, Grace: p.grace(), MaxAttempts: opts.MaxAttempts, Parallelism: opts.Parallelism,
		Log: p.diagnostics(opts.InstanceIndex), Mask: r.secrets.String,
	}
	if master {
		cfg.Local = &cluster.LocalWork{}
	}

	// A coordinator serves one instance of one run: once the run is over,
	// this Run closes it (connections, subscriptions), whatever the
	// outcome, so that a process calling Run repeatedly leaks nothing.
	// Deferred first, it runs after every loop below has stopped.
	defer func() {
		if err := p.coord.Close(); err != nil {
			cfg.Log.Warn("closing the coordinator failed", "err", err)
		}
	}()
	if b, ok := p.coord.(distributed.RunBinder); ok {
		err := b.BindRun(distributed.RunBinding{RunID: opts.RunID, URL: p.redisURL})
		if errors.Is(err, distributed.ErrNotConfigured) && !opts.NoFallback {
			return p.runFallback(ctx, opts, err)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
	}
	runID := opts.RunID
	if c, ok := p.coord.(interface{ RunID() string }); ok {
		runID = c.RunID() // the coordinator's, which settings in code may have set
	}
	cfg.Signer = cluster.NewSigner(opts.SharedSecret, runID)
	reg := distributed.Registration{
		Instance: cfg.Instance, Total: cfg.Total, Capabilities: caps, Fingerprint: pl.fingerprint(), Session: cfg.Session,
		LeaseTimeout: opts.LeaseTimeout,
	}
	cfg.Signer.SignRegistration(&reg)
	regCtx, cancelReg := context.WithTimeout(ctx, opts.LeaseTimeout)
	err = p.coord.Register(regCtx, reg)
	cancelReg()
	if errors.Is(err, distributed.ErrFingerprintMismatch) {
		return nil, fmt.Errorf("%w: instance %d runs a different pipeline than the run's master, instance 0 (%w); every instance must run the same program, commit and --total as the master", ErrInvalidPipeline, cfg.Instance, err)
	}
	if errors.Is(err, distributed.ErrIndexTaken) {
		return nil, fmt.Errorf("%w: instance %d could not join the run: %w", ErrBadConfig, cfg.Instance, err)
	}
	if errors.Is(err, distributed.ErrRunEnded) {
		return nil, fmt.Errorf("%w: instance %d could not join the run: %w", ErrBadConfig, cfg.Instance, err)
	}
	if err != nil {
		return nil, fmt.Errorf("instance %d could not join the run: %w", cfg.Instance, err)
	}

	// runCtx carries module executions; it ends when the run is cancelled,
	// wherever that happened.
	runCtx, cancelRun := context.WithCancelCause(context.Background())
	defer cancelRun(nil)
	stopLocal := context.AfterFunc(ctx, func() {
		reason := r.secrets.String(fmt.Sprintf("interrupted on instance %d (%v)", cfg.Instance, context.Cause(ctx)))
		cctx, cancel := context.WithTimeout(context.Background(), opts.HeartbeatInterval)
		defer cancel()
		if err := p.coord.Cancel(cctx, cfg.Instance, reason); err != nil {
			cfg.Log.Error("could not tell the other instances about the cancellation", "err", err)
		}
		cancelRun(errors.New(reason))
	})
	defer stopLocal()

	ended := make(chan distributed.RunState, 1)
	var dispatcher *cluster.Dispatcher
	var dispatcherReady sync.WaitGroup
	dispatcherReady.Add(1)
	registered := 0
	watcher := cluster.StartWatcher(cfg, func(s distributed.RunState) {
		if master && s.Registered > registered && !s.Cancelled && !s.Completed {
			// An instance joined: work parked for want of a capable
			// instance may go now, not at the next reaper pass.
			registered = s.Registered
			dispatcherReady.Wait()
			dispatcher.RecheckParked()
		}
		if s.Cancelled {
			cancelRun(fmt.Errorf("cancelled by instance %d: %s", s.CancelledBy, s.CancelReason))
			if master {
				dispatcherReady.Wait()
				dispatcher.CancelQueued(fmt.Sprintf("not started: run cancelled by instance %d", s.CancelledBy))
			}
		}
		if s.Completed {
			ended <- s
		}
	})
	defer watcher.Stop()
	lost := make(chan error, 1)
	cfg.Live = cluster.NewLiveness(func(err error) {
		err = refused(cfg.Instance, err)
		lost <- err
		cancelRun(err)
		if master {
			// No result reaches a master cut off from the coordinator:
			// end what it awaits now, saying where each module stood.
			dispatcherReady.Wait()
			dispatcher.Abandon(err)
		}
	})
	hb := cluster.StartHeartbeat(cfg, nil, cfg.Live.Lose)
	defer hb.Stop()
	exec := cluster.StartExecutor(runCtx, cfg, r, r.dist.values)

	if !master {
		dispatcherReady.Done()
		var runErr error
		var state distributed.RunState
		select {
		case state = <-ended:
		case runErr = <-lost:
		}
		cancelRun(errors.New("run ended"))
		exec.Wait()
		s := r.workerSummary(start)
		s.RunID = opts.RunID
		// A worker cut off from the run (or whose master was lost) does
		// not know the run's verdict, and cannot report it succeeded.
		s.workerFailed = state.Failed || runErr != nil
		return s, runErr
	}

	nodes := make([]cluster.NodeInfo, len(pl.nodes))
	prio := pl.graph.CriticalPath(func(int) int64 { return 1 })
	for i, n := range pl.nodes {
		nodes[i] = cluster.NodeInfo{Name: n.name, Requires: pl.requirements(i), Priority: prio[i], NotIdempotent: n.def.notIdempotent, AlwaysRun: n.def.alwaysRun}
	}
	dispatcher = cluster.NewDispatcher(cfg, r, nodes)
	dispatcherReady.Done()
	reaper := cluster.StartReaper(dispatcher)
	onFinish := r.printModule
	if !p.ContinueOnFailure {
		// The run stops after the first failure: work queued for other
		// instances must not start either, as in one process.
		onFinish = func(i int, o *engine.Outcome) {
			r.printModule(i, o)
			if o.Status.Bad() && o.Status != engine.DependencyFailed && o.Status != engine.Cancelled {
				dispatcher.StopAfterFailure(cluster.StopReason(pl.nodes[i].name, o.Status))
			}
		}
	}
	r.sched = &engine.Scheduler{
		Graph: pl.graph, Nodes: r.dist.base, ContinueOnFailure: p.ContinueOnFailure, Grace: p.grace(),
		Priority: prio, Dispatch: dispatcher.Dispatch, OnFinish: onFinish, OnStart: r.started,
	}
	outs := r.sched.Run(runCtx)
	reaper.Stop()
	s := r.summary(outs, start, time.Since(start))
	s.Distributed, s.RunID = true, opts.RunID
	if cc, ok := p.coord.(distributed.CommandCounter); ok {
		s.CoordinatorCommands = cc.Commands()
	}
	cctx, cancel := context.WithTimeout(context.Background(), opts.LeaseTimeout)
	err = p.coord.Complete(cctx, s.Failed())
	cancel()
	if err != nil {
		err = fmt.Errorf("could not mark the run completed; workers will exit after MasterTimeout: %w", err)
	}
	dispatcher.Close()
	cancelRun(errors.New("run ended"))
	exec.Wait()
	select {
	case lostErr := <-lost:
		err = errors.Join(err, lostErr)
	default:
	}
	return s, err
}

// refused classifies an instance the coordinator no longer accepts: a
// worker the master refused runs another pipeline (ErrInvalidPipeline); an
// instance replaced by another with its index is misconfigured
// (ErrBadConfig). Both exit 2. Other errors are returned as they are.
func refused(instance int, err error) error {
	switch {
	case errors.Is(err, distributed.ErrFingerprintMismatch):
		return fmt.Errorf("%w: instance %d was refused when the run's master registered: %w", ErrInvalidPipeline, instance, err)
	case errors.Is(err, distributed.ErrNotRegistered):
		return fmt.Errorf("%w: instance %d no longer belongs to the run: %w", ErrBadConfig, instance, err)
	}
	return err
}

// runFallback is the fork-safe fallback: without a coordinator backend the
// master runs everything alone and workers have nothing to do.
func (p *Pipeline) runFallback(ctx context.Context, opts DistributedOptions, why error) (*Summary, error) {
	note := fmt.Sprintf("modpipe: no coordinator backend (%v); ", why)
	if opts.InstanceIndex != 0 {
		fmt.Fprintf(os.Stderr, "%sinstance 0 runs the whole pipeline alone, so worker %d has nothing to do.\n", note, opts.InstanceIndex)
		return &Summary{Role: RoleWorker, Start: time.Now(), Distributed: true, Fallback: true}, nil
	}
	fmt.Fprintf(os.Stderr, "%srunning the whole pipeline on this instance alone (set NoFallback to fail instead).\n", note)
	single := *p
	single.dist = DistributedOptions{}
	s, err := single.Run(ctx)
	if s != nil {
		s.Fallback = true
	}
	return s, err
}

func (p *Pipeline) grace() time.Duration {
	if p.Grace > 0 {
		return p.Grace
	}
	return 10 * time.Second
}

// diagnostics is the logger for what an instance says about itself.
func (p *Pipeline) diagnostics(instance int) *slog.Logger {
	level := slog.LevelWarn
	if p.Verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("modpipe_instance", instance)
}

func newSession() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Lookup implements cluster.Host.
func (r *run) Lookup(module string) (int, bool) {
	i, ok := r.dist.index[module]
	return i, ok
}

// ExecNode implements cluster.Host: a copy of node id whose logs go to log.
func (r *run) ExecNode(id int, log *logbuf.Buffer) *engine.Node {
	n := r.dist.base[id]
	def := r.nodes[id].def
	n.Run = func(ctx context.Context, i, attempt int) (any, error) {
		return def.run(&Context{ctx: ctx, r: r, node: i, attempt: attempt, log: log})
	}
	if n.Check != nil {
		n.Check = func(ctx context.Context, i int) (bool, string, error) {
			return r.checkWith(&Context{ctx: ctx, r: r, node: i, log: log})
		}
	}
	n.Log = func(_ int, msg string) { slog.New(logbuf.NewHandler(log, slog.LevelDebug)).Warn(msg) }
	return &n
}

// Executed implements cluster.Host. The master prints modules when their
// results arrive; a worker prints what it ran as it goes.
func (r *run) Executed(id int, o *engine.Outcome, log []byte) {
	r.dist.mu.Lock()
	r.dist.executed = append(r.dist.executed, id)
	r.dist.outs[id] = *o
	r.dist.mu.Unlock()
	if r.instance.Role == RoleWorker {
		_, _ = r.nodes[id].log.Write(log)
		r.printModule(id, o)
	}
}

// Note implements cluster.Host.
func (r *run) Note(id int, msg string) { r.logNote(id, msg) }

// Claimed implements cluster.Host.
func (r *run) Claimed(id int, instance int) {
	if r.live != nil {
		r.live.Where(id, fmt.Sprintf("instance %d", instance))
	}
}

// AppendLog implements cluster.Host.
func (r *run) AppendLog(id int, log []byte) { _, _ = r.nodes[id].log.Write(log) }

// workerSummary lists the modules this worker executed.
func (r *run) workerSummary(start time.Time) *Summary {
	r.dist.mu.Lock()
	defer r.dist.mu.Unlock()
	all := make([]engine.Outcome, len(r.nodes))
	for id, o := range r.dist.outs {
		all[id] = o
	}
	full := r.summary(all, start, time.Since(start))
	s := &Summary{Start: start, Duration: full.Duration, Distributed: true, Role: RoleWorker}
	for _, id := range r.dist.executed {
		s.Modules = append(s.Modules, full.Modules[id])
	}
	return s
}

// distributedResult decodes a dependency's value in a distributed run.
func distributedResult[T any](c *Context, node int) (T, error) {
	var zero T
	v, err := c.r.dist.values.Get(c, c.r.nodes[node].name)
	if err != nil {
		return zero, fmt.Errorf("result of %s is not available: %w: %w", c.r.nodes[node].name, err, ErrNoResult)
	}
	if t, ok := v.Typed().(T); ok {
		return t, nil
	}
	var t T
	if err := json.Unmarshal(v.Raw, &t); err != nil {
		return zero, fmt.Errorf("result of %s does not decode as %T: %w", c.r.nodes[node].name, zero, err)
	}
	v.SetTyped(t)
	return t, nil
}
