package modpipe

import (
	"fmt"
	"strings"
	"time"
)

// DefaultCleanupGrace is the CleanupGrace of a pipeline that sets none.
const DefaultCleanupGrace = 30 * time.Second

// DefaultTeardownTimeout is the TeardownTimeout of a pipeline that sets none.
const DefaultTeardownTimeout = time.Minute

// applyCleanupSettings applies MODPIPE_CLEANUP_GRACE, then --cleanup-grace.
func (p *Pipeline) applyCleanupSettings(o *cliOptions, getenv func(string) string) error {
	if v := strings.TrimSpace(getenv("MODPIPE_CLEANUP_GRACE")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("MODPIPE_CLEANUP_GRACE=%q is not a positive duration such as 30s or 2m", v)
		}
		p.CleanupGrace = d
	}
	if o.given["cleanup-grace"] {
		p.CleanupGrace = o.cleanupGrace
	}
	return nil
}

// cleanupGrace is the scheduler's CleanupGrace for this pipeline: 0 (no
// cleanup after a cancellation) when CleanupGrace is negative.
func (p *Pipeline) cleanupGrace() time.Duration {
	switch {
	case p.CleanupGrace < 0:
		return 0
	case p.CleanupGrace == 0:
		return DefaultCleanupGrace
	}
	return p.CleanupGrace
}
