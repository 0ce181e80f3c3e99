package coordinatortest_test

import (
	"context"

	"github.com/modpipe/modpipe/distributed"
)

type mutant = struct {
	make   func() distributed.Coordinator
	caught string
}

// Broken PublishClaimers the suite must catch (see TestSuiteCatchesBrokenCoordinators).
func init() {
	mutants["publish-claim-blocks"] = mutant{func() distributed.Coordinator { return blockingPublishClaimer{distributed.NewInMemory()} }, "PublishAndClaimNeverBlocks"}
	mutants["publish-claim-drops-results-of-refused"] = mutant{func() distributed.Coordinator { return refusedDropsResults{distributed.NewInMemory()} }, "PublishAndClaimRefusedClaimer"}
	mutants["publish-claim-revives-lost"] = mutant{func() distributed.Coordinator { return revivingPublishClaimer{distributed.NewInMemory()} }, "PublishAndClaimRefusedClaimer"}
}

// blockingPublishClaimer waits for work, as ClaimBatch does.
type blockingPublishClaimer struct{ *distributed.InMemory }

func (b blockingPublishClaimer) PublishAndClaim(ctx context.Context, rs []distributed.Result, i int, caps []string, limit int) ([]error, []distributed.Claim, error) {
	errs, _, _ := b.InMemory.PublishAndClaim(ctx, rs, i, caps, 0)
	if limit == 0 {
		return errs, nil, nil
	}
	cls, err := b.InMemory.ClaimBatch(ctx, i, caps, limit)
	return errs, cls, err
}

// refusedDropsResults publishes nothing when the claim is refused.
type refusedDropsResults struct{ *distributed.InMemory }

func (r refusedDropsResults) PublishAndClaim(ctx context.Context, rs []distributed.Result, i int, caps []string, limit int) ([]error, []distributed.Claim, error) {
	if limit == 0 {
		return r.InMemory.PublishAndClaim(ctx, rs, i, caps, 0)
	}
	_, cls, err := r.InMemory.PublishAndClaim(ctx, nil, i, caps, limit)
	if err != nil {
		errs := make([]error, len(rs))
		for k := range errs {
			errs[k] = err
		}
		return errs, nil, err
	}
	errs, _, _ := r.InMemory.PublishAndClaim(ctx, rs, i, caps, 0)
	return errs, cls, nil
}

// revivingPublishClaimer counts the call as a heartbeat, so that a lost
// instance takes work back.
type revivingPublishClaimer struct{ *distributed.InMemory }

func (r revivingPublishClaimer) PublishAndClaim(ctx context.Context, rs []distributed.Result, i int, caps []string, limit int) ([]error, []distributed.Claim, error) {
	_, _ = r.InMemory.Heartbeat(ctx, i)
	return r.InMemory.PublishAndClaim(ctx, rs, i, caps, limit)
}
