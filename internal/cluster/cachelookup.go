package cluster

import (
	"context"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
)

// dispatchFunc is the scheduler's Dispatch. With a cache lookup, the
// master asks the cache before dispatching a node: a hit is pinned to the
// master, whose executor restores the result without running the body,
// so a hit never reaches a worker (and needs no instance of the OS the
// module would otherwise be routed to). The lookup runs in its own
// goroutine: hashing inputs must not hold up the scheduler. So such nodes
// are queued as their lookups end, not with their round.
func (d *Dispatcher) dispatchFunc() func(ctx context.Context, i int, c *engine.Completion) {
	if d.lookup == nil || d.cfg.Local == nil {
		return d.Dispatch
	}
	return func(ctx context.Context, i int, c *engine.Completion) {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if d.lookup(d.life, i) {
				d.mu.Lock()
				d.nodes[i].Requires = []string{distributed.MasterCapability}
				d.mu.Unlock()
			}
			d.Dispatch(ctx, i, c)
			// The scheduler's Dispatched hook (Flush) has long run for
			// the round this node came in: queue it now, or it waits
			// in the pending batch forever.
			d.Flush()
		}()
	}
}
