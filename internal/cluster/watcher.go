package cluster

import (
	"context"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// Watcher follows the run's state and reports every change, until the run
// completes or it is stopped.
type Watcher struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// StartWatcher starts the loop; onChange is called from its goroutine.
func StartWatcher(cfg Config, onChange func(distributed.RunState)) *Watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var known distributed.RunState
		for {
			s, err := cfg.Coord.AwaitState(ctx, known)
			if ctx.Err() != nil {
				return
			}
			if Fatal(err) {
				return // the heartbeat loop ends the run with it
			}
			if err != nil {
				// The heartbeat loop judges outages; here, wait a beat and
				// ask again rather than spin.
				cfg.Log.Warn("watching the run state failed", "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(cfg.Heartbeat):
				}
				continue
			}
			known = s
			onChange(s)
			if s.Completed {
				return
			}
		}
	}()
	return w
}

// Stop ends the loop and waits for it.
func (w *Watcher) Stop() {
	w.cancel()
	<-w.done
}
