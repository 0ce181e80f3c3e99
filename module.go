package modpipe

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/modpipe/modpipe/internal/engine"
)

// Module is a unit of work whose result has type T. Create modules with New
// or Task, declare them once (typically as package-level variables) and add
// them to a Pipeline. A Module is immutable and may be added to several
// pipelines.
type Module[T any] struct {
	def *moduleDef
}

// None is the result type of modules created with Task.
type None = struct{}

// AnyModule is implemented by every *Module[T]; it is what Pipeline.Add and
// DependsOn accept.
type AnyModule interface {
	// Name returns the module's name.
	Name() string
	definition() *moduleDef
}

// moduleDef is the untyped description of a module, shared by all runs.
type moduleDef struct {
	name       string
	run        func(c *Context) (any, error)
	resultType reflect.Type
	errs       []error // option errors, reported when the pipeline is validated

	deps          []depRef
	categories    []string
	timeout       time.Duration
	retry         engine.Retry
	conds         []condition
	oses          []string
	ignoreFailure bool
	alwaysRun     bool
	exclusive     bool
	mutex         []string
	pinToMaster   bool
	caps          []string
	matrix        []string
	notIdempotent bool
	cache         *cacheSpec // Cache (cache.go)
}

type depRef struct {
	def      *moduleDef
	optional bool
}

type condition struct {
	skipIf bool // SkipIf when true, RunIf when false
	reason string
	fn     func(c *Context) bool
}

// New declares a module named name whose function returns a value of type T.
// Dependents read that value with Result.
func New[T any](name string, fn func(c *Context) (T, error), opts ...Option) *Module[T] {
	d := &moduleDef{name: name, resultType: reflect.TypeFor[T]()}
	if fn == nil {
		d.errs = append(d.errs, errors.New("its function is nil"))
	} else {
		d.run = func(c *Context) (any, error) {
			v, err := fn(c)
			if serr := c.secretError(); serr != nil {
				return nil, errors.Join(serr, err)
			}
			return v, err
		}
	}
	for _, o := range opts {
		if o != nil {
			o(d)
		}
	}
	return &Module[T]{def: d}
}

// Task declares a module that produces no value.
func Task(name string, fn func(c *Context) error, opts ...Option) *Module[None] {
	var wrapped func(c *Context) (None, error)
	if fn != nil {
		wrapped = func(c *Context) (None, error) { return None{}, fn(c) }
	}
	return New(name, wrapped, opts...)
}

// Name returns the module's name. A module with MatrixTarget runs as one
// module per target, named "name[target]".
func (m *Module[T]) Name() string { return m.def.name }

func (m *Module[T]) definition() *moduleDef {
	if m == nil {
		return nil
	}
	return m.def
}

// isNilModule reports a nil AnyModule, including a typed nil *Module[T].
func isNilModule(m AnyModule) bool {
	return m == nil || m.definition() == nil
}

// ErrNoResult is returned (wrapped) by Result when the dependency did not
// produce a value: it failed, was skipped or was cancelled.
var ErrNoResult = errors.New("no result")

// Result returns the value produced by dep, which must be a declared
// dependency of the module that c belongs to. It returns an error wrapping
// ErrNoResult when dep did not succeed (possible for optional dependencies,
// IgnoreFailure dependencies and AlwaysRun modules).
//
// For a dependency declared with MatrixTarget, Result returns the variant
// whose target equals c.MatrixTarget(); use MatrixResults for all variants.
func Result[T any](c *Context, dep *Module[T]) (T, error) {
	var zero T
	if c == nil || dep == nil {
		return zero, errors.New("modpipe.Result: nil context or module")
	}
	node, err := c.dependencyNode(dep.def)
	if err != nil {
		return zero, err
	}
	return resultValue[T](c, node)
}

// MatrixResults returns the values of every variant of the matrix module dep
// that succeeded, keyed by target. Variants that did not run (for example
// the other OSes when running on one machine) are absent.
func MatrixResults[T any](c *Context, dep *Module[T]) (map[string]T, error) {
	if c == nil || dep == nil {
		return nil, errors.New("modpipe.MatrixResults: nil context or module")
	}
	nodes, err := c.dependencyNodes(dep.def)
	if err != nil {
		return nil, err
	}
	out := make(map[string]T, len(nodes))
	for _, n := range nodes {
		v, err := resultValue[T](c, n)
		if errors.Is(err, ErrNoResult) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[c.r.nodes[n].target] = v
	}
	return out, nil
}

func resultValue[T any](c *Context, node int) (T, error) {
	var zero T
	if c.r.dist != nil {
		return distributedResult[T](c, node)
	}
	v, err := c.r.result(node)
	if err != nil {
		return zero, err
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("result of %s has type %T, not %s", c.r.nodes[node].name, v, reflect.TypeFor[T]())
	}
	return t, nil
}

// validate reports problems with the module's own declaration.
func (d *moduleDef) validate() error {
	errs := slices.Clone(d.errs)
	if strings.ContainsAny(d.name, "[],") {
		errs = append(errs, errors.New("its name may not contain '[', ']' or ','"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("module %q: %w", d.name, errors.Join(errs...))
}
