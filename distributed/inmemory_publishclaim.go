package distributed

import (
	"context"
	"time"
)

// PublishAndClaim implements PublishClaimer: it publishes rs with
// Publish's rules and then, when limit > 0, claims up to limit (at most
// MaxBatch) assignments as ClaimBatch does, without waiting, in one step
// under the coordinator's lock.
func (m *InMemory) PublishAndClaim(ctx context.Context, rs []Result, instance int, caps []string, limit int) ([]error, []Claim, error) {
	errs := make([]error, len(rs))
	if err := ctx.Err(); err != nil {
		// As a transport error: nothing published, nothing taken.
		for i := range errs {
			errs[i] = err
		}
		return errs, nil, err
	}
	for i, r := range rs {
		errs[i] = ValidateResult(r)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, r := range rs {
		if errs[i] == nil {
			errs[i] = m.publishLocked(r)
		}
	}
	if limit <= 0 {
		return errs, nil, nil
	}
	if m.state.Cancelled || m.state.Completed {
		return errs, nil, m.endedErr()
	}
	if err := m.checkLocked(instance, time.Now()); err != nil {
		return errs, nil, err
	}
	return errs, m.claimLocked(instance, caps, min(limit, MaxBatch)), nil
}
