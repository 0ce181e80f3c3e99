// Command distbench measures modpipe's distributed mode over a real Redis
// and compares it with asynq on the same redis-server, in the same run.
//
//	cd bench && go run ./distbench            # full run, a few minutes
//	cd bench && go run ./distbench -quick     # smoke run, about half a minute
//	cd bench && go run ./distbench -json out.json
//
// It starts its own redis-server on a free loopback port, runs every
// instance and every asynq server as a separate process (itself, re-run
// with a hidden subcommand), and prints one table. See README.md for what
// each figure means.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"
)

type config struct {
	quick     bool
	jsonPath  string
	redisBin  string
	reps      int
	n         int
	workers   []int
	chainLat  int
	chainA    int
	chainB    int
	dagN      int
	dagSleep  time.Duration
	aqSamples int
	aqTuned   time.Duration
	idle      time.Duration
	heartbeat time.Duration
	lease     time.Duration
	parallel  int
	only      map[string]bool
	profile   string
	memprof   string
}

// Scenario groups, selectable with -only.
var groups = []string{"throughput", "startup", "latency", "chains", "makespan", "budget", "idle"}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "instance":
			os.Exit(instanceMain(os.Args[2:]))
		case "asynq":
			os.Exit(asynqMain(os.Args[2:]))
		}
	}
	os.Exit(benchMain(os.Args[1:], os.Stdout, os.Stderr))
}

func parseConfig(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("distbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	fs.BoolVar(&c.quick, "quick", false, "small sizes and one repetition: a smoke run of about half a minute")
	fs.StringVar(&c.jsonPath, "json", "", "also write the figures to this JSON file")
	fs.StringVar(&c.redisBin, "redis-server", "redis-server", "redis-server binary")
	reps := fs.Int("reps", 0, "repetitions of the timed scenarios (default 3, 1 with -quick)")
	n := fs.Int("n", 0, "modules (tasks) per throughput run (default 10000, 300 with -quick)")
	idle := fs.Duration("idle-window", 0, "length of the idle-cost measurement window (default 30s, 10s with -quick)")
	samples := fs.Int("asynq-samples", 0, "asynq latency samples with default settings (default 200, 10 with -quick); about 1s each")
	fs.DurationVar(&c.aqTuned, "asynq-tuned", 10*time.Millisecond, "also measure asynq latency with this TaskCheckInterval (0: skip)")
	fs.DurationVar(&c.heartbeat, "heartbeat", 200*time.Millisecond, "modpipe HeartbeatInterval for scenarios 1-5 (the idle scenario uses modpipe's defaults)")
	fs.DurationVar(&c.lease, "lease", 2*time.Second, "modpipe LeaseTimeout for scenarios 1-5")
	only := fs.String("only", "", "comma-separated scenario groups to run: "+strings.Join(groups, ","))
	fs.StringVar(&c.profile, "cpuprofile-dir", "", "write a CPU profile of every modpipe instance process into this directory")
	fs.StringVar(&c.memprof, "memprofile-dir", "", "write an allocation profile of every modpipe instance process into this directory (go tool pprof -sample_index=alloc_space)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.parallel = 8
	c.workers = []int{1, 2, 3, 4} // 3: the configuration of issue 10's targets
	c.dagN, c.dagSleep = 60, 200*time.Millisecond
	if c.quick {
		c.reps, c.n, c.chainLat, c.chainA, c.chainB, c.aqSamples, c.idle = 1, 300, 50, 20, 60, 10, 10*time.Second
	} else {
		c.reps, c.n, c.chainLat, c.chainA, c.chainB, c.aqSamples, c.idle = 3, 10000, 200, 100, 300, 200, 30*time.Second
	}
	if *reps > 0 {
		c.reps = *reps
	}
	if *n > 0 {
		c.n = *n
	}
	if *idle > 0 {
		c.idle = *idle
	}
	if *samples > 0 {
		c.aqSamples = *samples
	}
	c.only = map[string]bool{}
	for g := range strings.SplitSeq(*only, ",") {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		if !slices.Contains(groups, g) {
			return nil, fmt.Errorf("-only: unknown group %q (groups: %s)", g, strings.Join(groups, ","))
		}
		c.only[g] = true
	}
	if len(c.only) == 0 {
		for _, g := range groups {
			c.only[g] = true
		}
	}
	if c.lease <= c.heartbeat {
		return nil, fmt.Errorf("-lease (%s) must be longer than -heartbeat (%s)", c.lease, c.heartbeat)
	}
	return c, nil
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(stderr, "distbench:", err)
		return 2
	}
	if err := makeProfileDirs(cfg); err != nil {
		fmt.Fprintln(stderr, "distbench:", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	b := &bench{cfg: cfg, stderr: stderr}
	go func() {
		s := <-sig
		fmt.Fprintf(stderr, "distbench: %v: stopping\n", s)
		killAll()
		b.close()
		os.Exit(130)
	}()
	defer signal.Stop(sig)
	defer killAll()

	res, err := b.run()
	killAll() // normally none is left; after a failure, before Redis goes away
	b.close()
	if res != nil {
		fmt.Fprintln(stdout)
		writeHeader(stdout, res)
		if werr := writeTable(stdout, res); werr != nil && err == nil {
			err = werr
		}
		if cfg.jsonPath != "" {
			if werr := writeJSON(cfg.jsonPath, res); werr != nil && err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "distbench: FAILED:", err)
		return 1
	}
	return 0
}

// makeProfileDirs creates the -cpuprofile-dir and -memprofile-dir
// directories before anything runs: an instance only creates its profile
// file, and would fail (after the scenario started) in a missing directory.
func makeProfileDirs(c *config) error {
	for _, dir := range []string{c.profile, c.memprof} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("profile directory: %w", err)
		}
	}
	return nil
}

func writeHeader(w io.Writer, r *Results) {
	keys := []string{"redis", "machine", "go", "asynq", "go-redis", "modpipe settings", "asynq settings", "repetitions", "sizes", "clock"}
	for _, k := range keys {
		if v, ok := r.Meta[k]; ok {
			fmt.Fprintf(w, "%-17s %s\n", k+":", v)
		}
	}
	fmt.Fprintln(w)
}

func depVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "?"
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			if d.Replace != nil {
				return d.Version + " => " + d.Replace.Path
			}
			return d.Version
		}
	}
	return "?"
}

func (b *bench) meta() map[string]string {
	c := b.cfg
	m := map[string]string{
		"redis":   fmt.Sprintf("%s, 127.0.0.1:%d, --save \"\" --appendonly no", b.srv.Version, b.srv.Port),
		"machine": fmt.Sprintf("%s/%s, %d CPUs (GOMAXPROCS %d), every instance and server a separate process", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0)),
		"go":      runtime.Version(),
		"asynq":   depVersion("github.com/hibiken/asynq"),
		"go-redis": depVersion("github.com/redis/go-redis/v9") +
			" (modpipe's coordinator and asynq both use it)",
		"modpipe settings": fmt.Sprintf("scenarios 1-5: HeartbeatInterval %s, LeaseTimeout %s, MaxParallel %d per instance; idle scenario: modpipe defaults (heartbeat 10s, lease 30s)",
			c.heartbeat, c.lease, c.parallel),
		"asynq settings": fmt.Sprintf("Concurrency %d, defaults otherwise (TaskCheckInterval 1s: an idle server polls every 0.5-1.5s)", c.parallel),
		"repetitions":    fmt.Sprintf("%d per timed scenario, interleaved; value = median [min..max]", c.reps),
		"sizes": fmt.Sprintf("N=%d throughput, chain %d (latency), chains %d/%d, dag %d x %s, asynq latency %d samples, idle window %s",
			c.n, c.chainLat, c.chainA, c.chainB, c.dagN, c.dagSleep, c.aqSamples, c.idle),
		"clock": "module/handler start and end are time.Now in the executing process; all processes share this machine's clock",
	}
	if c.quick {
		m["sizes"] += " (-quick)"
	}
	return m
}
