package distributed

import (
	"context"
	"fmt"
	"slices"
)

var _ ResultWatcher = (*InMemory)(nil)

// WatchResults implements ResultWatcher: one goroutine per call waits for
// the results of modules, looking at them only when a result was stored
// or the run completed; it ends once each module was delivered, or when
// ctx is done.
func (m *InMemory) WatchResults(ctx context.Context, modules []string, deliver func(module string, r Result, err error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, mod := range modules {
		if mod == "" || len(mod) > MaxNameSize {
			return fmt.Errorf("%w: cannot watch the result of module %.40q: a module name has 1 to %d bytes", ErrInvalid, mod, MaxNameSize)
		}
	}
	go m.watch(ctx, slices.Clone(modules), deliver)
	return nil
}

// memDelivery is one outcome a watch delivers.
type memDelivery struct {
	module string
	r      Result
	err    error
}

func (m *InMemory) watch(ctx context.Context, pending []string, deliver func(string, Result, error)) {
	seen := -1 // results stored when last looked
	for len(pending) > 0 {
		var out []memDelivery
		m.mu.Lock()
		if n := len(m.results); n != seen || m.state.Completed {
			seen = n
			pending = slices.DeleteFunc(pending, func(mod string) bool {
				if r, ok := m.results[mod]; ok {
					out = append(out, memDelivery{mod, r, nil})
					return true
				}
				if m.state.Completed {
					out = append(out, memDelivery{mod, Result{}, fmt.Errorf("%w: no result for %s", ErrRunEnded, mod)})
					return true
				}
				return false
			})
		}
		changed := m.changed
		m.mu.Unlock()
		// Delivered without the lock: deliver may call the coordinator.
		for _, d := range out {
			if ctx.Err() != nil {
				return
			}
			deliver(d.module, d.r, d.err)
		}
		if len(pending) == 0 {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}
