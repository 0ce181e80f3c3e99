package modpipe

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/modpipe/modpipe/internal/secret"
)

// OnTeardown registers fn to run on this instance when its part of the run
// ends, however it ends: success, failed modules, Ctrl-C or SIGTERM, a
// worker that lost its master (ErrMasterLost), even a pipeline that could
// not start. Every instance of a distributed run runs its own hooks (stop
// the services it started, remove its scratch directories), after its
// modules, including AlwaysRun cleanups, have ended. Hooks run one at a
// time, the last registered first (like defer and testing.T.Cleanup).
//
// Each hook gets a context that is not cancelled with the run and ends
// after TeardownTimeout (default 1m); a hook that does not return by then
// is abandoned. A hook's error, or panic, is listed in the Summary's
// TeardownErrors, printed by Main and written to the report, but does not
// change the run's verdict or exit code: a run that succeeded still did.
func (p *Pipeline) OnTeardown(fn func(ctx context.Context) error) *Pipeline {
	p.teardowns = append(p.teardowns, fn)
	return p
}

// tearingDown marks the context of a Run whose caller runs the teardown
// hooks, so that Runs it makes itself (artifacts, the fork-safe fallback)
// do not run them again.
type tearingDown struct{}

// runWithTeardown runs the pipeline, then its teardown hooks, whatever the
// run's outcome.
func (p *Pipeline) runWithTeardown(ctx context.Context) (*Summary, error) {
	s, err := p.Run(context.WithValue(ctx, tearingDown{}, true))
	errs := p.teardown(ctx)
	if len(errs) == 0 {
		return s, err
	}
	if s == nil {
		// Nothing ran; err says why, and the teardown's errors join it.
		return nil, errors.Join(append([]error{err}, errs...)...)
	}
	for _, e := range errs {
		s.TeardownErrors = append(s.TeardownErrors, p.mask(e.Error()))
	}
	return s, err
}

// teardown runs the hooks, the last registered first.
func (p *Pipeline) teardown(ctx context.Context) []error {
	timeout := p.TeardownTimeout
	if timeout <= 0 {
		timeout = DefaultTeardownTimeout
	}
	var errs []error
	for k := len(p.teardowns) - 1; k >= 0; k-- {
		if err := runHook(context.WithoutCancel(ctx), p.teardowns[k], timeout); err != nil {
			errs = append(errs, fmt.Errorf("teardown hook #%d (OnTeardown): %w", k+1, err))
		}
	}
	return errs
}

// runHook runs one hook within timeout, recovering a panic.
func runHook(ctx context.Context, fn func(context.Context) error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		done <- fn(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("did not return within %s (TeardownTimeout); abandoned: make the hook return when its context is done", timeout)
	}
}

// mask hides the pipeline's secrets in s.
func (p *Pipeline) mask(s string) string {
	set := &secret.Set{}
	set.Add(p.secrets...)
	set.Add(p.dist.SharedSecret)
	return set.String(s)
}
