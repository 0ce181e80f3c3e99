package modpipe

import (
	"context"
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

// This file wires a distributed run: it resolves the settings, binds the
// coordinator to the run, and hands the plan to internal/cluster, which
// runs the master's or a worker's part; then it presents the outcome.

// ErrInvalidPipeline is wrapped by Run's error when the pipeline cannot run
// at all: an invalid graph or options, unknown filter names, or — in
// distributed mode — an instance whose pipeline differs from the run's.
var ErrInvalidPipeline = cluster.ErrInvalidPipeline

// ErrBadConfig is wrapped by Run's error when distributed settings are
// missing or wrong: no coordinator, no run id or URL for it, an instance
// index out of range.
var ErrBadConfig = cluster.ErrBadConfig

// ErrMasterLost is wrapped by a worker's Run error when the master never
// registered, or stopped sending heartbeats, within MasterTimeout.
var ErrMasterLost = cluster.ErrMasterLost

// distState is a run's distributed half: what the cluster's Host needs.
type distState struct {
	values *cluster.Values
	base   []engine.Node  // nodes as the plan made them; executions copy them
	index  map[string]int // node names

	mu       sync.Mutex
	executed []int            // nodes this instance ran, for a worker's summary
	outs     []engine.Outcome // by node: the last outcome of each node in executed
}

// runDistributed runs this instance's part of a distributed run.
func (p *Pipeline) runDistributed(ctx context.Context) (*Summary, error) {
	start := time.Now()
	opts, caps, pl, err := p.distributedPlan()
	if err != nil {
		return nil, err
	}
	// A coordinator serves one instance of one run: once the run is over,
	// this Run closes it (connections, subscriptions), whatever the
	// outcome, so that a process calling Run repeatedly leaks nothing.
	defer func() {
		if err := p.coord.Close(); err != nil {
			p.diagnostics(opts.InstanceIndex).Warn("closing the coordinator failed", "err", err)
		}
	}()
	if b, ok := p.coord.(distributed.RunBinder); ok {
		err := b.BindRun(distributed.RunBinding{RunID: opts.RunID, URL: p.coordinatorURL})
		if errors.Is(err, distributed.ErrNotConfigured) && !opts.NoFallback {
			return p.runFallback(ctx, opts, err)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
	}
	r := p.newRun(pl)
	r.secrets.Add(opts.SharedSecret)
	r.dist = &distState{values: cluster.NewValuesFor(p.coord, len(pl.nodes)), outs: make([]engine.Outcome, len(pl.nodes)), base: r.engineNodes(pl), index: pl.graph.Index}
	m, err := cluster.Join(ctx, p.clusterRun(r, pl, opts, caps))
	if err != nil {
		if s := p.joinedAfterTheEnd(ctx, opts, err, start); s != nil { // latejoin.go
			return s, nil
		}
		return nil, err
	}
	if opts.InstanceIndex == 0 {
		r.instance = Instance{Index: 0, Role: RoleMaster, Capabilities: caps}
		return p.runMaster(ctx, r, m, pl, start)
	}
	r.instance = Instance{Index: opts.InstanceIndex, Role: RoleWorker, Capabilities: caps}
	failed, err := m.RunWorker(ctx)
	s := r.workerSummary(start)
	s.RunID = opts.RunID
	// A worker cut off from the run (or whose master was lost) does not
	// know the run's verdict, and cannot report it succeeded.
	s.workerFailed = failed
	return s, err
}

// distributedPlan resolves this instance's settings and builds its plan.
func (p *Pipeline) distributedPlan() (DistributedOptions, []string, *plan, error) {
	if p.coord == nil {
		return DistributedOptions{}, nil, nil, fmt.Errorf("%w: distributed mode with %d instances needs a coordinator the instances share: give one with p.UseCoordinator (see its documentation and docs/distributed.md), or try --local-instances",
			ErrBadConfig, p.dist.TotalInstances)
	}
	dist := p.dist
	if dist.Parallelism <= 0 && p.MaxParallel > 0 {
		dist.Parallelism = p.MaxParallel // --parallel bounds each instance
	}
	opts, err := dist.withDefaults()
	if err != nil {
		return opts, nil, nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	caps, osName, err := opts.capabilities()
	if err != nil {
		return opts, nil, nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	pl, err := p.buildPlan(planEnv{os: osName, distributed: true})
	if err == nil {
		err = pl.checkJSON()
	}
	if err != nil {
		return opts, nil, nil, fmt.Errorf("%w: %w", ErrInvalidPipeline, err)
	}
	return opts, caps, pl, nil
}

// clusterRun is what internal/cluster needs to run this instance.
func (p *Pipeline) clusterRun(r *run, pl *plan, opts DistributedOptions, caps []string) cluster.Run {
	return cluster.Run{
		Config: cluster.Config{
			Coord: p.coord, Instance: opts.InstanceIndex, Total: opts.TotalInstances, Caps: caps,
			Heartbeat: opts.HeartbeatInterval, LeaseTimeout: opts.LeaseTimeout, CapabilityTimeout: opts.CapabilityTimeout,
			MasterTimeout: opts.MasterTimeout, Grace: p.Grace, MaxAttempts: opts.MaxAttempts, Parallelism: opts.Parallelism,
			Log: p.diagnostics(opts.InstanceIndex), Mask: r.secrets.String,
			NoPrecedence: p.noPrecedence,
		},
		RunID: opts.RunID, SharedSecret: opts.SharedSecret, Fingerprint: pl.fingerprint(), Host: r, Values: r.dist.values,
	}
}

// runMaster schedules the whole plan on the master and summarizes it.
func (p *Pipeline) runMaster(ctx context.Context, r *run, m *cluster.Member, pl *plan, start time.Time) (*Summary, error) {
	prio := engine.Priorities(pl.graph, p.durations)
	info := make([]cluster.NodeInfo, len(pl.nodes))
	for i, n := range pl.nodes {
		info[i] = cluster.NodeInfo{Name: n.name, Requires: pl.requirements(i), Priority: prio[i], NotIdempotent: n.def.notIdempotent, AlwaysRun: n.def.alwaysRun}
	}
	var s *Summary
	err := m.RunMaster(ctx, cluster.Plan{
		Graph: pl.graph, Nodes: r.dist.base, Info: info, Priority: prio, ContinueOnFailure: p.ContinueOnFailure,
		OnStart: r.started, OnFinish: r.printModule, Lookup: r.masterCacheLookup(), CleanupGrace: p.cleanupGrace(), // cache.go, cleanup.go
		Finish: func(outs []engine.Outcome, commands uint64) bool {
			s = r.summary(outs, start, time.Since(start))
			s.Distributed, s.RunID, s.CoordinatorCommands = true, p.dist.RunID, commands
			return s.Failed()
		},
	})
	return s, err
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

// diagnostics is the logger for what an instance says about itself.
func (p *Pipeline) diagnostics(instance int) *slog.Logger {
	level := slog.LevelWarn
	if p.Verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("modpipe_instance", instance)
}

// Lookup implements cluster.Host.
func (r *run) Lookup(module string) (int, bool) {
	i, ok := r.dist.index[module]
	return i, ok
}

// ExecNode implements cluster.Host: a copy of node id whose logs go to log.
func (r *run) ExecNode(id int, log *logbuf.Buffer) *engine.Node {
	if r.nodes[id].cache == nil {
		// One allocation: the node, its functions and its first attempt's
		// Context.
		x := &execNode{n: r.dist.base[id], r: r, def: r.nodes[id].def, log: log}
		x.n.Funcs = x // in place of base's Check, Run and Log (which stay as flags)
		return &x.n
	}
	n := r.dist.base[id]
	def := r.nodes[id].def
	n.Run = func(ctx context.Context, i, attempt int) (any, error) {
		return def.run(&Context{ctx: ctx, r: r, node: i, attempt: attempt, log: log})
	}
	n.Run = r.withCache(n.Run) // cache.go
	if n.Check != nil {
		n.Check = func(ctx context.Context, i int) (bool, string, error) {
			return r.checkWith(&Context{ctx: ctx, r: r, node: i, log: log})
		}
	}
	n.Log = func(_ int, msg string) { slog.New(logbuf.NewHandler(log, slog.LevelDebug)).Warn(msg) }
	return &n
}

// execNode is the node of one execution (ExecNode), serving as its
// engine.NodeFuncs.
type execNode struct {
	n   engine.Node
	r   *run
	def *moduleDef
	log *logbuf.Buffer
	// first is the Context of the first attempt. A check and later
	// attempts get their own, as a module may keep using its Context
	// after it returned.
	first Context
}

// Check implements engine.NodeFuncs.
func (x *execNode) Check(ctx context.Context, i int) (bool, string, error) {
	return x.r.checkWith(&Context{ctx: ctx, r: x.r, node: i, log: x.log})
}

// Run implements engine.NodeFuncs.
func (x *execNode) Run(ctx context.Context, i, attempt int) (any, error) {
	c := &x.first
	if attempt != 1 {
		c = &Context{}
	}
	c.ctx, c.r, c.node, c.attempt, c.log = ctx, x.r, i, attempt, x.log
	return x.def.run(c)
}

// Log implements engine.NodeFuncs.
func (x *execNode) Log(_ int, msg string) {
	slog.New(logbuf.NewHandler(x.log, slog.LevelDebug)).Warn(msg)
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
	s := &Summary{Start: start, Duration: time.Since(start), Distributed: true, Role: RoleWorker}
	if len(r.dist.executed) > 0 {
		s.Modules = make([]ModuleResult, 0, len(r.dist.executed))
	}
	for _, id := range r.dist.executed {
		s.Modules = append(s.Modules, r.moduleResult(id, &r.dist.outs[id]))
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
