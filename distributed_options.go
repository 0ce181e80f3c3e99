package modpipe

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/defaults"
)

// DistributedOptions spread one pipeline over several instances of the same
// program — for example the jobs of a CI matrix. Instance 0 is the master:
// it schedules, executes work itself and prints the whole run; the others
// are workers. Flags and environment variables (see Main) override these.
//
// Distributed mode is on when TotalInstances is above 1; otherwise the
// pipeline runs in this process alone and no coordinator is contacted.
type DistributedOptions struct {
	// InstanceIndex is this instance's index, 0 to TotalInstances-1.
	InstanceIndex int
	// TotalInstances is how many instances take part in the run.
	TotalInstances int
	// Capabilities this instance offers, such as "docker" or "gpu"
	// (case-insensitive). Modules with RequiresCapability run only where
	// all of theirs are offered.
	Capabilities []string
	// DisableOSCapability stops the instance from advertising its OS
	// ("linux", "windows", "macos", "freebsd") as a capability. The OS is
	// advertised by default, and not added when Capabilities already name
	// an OS.
	DisableOSCapability bool
	// RunID names the run; every instance of one run must use the same.
	// Main takes it from --run-id, MODPIPE_RUN_ID, or GitHub's run id and
	// attempt. The in-memory coordinator does not need one.
	RunID string

	// HeartbeatInterval is how often each instance reports that it is alive
	// (default 10s).
	HeartbeatInterval time.Duration
	// LeaseTimeout is how long an instance may go without a heartbeat
	// before the master hands its modules to another instance (default 30s).
	LeaseTimeout time.Duration
	// CapabilityTimeout is how long a module waits for an instance that can
	// run it to register before it fails (default 5m). When every expected
	// instance has registered and none can run it, it fails at once.
	CapabilityTimeout time.Duration
	// MasterTimeout is how long a worker waits for a master it has not seen,
	// or has lost, before it exits non-zero (default 2m).
	MasterTimeout time.Duration
	// MaxAttempts bounds how often a module is dispatched when the instances
	// running it are lost (default 3). NotIdempotent modules are never
	// dispatched twice.
	MaxAttempts int
	// Parallelism is how many modules this instance executes at once
	// (default: the number of CPUs, at least 2).
	Parallelism int

	// NoFallback turns off the fork-safe fallback. By default, when the
	// coordinator has no backend configured (no Redis URL: a pull request
	// from a fork gets no secrets), instance 0 runs the whole pipeline alone
	// and the other instances exit 0 at once, saying why. With NoFallback
	// every instance fails instead.
	NoFallback bool

	// SharedSecret, when set, authenticates the run's messages: every
	// registration, assignment and result carries an HMAC-SHA256 over its
	// content, the run id and (for results) its lease, and the instances
	// refuse anything unsigned or signed with another secret. Every instance
	// of the run must have the same value, at least 16 bytes long. Main
	// takes it from MODPIPE_SHARED_SECRET only (no flag: a command line is
	// visible to other users of the machine and in CI logs). The value is
	// masked like a secret. See docs/distributed.md for what it protects
	// against and what it does not.
	SharedSecret string

	// LocalCapabilities is for --local-instances demos only and is ignored
	// otherwise: when Main runs several instances in one process (flag
	// --local-instances), instance i takes LocalCapabilities[i], when set,
	// instead of Capabilities; an OS name among them makes the instance
	// pose as that OS. A real instance — one process per CI job — takes
	// its capabilities from Capabilities or --capability.
	LocalCapabilities map[int][]string

	// WorkflowWorkers declares, in code, worker jobs of the CI workflow that
	// `workflow github|gitlab` generates: each entry is one more Linux worker
	// offering those capabilities, like --worker (which adds more). For
	// example [][]string{{"cgo"}} gives the modules that
	// RequiresCapability("cgo") a worker to run on. It changes nothing else.
	WorkflowWorkers [][]string
}

// UseDistributed configures distributed mode; see DistributedOptions.
func (p *Pipeline) UseDistributed(o DistributedOptions) *Pipeline {
	p.dist = o
	return p
}

// UseCoordinator sets the coordinator the instances share, such as the
// Redis one (package distributed/redis) or distributed.NewInMemory for
// instances in one process. It is only used in distributed mode.
//
// A coordinator serves one instance of one run, and Run owns it: a
// distributed Run closes it when it returns (whatever the outcome), so a
// program that calls Run again must give it a new coordinator first.
// Closing it again yourself is harmless.
func (p *Pipeline) UseCoordinator(c distributed.Coordinator) *Pipeline {
	p.coord = c
	return p
}

// distributedOn reports whether the run is spread over instances.
func (p *Pipeline) distributedOn() bool { return p.dist.TotalInstances > 1 }

// minSharedSecret is the shortest SharedSecret accepted.
const minSharedSecret = 16

// withDefaults fills unset options and validates them.
func (o DistributedOptions) withDefaults() (DistributedOptions, error) {
	defaults.Positive(&o.HeartbeatInterval, 10*time.Second)
	defaults.Positive(&o.LeaseTimeout, 30*time.Second)
	defaults.Positive(&o.CapabilityTimeout, 5*time.Minute)
	defaults.Positive(&o.MasterTimeout, 2*time.Minute)
	defaults.Positive(&o.MaxAttempts, 3)
	if o.Parallelism <= 0 {
		o.Parallelism = max(2, runtime.NumCPU())
	}
	switch {
	case o.TotalInstances < 1:
		return o, fmt.Errorf("TotalInstances is %d; it must be at least 1", o.TotalInstances)
	case o.InstanceIndex < 0 || o.InstanceIndex >= o.TotalInstances:
		return o, fmt.Errorf("instance index %d is outside 0..%d (TotalInstances %d)", o.InstanceIndex, o.TotalInstances-1, o.TotalInstances)
	case o.SharedSecret != "" && len(o.SharedSecret) < minSharedSecret:
		return o, fmt.Errorf("SharedSecret (MODPIPE_SHARED_SECRET) is %d bytes; use at least %d, such as the output of `openssl rand -hex 32`", len(o.SharedSecret), minSharedSecret)
	case o.LeaseTimeout <= o.HeartbeatInterval:
		return o, fmt.Errorf("LeaseTimeout (%s) must be longer than HeartbeatInterval (%s), or every lease would expire between two heartbeats", o.LeaseTimeout, o.HeartbeatInterval)
	}
	return o, nil
}

// checkInstance refuses instance settings that would run the wrong part of
// the pipeline, wherever they came from (code, environment or flags): a
// negative index or total, and an index above 0 without a total above it
// — such an instance would otherwise run the whole pipeline alone, pinned
// modules included, as if it were the only one.
func (o DistributedOptions) checkInstance() error {
	switch {
	case o.InstanceIndex < 0:
		return fmt.Errorf("instance index %d is negative; instances are numbered from 0 (the master) to the total minus 1 (--instance, MODPIPE_INSTANCE)", o.InstanceIndex)
	case o.TotalInstances < 0:
		return fmt.Errorf("total instances %d is negative; give the number of instances in the run (--total, MODPIPE_TOTAL)", o.TotalInstances)
	case o.InstanceIndex > 0 && o.InstanceIndex >= o.TotalInstances:
		return fmt.Errorf("instance index %d needs a total above it, but the total is %d; give every instance the run's number of instances (--total, MODPIPE_TOTAL)", o.InstanceIndex, o.TotalInstances)
	}
	return nil
}

// capabilities returns the instance's lower-case capabilities: configured
// ones, its OS unless disabled or already named, and the master's marker.
func (o DistributedOptions) capabilities() ([]string, string, error) {
	var caps []string
	os := ""
	for _, c := range o.Capabilities {
		c = strings.ToLower(strings.TrimSpace(c))
		if c == "" {
			continue
		}
		if strings.HasPrefix(c, "@") || strings.Contains(c, "|") {
			return nil, "", fmt.Errorf("capability %q: names starting with @ or containing | are reserved", c)
		}
		if name, ok := normalizeOS(c); ok {
			c, os = name, name
		}
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	if os == "" {
		os = localOS()
		if !o.DisableOSCapability {
			caps = append(caps, os)
		}
	}
	if o.InstanceIndex == 0 {
		caps = append(caps, distributed.MasterCapability)
	}
	return caps, os, nil
}
