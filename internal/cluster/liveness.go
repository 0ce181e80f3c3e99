package cluster

import (
	"context"
	"sync"
)

// Liveness is one instance's own view of whether it is still part of the
// run, shared by its heartbeat loop (which reports every beat) and its
// executor (which must not take work while it is cut off).
//
// An instance is cut off while its latest heartbeat failed: the master may
// be about to declare it lost and re-queue its work. It is lost once its
// heartbeats failed for longer than the lease timeout, or the coordinator
// said it is no longer registered; that is final.
type Liveness struct {
	onLost func(error)

	mu      sync.Mutex
	cut     bool
	lost    error
	changed chan struct{} // closed and replaced on every change
}

// NewLiveness returns a live instance's liveness; onLost is called once,
// with the reason, when the instance is lost.
func NewLiveness(onLost func(error)) *Liveness {
	return &Liveness{onLost: onLost, changed: make(chan struct{})}
}

// Beat records the outcome of a heartbeat.
func (l *Liveness) Beat(ok bool) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil || l.cut == !ok {
		return
	}
	l.cut = !ok
	close(l.changed)
	l.changed = make(chan struct{})
}

// Lose records that the instance is lost for good. Only the first call
// counts.
func (l *Liveness) Lose(err error) {
	if l == nil {
		return
	}
	l.mu.Lock()
	first := l.lost == nil
	if first {
		l.lost = err
		close(l.changed)
		l.changed = make(chan struct{})
	}
	l.mu.Unlock()
	if first && l.onLost != nil {
		l.onLost(err)
	}
}

// Lost returns why the instance is lost, or nil.
func (l *Liveness) Lost() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// AwaitConnected returns nil once the instance is connected (its latest
// heartbeat succeeded), or why it never will be: it is lost, or ctx ended.
// While cut off it waits; the heartbeat loop ends the wait within the lease
// timeout, one way or the other.
func (l *Liveness) AwaitConnected(ctx context.Context) error {
	if l == nil {
		return ctx.Err()
	}
	for {
		l.mu.Lock()
		lost, cut, changed := l.lost, l.cut, l.changed
		l.mu.Unlock()
		switch {
		case lost != nil:
			return lost
		case !cut:
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}
