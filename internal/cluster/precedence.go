package cluster

import (
	"cmp"
	"slices"

	"github.com/modpipe/modpipe/distributed"
)

// Precedence for scarce work. Claims take the highest-priority assignment
// an instance may run, so the priority the master gives an assignment is
// where an instance's choice is made. A module that only some instances can
// run (it needs a capability others lack, or the master) is queued above
// every module that any instance can run: on an instance that has the
// capability it comes first, and the general work goes to the instances
// that can take nothing else. Instances that cannot run it never see it, so
// their order is unchanged. Among scarce modules, and among general ones,
// the critical path (NodeInfo.Priority) decides.
//
// While some expected instances have not registered, a module with any
// requirement counts as scarce (an unknown instance may lack it); once
// every instance has, only requirements some instance lacks make a module
// scarce, so an OnOS("linux") module on an all-Linux fleet keeps its plain
// critical-path place.

// queuePriority is the priority node i's assignments are queued with.
func (d *Dispatcher) queuePriority(i int) int64 {
	n := &d.nodes[i]
	if d.cfg.NoPrecedence || len(n.Requires) == 0 {
		return n.Priority
	}
	d.mu.Lock()
	scarce := d.scarceLocked(i)
	d.mu.Unlock()
	if scarce {
		return n.Priority + d.topPriority
	}
	return n.Priority
}

// scarceLocked reports whether some instance of the run cannot run node i,
// as far as the master knows.
func (d *Dispatcher) scarceLocked(i int) bool {
	if !d.allRegisteredLocked() {
		return true
	}
	for _, in := range d.instances {
		if !distributed.Satisfies(in.Capabilities, d.nodes[i].Requires) {
			return true
		}
	}
	return false
}

// topPriorityOf is the offset that lifts scarce work above all other work:
// the highest node priority (priorities are at least 1).
func topPriorityOf(nodes []NodeInfo) int64 {
	var top int64
	for _, n := range nodes {
		top = max(top, n.Priority)
	}
	return top
}

// byQueuePriority sorts nodes by queue priority, highest first, keeping
// the order of equals.
func (d *Dispatcher) byQueuePriority(nodes []int) {
	prio := make(map[int]int64, len(nodes))
	for _, i := range nodes {
		prio[i] = d.queuePriority(i)
	}
	slices.SortStableFunc(nodes, func(a, b int) int { return cmp.Compare(prio[b], prio[a]) })
}
