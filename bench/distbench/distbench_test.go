package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the command: the end-to-end
// test re-executes it (os.Executable) as instances and asynq servers.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "instance":
			os.Exit(instanceMain(os.Args[2:]))
		case "asynq":
			os.Exit(asynqMain(os.Args[2:]))
		}
	}
	os.Exit(m.Run())
}

func TestPercentile(t *testing.T) {
	var hundred []float64
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, float64(i))
	}
	for _, c := range []struct {
		xs   []float64
		p    float64
		want float64
	}{
		{hundred, 50, 50}, {hundred, 99, 99}, {hundred, 100, 100}, {hundred, 1, 1}, {hundred, 0.5, 1},
		{[]float64{5, 1, 3}, 50, 3}, {[]float64{5, 1, 3}, 99, 5}, {[]float64{5, 1, 3}, 33, 1}, {[]float64{5, 1, 3}, 34, 3},
		{[]float64{7}, 99, 7},
	} {
		if got := percentile(c.xs, c.p); got != c.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", c.xs[:min(len(c.xs), 5)], c.p, got, c.want)
		}
	}
	if !math.IsNaN(percentile(nil, 50)) || !math.IsNaN(percentile(hundred, 0)) || !math.IsNaN(percentile(hundred, 101)) {
		t.Error("percentile of nothing, or out of range, should be NaN")
	}
	if hundred[0] != 100 {
		t.Error("percentile sorted its input in place")
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
}

func TestFormatNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 12345.6: "12346", 123.45: "123", 12.345: "12.3", 1.2345: "1.23", 0.00055712: "0.000557", -2.5: "-2.50", math.NaN(): "n/a"} {
		if got := formatNum(v); got != want {
			t.Errorf("formatNum(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestTableAndJSON(t *testing.T) {
	r := &Results{Meta: map[string]string{"redis": "x"}}
	r.add(&Figure{Key: "a", Section: "first", Label: "alpha", Unit: "ops/s", Samples: []float64{100, 300, 200}})
	r.add(&Figure{Key: "b", Section: "first", Label: "beta", Unit: "ops/s", Value: 50, Baseline: "a"})
	r.add(&Figure{Key: "c", Section: "second", Label: "gamma", Unit: "cmds", Value: 9, Target: 8, Note: "n"})
	r.add(&Figure{Key: "d", Section: "second", Label: "delta", Unit: "cmds", Value: 7, Target: 8})
	r.add(&Figure{Key: "e", Section: "second", Label: "empty", Unit: "ms", Value: math.NaN(), Baseline: "a"})
	r.add(&Figure{Key: "f", Section: "second", Label: "small", Unit: "ms", Value: 0.05, Baseline: "a"})
	r.link()
	if f := r.find("a"); f.Value != 200 {
		t.Errorf("median of samples = %v, want 200", f.Value)
	}
	if f := r.find("b"); f.Ratio != 0.25 {
		t.Errorf("ratio = %v, want 0.25", f.Ratio)
	}
	var buf bytes.Buffer
	if err := writeTable(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"first\n", "\nsecond\n",
		"alpha  200 [100..300]  ops/s",
		"beta   50.0            ops/s  0.250x alpha",
		"1/4000x alpha",
		"target <= 8.00: OVER. n",
		"target <= 8.00: within.",
		"empty  n/a",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Every figure line has its unit in the same column.
	col := -1
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "ops/s"); i >= 0 {
			if col >= 0 && i != col {
				t.Errorf("unit columns not aligned:\n%s", out)
			}
			col = i
		}
	}
	// Sections print in the order of their number, whatever the order of
	// measurement.
	o := &Results{}
	o.add(&Figure{Key: "x", Section: "6a later", Label: "x"})
	o.add(&Figure{Key: "y", Section: "1-2 first", Label: "y"})
	o.add(&Figure{Key: "z", Section: "6a later", Label: "z"})
	var ob bytes.Buffer
	_ = writeTable(&ob, o)
	if got := ob.String(); !strings.HasPrefix(got, "1-2 first\n") || strings.Index(got, "  x") > strings.Index(got, "  z") {
		t.Errorf("sections out of order:\n%s", got)
	}
	path := filepath.Join(t.TempDir(), "out.json")
	if err := writeJSON(path, r); err != nil {
		t.Fatalf("writeJSON with a NaN figure: %v", err)
	}
	var back Results
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &back); err != nil || len(back.Figures) != 6 || back.Figures[1].Ratio != 0.25 {
		t.Fatalf("JSON round trip: %v %+v", err, back.Figures)
	}
}

// TestMonitorAttribution feeds MONITOR lines through the parser: script
// commands belong to the connection that called the script, names come
// from the handshake, and the window and exclusions apply.
func TestMonitorAttribution(t *testing.T) {
	server, client := net.Pipe()
	m := &monitor{rc: &respConn{c: client, r: bufio.NewReader(client)}, done: make(chan struct{}), srcID: map[string]int{}, names: map[string]string{}, cmdID: map[string]int{}}
	go m.loop()
	lines := []string{
		`+10.0 [0 127.0.0.1:1] "hello" "3" "setname" "distbench-mp-i0"`,
		`+10.1 [0 127.0.0.1:2] "client" "setname" "distbench-mp-i1"`,
		`+11.0 [0 127.0.0.1:1] "evalsha" "abc" "1" "k"`,
		`+11.0 [0 lua] "hget" "k" "f"`,
		`+11.0 [0 lua] "pexpire" "k" "1"`,
		`+11.5 [0 127.0.0.1:2] "blpop" "a \"quoted\" key" "30"`,
		`+11.6 [0 127.0.0.1:9] "info" "stats"`,
		`+11.7 [0 127.0.0.1:3] "ping"`,
		`+20.0 [0 127.0.0.1:2] "evalsha" "def" "0"`,
		`+20.0 [0 lua] "time"`,
	}
	go func() {
		for _, l := range lines {
			_, _ = server.Write([]byte(l + "\r\n"))
		}
		server.Close()
	}()
	<-m.done
	c := m.count(11, 12, map[string]bool{"127.0.0.1:9": true}, mpGroup)
	if c.TopLevel != 3 || c.Lua != 2 {
		t.Fatalf("top-level %d, lua %d; want 3 and 2: %+v", c.TopLevel, c.Lua, c)
	}
	if g := c.ByGroup["master"]; g == nil || g.TopLevel != 1 || g.Lua != 2 || g.Commands["evalsha"] != 1 {
		t.Errorf("master: %+v", g)
	}
	if g := c.ByGroup["worker1"]; g == nil || g.TopLevel != 1 || g.Commands["blpop"] != 1 {
		t.Errorf("worker1: %+v", g)
	}
	if g := c.ByGroup["unnamed"]; g == nil || g.TopLevel != 1 {
		t.Errorf("unnamed: %+v", g)
	}
	if got := monitorTokens(`"blpop" "a \"quoted\" key" "30"`, 3); len(got) != 3 || got[1] != `a "quoted" key` {
		t.Errorf("monitorTokens = %q", got)
	}
}

func recs(names ...string) []record {
	var out []record
	for i, n := range names {
		out = append(out, record{Name: n, Instance: 1, Start: int64(10 * i), End: int64(10*i + 5)})
	}
	return out
}

func okSummary(n int) *summaryReport {
	s := &summaryReport{}
	for i := range n {
		s.Modules = append(s.Modules, moduleReport{Name: "x" + itoa(i), Status: "succeeded", Dispatches: 1})
	}
	return s
}

// TestCheckRunCatchesMistakes shows that the checks of a run's outcome fail
// for runs that did not do what was asked, so a benchmark cannot silently
// measure a run that skipped work.
func TestCheckRunCatchesMistakes(t *testing.T) {
	chain := mpSpec{graph: graphChain, n: 3, workers: 1, workerCaps: "worker"}
	good := func() *mpResult {
		return &mpResult{records: recs("m00000", "m00001", "m00002"), reports: []*instanceReport{{Summary: okSummary(3)}}}
	}
	if err := checkRun(chain, good()); err != nil {
		t.Fatalf("a good run fails the check: %v", err)
	}
	mistakes := map[string]func(r *mpResult){
		"no summary":        func(r *mpResult) { r.reports[0].Summary = nil },
		"failed run":        func(r *mpResult) { r.reports[0].Summary.Failed = true },
		"module skipped":    func(r *mpResult) { r.reports[0].Summary.Modules[1].Status = "skipped" },
		"redispatched":      func(r *mpResult) { r.reports[0].Summary.Modules[1].Dispatches = 2 },
		"missing execution": func(r *mpResult) { r.records = r.records[:2] },
		"ran twice":         func(r *mpResult) { r.records = append(r.records, r.records[1]) },
		"ran on the master": func(r *mpResult) { r.records[2].Instance = 0 },
		"before dependency": func(r *mpResult) { r.records[1].Start = r.records[0].End - 1 },
	}
	for name, spoil := range mistakes {
		r := good()
		spoil(r)
		if err := checkRun(chain, r); err == nil {
			t.Errorf("%s: not caught", name)
		}
	}
	// MaxParallel: no instance may execute more modules at once.
	flat := mpSpec{graph: graphFlat, n: 3, workers: 1, workerCaps: "worker", parallel: 2}
	r0 := good()
	r0.records[1].Start, r0.records[2].Start = 1, 2 // three at once around t=4
	if err := checkRun(flat, r0); err == nil {
		t.Error("3 modules at once on an instance with MaxParallel 2: not caught")
	}
	r0.records[2].Start = 5 // the first one ended: two at once
	if err := checkRun(flat, r0); err != nil {
		t.Errorf("2 modules at once with MaxParallel 2 fails the check: %v", err)
	}
	// In a DAG each module waits for the whole layer before it.
	dag := mpSpec{graph: graphDAG, n: dagWidth + 1, workers: 3}
	var names []string
	for i := range dagWidth + 1 {
		names = append(names, "m0000"+itoa(i))
	}
	r := &mpResult{records: recs(names...), reports: []*instanceReport{{Summary: okSummary(dagWidth + 1)}}}
	for i := range r.records[:dagWidth] {
		r.records[i].Start, r.records[i].End = 0, 100
	}
	r.records[dagWidth].Start = 100
	if err := checkRun(dag, r); err != nil {
		t.Fatalf("a good DAG run fails the check: %v", err)
	}
	r.records[3].End = 101
	if err := checkRun(dag, r); err == nil {
		t.Error("a DAG module starting before one of its layer's dependencies ended: not caught")
	}
}

// TestQuickEndToEnd runs the whole command in quick mode, shortened further,
// against a real redis-server, and checks that every figure is there and
// plausible. It fails (rather than skips) without redis-server.
func TestQuickEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of about half a minute; skipped with -short")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed: %v", err)
	}
	path := filepath.Join(t.TempDir(), "results.json")
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := benchMain([]string{"-quick", "-json", path, "-idle-window", "3s", "-asynq-samples", "3", "-asynq-tuned", "20ms"}, &stdout, &stderr)
	t.Logf("quick run took %s", time.Since(start).Round(time.Second))
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	var res Results
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	find := func(key string) *Figure {
		t.Helper()
		f := res.find(key)
		if f == nil {
			t.Fatalf("figure %s missing; table:\n%s", key, stdout.String())
		}
		return f
	}
	get := func(key string) float64 {
		t.Helper()
		f := find(key)
		if f.Value <= 0 || math.IsNaN(f.Value) {
			t.Errorf("figure %s = %v, want > 0", key, f.Value)
		}
		return f.Value
	}
	for _, k := range []string{
		"tp.modpipe.w1", "tp.modpipe.w2", "tp.modpipe.w4", "tp.asynq.pre", "tp.asynq.stream",
		"lat.modpipe.p50", "lat.modpipe.p99", "lat.asynq.p50", "lat.asynq.p99",
		"chain.short", "chain.long", "dag.actual", "dag.summary",
		"cmd.modpipe.server", "cmd.modpipe.client", "cmd.modpipe.lua", "cmd.asynq.server", "idle.asynq.server",
	} {
		get(k)
	}
	// A 3s window may hold no heartbeat (every 10s by default): present, not
	// necessarily positive.
	for _, k := range []string{"idle.modpipe.worker.server", "idle.modpipe.worker.client", "idle.modpipe.master.server"} {
		if v := find(k).Value; v < 0 || math.IsNaN(v) {
			t.Errorf("figure %s = %v", k, v)
		}
	}
	if p50, p99 := get("lat.modpipe.p50"), get("lat.modpipe.p99"); p50 > p99 {
		t.Errorf("modpipe hop p50 %v > p99 %v", p50, p99)
	}
	if r := res.find("tp.modpipe.w1").Ratio; r <= 0 {
		t.Errorf("throughput ratio against asynq missing: %v", r)
	}
	if d := get("dag.actual"); d < 1.6 {
		t.Errorf("DAG makespan %vs is below its ideal 1.6s: the modules did not sleep, or ran out of order", d)
	}
	if get("chain.long") <= get("chain.short") {
		t.Error("a longer chain did not take longer")
	}
	// The MONITOR split adds up to the server's own counter.
	srv, cl, lua := get("cmd.modpipe.monserver"), get("cmd.modpipe.client"), get("cmd.modpipe.lua")
	if math.Abs(srv-(cl+lua)) > 0.05*srv {
		t.Errorf("server-side %v != client-sent %v + in scripts %v", srv, cl, lua)
	}
	if !strings.Contains(stdout.String(), "1-2 throughput") || !strings.Contains(stdout.String(), "6b idle cost") {
		t.Errorf("table incomplete:\n%s", stdout.String())
	}
}

// The throughput schedule warms both sides up once (rep -1), then swaps
// which side goes first every other repetition, and always runs the
// headline pair (W=3, asynq enqueued first) back to back.
func TestRunRepsWarmsUpAlternatesAndPairs(t *testing.T) {
	var got []string
	err := runReps(4, []int{1, 2, 3, 4}, func(st tpStep, rep int) error {
		got = append(got, fmt.Sprintf("%d:%s", rep, st))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"-1:W=3", "-1:asynq-pre",
		"0:W=1", "0:W=2", "0:W=4", "0:W=3", "0:asynq-pre", "0:asynq-stream",
		"1:asynq-stream", "1:asynq-pre", "1:W=3", "1:W=1", "1:W=2", "1:W=4",
		"2:W=1", "2:W=2", "2:W=4", "2:W=3", "2:asynq-pre", "2:asynq-stream",
		"3:asynq-stream", "3:asynq-pre", "3:W=3", "3:W=1", "3:W=2", "3:W=4",
	}
	if !slices.Equal(got, want) {
		t.Errorf("order\n%v\nwant\n%v", got, want)
	}
	boom := errors.New("boom")
	err = runReps(2, []int{1, 3}, func(st tpStep, rep int) error {
		if st.pre && rep == 1 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want boom", err)
	}
	err = runReps(2, []int{1, 3}, func(st tpStep, rep int) error {
		if rep < 0 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "warm-up") {
		t.Errorf("warm-up error %v", err)
	}
}

// The paired headline figure is the median of the per-repetition ratios,
// which differs from the ratio of the medians when the machine's speed
// changes between repetitions.
func TestHeadlinePairedRatio(t *testing.T) {
	r := &Results{}
	aq := []float64{4, 10, 12}
	r.add(&Figure{Key: "tp.asynq.pre", Section: "1-2 throughput", Label: "asynq", Unit: "tasks/s", Samples: aq})
	r.add(&Figure{Key: "cmd.asynq.server", Section: "6a", Label: "asynq cmds", Unit: "cmds/task", Value: 5})
	addHeadline(r, []float64{12, 10, 30}, []float64{8, 8, 8}, aq)
	r.link()
	if f := r.find("head.tp.w3"); f == nil || f.Ratio != 1.2 {
		t.Fatalf("ratio of the medians: %+v, want 12/10", f)
	}
	p := r.find("head.tp.w3.paired")
	if p == nil {
		t.Fatal("no paired figure")
	}
	if !slices.Equal(p.Samples, []float64{3, 1, 2.5}) || p.Value != 2.5 {
		t.Errorf("paired ratios %v, median %v; want [3 1 2.5], 2.5", p.Samples, p.Value)
	}
	if got := pairedRatios([]float64{6, 8, 9}, []float64{3, 0}); !slices.Equal(got, []float64{2}) {
		t.Errorf("pairedRatios of unequal lengths, a zero = %v, want [2]", got)
	}
	var buf bytes.Buffer
	if err := writeTable(&buf, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "2.50 [1.00..3.00]  x ") {
		t.Errorf("table:\n%s", buf.String())
	}
}

// -cpuprofile-dir and -memprofile-dir are created before anything runs
// (here the run then fails at once: no such redis-server).
func TestProfileDirsCreatedUpFront(t *testing.T) {
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "a", "cpu"), filepath.Join(dir, "b", "mem")
	var stdout, stderr bytes.Buffer
	code := benchMain([]string{"-only", "throughput", "-redis-server", filepath.Join(dir, "no-redis-server"),
		"-cpuprofile-dir", cpu, "-memprofile-dir", mem}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit code %d, want 1\n%s", code, stderr.String())
	}
	for _, d := range []string{cpu, mem} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Errorf("%s not created: %v", d, err)
		}
	}
	// A directory that cannot be made fails before any process starts.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := benchMain([]string{"-only", "throughput", "-redis-server", filepath.Join(dir, "no-redis-server"),
		"-cpuprofile-dir", filepath.Join(file, "x")}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "profile directory") {
		t.Errorf("exit code %d, stderr %q", code, stderr.String())
	}
}

// A worker process that exits before registering is reported by name with
// what it printed, instead of waiting for the registration to time out.
func TestWorkerExitingBeforeRegisteringIsReported(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed: %v", err)
	}
	cfg, err := parseConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{cfg: cfg, stderr: io.Discard, tmp: t.TempDir()}
	if b.srv, err = startRedis(cfg.redisBin); err != nil {
		t.Fatal(err)
	}
	defer b.srv.Stop()
	if b.admin, err = dialRESP(b.srv.Addr()); err != nil {
		t.Fatal(err)
	}
	defer b.admin.Close()
	// An unknown graph: the instance exits with an error before it
	// connects to Redis.
	s := b.resolve(mpSpec{label: "broken", graph: "no-such-graph", n: 1, workers: 1, workerCaps: "worker"})
	cs, _, _, err := b.startModpipe(s, newRunID("broken"))
	if err == nil {
		for _, c := range cs {
			c.kill()
		}
		t.Fatal("a worker that exited did not fail the start")
	}
	for _, want := range []string{"broken instance 1 exited before registering", `unknown graph "no-such-graph"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}
