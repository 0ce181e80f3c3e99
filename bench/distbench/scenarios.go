package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"
)

type bench struct {
	cfg    *config
	stderr io.Writer

	srv       *redisServer
	admin     *respConn
	adminAddr string
	tmp       string
	res       *Results
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.stderr, "distbench: "+format+"\n", args...)
}

func (b *bench) close() {
	if b.admin != nil {
		b.admin.Close()
		b.admin = nil
	}
	if b.srv != nil {
		b.srv.Stop()
		b.srv = nil
	}
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
		b.tmp = ""
	}
}

func newRunID(kind string) string {
	x := make([]byte, 4)
	_, _ = rand.Read(x)
	return fmt.Sprintf("distbench-%s-%d-%s", kind, time.Now().UnixNano(), hex.EncodeToString(x))
}

func itoa(i int) string { return strconv.Itoa(i) }

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// run runs the selected scenario groups and returns the figures, partial
// ones with the error if a scenario failed.
func (b *bench) run() (*Results, error) {
	var err error
	if b.tmp, err = os.MkdirTemp("", "distbench-"); err != nil {
		return nil, err
	}
	if b.srv, err = startRedis(b.cfg.redisBin); err != nil {
		return nil, err
	}
	if b.admin, err = dialRESP(b.srv.Addr()); err != nil {
		return nil, err
	}
	b.adminAddr = b.admin.c.LocalAddr().String()
	if err = b.admin.calibrate(); err != nil {
		return nil, err
	}
	b.res = &Results{Meta: b.meta(), Details: map[string]any{}}
	b.progress("redis-server on %s (%s)", b.srv.Addr(), b.srv.Version)
	steps := []struct {
		group string
		run   func() error
	}{
		{"throughput", b.throughput},
		{"startup", b.startup},
		{"latency", b.latency},
		{"chains", b.chains},
		{"makespan", b.makespan},
		{"budget", b.budget},
		{"idle", b.idle},
	}
	for _, s := range steps {
		if !b.cfg.only[s.group] {
			continue
		}
		if err := s.run(); err != nil {
			b.res.link()
			return b.res, fmt.Errorf("%s: %w", s.group, err)
		}
	}
	b.res.link()
	return b.res, nil
}

// ---- modpipe runs ----

type mpSpec struct {
	label      string
	graph      string
	n          int
	workers    int    // worker processes, instances 1..workers
	parallel   int    // MaxParallel of every instance (0: -parallel's 8)
	masterCaps string // capabilities of instance 0
	workerCaps string
	defaults   bool // modpipe's default heartbeat and lease instead of -heartbeat/-lease
	sleep      time.Duration
	names      bool // name each process's Redis connections (for MONITOR attribution)
	// lateWorker > 0 starts the master first and the workers that much
	// later, without waiting for their registration.
	lateWorker time.Duration
}

// resolve fills the spec's defaults from the configuration.
func (b *bench) resolve(s mpSpec) mpSpec {
	if s.parallel <= 0 {
		s.parallel = b.cfg.parallel
	}
	return s
}

type mpResult struct {
	records   []record // every execution, sorted by start
	reports   []*instanceReport
	server    counters
	masterCPU time.Duration
	workerCPU time.Duration
	mon       *monCount
	// spawned is when the master was started (the workers had registered
	// unless lateWorker), exited when the last process was seen to exit
	// (this process's clock).
	spawned, exited time.Time
}

// startup is from starting the master to the first module start;
// teardown from the last module end to the last process exit.
func (r *mpResult) startup() time.Duration {
	return time.Duration(r.records[0].Start - r.spawned.UnixNano())
}

func (r *mpResult) teardown() time.Duration {
	var last int64
	for _, rec := range r.records {
		last = max(last, rec.End)
	}
	return time.Duration(r.exited.UnixNano() - last)
}

// byInstance counts executions per instance.
func (r *mpResult) byInstance() map[int]int {
	m := map[int]int{}
	for _, rec := range r.records {
		m[rec.Instance]++
	}
	return m
}

// span is first module start to last module end.
func span(recs []record) time.Duration {
	if len(recs) == 0 {
		return 0
	}
	lo, hi := recs[0].Start, recs[0].End
	for _, r := range recs {
		lo, hi = min(lo, r.Start), max(hi, r.End)
	}
	return time.Duration(hi - lo)
}

func (b *bench) instanceArgs(s mpSpec, runID string, index, total int, out string) []string {
	caps := s.workerCaps
	if index == 0 {
		caps = s.masterCaps
	}
	name := ""
	if s.names {
		name = fmt.Sprintf("distbench-mp-i%d", index)
	}
	args := []string{"instance", "-graph", s.graph, "-n", itoa(s.n), "-index", itoa(index), "-total", itoa(total),
		"-redis", b.srv.URL(name), "-run", runID, "-caps", caps, "-parallel", itoa(s.parallel),
		"-sleep", s.sleep.String(), "-out", out, "-deadline", "4m"}
	if !s.defaults {
		args = append(args, "-heartbeat", b.cfg.heartbeat.String(), "-lease", b.cfg.lease.String())
	}
	if b.cfg.profile != "" {
		args = append(args, "-cpuprofile", filepath.Join(b.cfg.profile, fmt.Sprintf("%s-i%d.pprof", runID, index)))
	}
	if b.cfg.memprof != "" {
		args = append(args, "-memprofile", filepath.Join(b.cfg.memprof, fmt.Sprintf("%s-i%d.mem.pprof", runID, index)))
	}
	return args
}

// startModpipe starts the workers, waits until they have registered, then
// starts the master: modpipe parks modules that no registered instance can
// run until the master's next reaper pass (every HeartbeatInterval), so a
// master that dispatches before its workers registered measures that wait
// instead of the steady state (see lateWorker). It returns when the master
// was started.
func (b *bench) startModpipe(s mpSpec, runID string) ([]*child, []string, time.Time, error) {
	total := s.workers + 1
	cs := make([]*child, total)
	outs := make([]string, total)
	fail := func(err error) ([]*child, []string, time.Time, error) {
		for _, o := range cs {
			if o != nil {
				o.kill()
			}
		}
		return nil, nil, time.Time{}, err
	}
	start := func(i int) error {
		outs[i] = filepath.Join(b.tmp, fmt.Sprintf("%s-i%d.json", runID, i))
		c, err := spawn(fmt.Sprintf("%s instance %d", s.label, i), b.instanceArgs(s, runID, i, total, outs[i])...)
		cs[i] = c
		return err
	}
	var masterStart time.Time
	if s.lateWorker > 0 {
		masterStart = time.Now()
		if err := start(0); err != nil {
			return fail(err)
		}
		time.Sleep(s.lateWorker)
	}
	for i := 1; i < total; i++ {
		if err := start(i); err != nil {
			return fail(err)
		}
	}
	if s.lateWorker > 0 {
		return cs, outs, masterStart, nil
	}
	if err := b.awaitRegistered(runID, s.workers, cs[1:], 30*time.Second); err != nil {
		return fail(err)
	}
	masterStart = time.Now()
	if err := start(0); err != nil {
		return fail(err)
	}
	return cs, outs, masterStart, nil
}

// awaitRegistered polls until n instances of the run have registered. It
// reads modpipe's key layout: <prefix>:{<run id>}:inst is a hash with one
// field per registered instance. The polls are the benchmark's own
// commands, subtracted from the server's counters. If one of cs (the
// instances being waited for) exits first, it says which and what it
// printed at once, instead of waiting out limit.
func (b *bench) awaitRegistered(runID string, n int, cs []*child, limit time.Duration) error {
	key := "modpipe:{" + runID + "}:inst"
	deadline := time.Now().Add(limit)
	for {
		v, err := b.admin.do("HLEN", key)
		if err != nil {
			return err
		}
		if got, _ := v.(int64); got >= int64(n) {
			return nil
		}
		if c := exited(cs); c != nil {
			return fmt.Errorf("%s exited before registering (%v of %d instances registered): %v\n%s", c.name, v, n, c.err, tail(c.output.String(), 3000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%v of %d instances registered after %s (key %s)", v, n, limit, key)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// exited returns the first of cs whose process has ended, or nil.
func exited(cs []*child) *child {
	for _, c := range cs {
		select {
		case <-c.done:
			return c
		default:
		}
	}
	return nil
}

// finishModpipe reads and checks the reports of a finished run.
func finishModpipe(s mpSpec, cs []*child, outs []string) (*mpResult, error) {
	r := &mpResult{}
	for i, path := range outs {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s instance %d wrote no report: %w", s.label, i, err)
		}
		rep := &instanceReport{}
		if err := json.Unmarshal(data, rep); err != nil {
			return nil, fmt.Errorf("%s instance %d: %w", s.label, i, err)
		}
		if rep.Err != "" {
			return nil, fmt.Errorf("%s instance %d: %s", s.label, i, rep.Err)
		}
		r.reports = append(r.reports, rep)
		r.records = append(r.records, rep.Records...)
		if i == 0 {
			r.masterCPU += cs[i].cpu()
		} else {
			r.workerCPU += cs[i].cpu()
		}
	}
	if err := checkRun(s, r); err != nil {
		return nil, fmt.Errorf("%s: %w", s.label, err)
	}
	slices.SortFunc(r.records, func(a, b record) int { return int(a.Start - b.Start) })
	return r, nil
}

// checkRun verifies that the run did what it was asked: every module
// succeeded, ran exactly once, where it was routed, after its dependencies.
// A benchmark of a run that skipped work would measure nothing.
func checkRun(s mpSpec, r *mpResult) error {
	sum := r.reports[0].Summary
	if sum == nil {
		return errors.New("the master returned no summary")
	}
	want := s.n
	if s.graph == graphIdle {
		want = 1
	}
	if sum.Failed || len(sum.Modules) != want {
		return fmt.Errorf("master summary: failed=%v, %d modules (want %d)", sum.Failed, len(sum.Modules), want)
	}
	for _, m := range sum.Modules {
		if m.Status != "succeeded" || m.Dispatches != 1 {
			return fmt.Errorf("module %s: %s after %d dispatches on instance %d: %s", m.Name, m.Status, m.Dispatches, m.Instance, m.Error)
		}
	}
	byName := map[string]record{}
	for _, rec := range r.records {
		if _, dup := byName[rec.Name]; dup {
			return fmt.Errorf("module %s ran twice", rec.Name)
		}
		byName[rec.Name] = rec
		if (s.graph == graphFlat || s.graph == graphChain) && rec.Instance == 0 {
			return fmt.Errorf("module %s ran on the master, which lacks the worker capability", rec.Name)
		}
	}
	if len(byName) != want {
		return fmt.Errorf("%d module executions recorded, want %d", len(byName), want)
	}
	if s.parallel > 0 {
		if inst, n := maxConcurrent(r.records); n > s.parallel {
			return fmt.Errorf("instance %d executed %d modules at once; MaxParallel is %d", inst, n, s.parallel)
		}
	}
	for i := 1; i < s.n && (s.graph == graphChain || s.graph == graphDAG); i++ {
		cur := byName[fmt.Sprintf("m%05d", i)]
		deps := []int{i - 1}
		if s.graph == graphDAG {
			deps = nil
			if l := i / dagWidth; l > 0 {
				for d := (l - 1) * dagWidth; d < l*dagWidth; d++ {
					deps = append(deps, d)
				}
			}
		}
		for _, d := range deps {
			if dep := byName[fmt.Sprintf("m%05d", d)]; cur.Start < dep.End {
				return fmt.Errorf("module %s started before its dependency %s ended", cur.Name, dep.Name)
			}
		}
	}
	return nil
}

// maxConcurrent returns the instance that executed the most modules at
// once, and how many.
func maxConcurrent(recs []record) (instance, most int) {
	type ev struct {
		at    int64
		delta int
	}
	byInst := map[int][]ev{}
	for _, r := range recs {
		byInst[r.Instance] = append(byInst[r.Instance], ev{r.Start, 1}, ev{r.End, -1})
	}
	for inst, evs := range byInst {
		// Ends before starts at the same instant: touching is not overlapping.
		slices.SortFunc(evs, func(a, b ev) int {
			if a.at != b.at {
				return int(a.at - b.at)
			}
			return a.delta - b.delta
		})
		cur := 0
		for _, e := range evs {
			cur += e.delta
			if cur > most {
				instance, most = inst, cur
			}
		}
	}
	return instance, most
}

// runModpipe runs one distributed modpipe run to completion; with mon, it
// counts what MONITOR saw during it.
func (b *bench) runModpipe(s mpSpec, mon *monitor) (*mpResult, error) {
	s = b.resolve(s)
	runID := newRunID(s.graph)
	before, err := b.admin.snapshot()
	if err != nil {
		return nil, err
	}
	cs, outs, spawned, err := b.startModpipe(s, runID)
	if err != nil {
		return nil, err
	}
	if err := waitAll(cs, 4*time.Minute); err != nil {
		return nil, err
	}
	exited := time.Now()
	after, err := b.admin.snapshot()
	if err != nil {
		return nil, err
	}
	r, err := finishModpipe(s, cs, outs)
	if err != nil {
		return nil, err
	}
	r.server = diff(before, after)
	r.spawned, r.exited = spawned, exited
	if mon != nil {
		c := mon.count(unixSec(before.At), unixSec(after.At), map[string]bool{b.adminAddr: true}, mpGroup)
		r.mon = &c
	}
	return r, nil
}

func unixSec(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// mpGroup maps a connection name to its process: master or workerN.
func mpGroup(name string) string {
	i, ok := strings.CutPrefix(name, "distbench-mp-i")
	switch {
	case !ok:
		return name
	case i == "0":
		return "master"
	default:
		return "worker" + i
	}
}

// ---- asynq runs ----

type aqEvent struct{ start, end int64 }

// aqServer is a running asynq server process and the tasks it reported.
type aqServer struct {
	c     *child
	ready bool
	got   map[int]aqEvent
}

func (b *bench) startAsynq(label, queue string, check time.Duration, clientName string) (*aqServer, error) {
	c, err := spawn(label, "asynq", "-addr", b.srv.Addr(), "-queue", queue, "-concurrency", itoa(b.cfg.parallel),
		"-task-check", check.String(), "-client-name", clientName)
	if err != nil {
		return nil, err
	}
	return &aqServer{c: c, got: map[int]aqEvent{}}, nil
}

// until reads the server's output until done() or limit.
func (a *aqServer) until(done func() bool, limit time.Duration, what string) error {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for !done() {
		select {
		case l := <-a.c.lines:
			if l == "READY" {
				a.ready = true
				continue
			}
			f := strings.Fields(l)
			if len(f) != 4 || f[0] != "T" {
				continue
			}
			seq, e1 := strconv.Atoi(f[1])
			st, e2 := strconv.ParseInt(f[2], 10, 64)
			en, e3 := strconv.ParseInt(f[3], 10, 64)
			if err := errors.Join(e1, e2, e3); err != nil {
				return fmt.Errorf("%s: bad line %q", a.c.name, l)
			}
			if _, dup := a.got[seq]; dup {
				return fmt.Errorf("%s: task %d ran twice", a.c.name, seq)
			}
			a.got[seq] = aqEvent{st, en}
		case <-a.c.done:
			return fmt.Errorf("%s exited while waiting for %s: %v\n%s", a.c.name, what, a.c.err, tail(a.c.output.String(), 3000))
		case <-timer.C:
			return fmt.Errorf("%s: no %s within %s (%d tasks seen)\n%s", a.c.name, what, limit, len(a.got), tail(a.c.output.String(), 3000))
		}
	}
	return nil
}

func (a *aqServer) stop() error {
	a.c.closeStdin()
	return a.c.wait(30 * time.Second)
}

func (b *bench) asynqClient(name string) (*asynq.Client, *goredis.Client) {
	rdb := goredis.NewClient(&goredis.Options{Addr: b.srv.Addr(), ClientName: name})
	return asynq.NewClientFromRedisClient(rdb), rdb
}

func enqueue(cl *asynq.Client, queue string, seq int) error {
	_, err := cl.Enqueue(asynq.NewTask(asynqTaskType, asynqPayload(seq)), asynq.Queue(queue))
	return err
}

type aqResult struct {
	spanNs    int64
	startup   time.Duration // server process started -> first handler start
	enqueue   time.Duration
	server    counters
	serverCPU time.Duration
	mon       *monCount
}

// asynqThroughput enqueues n no-op tasks and has one asynq server process
// run them: with pre, all are enqueued before the server starts; otherwise
// the server is already up (and idle) while they are enqueued.
func (b *bench) asynqThroughput(n int, pre bool, mon *monitor) (*aqResult, error) {
	queue := newRunID("asynq")
	srvName, cliName := "", ""
	if mon != nil {
		srvName, cliName = "distbench-aq-server", "distbench-aq-client"
	}
	before, err := b.admin.snapshot()
	if err != nil {
		return nil, err
	}
	cl, rdb := b.asynqClient(cliName)
	defer rdb.Close()
	var srv *aqServer
	var spawned time.Time
	start := func() error {
		var err error
		spawned = time.Now()
		if srv, err = b.startAsynq("asynq server", queue, 0, srvName); err != nil {
			return err
		}
		return srv.until(func() bool { return srv.ready }, 30*time.Second, "READY")
	}
	if !pre {
		if err := start(); err != nil {
			return nil, err
		}
		time.Sleep(1500 * time.Millisecond) // let it settle into its idle polling
	}
	t0 := time.Now()
	for i := range n {
		if err := enqueue(cl, queue, i); err != nil {
			return nil, err
		}
	}
	r := &aqResult{enqueue: time.Since(t0)}
	if pre {
		if err := start(); err != nil {
			return nil, err
		}
	}
	if err := srv.until(func() bool { return len(srv.got) >= n }, 3*time.Minute, fmt.Sprintf("%d tasks", n)); err != nil {
		srv.c.kill()
		return nil, err
	}
	if err := srv.stop(); err != nil {
		return nil, err
	}
	_ = cl.Close()
	after, err := b.admin.snapshot()
	if err != nil {
		return nil, err
	}
	r.server = diff(before, after)
	r.serverCPU = srv.c.cpu()
	lo, hi := int64(1<<62), int64(0)
	for seq := range n {
		e, ok := srv.got[seq]
		if !ok {
			return nil, fmt.Errorf("asynq: task %d never ran", seq)
		}
		lo, hi = min(lo, e.start), max(hi, e.end)
	}
	r.spanNs = hi - lo
	r.startup = time.Duration(lo - spawned.UnixNano())
	if mon != nil {
		c := mon.count(unixSec(before.At), unixSec(after.At), map[string]bool{b.adminAddr: true}, func(name string) string {
			return strings.TrimPrefix(name, "distbench-aq-")
		})
		r.mon = &c
	}
	return r, nil
}

// asynqLatency measures enqueue -> handler start for samples tasks, one at
// a time, on an otherwise idle server.
func (b *bench) asynqLatency(samples int, check time.Duration) ([]float64, error) {
	queue := newRunID("asynq-lat")
	cl, rdb := b.asynqClient("")
	defer rdb.Close()
	defer cl.Close()
	srv, err := b.startAsynq("asynq server (latency)", queue, check, "")
	if err != nil {
		return nil, err
	}
	if err := srv.until(func() bool { return srv.ready }, 30*time.Second, "READY"); err != nil {
		return nil, err
	}
	time.Sleep(time.Second)
	var lat []float64
	for i := range samples {
		t0 := time.Now().UnixNano()
		if err := enqueue(cl, queue, i); err != nil {
			srv.c.kill()
			return nil, err
		}
		if err := srv.until(func() bool { _, ok := srv.got[i]; return ok }, 15*time.Second, fmt.Sprintf("task %d", i)); err != nil {
			srv.c.kill()
			return nil, err
		}
		lat = append(lat, ms(srv.got[i].start-t0))
	}
	return lat, srv.stop()
}

// ---- scenario groups ----

// tpStep is one run of the throughput group.
type tpStep struct {
	modpipe bool
	workers int  // modpipe: worker processes
	pre     bool // asynq: all tasks enqueued before the server starts
}

func (s tpStep) String() string {
	switch {
	case s.modpipe:
		return fmt.Sprintf("W=%d", s.workers)
	case s.pre:
		return "asynq-pre"
	default:
		return "asynq-stream"
	}
}

// headW is the worker count of the headline (issue 10's targets).
const headW = 3

// repPlan lists the runs of throughput repetition rep, in order; rep < 0
// is the untimed warm-up: modpipe W=3 and asynq enqueued first, once each
// (page cache, a warm Redis, the first start of each process). Modpipe
// goes first in even repetitions and asynq in odd ones, so that neither
// always runs on the machine the other has just warmed up (or heated); in
// each, the headline pair (W=3, asynq enqueued first) runs back to back, so
// their paired ratio compares runs made under the same conditions.
func repPlan(rep int, workers []int) []tpStep {
	if rep < 0 {
		return []tpStep{{modpipe: true, workers: headW}, {pre: true}}
	}
	var mp []tpStep
	for _, w := range workers {
		if w != headW {
			mp = append(mp, tpStep{modpipe: true, workers: w})
		}
	}
	head := tpStep{modpipe: true, workers: headW}
	if !slices.Contains(workers, headW) {
		head = tpStep{}
	}
	if rep%2 == 0 { // modpipe first: ..., W=3 | asynq-pre, asynq-stream
		if head.modpipe {
			mp = append(mp, head)
		}
		return append(mp, tpStep{pre: true}, tpStep{})
	}
	// asynq first: asynq-stream, asynq-pre | W=3, ...
	plan := []tpStep{{}, {pre: true}}
	if head.modpipe {
		plan = append(plan, head)
	}
	return append(plan, mp...)
}

// runReps runs the warm-up and reps repetitions of the throughput group,
// each as repPlan orders it.
func runReps(reps int, workers []int, run func(s tpStep, rep int) error) error {
	for rep := -1; rep < reps; rep++ {
		for _, st := range repPlan(rep, workers) {
			if err := run(st, rep); err != nil {
				if rep < 0 {
					return fmt.Errorf("warm-up: %w", err)
				}
				return err
			}
		}
	}
	return nil
}

// pairedRatios divides a[i] by b[i]: values measured next to each other in
// the same repetition, so a slow spell of the machine that hits both cancels
// out (the ratio of the medians does not pair them).
func pairedRatios(a, b []float64) []float64 {
	out := make([]float64, 0, min(len(a), len(b)))
	for i := range min(len(a), len(b)) {
		if b[i] != 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

// throughput: scenarios 1 and 2, repetitions interleaved so that modpipe
// and asynq share the machine's moods.
func (b *bench) throughput() error {
	c := b.cfg
	tp := map[int][]float64{}
	cpu := map[string][]float64{}
	var srvPerModule3 []float64
	var srvPerModule, hookPerModule, aqPre, aqStream, aqSrvPerTask, enqRate, startup, teardown, aqStartup []float64
	runModpipe := func(w, rep int) error {
		if rep < 0 {
			s := mpSpec{label: fmt.Sprintf("warm-up flat W=%d", w), graph: graphFlat, n: c.n, workers: w, workerCaps: "worker"}
			if _, err := b.runModpipe(s, nil); err != nil {
				return err
			}
			b.progress("throughput warm-up: modpipe W=%d done (not counted)", w)
			return nil
		}
		s := mpSpec{label: fmt.Sprintf("flat W=%d", w), graph: graphFlat, n: c.n, workers: w, workerCaps: "worker"}
		r, err := b.runModpipe(s, nil)
		if err != nil {
			return err
		}
		sp := span(r.records)
		v := float64(c.n) / sp.Seconds()
		tp[w] = append(tp[w], v)
		per := 1000 / float64(c.n)
		cpu[fmt.Sprintf("w%d.master", w)] = append(cpu[fmt.Sprintf("w%d.master", w)], float64(r.masterCPU.Milliseconds())*per)
		cpu[fmt.Sprintf("w%d.workers", w)] = append(cpu[fmt.Sprintf("w%d.workers", w)], float64(r.workerCPU.Milliseconds())*per)
		cpu[fmt.Sprintf("w%d.redis", w)] = append(cpu[fmt.Sprintf("w%d.redis", w)], r.server.CPU*1000*per)
		cpu[fmt.Sprintf("w%d.span", w)] = append(cpu[fmt.Sprintf("w%d.span", w)], float64(sp.Milliseconds())*per)
		cpu[fmt.Sprintf("w%d.total", w)] = append(cpu[fmt.Sprintf("w%d.total", w)], (float64((r.masterCPU+r.workerCPU).Milliseconds())+r.server.CPU*1000)*per)
		key := fmt.Sprintf("throughput.w%d.rep%d", w, rep+1)
		b.res.Details[key] = map[string]any{
			"span_ms": ms(int64(sp)), "startup_ms": ms(int64(r.startup())), "teardown_ms": ms(int64(r.teardown())),
			"master_summary_ms": ms(int64(r.reports[0].Summary.Duration)), "executions_by_instance": r.byInstance(),
			"server_commands": r.server.Commands, "server_calls": r.server.Calls, "server_usec": r.server.Usec,
			"cpu_ms": map[string]int64{"master": r.masterCPU.Milliseconds(), "workers": r.workerCPU.Milliseconds(), "redis": int64(r.server.CPU * 1000)},
		}
		if w == headW {
			srvPerModule3 = append(srvPerModule3, float64(r.server.Commands)/float64(c.n))
		}
		if w == 1 {
			startup = append(startup, ms(int64(r.startup())))
			teardown = append(teardown, ms(int64(r.teardown())))
			srvPerModule = append(srvPerModule, float64(r.server.Commands)/float64(c.n))
			var hook uint64
			for _, rep := range r.reports {
				hook += rep.ClientCommands
			}
			hookPerModule = append(hookPerModule, float64(hook)/float64(c.n))
		}
		b.progress("throughput rep %d/%d: modpipe W=%d: %.0f modules/s (span %s, %d server commands)", rep+1, c.reps, w, v, sp.Round(time.Millisecond), r.server.Commands)
		return nil
	}
	runAsynq := func(pre bool, rep int) error {
		if rep < 0 {
			if _, err := b.asynqThroughput(c.n, pre, nil); err != nil {
				return err
			}
			b.progress("throughput warm-up: asynq done (not counted)")
			return nil
		}
		r, err := b.asynqThroughput(c.n, pre, nil)
		if err != nil {
			return err
		}
		v := float64(c.n) / (float64(r.spanNs) / 1e9)
		kind := "streaming"
		if pre {
			kind = "pre-enqueued"
			aqPre = append(aqPre, v)
			aqSrvPerTask = append(aqSrvPerTask, float64(r.server.Commands)/float64(c.n))
			enqRate = append(enqRate, float64(c.n)/r.enqueue.Seconds())
			aqStartup = append(aqStartup, ms(int64(r.startup)))
			per := 1000 / float64(c.n)
			cpu["asynq.server"] = append(cpu["asynq.server"], float64(r.serverCPU.Milliseconds())*per)
			cpu["asynq.redis"] = append(cpu["asynq.redis"], r.server.CPU*1000*per)
			cpu["asynq.span"] = append(cpu["asynq.span"], ms(r.spanNs)*per)
			cpu["asynq.total"] = append(cpu["asynq.total"], (float64(r.serverCPU.Milliseconds())+r.server.CPU*1000)*per)
		} else {
			aqStream = append(aqStream, v)
		}
		b.progress("throughput rep %d/%d: asynq %s: %.0f tasks/s (enqueue %s)", rep+1, c.reps, kind, v, r.enqueue.Round(time.Millisecond))
		return nil
	}
	err := runReps(c.reps, c.workers, func(st tpStep, rep int) error {
		if st.modpipe {
			return runModpipe(st.workers, rep)
		}
		return runAsynq(st.pre, rep)
	})
	if err != nil {
		return err
	}
	sec := fmt.Sprintf("1-2 throughput: %d no-op modules/tasks, first start -> last end", c.n)
	b.res.add(&Figure{Key: "tp.modpipe.w1", Section: sec, Label: "modpipe, 1 worker", Unit: "modules/s", Samples: tp[1], Baseline: "tp.asynq.pre",
		Note: "master + 1 worker process, MaxParallel 8"})
	for _, w := range c.workers[1:] {
		b.res.add(&Figure{Key: fmt.Sprintf("tp.modpipe.w%d", w), Section: sec, Label: fmt.Sprintf("modpipe, %d workers", w), Unit: "modules/s",
			Samples: tp[w], Baseline: "tp.modpipe.w1"})
	}
	b.res.add(&Figure{Key: "tp.asynq.pre", Section: sec, Label: "asynq, enqueued first", Unit: "tasks/s", Samples: aqPre,
		Note: "1 server process, Concurrency 8; all tasks enqueued before it starts"})
	b.res.add(&Figure{Key: "tp.asynq.stream", Section: sec, Label: "asynq, enqueued while serving", Unit: "tasks/s", Samples: aqStream, Baseline: "tp.asynq.pre",
		Note: "server idle (polling) when the enqueueing starts"})
	b.res.add(&Figure{Key: "tp.asynq.enqueue", Section: sec, Label: "asynq client enqueue rate", Unit: "tasks/s", Samples: enqRate,
		Note: "one Enqueue at a time, as modpipe's master enqueues"})

	if len(tp[headW]) > 0 {
		addHeadline(b.res, tp[headW], srvPerModule3, aqPre)
	}

	sec = "7 where the time goes: CPU time per 1000 modules/tasks (throughput runs, whole process lives)"
	b.res.add(&Figure{Key: "cpu.w1.span", Section: sec, Label: "modpipe W=1: wall (span)", Unit: "ms", Samples: cpu["w1.span"]})
	b.res.add(&Figure{Key: "cpu.w1.master", Section: sec, Label: "modpipe W=1: master process", Unit: "ms CPU", Samples: cpu["w1.master"], Baseline: "cpu.w1.span"})
	b.res.add(&Figure{Key: "cpu.w1.workers", Section: sec, Label: "modpipe W=1: worker process", Unit: "ms CPU", Samples: cpu["w1.workers"], Baseline: "cpu.w1.span"})
	b.res.add(&Figure{Key: "cpu.w1.redis", Section: sec, Label: "modpipe W=1: redis-server", Unit: "ms CPU", Samples: cpu["w1.redis"], Baseline: "cpu.w1.span"})
	b.res.add(&Figure{Key: "cpu.w1.total", Section: sec, Label: "modpipe W=1: the three together", Unit: "ms CPU", Samples: cpu["w1.total"], Baseline: "cpu.w1.span",
		Note: fmt.Sprintf("ratio = CPUs kept busy on average; this machine has %d", runtime.NumCPU())})
	last := c.workers[len(c.workers)-1]
	for _, part := range []string{"master", "workers", "redis"} {
		b.res.add(&Figure{Key: fmt.Sprintf("cpu.w%d.%s", last, part), Section: sec, Label: fmt.Sprintf("modpipe W=%d: %s", last, part), Unit: "ms CPU",
			Samples: cpu[fmt.Sprintf("w%d.%s", last, part)], Baseline: "cpu.w1." + part})
	}
	b.res.add(&Figure{Key: "cpu.asynq.span", Section: sec, Label: "asynq enqueued first: wall (span)", Unit: "ms", Samples: cpu["asynq.span"]})
	b.res.add(&Figure{Key: "cpu.asynq.server", Section: sec, Label: "asynq: server process", Unit: "ms CPU", Samples: cpu["asynq.server"], Baseline: "cpu.asynq.span"})
	b.res.add(&Figure{Key: "cpu.asynq.redis", Section: sec, Label: "asynq: redis-server", Unit: "ms CPU", Samples: cpu["asynq.redis"], Baseline: "cpu.asynq.span",
		Note: "includes the enqueueing, which modpipe's master does during its run"})
	b.res.add(&Figure{Key: "cpu.asynq.total", Section: sec, Label: "asynq: the two together", Unit: "ms CPU", Samples: cpu["asynq.total"], Baseline: "cpu.w1.total",
		Note: "compared with modpipe W=1's three"})

	sec = "8 fixed cost per run"
	b.res.add(&Figure{Key: "fixed.modpipe.startup", Section: sec, Label: "modpipe W=1: master started -> first module", Unit: "ms", Samples: startup,
		Baseline: "fixed.asynq.startup", Note: "worker already registered; master process start, connect, register, first dispatch, claim"})
	b.res.add(&Figure{Key: "fixed.modpipe.teardown", Section: sec, Label: "modpipe W=1: last module end -> all exited", Unit: "ms", Samples: teardown,
		Note: "last result to the master, Complete, workers notified, processes exit"})
	b.res.add(&Figure{Key: "fixed.asynq.startup", Section: sec, Label: "asynq: server started -> first task", Unit: "ms", Samples: aqStartup,
		Note: "tasks already enqueued"})

	sec = "6a redis commands per module/task (throughput runs)"
	b.res.add(&Figure{Key: "cmd.modpipe.server", Section: sec, Label: "modpipe W=1, server-side", Unit: "cmds/module", Samples: srvPerModule, Target: 8,
		Baseline: "cmd.asynq.server", Note: "INFO total_commands_processed; counts commands run inside Lua scripts"})
	b.res.add(&Figure{Key: "cmd.modpipe.hook", Section: sec, Label: "modpipe W=1, coordinator's own count", Unit: "cmds/module", Samples: hookPerModule, Target: 8,
		Note: "sum of Coordinator.Commands() over the instances: a script is 1; handshakes and SUBSCRIBE not counted"})
	b.res.add(&Figure{Key: "cmd.asynq.server", Section: sec, Label: "asynq enqueued first, server-side", Unit: "cmds/task", Samples: aqSrvPerTask,
		Note: "client enqueue + server, same counter"})
	return nil
}

// addHeadline adds section 0: the configuration issue 10 sets its targets
// for (throughput 2x asynq's, at most 9 server-side commands per module).
// tp3 and aqPre are per repetition, index i of both from repetition i.
func addHeadline(res *Results, tp3, cmd3, aqPre []float64) {
	sec := "0 headline: master + 3 workers (8 slots each) vs asynq (1 server, Concurrency 8), same run"
	res.add(&Figure{Key: "head.tp.w3", Section: sec, Label: "modpipe, 3 workers: throughput", Unit: "modules/s", Samples: tp3, Baseline: "tp.asynq.pre",
		Note: "target: 2x asynq, enqueued first; ratio of the medians"})
	res.add(&Figure{Key: "head.tp.w3.paired", Section: sec, Label: "modpipe, 3 workers / asynq: paired", Unit: "x", Samples: pairedRatios(tp3, aqPre),
		Note: "target: 2; median of the per-repetition ratios W=3 / asynq enqueued first, each pair run back to back"})
	res.add(&Figure{Key: "head.cmd.w3", Section: sec, Label: "modpipe, 3 workers: server-side commands", Unit: "cmds/module", Samples: cmd3, Target: 9,
		Baseline: "cmd.asynq.server", Note: "INFO total_commands_processed over the run / modules; Lua-internal calls included"})
}

// startup: what a worker that registers after the master dispatched costs.
func (b *bench) startup() error {
	const n, late = 100, 100 * time.Millisecond
	s := mpSpec{label: "late worker", graph: graphFlat, n: n, workers: 1, workerCaps: "worker", defaults: true, lateWorker: late}
	r, err := b.runModpipe(s, nil)
	if err != nil {
		return err
	}
	parked := 0
	for _, m := range r.reports[0].Summary.Modules {
		if m.QueueWait > time.Second {
			parked++
		}
	}
	b.progress("startup: worker %s after the master: first module %s after the master started; %d of %d modules waited over 1s", late, r.startup().Round(time.Millisecond), parked, n)
	b.res.add(&Figure{Key: "fixed.modpipe.lateworker", Section: "8 fixed cost per run", Label: fmt.Sprintf("modpipe, worker started %s after the master", late),
		Unit: "ms", Value: ms(int64(r.startup())), Baseline: "fixed.modpipe.startup",
		Note: fmt.Sprintf("master started -> first module; modpipe defaults; %d of %d modules waited > 1s (parked until the reaper's next pass)", parked, n)})
	b.res.Details["startup.lateworker"] = map[string]any{"delay_ms": ms(int64(late)), "startup_ms": ms(int64(r.startup())), "parked": parked, "modules": n,
		"master_summary_ms": ms(int64(r.reports[0].Summary.Duration))}
	return nil
}

// latency: scenario 3.
func (b *bench) latency() error {
	c := b.cfg
	var hops []float64
	for rep := range c.reps {
		s := mpSpec{label: fmt.Sprintf("chain %d", c.chainLat), graph: graphChain, n: c.chainLat, workers: 1, workerCaps: "worker"}
		r, err := b.runModpipe(s, nil)
		if err != nil {
			return err
		}
		h := chainHops(r.records)
		hops = append(hops, h...)
		b.progress("latency rep %d/%d: modpipe chain of %d: hop p50 %.2f ms, p99 %.2f ms", rep+1, c.reps, c.chainLat, percentile(h, 50), percentile(h, 99))
	}
	b.progress("latency: asynq, %d samples with default TaskCheckInterval (about a second each)", c.aqSamples)
	aq, err := b.asynqLatency(c.aqSamples, 0)
	if err != nil {
		return err
	}
	b.progress("latency: asynq p50 %.1f ms, p99 %.1f ms", percentile(aq, 50), percentile(aq, 99))
	var tuned []float64
	if c.aqTuned > 0 {
		if tuned, err = b.asynqLatency(max(c.aqSamples, 50), c.aqTuned); err != nil {
			return err
		}
	}
	sec := "3 dispatch latency: ready -> start of the next module/task"
	note := fmt.Sprintf("%d hops: end of module k -> start of k+1, chain of %d on 1 worker, all repetitions pooled", len(hops), c.chainLat)
	b.res.add(&Figure{Key: "lat.modpipe.p50", Section: sec, Label: "modpipe hop p50", Unit: "ms", Value: percentile(hops, 50), Baseline: "lat.asynq.p50", Note: note})
	b.res.add(&Figure{Key: "lat.modpipe.p99", Section: sec, Label: "modpipe hop p99", Unit: "ms", Value: percentile(hops, 99), Baseline: "lat.asynq.p99"})
	b.res.add(&Figure{Key: "lat.asynq.p50", Section: sec, Label: "asynq enqueue->start p50", Unit: "ms", Value: percentile(aq, 50),
		Note: fmt.Sprintf("%d samples, one task at a time, idle server, default TaskCheckInterval 1s", len(aq))})
	b.res.add(&Figure{Key: "lat.asynq.p99", Section: sec, Label: "asynq enqueue->start p99", Unit: "ms", Value: percentile(aq, 99)})
	if len(tuned) > 0 {
		note := fmt.Sprintf("reference only: TaskCheckInterval %s (polls Redis ~%.0f times/s when idle), %d samples", c.aqTuned, 1/c.aqTuned.Seconds(), len(tuned))
		b.res.add(&Figure{Key: "lat.asynqtuned.p50", Section: sec, Label: "asynq tuned p50", Unit: "ms", Value: percentile(tuned, 50), Baseline: "lat.modpipe.p50", Note: note})
		b.res.add(&Figure{Key: "lat.asynqtuned.p99", Section: sec, Label: "asynq tuned p99", Unit: "ms", Value: percentile(tuned, 99), Baseline: "lat.modpipe.p99"})
	}
	b.res.Details["latency.modpipe.hops_ms"] = hops
	b.res.Details["latency.asynq.ms"] = aq
	b.res.Details["latency.asynq_tuned.ms"] = tuned
	return nil
}

// chainHops returns start(k+1) - end(k) in ms for a chain's records.
func chainHops(recs []record) []float64 {
	s := slices.Clone(recs)
	slices.SortFunc(s, func(a, b record) int { return strings.Compare(a.Name, b.Name) })
	var out []float64
	for k := 0; k+1 < len(s); k++ {
		out = append(out, ms(s[k+1].Start-s[k].End))
	}
	return out
}

// chains: scenario 4.
func (b *bench) chains() error {
	c := b.cfg
	var short, long, perHop []float64
	for rep := range c.reps {
		var spans [2]time.Duration
		for i, n := range []int{c.chainA, c.chainB} {
			s := mpSpec{label: fmt.Sprintf("chain %d", n), graph: graphChain, n: n, workers: 1, workerCaps: "worker"}
			r, err := b.runModpipe(s, nil)
			if err != nil {
				return err
			}
			spans[i] = span(r.records)
		}
		short, long = append(short, float64(spans[0].Milliseconds())), append(long, float64(spans[1].Milliseconds()))
		h := ms(int64(spans[1]-spans[0])) / float64(c.chainB-c.chainA)
		perHop = append(perHop, h)
		b.progress("chains rep %d/%d: %d: %s, %d: %s, per hop %.2f ms", rep+1, c.reps, c.chainA, spans[0].Round(time.Millisecond), c.chainB, spans[1].Round(time.Millisecond), h)
	}
	sec := "4 per-hop cost of worker chains (1 worker)"
	b.res.add(&Figure{Key: "chain.short", Section: sec, Label: fmt.Sprintf("makespan, chain of %d", c.chainA), Unit: "ms", Samples: short})
	b.res.add(&Figure{Key: "chain.long", Section: sec, Label: fmt.Sprintf("makespan, chain of %d", c.chainB), Unit: "ms", Samples: long})
	b.res.add(&Figure{Key: "chain.perhop", Section: sec, Label: "per hop", Unit: "ms", Samples: perHop, Baseline: "lat.modpipe.p50",
		Note: fmt.Sprintf("(makespan %d - makespan %d) / %d, per repetition", c.chainB, c.chainA, c.chainB-c.chainA)})
	return nil
}

// makespan: scenario 5.
func (b *bench) makespan() error {
	c := b.cfg
	layers := (c.dagN + dagWidth - 1) / dagWidth
	ideal := time.Duration(layers) * c.dagSleep
	var actual, summary, perLayer []float64
	instances := map[int]int{}
	for rep := range c.reps {
		s := mpSpec{label: "dag", graph: graphDAG, n: c.dagN, workers: 3, parallel: 2, sleep: c.dagSleep}
		r, err := b.runModpipe(s, nil)
		if err != nil {
			return err
		}
		sp := span(r.records)
		actual = append(actual, sp.Seconds())
		summary = append(summary, r.reports[0].Summary.Duration.Seconds())
		perLayer = append(perLayer, float64((sp-ideal).Milliseconds())/float64(layers))
		for _, rec := range r.records {
			instances[rec.Instance]++
		}
		b.progress("makespan rep %d/%d: %s (ideal %s), master summary %s", rep+1, c.reps, sp.Round(time.Millisecond), ideal, r.reports[0].Summary.Duration.Round(time.Millisecond))
	}
	sec := fmt.Sprintf("5 makespan: %d modules x %s, layers of %d, master + 3 workers, MaxParallel 2 each", c.dagN, c.dagSleep, dagWidth)
	b.res.add(&Figure{Key: "dag.ideal", Section: sec, Label: "ideal", Unit: "s", Value: ideal.Seconds(), Note: fmt.Sprintf("%d layers x %s", layers, c.dagSleep)})
	b.res.add(&Figure{Key: "dag.actual", Section: sec, Label: "actual, first start -> last end", Unit: "s", Samples: actual, Baseline: "dag.ideal"})
	b.res.add(&Figure{Key: "dag.summary", Section: sec, Label: "actual, master's Summary.Duration", Unit: "s", Samples: summary, Baseline: "dag.ideal",
		Note: "includes the master's registration and completion"})
	b.res.add(&Figure{Key: "dag.perlayer", Section: sec, Label: "overhead per layer", Unit: "ms", Samples: perLayer, Baseline: "lat.modpipe.p50",
		Note: "(actual - ideal) / layers"})
	b.res.Details["makespan.executions_by_instance"] = instances
	// With 8 slots (4 instances x MaxParallel 2) for layers of 8, every
	// instance must have worked.
	for i := range 4 {
		if instances[i] == 0 {
			return fmt.Errorf("instance %d executed no module of the DAG", i)
		}
	}
	return nil
}

// budget: scenario 6a's breakdown, from runs watched with MONITOR.
func (b *bench) budget() error {
	c := b.cfg
	mon, err := startMonitor(b.srv.Addr())
	if err != nil {
		return err
	}
	s := mpSpec{label: "budget W=1", graph: graphFlat, n: c.n, workers: 1, workerCaps: "worker", names: true}
	r, rerr := b.runModpipe(s, mon)
	var aq *aqResult
	if rerr == nil {
		aq, rerr = b.asynqThroughput(c.n, true, mon)
	}
	if err := mon.Stop(); err != nil && rerr == nil {
		rerr = fmt.Errorf("MONITOR: %w", err)
	}
	if rerr != nil {
		return rerr
	}
	n := float64(c.n)
	sec := "6a redis commands per module/task, split (MONITOR-watched runs, untimed)"
	m := r.mon
	b.progress("budget: modpipe %d server commands, MONITOR %d client-sent + %d in scripts", r.server.Commands, m.TopLevel, m.Lua)
	b.res.add(&Figure{Key: "cmd.modpipe.client", Section: sec, Label: "modpipe W=1, client-sent", Unit: "cmds/module", Value: float64(m.TopLevel) / n, Target: 8,
		Baseline: "cmd.asynq.client", Note: "commands the processes sent (a script call is 1)"})
	for _, g := range []string{"master", "worker1"} {
		if gc := m.ByGroup[g]; gc != nil {
			b.res.add(&Figure{Key: "cmd.modpipe.client." + g, Section: sec, Label: "  of which " + g, Unit: "cmds/module", Value: float64(gc.TopLevel) / n,
				Note: topCommands(gc.Commands, n)})
		}
	}
	b.res.add(&Figure{Key: "cmd.modpipe.lua", Section: sec, Label: "modpipe W=1, run inside scripts", Unit: "cmds/module", Value: float64(m.Lua) / n})
	b.res.add(&Figure{Key: "cmd.modpipe.monserver", Section: sec, Label: "modpipe W=1, server-side", Unit: "cmds/module", Value: float64(r.server.Commands) / n,
		Baseline: "cmd.asynq.monserver", Note: fmt.Sprintf("client-sent + in scripts = %.2f", float64(m.TopLevel+m.Lua)/n)})
	am := aq.mon
	b.res.add(&Figure{Key: "cmd.asynq.client", Section: sec, Label: "asynq, client-sent", Unit: "cmds/task", Value: float64(am.TopLevel) / n})
	for _, g := range []string{"client", "server"} {
		if gc := am.ByGroup[g]; gc != nil {
			b.res.add(&Figure{Key: "cmd.asynq.client." + g, Section: sec, Label: "  of which " + g, Unit: "cmds/task", Value: float64(gc.TopLevel) / n,
				Note: topCommands(gc.Commands, n)})
		}
	}
	b.res.add(&Figure{Key: "cmd.asynq.lua", Section: sec, Label: "asynq, run inside scripts", Unit: "cmds/task", Value: float64(am.Lua) / n})
	b.res.add(&Figure{Key: "cmd.asynq.monserver", Section: sec, Label: "asynq, server-side", Unit: "cmds/task", Value: float64(aq.server.Commands) / n,
		Note: fmt.Sprintf("client-sent + in scripts = %.2f", float64(am.TopLevel+am.Lua)/n)})
	b.res.Details["budget.modpipe"] = map[string]any{"monitor": m, "server_calls": r.server.Calls, "server_commands": r.server.Commands}
	b.res.Details["budget.asynq"] = map[string]any{"monitor": am, "server_calls": aq.server.Calls, "server_commands": aq.server.Commands}
	return nil
}

// topCommands lists the most frequent commands per unit.
func topCommands(m map[string]int64, n float64) string {
	type kv struct {
		k string
		v int64
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	slices.SortFunc(l, func(a, b kv) int {
		if a.v != b.v {
			return int(b.v - a.v)
		}
		return strings.Compare(a.k, b.k)
	})
	var parts []string
	for i, e := range l {
		if i == 4 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.2f", e.k, float64(e.v)/n))
	}
	return strings.Join(parts, ", ")
}

// idle: scenario 6b, and an idle asynq server as its baseline.
func (b *bench) idle() error {
	c := b.cfg
	perMin := func(v int64, d time.Duration) float64 { return float64(v) * 60 / d.Seconds() }

	// modpipe: master + 3 workers with default heartbeat settings; the
	// master's only module waits (pinned to it) until we close its stdin.
	mon, err := startMonitor(b.srv.Addr())
	if err != nil {
		return err
	}
	defer mon.Stop()
	s := b.resolve(mpSpec{label: "idle", graph: graphIdle, n: 1, workers: 3, workerCaps: "worker", defaults: true, names: true, sleep: c.idle + 2*time.Minute})
	runID := newRunID("idle")
	cs, outs, _, err := b.startModpipe(s, runID)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		for _, ch := range cs {
			ch.kill()
		}
		return err
	}
	if _, err := cs[0].awaitLine("IDLE-START", time.Minute); err != nil {
		return fail(err)
	}
	if err := b.awaitRegistered(runID, 4, cs, 30*time.Second); err != nil {
		return fail(err)
	}
	time.Sleep(2 * time.Second) // let every loop settle into its idle rhythm
	b.progress("idle: modpipe master + 3 workers registered; measuring %s", c.idle)
	before, err := b.admin.snapshot()
	if err != nil {
		return fail(err)
	}
	time.Sleep(c.idle)
	after, err := b.admin.snapshot()
	if err != nil {
		return fail(err)
	}
	if v, err := b.admin.do("CLIENT", "LIST"); err == nil {
		list, _ := v.(string)
		mon.learnNames(list)
	}
	cs[0].closeStdin()
	if err := waitAll(cs, time.Minute); err != nil {
		return err
	}
	r, err := finishModpipe(s, cs, outs)
	if err != nil {
		return err
	}
	if idle := r.records[0]; idle.End < after.At.UnixNano() {
		return fmt.Errorf("idle: the master's module ended before the window did")
	}
	win := after.At.Sub(before.At)
	srv := diff(before, after)
	m := mon.count(unixSec(before.At), unixSec(after.At), map[string]bool{b.adminAddr: true}, mpGroup)
	var wTop, wAll int64
	workers := 0
	for g, gc := range m.ByGroup {
		if strings.HasPrefix(g, "worker") {
			workers++
			wTop += gc.TopLevel
			wAll += gc.TopLevel + gc.Lua
		}
	}
	master := m.ByGroup["master"]
	if master == nil {
		master = &groupCount{}
	}
	if workers == 0 {
		workers = 3 // no worker sent anything in the window
	}
	if un := m.ByGroup["unnamed"]; un != nil {
		return fmt.Errorf("idle: %d commands from connections without a name", un.TopLevel)
	}
	b.progress("idle: modpipe %d server commands in %s (MONITOR: %d client-sent, %d in scripts)", srv.Commands, win.Round(time.Millisecond), m.TopLevel, m.Lua)

	// asynq: one idle server with default settings.
	aqMon, err := startMonitor(b.srv.Addr())
	if err != nil {
		return err
	}
	defer aqMon.Stop()
	aq, err := b.startAsynq("asynq server (idle)", newRunID("asynq-idle"), 0, "distbench-aq-server")
	if err != nil {
		return err
	}
	if err := aq.until(func() bool { return aq.ready }, 30*time.Second, "READY"); err != nil {
		aq.c.kill()
		return err
	}
	time.Sleep(2 * time.Second)
	b.progress("idle: asynq server started; measuring %s", c.idle)
	aBefore, err := b.admin.snapshot()
	if err != nil {
		aq.c.kill()
		return err
	}
	time.Sleep(c.idle)
	aAfter, err := b.admin.snapshot()
	if err != nil {
		aq.c.kill()
		return err
	}
	if err := aq.stop(); err != nil {
		return err
	}
	aWin := aAfter.At.Sub(aBefore.At)
	aSrv := diff(aBefore, aAfter)
	am := aqMon.count(unixSec(aBefore.At), unixSec(aAfter.At), map[string]bool{b.adminAddr: true}, func(string) string { return "server" })

	sec := fmt.Sprintf("6b idle cost per minute (%s window; modpipe defaults: heartbeat 10s, lease 30s)", win.Round(time.Second))
	wf := float64(workers)
	b.res.add(&Figure{Key: "idle.modpipe.worker.server", Section: sec, Label: "modpipe idle worker, server-side", Unit: "cmds/min",
		Value: perMin(srv.Commands-master.TopLevel-master.Lua, win) / wf, Target: 12, Baseline: "idle.asynq.server",
		Note: "(total_commands_processed - master's share by MONITOR) / 3 workers; counts commands inside scripts"})
	b.res.add(&Figure{Key: "idle.modpipe.worker.client", Section: sec, Label: "modpipe idle worker, client-sent", Unit: "cmds/min",
		Value: perMin(wTop, win) / wf, Target: 12, Baseline: "idle.asynq.client", Note: "MONITOR, a script call is 1: " + topCommands(perWorkerCmds(m), wf*win.Minutes())})
	b.res.add(&Figure{Key: "idle.modpipe.worker.monserver", Section: sec, Label: "modpipe idle worker, server-side by MONITOR", Unit: "cmds/min",
		Value: perMin(wAll, win) / wf, Note: "client-sent + in scripts, attributed per connection: cross-checks the first row"})
	b.res.add(&Figure{Key: "idle.modpipe.master.server", Section: sec, Label: "modpipe idle master, server-side", Unit: "cmds/min",
		Value: perMin(master.TopLevel+master.Lua, win), Note: "its module pinned to it, waiting"})
	b.res.add(&Figure{Key: "idle.modpipe.master.client", Section: sec, Label: "modpipe idle master, client-sent", Unit: "cmds/min",
		Value: perMin(master.TopLevel, win), Note: topCommands(master.Commands, win.Minutes())})
	b.res.add(&Figure{Key: "idle.asynq.server", Section: sec, Label: "asynq idle server, server-side", Unit: "cmds/min", Value: perMin(aSrv.Commands, aWin),
		Note: "defaults: polls its queue every 0.5-1.5s"})
	b.res.add(&Figure{Key: "idle.asynq.client", Section: sec, Label: "asynq idle server, client-sent", Unit: "cmds/min", Value: perMin(am.TopLevel, aWin),
		Note: topCommands(am.ByGroup["server"].commandsOrEmpty(), aWin.Minutes())})
	b.res.Details["idle.modpipe"] = map[string]any{"window_s": win.Seconds(), "server_commands": srv.Commands, "server_calls": srv.Calls, "monitor": m}
	b.res.Details["idle.asynq"] = map[string]any{"window_s": aWin.Seconds(), "server_commands": aSrv.Commands, "server_calls": aSrv.Calls, "monitor": am}
	return nil
}

func (g *groupCount) commandsOrEmpty() map[string]int64 {
	if g == nil {
		return nil
	}
	return g.Commands
}

func perWorkerCmds(m monCount) map[string]int64 {
	out := map[string]int64{}
	for g, gc := range m.ByGroup {
		if strings.HasPrefix(g, "worker") {
			for k, v := range gc.Commands {
				out[k] += v
			}
		}
	}
	return out
}
