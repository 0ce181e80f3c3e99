package redis

import (
	"context"
	"fmt"

	"github.com/modpipe/modpipe/distributed"
)

// PublishAndClaim implements distributed.PublishClaimer: one script
// (scriptPublishClaim) publishes rs as PublishBatch does and then claims
// up to limit assignments as ClaimBatch does, without waiting when there
// are none. Only when the caller's list of queues is stale does it take a
// second trip: the claim alone (scriptClaim) with the run's list.
func (c *Coordinator) PublishAndClaim(ctx context.Context, rs []distributed.Result, instance int, caps []string, limit int) ([]error, []distributed.Claim, error) {
	errs := make([]error, len(rs))
	if err := c.connect(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs, nil, err
	}
	limit = min(max(0, limit), distributed.MaxBatch)
	capSet := capabilitySet(caps)
	eligible, known := c.eligible(capSet)
	reqID, session := c.ids.next(), c.session(instance)
	claimArgs := []any{instance, reqID, 0, "0", limit, session, len(known)}
	args, sent := c.publishArgs(rs, errs, append(make([]any, 0, len(claimArgs)+2+5*len(rs)), claimArgs...))
	if len(sent) == 0 && limit == 0 {
		return errs, nil, nil
	}
	v, err := c.runRetryKeys(ctx, "publishing results and claiming work", scriptPublishClaim, c.keys.with(eligible, c.keys.ctl(reqID)), args...)
	var arr []any
	if err == nil {
		arr, err = reply("publish and claim", v)
	}
	var pub []any
	if err == nil {
		var ok bool
		if pub, ok = arr[0].([]any); !ok || (limit > 0) != (len(arr) == 2) {
			err = malformed("publish and claim reply", fmt.Errorf("%d parts, the first a %T", len(arr), arr[0]))
		}
	}
	if err != nil {
		for _, i := range sent {
			errs[i] = err
		}
		return errs, nil, err
	}
	if len(sent) > 0 {
		c.publishErrs(rs, errs, sent, pub)
	}
	if limit == 0 {
		return errs, nil, nil
	}
	claimed, err := reply("claim", arr[1])
	for err == nil && len(claimed) > 0 && claimed[0] == "rks" {
		// Our queue list was stale: claim again with the run's (the
		// publications stand; the claim took nothing).
		var rks []string
		if rks, err = c.staleRKs(claimed, len(known)); err != nil {
			break
		}
		c.learnRKs(rks)
		eligible, known = c.eligible(capSet)
		v, err = c.runRetryKeys(ctx, "claiming work", scriptClaim, c.keys.with(eligible, c.keys.ctl(reqID)),
			instance, reqID, 0, "0", limit, session, len(known))
		if err == nil {
			claimed, err = reply("claim", v)
		}
	}
	if err != nil {
		return errs, nil, err
	}
	switch claimed[0] {
	case "ok":
		claims, err := c.parseClaims(claimed, instance, session, reqID)
		return errs, claims, err
	case "empty":
		return errs, nil, nil
	case "ended":
		return errs, nil, c.endedErr(ctx)
	case "refused", "notreg":
		return errs, nil, c.notLive(instance, claimed)
	case "corrupt":
		return errs, nil, corrupt(claimed)
	}
	return errs, nil, malformed("claim reply", fmt.Errorf("%v", claimed[0]))
}

var _ distributed.PublishClaimer = (*Coordinator)(nil)
