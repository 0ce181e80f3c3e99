package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/modpipe/modpipe"
	"github.com/modpipe/modpipe/distributed/redis"
)

// Module graphs. Every instance of a run builds the same graph from the
// same flags, as modpipe requires (it compares fingerprints).
const (
	graphFlat  = "flat"  // n independent no-op modules, on "worker" instances
	graphChain = "chain" // n no-op modules, each on the one before, on "worker" instances
	graphDAG   = "dag"   // n modules sleeping -sleep, layers of dagWidth, each on the whole layer before
	graphIdle  = "idle"  // one module pinned to the master, waiting until its stdin closes
)

const dagWidth = 8

// record is one execution of a module, timed inside the module function
// with the executing process's clock (all processes share the machine's).
type record struct {
	Name     string `json:"name"`
	Instance int    `json:"instance"`
	Start    int64  `json:"start"` // unix ns
	End      int64  `json:"end"`   // unix ns
}

// instanceReport is what an instance process writes to its -out file.
type instanceReport struct {
	Index   int      `json:"index"`
	Records []record `json:"records"`
	// RunStart and RunEnd bracket Pipeline.Run (unix ns).
	RunStart int64  `json:"run_start"`
	RunEnd   int64  `json:"run_end"`
	Err      string `json:"err,omitempty"`
	// ClientCommands is the coordinator's own count of commands it sent
	// (go-redis hook: a script is one command, connection handshakes and
	// SUBSCRIBE are not counted).
	ClientCommands uint64 `json:"client_commands"`
	// Summary is the master's view of the run (instance 0 only).
	Summary *summaryReport `json:"summary,omitempty"`
}

type summaryReport struct {
	Duration time.Duration  `json:"duration"`
	Failed   bool           `json:"failed"`
	Modules  []moduleReport `json:"modules"`
}

type moduleReport struct {
	Name       string        `json:"name"`
	Status     string        `json:"status"`
	Instance   int           `json:"instance"`
	Dispatches int           `json:"dispatches"`
	QueueWait  time.Duration `json:"queue_wait"`
	Error      string        `json:"error,omitempty"`
}

type recorder struct {
	mu   sync.Mutex
	recs []record
}

func (r *recorder) wrap(work func(c *modpipe.Context) error) func(*modpipe.Context) error {
	return func(c *modpipe.Context) error {
		start := time.Now()
		err := work(c)
		end := time.Now()
		r.mu.Lock()
		r.recs = append(r.recs, record{Name: c.Name(), Instance: c.Instance().Index, Start: start.UnixNano(), End: end.UnixNano()})
		r.mu.Unlock()
		return err
	}
}

func noop(*modpipe.Context) error { return nil }

func sleeper(d time.Duration) func(c *modpipe.Context) error {
	return func(c *modpipe.Context) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-c.Done():
			return c.Err()
		}
	}
}

// buildGraph returns the modules of graph; stop ends the idle module.
func buildGraph(graph string, n int, sleep time.Duration, rec *recorder, stop <-chan struct{}) ([]modpipe.AnyModule, error) {
	var mods []modpipe.AnyModule
	name := func(i int) string { return fmt.Sprintf("m%05d", i) }
	switch graph {
	case graphFlat:
		for i := range n {
			mods = append(mods, modpipe.Task(name(i), rec.wrap(noop), modpipe.RequiresCapability("worker")))
		}
	case graphChain:
		var prev modpipe.AnyModule
		for i := range n {
			opts := []modpipe.Option{modpipe.RequiresCapability("worker")}
			if prev != nil {
				opts = append(opts, modpipe.DependsOn(prev))
			}
			m := modpipe.Task(name(i), rec.wrap(noop), opts...)
			mods, prev = append(mods, m), m
		}
	case graphDAG:
		for i := range n {
			var opts []modpipe.Option
			if l := i / dagWidth; l > 0 {
				opts = append(opts, modpipe.DependsOn(mods[(l-1)*dagWidth:l*dagWidth]...))
			}
			mods = append(mods, modpipe.Task(name(i), rec.wrap(sleeper(sleep)), opts...))
		}
	case graphIdle:
		wait := func(c *modpipe.Context) error {
			fmt.Println("IDLE-START")
			t := time.NewTimer(sleep)
			defer t.Stop()
			select {
			case <-stop:
			case <-t.C:
			case <-c.Done():
				return c.Err()
			}
			return nil
		}
		mods = append(mods, modpipe.Task("idle", rec.wrap(wait), modpipe.PinToMaster()))
	default:
		return nil, fmt.Errorf("unknown graph %q", graph)
	}
	return mods, nil
}

// instanceMain is the hidden "instance" subcommand: one instance of a
// distributed modpipe run, in its own process.
func instanceMain(args []string) int {
	fs := flag.NewFlagSet("instance", flag.ContinueOnError)
	graph := fs.String("graph", "", "module graph: flat, chain, dag or idle")
	n := fs.Int("n", 0, "number of modules")
	index := fs.Int("index", 0, "instance index (0 is the master)")
	total := fs.Int("total", 0, "number of instances")
	url := fs.String("redis", "", "Redis URL")
	runID := fs.String("run", "", "run id")
	caps := fs.String("caps", "", "comma-separated capabilities")
	parallel := fs.Int("parallel", 8, "modules this instance executes at once (MaxParallel)")
	heartbeat := fs.Duration("heartbeat", 0, "HeartbeatInterval (0: modpipe's default)")
	lease := fs.Duration("lease", 0, "LeaseTimeout (0: modpipe's default)")
	sleep := fs.Duration("sleep", 0, "how long dag modules sleep; the idle module's upper bound")
	out := fs.String("out", "", "file to write the report to")
	deadline := fs.Duration("deadline", 5*time.Minute, "give up after this long")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the whole process to this file")
	memprofile := fs.String("memprofile", "", "write an allocation profile of the whole process to this file when it ends")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if *memprofile != "" {
		defer writeAllocProfile(*memprofile)
	}
	// A hard stop in case the run hangs: the parent reports it.
	time.AfterFunc(*deadline+15*time.Second, func() {
		fmt.Fprintf(os.Stderr, "instance %d: deadline %s passed; exiting\n", *index, *deadline)
		os.Exit(3)
	})
	stop := make(chan struct{})
	go func() {
		// The parent closes stdin to end the idle module, and the pipe
		// closes when the parent dies.
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		close(stop)
	}()

	rec := &recorder{}
	mods, err := buildGraph(*graph, *n, *sleep, rec, stop)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	p := modpipe.NewPipeline()
	p.Add(mods...)
	p.Output = io.Discard
	p.MaxParallel = *parallel
	var capList []string
	if *caps != "" {
		capList = strings.Split(*caps, ",")
	}
	p.UseDistributed(modpipe.DistributedOptions{
		InstanceIndex: *index, TotalInstances: *total, Capabilities: capList, RunID: *runID,
		HeartbeatInterval: *heartbeat, LeaseTimeout: *lease,
	})
	coord := redis.NewCoordinator(redis.Options{URL: *url, RunID: *runID})
	p.UseCoordinator(coord)

	ctx, cancel := context.WithTimeout(context.Background(), *deadline)
	defer cancel()
	rep := instanceReport{Index: *index, RunStart: time.Now().UnixNano()}
	sum, err := p.Run(ctx)
	rep.RunEnd = time.Now().UnixNano()
	rep.ClientCommands = coord.Commands()
	code := 0
	if err != nil {
		rep.Err = err.Error()
		code = 1
	}
	if sum != nil && *index == 0 {
		sr := &summaryReport{Duration: sum.Duration, Failed: sum.Failed()}
		for _, m := range sum.Modules {
			sr.Modules = append(sr.Modules, moduleReport{Name: m.Name, Status: m.Status.String(), Instance: m.Instance,
				Dispatches: m.Dispatches, QueueWait: m.QueueWait, Error: m.Error})
		}
		rep.Summary = sr
		if sr.Failed {
			code = 1
		}
	}
	rec.mu.Lock()
	rep.Records = rec.recs
	rec.mu.Unlock()
	b, _ := json.Marshal(rep)
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if rep.Err != "" {
		fmt.Fprintf(os.Stderr, "instance %d: %s\n", *index, rep.Err)
	}
	_ = coord.Close()
	return code
}

// writeAllocProfile writes the allocations of the process so far to path
// (every allocation since the start, sampled at the runtime's default rate).
func writeAllocProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "allocation profile:", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		fmt.Fprintln(os.Stderr, "allocation profile:", err)
	}
}
