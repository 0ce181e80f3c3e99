package cluster

import (
	"context"
	"fmt"
	"sync"

	"github.com/modpipe/modpipe/distributed"
)

// Values caches module results on one instance: values produced here, and
// values fetched once from the coordinator for dependents that run here.
type Values struct {
	coord distributed.Coordinator
	mu    sync.Mutex
	m     map[string]*Value
}

// Value is one module's result: its JSON form, and the typed value once one
// was produced here or decoded.
type Value struct {
	mu    sync.Mutex
	Raw   []byte
	typed any
}

// Typed returns the cached typed value, if any.
func (v *Value) Typed() any {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.typed
}

// SetTyped caches a decoded value.
func (v *Value) SetTyped(x any) {
	v.mu.Lock()
	v.typed = x
	v.mu.Unlock()
}

// NewValues returns an empty cache reading from coord.
func NewValues(coord distributed.Coordinator) *Values {
	return &Values{coord: coord, m: map[string]*Value{}}
}

// NewValuesFor is NewValues for a run of the given number of modules: the
// cache is sized for them at once rather than grown as results arrive.
func NewValuesFor(coord distributed.Coordinator, modules int) *Values {
	return &Values{coord: coord, m: make(map[string]*Value, modules)}
}

// Put records a value produced on this instance.
func (vs *Values) Put(module string, typed any, raw []byte) {
	vs.mu.Lock()
	vs.m[module] = &Value{Raw: raw, typed: typed}
	vs.mu.Unlock()
}

// Get returns module's value, fetching it from the coordinator the first
// time. It fails when the module did not succeed.
func (vs *Values) Get(ctx context.Context, module string) (*Value, error) {
	vs.mu.Lock()
	v, ok := vs.m[module]
	vs.mu.Unlock()
	if ok {
		return v, nil
	}
	// The dependency finished before this module was dispatched, so its
	// result is already stored: this returns at once.
	res, err := vs.coord.AwaitResult(ctx, module)
	if err != nil {
		return nil, fmt.Errorf("fetching the result of %s from the coordinator: %w", module, err)
	}
	if res.Status != distributed.StatusSucceeded {
		return nil, fmt.Errorf("%s did not succeed (%s)", module, res.Status)
	}
	raw, err := decodeValue(module, res.Value)
	if err != nil {
		return nil, err
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if v, ok := vs.m[module]; ok {
		return v, nil
	}
	v = &Value{Raw: raw}
	vs.m[module] = v
	return v, nil
}
