package modpipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// joinedAfterTheEnd handles a worker that could not join because the run
// had already completed: with the cache, a run whose modules all hit ends
// on the master before its workers start. Such a worker has nothing to
// do; it reports the run's verdict instead of failing its CI job. It
// returns nil when joinErr is anything else.
func (p *Pipeline) joinedAfterTheEnd(ctx context.Context, opts DistributedOptions, joinErr error, start time.Time) *Summary {
	if opts.InstanceIndex == 0 || !errors.Is(joinErr, distributed.ErrRunEnded) {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, opts.LeaseTimeout)
	defer cancel()
	st, err := p.coord.AwaitState(sctx, distributed.RunState{})
	if err != nil || !st.Completed || st.Cancelled {
		return nil
	}
	fmt.Fprintf(os.Stderr, "modpipe: run %s completed before worker %d joined (a run whose modules hit the cache needs no workers); nothing to do\n", opts.RunID, opts.InstanceIndex)
	return &Summary{Start: start, Duration: time.Since(start), Distributed: true, Role: RoleWorker, RunID: opts.RunID, workerFailed: st.Failed}
}
