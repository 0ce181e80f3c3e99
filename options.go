package modpipe

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/modpipe/modpipe/internal/engine"
)

// Option configures a module; pass options to New or Task.
type Option func(*moduleDef)

// DependsOn declares modules that must succeed before this one runs. When
// one fails, this module ends DependencyFailed (unless AlwaysRun); when one is
// skipped, this module is skipped too.
func DependsOn(mods ...AnyModule) Option {
	return dependsOn(false, mods)
}

// DependsOnOptional declares modules that run before this one when they run
// at all, without blocking it: their failure or absence does not stop this
// module, and Result reports ErrNoResult for them.
func DependsOnOptional(mods ...AnyModule) Option {
	return dependsOn(true, mods)
}

// DependsOnAll is DependsOn for modules of one result type, typically built
// in a loop: DependsOnAll(builds...) where builds is a []*Module[T]. (Go does
// not spread a []*Module[T] into DependsOn's ...AnyModule.) It may be
// combined with DependsOn in the same module.
func DependsOnAll[T any](mods ...*Module[T]) Option {
	return dependsOn(false, Modules(mods))
}

// Modules converts a slice of modules of one result type into the
// []AnyModule that Pipeline.Add, DependsOn and DependsOnOptional spread:
// p.Add(modpipe.Modules(builds)...). A nil element stays nil, and is reported
// as such when the pipeline is validated.
func Modules[T any](mods []*Module[T]) []AnyModule {
	out := make([]AnyModule, len(mods))
	for i, m := range mods {
		if m != nil {
			out[i] = m
		}
	}
	return out
}

func dependsOn(optional bool, mods []AnyModule) Option {
	return func(d *moduleDef) {
		for _, m := range mods {
			if isNilModule(m) {
				d.errs = append(d.errs, errors.New("a dependency is nil (declared before it was initialised?)"))
				continue
			}
			d.deps = append(d.deps, depRef{def: m.definition(), optional: optional})
		}
	}
}

// Category puts the module in one or more categories, for --category and
// --ignore-category, which select or skip a module when any of its
// categories is named. Category may be given several times; the categories
// add up.
func Category(names ...string) Option {
	return func(d *moduleDef) {
		for _, name := range names {
			name = strings.TrimSpace(name)
			if name == "" || strings.Contains(name, ",") {
				d.errs = append(d.errs, fmt.Errorf("Category: invalid category %q (empty or containing a comma)", name))
				continue
			}
			if !slices.Contains(d.categories, name) {
				d.categories = append(d.categories, name)
			}
		}
	}
}

// Timeout bounds each attempt's execution time. Time spent waiting for
// dependencies or in a queue does not count. When it passes, the module's
// context is cancelled and the attempt ends TimedOut.
func Timeout(d time.Duration) Option {
	return func(m *moduleDef) {
		if d < 0 {
			m.errs = append(m.errs, fmt.Errorf("Timeout(%s) is negative", d))
			return
		}
		m.timeout = d
	}
}

// RetryOption refines Retry. It is a type of its own, distinct from
// Option: a module option cannot be passed (or converted) to Retry, nor a
// RetryOption to New.
type RetryOption func(*retrySettings)

// retrySettings is what RetryOptions change: the module's retry policy and
// the mistakes found while applying them.
type retrySettings struct {
	retry *engine.Retry
	errs  []error
}

// Retry runs the module up to times more after a failed attempt (timeouts
// and panics included, run cancellation excluded). Waits between attempts
// start at 1s and double up to 30s, with jitter; change them with Backoff
// and choose which errors are worth retrying with RetryIf.
func Retry(times int, opts ...RetryOption) Option {
	return func(d *moduleDef) {
		if times < 0 {
			d.errs = append(d.errs, fmt.Errorf("Retry(%d) is negative", times))
			return
		}
		d.retry.Count = times
		d.retry.Initial, d.retry.Max = time.Second, 30*time.Second
		rs := retrySettings{retry: &d.retry}
		for _, o := range opts {
			o(&rs)
		}
		d.errs = append(d.errs, rs.errs...)
	}
}

// Backoff sets the wait before the first retry and the most it may grow
// to; each wait is drawn at random from [w/2, w]. Backoff(0, 0) retries at once.
func Backoff(initial, maximum time.Duration) RetryOption {
	return func(rs *retrySettings) {
		if initial < 0 || maximum < 0 {
			rs.errs = append(rs.errs, fmt.Errorf("Backoff(%s, %s) is negative", initial, maximum))
			return
		}
		rs.retry.Initial, rs.retry.Max = initial, maximum
	}
}

// RetryIf retries only errors for which retryable returns true.
func RetryIf(retryable func(err error) bool) RetryOption {
	return func(rs *retrySettings) { rs.retry.If = retryable }
}

// SkipIf skips the module, with reason shown in the summary, when cond
// returns true. cond runs once the module's dependencies have finished, so it
// may read their results.
func SkipIf(reason string, cond func(c *Context) bool) Option {
	return func(d *moduleDef) {
		if cond == nil {
			d.errs = append(d.errs, fmt.Errorf("SkipIf(%q) has a nil condition", reason))
			return
		}
		d.conds = append(d.conds, condition{skipIf: true, reason: reason, fn: cond})
	}
}

// RunIf runs the module only when cond returns true; otherwise it is skipped
// with the reason "condition not met: " + reason.
func RunIf(reason string, cond func(c *Context) bool) Option {
	return func(d *moduleDef) {
		if cond == nil {
			d.errs = append(d.errs, fmt.Errorf("RunIf(%q) has a nil condition", reason))
			return
		}
		d.conds = append(d.conds, condition{reason: reason, fn: cond})
	}
}

// OnOS runs the module only on the given operating systems ("linux",
// "windows", "macos" or "darwin", "freebsd"); elsewhere it is skipped. In
// distributed mode it routes the module to an instance with that OS.
func OnOS(oses ...string) Option {
	return func(d *moduleDef) {
		for _, o := range oses {
			name, ok := normalizeOS(o)
			if !ok {
				d.errs = append(d.errs, fmt.Errorf("OnOS: unknown OS %q; use linux, windows, macos or freebsd", o))
				continue
			}
			d.oses = append(d.oses, name)
		}
	}
}

// IgnoreFailure lets the module fail without failing the run: it ends
// IgnoredFailure and its dependents still run.
func IgnoreFailure() Option {
	return func(d *moduleDef) { d.ignoreFailure = true }
}

// AlwaysRun runs the module even when a dependency failed or the run is
// stopping after a failure, like a cleanup or report step. It still waits
// for its dependencies to finish. After a cancellation (Ctrl-C, SIGTERM, a
// cancelled context) it still starts, like `if: always()`, with a context
// that ends Pipeline.CleanupGrace (default 30s) after the cancellation; in
// a distributed run the master runs it. One already running when the run is
// cancelled is cancelled like any other module.
func AlwaysRun() Option {
	return func(d *moduleDef) { d.alwaysRun = true }
}

// NotInParallel keeps the module from overlapping with other modules that
// share one of keys. Without keys the module runs alone: nothing else runs
// while it does.
func NotInParallel(keys ...string) Option {
	return func(d *moduleDef) {
		if len(keys) == 0 {
			d.exclusive = true
			return
		}
		d.mutex = append(d.mutex, keys...)
	}
}

// PinToMaster runs the module on the master instance (instance 0) only.
// Without distributed mode it has no effect.
func PinToMaster() Option {
	return func(d *moduleDef) { d.pinToMaster = true }
}

// RequiresCapability routes the module, in distributed mode, to an instance
// that advertises every one of caps (compared case-insensitively).
func RequiresCapability(caps ...string) Option {
	return func(d *moduleDef) {
		for _, c := range caps {
			c = strings.ToLower(strings.TrimSpace(c))
			if c == "" {
				d.errs = append(d.errs, errors.New("RequiresCapability: empty capability"))
				continue
			}
			d.caps = append(d.caps, c)
		}
	}
}

// MatrixTarget expands the module into one module per target, named
// "name[target]"; c.MatrixTarget() tells each which one it is.
//
// A target that is an OS name ("linux", "windows", "macos" or "darwin",
// "freebsd") routes its variant to an instance with that OS; on a single
// instance only the variant of the local OS runs and the others are skipped.
// Any other target ("go1.25", "amd64", "postgres16") is a plain parameter:
// every such variant runs, on any instance that may run the module. A list
// may mix both kinds.
func MatrixTarget(targets ...string) Option {
	return func(d *moduleDef) {
		for _, t := range targets {
			t = strings.ToLower(strings.TrimSpace(t))
			if os, ok := normalizeOS(t); ok {
				t = os
			}
			if t == "" || strings.ContainsAny(t, "[],") {
				d.errs = append(d.errs, fmt.Errorf("MatrixTarget: invalid target %q", t))
				continue
			}
			d.matrix = append(d.matrix, t)
		}
	}
}

// NotIdempotent marks a module that must never run twice, such as a
// publish step. In distributed mode, when the instance running it is lost,
// the module fails instead of being run again elsewhere.
func NotIdempotent() Option {
	return func(d *moduleDef) { d.notIdempotent = true }
}
