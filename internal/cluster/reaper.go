package cluster

import "context"

// Reaper is the master's periodic check, once per heartbeat interval: it
// applies the dispatcher's lease policy (leases.go).
type Reaper struct{ *ticker }

// StartReaper starts the loop. Stop it with Stop.
func StartReaper(d *Dispatcher) *Reaper {
	return &Reaper{startTicker(d.cfg.Heartbeat, func(ctx context.Context) bool {
		d.reap(ctx)
		return true
	})}
}
