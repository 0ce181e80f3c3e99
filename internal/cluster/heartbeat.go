package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// ErrMasterLost is wrapped by a worker's error when its master never
// registered, or stopped beating, within MasterTimeout.
var ErrMasterLost = errors.New("master lost")

// Heartbeater beats for one instance every Config.Heartbeat and reports
// each beat to Config.Live. It calls lost once when the instance can no
// longer trust the run: its own heartbeats failing for longer than the
// lease timeout (the master has re-queued its work by then), the
// coordinator refusing it (a heartbeat error wrapping
// distributed.ErrFingerprintMismatch or distributed.ErrNotRegistered:
// refused by the master, or replaced), or — for a worker — a master that
// never appeared or stopped beating for MasterTimeout. A fatal coordinator
// error (distributed.ErrCorrupt, distributed.ErrRefused) is reported at
// once: the run is cancelled with it for every instance.
type Heartbeater struct{ *ticker }

// Fatal reports a coordinator error that retrying cannot fix (corrupt run
// data, a lasting refusal by the server): loops stop retrying it, and the
// heartbeat loop ends the run with it.
func Fatal(err error) bool {
	return errors.Is(err, distributed.ErrCorrupt) || errors.Is(err, distributed.ErrRefused)
}

// StartHeartbeat starts the loop. Stop it with Stop.
func StartHeartbeat(cfg Config, lost func(error)) *Heartbeater {
	start := time.Now()
	lastOK := start
	var once sync.Once
	lose := func(err error) { once.Do(func() { lost(err) }) }
	return &Heartbeater{startTicker(cfg.Heartbeat, func(ctx context.Context) bool {
		callCtx, cancel := context.WithTimeout(ctx, cfg.Heartbeat)
		pulse, err := cfg.Coord.Heartbeat(callCtx, cfg.Instance)
		cancel()
		switch {
		case ctx.Err() != nil:
			return false
		case errors.Is(err, distributed.ErrFingerprintMismatch) || errors.Is(err, distributed.ErrNotRegistered):
			// Refused by the master, or replaced by another instance with
			// this index: no outage to ride out, this instance must stop.
			lose(err)
			return false
		case Fatal(err):
			// Retrying cannot help: tell the other instances why (best
			// effort) and end this instance's run now.
			cfg.Log.Error("the coordinator cannot continue the run", "instance", cfg.Instance, "err", err)
			cctx, cancel := context.WithTimeout(ctx, cfg.Heartbeat)
			_ = cfg.Coord.Cancel(cctx, cfg.Instance, fmt.Sprintf("instance %d stopped: %v", cfg.Instance, err))
			cancel()
			lose(fmt.Errorf("instance %d cannot continue the run: %w", cfg.Instance, err))
			return false
		case err != nil:
			cfg.Live.Beat(false)
			if final := cutOff(cfg.Instance, err); final != nil {
				lose(final)
				return true
			}
			silent := time.Since(lastOK)
			cfg.Log.Warn("heartbeat failed", "instance", cfg.Instance, "err", err, "silent_for", silent.Round(time.Millisecond))
			if silent > cfg.LeaseTimeout {
				lose(fmt.Errorf("instance %d could not reach the coordinator for %s (longer than the lease timeout %s); its work has been handed to others: %w",
					cfg.Instance, silent.Round(time.Second), cfg.LeaseTimeout, err))
			}
			return true
		}
		lastOK = time.Now()
		cfg.Live.Beat(true)
		if cfg.Instance == 0 || pulse.State.Completed {
			return true
		}
		switch {
		case !pulse.MasterRegistered && time.Since(start) > cfg.MasterTimeout:
			lose(fmt.Errorf("%w: instance 0 did not register within %s; check that it runs with the same run id and coordinator, or raise MasterTimeout", ErrMasterLost, cfg.MasterTimeout))
		case pulse.MasterRegistered && pulse.MasterAge > cfg.MasterTimeout:
			lose(fmt.Errorf("%w: no heartbeat from instance 0 for %s (MasterTimeout %s)", ErrMasterLost, pulse.MasterAge.Round(time.Second), cfg.MasterTimeout))
		}
		return true
	})}
}

// cutOff returns the final error for an instance the coordinator refuses
// (no longer registered, or refused for a different pipeline), or nil for
// any other error, which may be a passing outage.
func cutOff(instance int, err error) error {
	switch {
	case errors.Is(err, distributed.ErrNotRegistered):
		return fmt.Errorf("instance %d was cut off from the run: the coordinator no longer counts it as a live instance (its heartbeats stopped for longer than the lease timeout, or another process took its index), so its work has been handed to others; re-run this job to rejoin: %w", instance, err)
	case errors.Is(err, distributed.ErrFingerprintMismatch):
		return fmt.Errorf("instance %d was refused by the run; every instance must run the same program and commit: %w", instance, err)
	}
	return nil
}
