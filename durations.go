package modpipe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strings"
	"time"

	"github.com/modpipe/modpipe/internal/cache"
)

// UseDurations gives the scheduler how long modules took before, keyed by
// module name ("name[target]" for a matrix variant): ready modules start
// (and, in a distributed run, are queued) in order of the longest path of
// durations to the end of the pipeline, so a long module is not left
// waiting behind short ones. A module without a duration weighs the median
// of the known ones. Without durations the longest path counts modules.
//
// Main fills it from --durations FILE (MODPIPE_DURATIONS), the --report
// of an earlier run, or, when neither is given, from the file --report
// names if it already exists (the previous run's report, read before it is
// overwritten). When none of these gives durations and the cache is on,
// the run uses the durations its modules' latest cache entries recorded.
// DurationsFromReport reads such a file.
func (p *Pipeline) UseDurations(d map[string]time.Duration) *Pipeline {
	p.durations = d
	return p
}

// DurationsFromReport reads the durations of the modules a JSON run report
// (WriteJSON, --report) says ran to the end: succeeded, ignored failures
// and timeouts (which took at least their timeout). Modules that failed,
// were skipped or never started say nothing about how long they take.
func DurationsFromReport(r io.Reader) (map[string]time.Duration, error) {
	var rep struct {
		Schema  string `json:"schema"`
		Modules []struct {
			Name       string  `json:"name"`
			Status     Status  `json:"status"`
			Attempts   int     `json:"attempts"`
			DurationMS float64 `json:"duration_ms"`
		} `json:"modules"`
	}
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		return nil, fmt.Errorf("not a modpipe JSON report: %w", err)
	}
	if rep.Schema != ReportSchema {
		return nil, fmt.Errorf("report schema %q is not %q (a file written by --report)", rep.Schema, ReportSchema)
	}
	out := make(map[string]time.Duration, len(rep.Modules))
	for _, m := range rep.Modules {
		switch m.Status {
		case Succeeded, IgnoredFailure, TimedOut:
		default:
			continue
		}
		if m.Name == "" || m.Attempts == 0 || m.DurationMS < 0 || math.IsNaN(m.DurationMS) || m.DurationMS > float64(math.MaxInt64/int64(time.Millisecond)) {
			continue
		}
		out[m.Name] = time.Duration(m.DurationMS * float64(time.Millisecond))
	}
	return out, nil
}

// applyDurations sets the durations the run is scheduled by: --durations
// (or MODPIPE_DURATIONS) replaces what code set; without either, and
// without durations from code, an existing --report file is the previous
// run's report. A file that cannot be read only costs the ordering, so it
// is a warning, not an error.
func (p *Pipeline) applyDurations(o *cliOptions, getenv func(string) string, stderr io.Writer) {
	path, what := strings.TrimSpace(getenv("MODPIPE_DURATIONS")), "MODPIPE_DURATIONS"
	if o.given["durations"] {
		path, what = o.durations, "--durations"
	}
	optional := false
	if path == "" {
		if p.durations != nil || o.report == "" {
			return
		}
		path, what, optional = o.report, "--report", true
	}
	d, err := readDurations(path)
	switch {
	case err == nil:
		p.durations = d
	case optional && errors.Is(err, fs.ErrNotExist):
		// The first run: no earlier report to learn from.
	default:
		fmt.Fprintf(stderr, "modpipe: %s %s: %v; modules are ordered by counting them instead of by their durations (give the --report file of an earlier run)\n", what, path, err)
	}
}

func readDurations(path string) (map[string]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return DurationsFromReport(f)
}

// cacheDurationsBound bounds the cache lookups of durationsFromCache: the
// durations only order the modules, so a slow store must not hold the run.
const cacheDurationsBound = 10 * time.Second

// durationsFromCache gives the scheduler, when no durations were given
// (UseDurations, --durations, MODPIPE_DURATIONS, a --report file), how
// long the cached modules ran when their latest cache entries were stored.
// It returns the function that undoes it once the run is over. A worker
// does not look: the master orders the run.
func (p *Pipeline) durationsFromCache(ctx context.Context, c *cache.Cache) (undo func()) {
	if p.durations != nil || c == nil || c.Store == nil || c.Mode == cache.Off || (p.distributedOn() && p.dist.InstanceIndex != 0) {
		return func() {}
	}
	var names []string
	for _, d := range p.modules {
		switch {
		case d == nil || d.cache == nil:
		case len(d.matrix) == 0:
			names = append(names, d.name)
		default:
			for _, t := range d.matrix {
				names = append(names, d.name+"["+t+"]") // the node's name, as buildPlan gives it
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cacheDurationsBound)
	defer cancel()
	d := cache.LastDurations(ctx, c.Store, c.SigningKey, names)
	if len(d) == 0 {
		return func() {}
	}
	p.durations = d
	return func() { p.durations = nil }
}
