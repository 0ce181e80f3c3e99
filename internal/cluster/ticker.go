package cluster

import (
	"context"
	"time"
)

// ticker is a background loop that calls its function once per interval
// until the function returns false or the loop is stopped. The heartbeat
// loop and the reaper are tickers.
type ticker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startTicker starts calling tick every interval; ctx, given to tick, ends
// when the loop is stopped.
func startTicker(every time.Duration, tick func(ctx context.Context) bool) *ticker {
	ctx, cancel := context.WithCancel(context.Background())
	t := &ticker{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			if !tick(ctx) || ctx.Err() != nil {
				return
			}
		}
	}()
	return t
}

// Stop ends the loop and waits for it.
func (t *ticker) Stop() {
	t.cancel()
	<-t.done
}
