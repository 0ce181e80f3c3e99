package modpipe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/live"
	"github.com/modpipe/modpipe/internal/logbuf"
	"github.com/modpipe/modpipe/internal/render"
	"github.com/modpipe/modpipe/internal/secret"
)

// run is the state of one execution of a pipeline on this instance.
type run struct {
	nodes     []runNode
	sched     *engine.Scheduler
	secrets   *secret.Set
	instance  Instance
	level     slog.Level
	printer   *render.Printer
	dist      *distState   // nil unless distributed
	artifacts *artifactEnv // artifact_run.go
	live      *live.View   // nil unless a terminal shows the live view
	cacheEnv  *cacheEnv    // cache.go; nil when no module is cached
}

type runNode struct {
	def    *moduleDef
	name   string
	target string
	deps   []planDep
	log    logbuf.Buffer
	cache  *cacheNode // cache.go; nil without Cache
}

// Run validates the pipeline, runs it and returns its summary. The error is
// non-nil only when the pipeline could not be run at all (invalid graph,
// unknown filter names); module failures are reported in the Summary.
// Module logs are printed to p.Output as each module ends. The teardown
// hooks (OnTeardown) run before Run returns, however the run ended.
func (p *Pipeline) Run(ctx context.Context) (*Summary, error) {
	if len(p.teardowns) > 0 && ctx.Value(tearingDown{}) == nil {
		return p.runWithTeardown(ctx) // teardown.go
	}
	if err := p.dist.checkInstance(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if p.cache.run == nil && p.cacheWanted() {
		return p.runWithCache(ctx) // cache.go
	}
	if p.art.run == nil {
		return p.runWithArtifacts(ctx) // artifact store, --artifacts-out (artifact_run.go)
	}
	if p.distributedOn() {
		return p.runDistributed(ctx)
	}
	start := time.Now()
	pl, err := p.buildPlan(planEnv{os: localOS()})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPipeline, err)
	}
	r := p.newRun(pl)
	r.sched = &engine.Scheduler{
		Graph:             pl.graph,
		Nodes:             r.engineNodes(pl),
		MaxParallel:       p.MaxParallel,
		ContinueOnFailure: p.ContinueOnFailure,
		Grace:             p.Grace,
		CleanupGrace:      p.cleanupGrace(),
		Priority:          engine.Priorities(pl.graph, p.durations),
		OnFinish:          r.printModule,
	}
	if r.live != nil {
		r.sched.OnStart = r.started
	}
	outs := r.sched.Run(ctx)
	return r.summary(outs, start, time.Since(start)), nil
}

func (p *Pipeline) newRun(pl *plan) *run {
	out := p.Output
	if out == nil {
		out = os.Stdout
	}
	if p.live != nil {
		out = p.live.Writer()
	}
	secrets := &secret.Set{}
	secrets.Add(p.secrets...)
	r := &run{
		live:      p.live,
		artifacts: p.art.run,
		nodes:     make([]runNode, len(pl.nodes)),
		secrets:   secrets,
		instance:  Instance{Role: RoleSingle, Capabilities: []string{localOS()}},
		level:     slog.LevelInfo,
		printer:   &render.Printer{W: out, GitHub: p.GitHubActions, Mask: secrets.String},
	}
	if p.Verbose {
		r.level = slog.LevelDebug
	}
	for i, n := range pl.nodes {
		r.nodes[i] = runNode{def: n.def, name: n.name, target: n.target, deps: n.deps}
		if n.def.cache != nil && p.cache.run != nil {
			r.nodes[i].cache = &cacheNode{}
			r.cacheEnv = p.cache.run
		}
	}
	return r
}

// engineNodes translates plan nodes into scheduler nodes. One method value
// of each kind serves every node.
func (r *run) engineNodes(pl *plan) []engine.Node {
	nodes := make([]engine.Node, len(pl.nodes))
	runFn, checkFn, logFn := r.runAttempt, r.check, r.logNote
	for i := range pl.nodes {
		def := pl.nodes[i].def
		nodes[i] = engine.Node{
			ID:            i,
			Name:          pl.nodes[i].name,
			Deps:          pl.graph.Deps[i],
			Timeout:       def.timeout,
			Retry:         def.retry,
			IgnoreFailure: def.ignoreFailure,
			AlwaysRun:     def.alwaysRun,
			Mutex:         def.mutex,
			Exclusive:     def.exclusive,
			SkipReason:    pl.nodes[i].skip,
			Run:           runFn,
			Log:           logFn,
		}
		if len(def.conds) > 0 {
			nodes[i].Check = checkFn
		}
		if r.nodes[i].cache != nil {
			nodes[i].Run = r.cachedAttempt // cache.go
		}
	}
	return nodes
}

func (r *run) runAttempt(ctx context.Context, i, attempt int) (any, error) {
	return r.nodes[i].def.run(&Context{ctx: ctx, r: r, node: i, attempt: attempt, log: &r.nodes[i].log})
}

// check evaluates SkipIf and RunIf conditions in declaration order.
func (r *run) check(ctx context.Context, i int) (bool, string, error) {
	return r.checkWith(&Context{ctx: ctx, r: r, node: i, log: &r.nodes[i].log})
}

func (r *run) checkWith(c *Context) (bool, string, error) {
	for _, cond := range r.nodes[c.node].def.conds {
		v := cond.fn(c)
		if cond.skipIf && v {
			return true, cond.reason, nil
		}
		if !cond.skipIf && !v {
			return true, "condition not met: " + cond.reason, nil
		}
	}
	return false, "", nil
}

func (r *run) logNote(i int, msg string) {
	slog.New(logbuf.NewHandler(&r.nodes[i].log, slog.LevelDebug)).Warn(msg)
}

// result returns the value of a finished node, or an error wrapping
// ErrNoResult. Only called for dependencies of a running node, which have
// finished before it started.
func (r *run) result(node int) (any, error) {
	o := r.sched.Outcome(node)
	if o.Status == engine.Succeeded {
		return o.Value, nil
	}
	why := o.Status.String()
	if o.Reason != "" {
		why += ": " + o.Reason
	} else if o.Err != nil {
		why += ": " + r.secrets.String(o.Err.Error())
	}
	return nil, fmt.Errorf("result of %s is not available (%s): %w", r.nodes[node].name, why, ErrNoResult)
}

var statusSymbols = map[engine.Status]string{
	engine.Succeeded: "✓", engine.Failed: "✗", engine.Skipped: "○", engine.TimedOut: "⏱",
	engine.Cancelled: "⊘", engine.DependencyFailed: "✗", engine.IgnoredFailure: "!", engine.Cached: "↺",
}

// finalStatus is what status st of node i counts as: a failure of a module
// marked IgnoreFailure is an ignored failure wherever it is reported, also
// on the worker that ran it (whose executor does not decide it).
func (r *run) finalStatus(i int, st engine.Status) engine.Status {
	if r.nodes[i].def.ignoreFailure && (st == engine.Failed || st == engine.TimedOut) {
		return engine.IgnoredFailure
	}
	if st == engine.Succeeded && r.cacheHit(i) {
		return engine.Cached
	}
	return st
}

// printModule prints a module's log group when it ends. Modules that never
// started (skipped, stopped) only appear in the summary.
func (r *run) printModule(i int, o *engine.Outcome) {
	if r.live != nil {
		r.live.Finished(i)
	}
	if o.Attempts == 0 && r.nodes[i].log.Len() == 0 && o.Err == nil {
		return
	}
	st := r.finalStatus(i, o.Status)
	// The title's detail, built in one buffer (this runs for every module):
	// "12ms · instance 2 · dispatched 2 times · 3 attempts · saved 1.20s · reason"
	var buf [96]byte
	d := appendDuration(buf[:0], o.End.Sub(o.Start))
	if r.dist != nil {
		d = strconv.AppendInt(append(d, " · instance "...), int64(o.Instance), 10)
		if o.Dispatches > 1 {
			d = append(strconv.AppendInt(append(d, " · dispatched "...), int64(o.Dispatches), 10), " times"...)
		}
	}
	if o.Attempts > 1 {
		d = append(strconv.AppendInt(append(d, " · "...), int64(o.Attempts), 10), " attempts"...)
	}
	if st == engine.Cached {
		d = appendDuration(append(d, " · saved "...), r.nodes[i].cache.saved)
	}
	if o.Status == engine.Skipped && o.Reason != "" {
		d = append(append(d, " · "...), o.Reason...)
	}
	g := render.Group{
		Name:   r.nodes[i].name,
		Status: st.String(),
		Symbol: statusSymbols[st],
		Detail: string(d),
		Log:    r.nodes[i].log.Bytes(),
		Warn:   st == engine.IgnoredFailure,
	}
	if o.Err != nil {
		g.Err = o.Err.Error()
		var pe *engine.PanicError
		if errors.As(o.Err, &pe) {
			g.Err += " (stack trace above)"
		}
	}
	r.printer.Group(g)
}

// started shows a module in the live view.
func (r *run) started(i int) {
	if r.live != nil {
		r.live.Started(i, r.nodes[i].name)
	}
}

// formatDuration rounds d for people: 850µs, 120ms, 1.25s, 2m03s.
func formatDuration(d time.Duration) string {
	var b [24]byte
	return string(appendDuration(b[:0], d))
}

func appendDuration(b []byte, d time.Duration) []byte {
	switch {
	case d <= 0:
		return append(b, "0s"...)
	case d < time.Millisecond:
		return append(strconv.AppendInt(b, int64(d/time.Microsecond), 10), "µs"...)
	case d < time.Second:
		return append(strconv.AppendInt(b, int64(d.Round(time.Millisecond)/time.Millisecond), 10), "ms"...)
	case d < time.Minute:
		return append(strconv.AppendFloat(b, d.Seconds(), 'f', 2, 64), 's')
	}
	d = d.Round(time.Second)
	b = strconv.AppendInt(b, int64(d/time.Minute), 10)
	b = append(b, 'm')
	sec := int64(d/time.Second) % 60
	if sec < 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, sec, 10)
	return append(b, 's')
}
