package cluster

import (
	"context"
	"errors"

	"github.com/modpipe/modpipe/distributed"
)

// RunWorker runs a worker's part of the run: it executes what it claims
// until the run completes, it is cut off, or its master is lost. failed
// reports the master's verdict, or true when the worker never learnt it
// (err says why).
func (m *Member) RunWorker(ctx context.Context) (failed bool, err error) {
	cfg := m.cfg
	in := begin(ctx, cfg)
	defer in.end()
	ended := make(chan distributed.RunState, 1)
	watcher := StartWatcher(cfg, func(s distributed.RunState) {
		if s.Cancelled {
			in.cancel(cancelled(s))
		}
		if s.Completed {
			ended <- s
		}
	})
	defer watcher.Stop()
	cfg.Live = NewLiveness(func(err error) { in.lose(err) })
	hb := StartHeartbeat(cfg, cfg.Live.Lose)
	defer hb.Stop()
	exec := StartExecutor(in.ctx, cfg, m.host, m.values, nil)

	var state distributed.RunState
	select {
	case state = <-ended:
	case err = <-in.lost:
	}
	in.cancel(errors.New("run ended"))
	exec.Wait()
	return state.Failed || err != nil, err
}
