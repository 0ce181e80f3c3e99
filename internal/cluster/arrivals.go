package cluster

import (
	"errors"
	"fmt"

	"github.com/modpipe/modpipe/distributed"
)

// A result the coordinator delivered is settled (verified, turned into
// the node's outcome, handed to the scheduler) by one long-lived goroutine.
// With a coordinator that is a distributed.ResultWatcher, the results of
// every queued node come through one subscription (watched) and are
// posted to the finisher's inbox: no goroutine and no context per node.
// Otherwise one goroutine per queued node waits in AwaitResult and hands
// its result over (arrive); settling on each of them grew every one's
// stack (verification, the outcome, the scheduler's bookkeeping), which
// cost the master more CPU than anything else per module.

// arrival is node i's result, as the coordinator delivered it, or the
// error that ended the watch for it.
type arrival struct {
	i   int
	res distributed.Result
	err error
}

// awaitResults starts awaiting the results of the queued nodes is, except
// those only this instance runs (its executor delivers them): through the
// watcher when the coordinator has one, else one await goroutine each.
func (d *Dispatcher) awaitResults(is []int) {
	if d.watcher == nil {
		for _, i := range is {
			d.wg.Add(1)
			go d.await(i)
		}
		return
	}
	names := make([]string, 0, len(is))
	watched := make([]int, 0, len(is))
	d.mu.Lock()
	for _, i := range is {
		f := d.flights[i]
		if f == nil || f.awaited || d.runsHere(i) {
			continue
		}
		f.awaited = true
		names = append(names, d.nodes[i].Name)
		watched = append(watched, i)
	}
	d.mu.Unlock()
	if len(names) == 0 {
		return
	}
	if err := d.watcher.WatchResults(d.life, names, d.watched); err != nil {
		if d.life.Err() != nil {
			return
		}
		// Nothing will be delivered for them: await each, with the
		// await's handling of errors (a fatal one fails the node).
		d.cfg.Log.Warn("watching results failed; awaiting them one by one", "modules", len(names), "err", err)
		for _, i := range watched {
			d.wg.Add(1)
			go d.await(i)
		}
	}
}

// watched is the watcher's deliver: it posts the outcome of a node to the
// finisher, without blocking (the finisher passes over nodes no longer in
// flight). A run that ended needs no outcome from here (as for an await
// that ends with ErrRunEnded).
func (d *Dispatcher) watched(module string, res distributed.Result, err error) {
	if errors.Is(err, distributed.ErrRunEnded) {
		return
	}
	i, ok := d.index[module]
	if !ok {
		return
	}
	d.inMu.Lock()
	d.inbox = append(d.inbox, arrival{i: i, res: res, err: err})
	first := len(d.inbox) == 1
	d.inMu.Unlock()
	// Only the first arrival of a batch kicks: the kick it sent is pending,
	// or the finisher took it and has yet to take the inbox, with the rest.
	if first {
		select {
		case d.inKick <- struct{}{}:
		default:
		}
	}
}

// arrive hands node i's result to the finisher; dropped once the
// dispatcher is closing (no outcome is awaited any more). Not inlined:
// await's frame stays small (see awaitFailed).
//
//go:noinline
func (d *Dispatcher) arrive(i int, res distributed.Result) {
	select {
	case d.arrived <- arrival{i: i, res: res}:
	case <-d.life.Done():
	}
}

// finisher settles arrived results until the dispatcher closes.
func (d *Dispatcher) finisher() {
	defer close(d.finished)
	var batch []arrival
	for {
		select {
		case a := <-d.arrived:
			d.settle(a)
		case <-d.inKick:
			d.inMu.Lock()
			batch, d.inbox = d.inbox, batch[:0]
			d.inMu.Unlock()
			// Settled already (delivered by this instance's executor, or
			// ended): passed over, looked up under one lock for the batch.
			d.mu.Lock()
			for k, a := range batch {
				if _, inFlight := d.flights[a.i]; !inFlight {
					batch[k].i = -1
				}
			}
			d.mu.Unlock()
			for k, a := range batch {
				if a.i >= 0 {
					d.settle(a)
				}
				batch[k] = arrival{} // let the result's memory go
			}
		case <-d.life.Done():
			return
		}
	}
}

// settle verifies node i's result and delivers it as its outcome, or
// fails the node for the error that ended the watch for it.
func (d *Dispatcher) settle(a arrival) {
	i, res := a.i, a.res
	if a.err != nil {
		if Fatal(a.err) {
			d.fail(i, a.err, -1) // no result can come any more
			return
		}
		d.fail(i, fmt.Errorf("the master could not obtain the result of %s from the coordinator: %w", d.nodes[i].Name, a.err), -1)
		return
	}
	if err := d.cfg.Signer.VerifyResult(res, d.nodes[i].Name); err != nil {
		// A forged or misdirected result is never the module's result.
		d.cfg.Log.Error("refused a result", "module", d.nodes[i].Name, "err", err)
		d.fail(i, err, -1)
		return
	}
	d.finish(i, res)
}
