package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// Heartbeater beats for one instance every Config.Heartbeat. It reports
// each pulse, and calls lost once when the instance can no longer trust the
// run: its own heartbeats failing for longer than the lease timeout (the
// master has re-queued its work by then), the coordinator refusing it (a
// heartbeat error wrapping distributed.ErrFingerprintMismatch or
// distributed.ErrNotRegistered: refused by the master, or replaced), or —
// for a worker — a master that never appeared or stopped beating for
// MasterTimeout. A fatal coordinator error (distributed.ErrCorrupt,
// distributed.ErrRefused) is reported at once: the run is cancelled with it
// for every instance.
type Heartbeater struct {
	cfg     Config
	onPulse func(distributed.Pulse)
	lost    func(error)

	cancel context.CancelFunc
	done   chan struct{}
}

// StartHeartbeat starts the loop. Stop it with Stop.
func StartHeartbeat(cfg Config, onPulse func(distributed.Pulse), lost func(error)) *Heartbeater {
	ctx, cancel := context.WithCancel(context.Background())
	h := &Heartbeater{cfg: cfg, onPulse: onPulse, lost: lost, cancel: cancel, done: make(chan struct{})}
	go h.loop(ctx)
	return h
}

// Stop ends the loop and waits for it.
func (h *Heartbeater) Stop() {
	h.cancel()
	<-h.done
}

// Fatal reports a coordinator error that retrying cannot fix (corrupt run
// data, a lasting refusal by the server): loops stop retrying it, and the
// heartbeat loop ends the run with it.
func Fatal(err error) bool {
	return errors.Is(err, distributed.ErrCorrupt) || errors.Is(err, distributed.ErrRefused)
}

func (h *Heartbeater) loop(ctx context.Context) {
	defer close(h.done)
	start := time.Now()
	lastOK := start
	var once sync.Once
	lose := func(err error) { once.Do(func() { h.lost(err) }) }
	t := time.NewTicker(h.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		callCtx, cancel := context.WithTimeout(ctx, h.cfg.Heartbeat)
		pulse, err := h.cfg.Coord.Heartbeat(callCtx, h.cfg.Instance)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, distributed.ErrFingerprintMismatch) || errors.Is(err, distributed.ErrNotRegistered) {
			// Refused by the master, or replaced by another instance with
			// this index: no outage to ride out, this instance must stop.
			lose(err)
			return
		}
		if Fatal(err) {
			// Retrying cannot help: tell the other instances why (best
			// effort) and end this instance's run now.
			h.cfg.Log.Error("the coordinator cannot continue the run", "instance", h.cfg.Instance, "err", err)
			cctx, cancel := context.WithTimeout(ctx, h.cfg.Heartbeat)
			_ = h.cfg.Coord.Cancel(cctx, h.cfg.Instance, fmt.Sprintf("instance %d stopped: %v", h.cfg.Instance, err))
			cancel()
			lose(fmt.Errorf("instance %d cannot continue the run: %w", h.cfg.Instance, err))
			return
		}
		if err != nil {
			h.cfg.Live.Beat(false)
			if final := cutOff(h.cfg.Instance, err); final != nil {
				lose(final)
				continue
			}
			silent := time.Since(lastOK)
			h.cfg.Log.Warn("heartbeat failed", "instance", h.cfg.Instance, "err", err, "silent_for", silent.Round(time.Millisecond))
			if silent > h.cfg.LeaseTimeout {
				lose(fmt.Errorf("instance %d could not reach the coordinator for %s (longer than the lease timeout %s); its work has been handed to others: %w",
					h.cfg.Instance, silent.Round(time.Second), h.cfg.LeaseTimeout, err))
			}
			continue
		}
		lastOK = time.Now()
		h.cfg.Live.Beat(true)
		if h.onPulse != nil {
			h.onPulse(pulse)
		}
		if h.cfg.Instance == 0 || pulse.State.Completed {
			continue
		}
		switch {
		case !pulse.MasterRegistered && time.Since(start) > h.cfg.MasterTimeout:
			lose(fmt.Errorf("%w: instance 0 did not register within %s; check that it runs with the same run id and coordinator, or raise MasterTimeout", ErrMasterLost, h.cfg.MasterTimeout))
		case pulse.MasterRegistered && pulse.MasterAge > h.cfg.MasterTimeout:
			lose(fmt.Errorf("%w: no heartbeat from instance 0 for %s (MasterTimeout %s)", ErrMasterLost, pulse.MasterAge.Round(time.Second), h.cfg.MasterTimeout))
		}
	}
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
