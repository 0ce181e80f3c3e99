package cluster

import "github.com/modpipe/modpipe/distributed"

// A result the coordinator delivered is settled (verified, turned into
// the node's outcome, handed to the scheduler) by one long-lived goroutine,
// not by the goroutine that awaited it. There is one awaiting goroutine per
// queued module, thousands at once; settling on each of them grew every
// one's stack (verification, the outcome, the scheduler's bookkeeping),
// which cost the master more CPU than anything else per module. The
// awaiting goroutines now only wait and hand over.

// arrival is node i's result, as the coordinator delivered it.
type arrival struct {
	i   int
	res distributed.Result
}

// arrive hands node i's result to the finisher; dropped once the
// dispatcher is closing (no outcome is awaited any more). Not inlined:
// await's frame stays small (see awaitFailed).
//
//go:noinline
func (d *Dispatcher) arrive(i int, res distributed.Result) {
	select {
	case d.arrived <- arrival{i, res}:
	case <-d.life.Done():
	}
}

// finisher settles arrived results until the dispatcher closes.
func (d *Dispatcher) finisher() {
	defer close(d.finished)
	for {
		select {
		case a := <-d.arrived:
			d.settle(a.i, a.res)
		case <-d.life.Done():
			return
		}
	}
}

// settle verifies node i's result and delivers it as its outcome.
func (d *Dispatcher) settle(i int, res distributed.Result) {
	if err := d.cfg.Signer.VerifyResult(res, d.nodes[i].Name); err != nil {
		// A forged or misdirected result is never the module's result.
		d.cfg.Log.Error("refused a result", "module", d.nodes[i].Name, "err", err)
		d.fail(i, err, -1)
		return
	}
	d.finish(i, res)
}
