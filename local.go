package modpipe

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// applyDistributedSettings merges distributed settings: code, then the
// environment, then flags; then it checks the instance settings.
func (p *Pipeline) applyDistributedSettings(o *cliOptions, getenv func(string) string) error {
	if err := p.applyDistributedEnv(getenv); err != nil {
		return err
	}
	p.applyDistributedFlags(o)
	if o.localInstances > 1 && (o.given["total"] || o.given["instance"]) {
		return fmt.Errorf("--local-instances runs every instance in this process; do not combine it with --instance or --total")
	}
	if o.localInstances > 1 {
		return nil // the instances are made by runLocalInstances
	}
	return p.dist.checkInstance()
}

// durationSetting is a distributed duration with its environment variable
// and flag (value is the flag's).
type durationSetting struct {
	env, flag string
	value     time.Duration
	dst       *time.Duration
}

// distributedDurations lists the duration settings.
func (p *Pipeline) distributedDurations(o *cliOptions) []durationSetting {
	return []durationSetting{
		{"MODPIPE_HEARTBEAT", "heartbeat", o.heartbeat, &p.dist.HeartbeatInterval},
		{"MODPIPE_LEASE_TIMEOUT", "lease-timeout", o.leaseTimeout, &p.dist.LeaseTimeout},
		{"MODPIPE_MASTER_TIMEOUT", "master-timeout", o.masterTimeout, &p.dist.MasterTimeout},
		{"MODPIPE_CAPABILITY_TIMEOUT", "capability-timeout", o.capabilityTimeout, &p.dist.CapabilityTimeout},
	}
}

// applyDistributedEnv applies the distributed settings of the environment.
func (p *Pipeline) applyDistributedEnv(getenv func(string) string) error {
	envInt := func(name string, dst *int) error {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%s=%q is not a whole number", name, v)
		}
		*dst = n
		return nil
	}
	if err := envInt("MODPIPE_INSTANCE", &p.dist.InstanceIndex); err != nil {
		return err
	}
	if err := envInt("MODPIPE_TOTAL", &p.dist.TotalInstances); err != nil {
		return err
	}
	if v := getenv("MODPIPE_CAPABILITIES"); v != "" {
		var l listFlag
		_ = l.Set(v)
		p.dist.Capabilities = l
	}
	if v := getenv("MODPIPE_RUN_ID"); v != "" {
		p.dist.RunID = v
	} else if p.dist.RunID == "" && getenv("GITHUB_RUN_ID") != "" {
		p.dist.RunID = getenv("GITHUB_RUN_ID") + "-" + cmp.Or(getenv("GITHUB_RUN_ATTEMPT"), "1")
	}
	if v := getenv("MODPIPE_SHARED_SECRET"); v != "" {
		p.dist.SharedSecret = v
	}
	p.coordinatorURL = cmp.Or(getenv("MODPIPE_REDIS_URL"), getenv("REDIS_URL"), p.coordinatorURL)
	for _, d := range p.distributedDurations(&cliOptions{}) {
		if v := strings.TrimSpace(getenv(d.env)); v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil || parsed <= 0 {
				return fmt.Errorf("%s=%q is not a positive duration such as 30s or 2m", d.env, v)
			}
			*d.dst = parsed
		}
	}
	return nil
}

// applyDistributedFlags applies the distributed flags given.
func (p *Pipeline) applyDistributedFlags(o *cliOptions) {
	for _, d := range p.distributedDurations(o) {
		if o.given[d.flag] {
			*d.dst = d.value
		}
	}
	if o.given["instance"] {
		p.dist.InstanceIndex = o.instance
	}
	if o.given["total"] {
		p.dist.TotalInstances = o.total
	}
	if o.given["capability"] {
		p.dist.Capabilities = o.capabilities
	}
	if o.given["run-id"] {
		p.dist.RunID = o.runID
	}
	if o.given["redis-url"] {
		p.coordinatorURL = o.coordinatorURL
	}
}

// runLocalInstances runs n instances of the pipeline in this process over
// the in-memory coordinator and returns the master's summary. Workers print
// nothing: their modules' logs reach the master.
func (p *Pipeline) runLocalInstances(ctx context.Context, n int, stderr io.Writer) (*Summary, error) {
	coord := distributed.NewInMemory()
	base := p.dist
	// The instances share one process, so they share one artifact store
	// (artifact_run.go); removed once every instance ended.
	defer p.shareLocalArtifactStore(stderr)()
	var wg sync.WaitGroup
	var stderrMu sync.Mutex
	for i := 1; i < n; i++ {
		w := *p
		w.Output = io.Discard
		w.live = nil
		w.dist = base
		w.dist.InstanceIndex, w.dist.TotalInstances = i, n
		if caps, ok := base.LocalCapabilities[i]; ok {
			w.dist.Capabilities = caps
		}
		w.coord = coord
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := w.Run(ctx)
			// One instance writes to stderr at a time.
			stderrMu.Lock()
			defer stderrMu.Unlock()
			if err != nil {
				fmt.Fprintf(stderr, "modpipe: local instance %d: %v\n", i, err)
			}
			if s != nil {
				for _, e := range s.TeardownErrors { // teardown.go
					fmt.Fprintf(stderr, "modpipe: local instance %d: %s\n", i, e)
				}
			}
		}()
	}
	p.dist.InstanceIndex, p.dist.TotalInstances = 0, n
	if caps, ok := base.LocalCapabilities[0]; ok {
		p.dist.Capabilities = caps
	}
	p.coord = coord
	s, err := p.Run(ctx)
	if err != nil {
		// The master could not run: release the workers at once instead of
		// letting them wait for MasterTimeout.
		_ = coord.Complete(context.WithoutCancel(ctx), true)
	}
	wg.Wait()
	return s, err
}
