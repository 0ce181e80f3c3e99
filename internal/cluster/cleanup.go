package cluster

import (
	"fmt"

	"github.com/modpipe/modpipe/distributed"
)

// cleanupHere is the master's engine.Scheduler.CleanupHere: after a
// cancellation the workers stop, so the master runs AlwaysRun modules
// itself, which it can only do with their capabilities.
func (d *Dispatcher) cleanupHere(i int) (bool, string) {
	if distributed.Satisfies(d.cfg.Caps, d.nodes[i].Requires) {
		return true, ""
	}
	return false, fmt.Sprintf("after a cancellation the master runs cleanups itself, and it lacks what %s needs (%s)", d.nodes[i].Name, describeReqs(d.nodes[i].Requires))
}
