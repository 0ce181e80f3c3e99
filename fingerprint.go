package modpipe

import (
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/modpipe/modpipe/distributed"
)

// requirements returns the capabilities an instance needs to run node i:
// RequiresCapability values, the OS of OnOS (any of several) or of a
// matrix target that is an OS, and the master's marker for PinToMaster. A
// matrix target that is not an OS is a parameter and requires nothing.
func (pl *plan) requirements(i int) []string {
	n := &pl.nodes[i]
	req := slices.Clone(n.def.caps)
	if osName, ok := n.targetOS(); ok {
		req = append(req, osName)
	} else if len(n.def.oses) > 0 {
		req = append(req, strings.Join(n.def.oses, "|"))
	}
	if n.def.pinToMaster {
		req = append(req, distributed.MasterCapability)
	}
	slices.Sort(req)
	return slices.Compact(req)
}

// fingerprint identifies the module graph: names, dependencies, routing,
// result types and the options that change behaviour across instances.
// Instances presenting different fingerprints are refused.
func (pl *plan) fingerprint() string {
	h := sha256.New()
	order := make([]int, len(pl.nodes))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(pl.nodes[a].name, pl.nodes[b].name) })
	for _, i := range order {
		n := &pl.nodes[i]
		deps := make([]string, 0, len(pl.graph.Deps[i]))
		for _, d := range pl.graph.Deps[i] {
			deps = append(deps, fmt.Sprintf("%s/%t", pl.nodes[d.Node].name, d.Optional))
		}
		slices.Sort(deps)
		fmt.Fprintf(h, "%s|%s|%s|%s|%t|%t|%t\n", n.name, strings.Join(deps, ","), strings.Join(pl.requirements(i), ","),
			n.def.resultType, n.def.notIdempotent, n.def.alwaysRun, n.def.ignoreFailure)
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// checkJSON refuses result types that cannot travel between instances.
func (pl *plan) checkJSON() error {
	var errs []error
	seen := map[*moduleDef]bool{}
	for _, n := range pl.nodes {
		if seen[n.def] {
			continue
		}
		seen[n.def] = true
		if err := jsonSafe(n.def.resultType, map[reflect.Type]bool{}); err != nil {
			errs = append(errs, fmt.Errorf("module %q: result type %s cannot travel between instances as JSON: %w", n.def.name, n.def.resultType, err))
		}
	}
	return errors.Join(errs...)
}

var (
	jsonMarshaler   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// jsonSafe reports types that do not round-trip through encoding/json:
// channels, functions, complex numbers, and interfaces (which decode as
// maps), unless the type decodes itself.
func jsonSafe(t reflect.Type, visiting map[reflect.Type]bool) error {
	if visiting[t] {
		return nil
	}
	visiting[t] = true
	if (t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler)) &&
		(t.Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler)) {
		return nil
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return nil
	}
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return fmt.Errorf("%s values are not JSON", t.Kind())
	case reflect.Interface:
		return fmt.Errorf("interface type %s decodes as a map, not its original type; use a concrete type", t)
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return jsonSafe(t.Elem(), visiting)
	case reflect.Map:
		switch t.Key().Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			if !reflect.PointerTo(t.Key()).Implements(textUnmarshaler) {
				return fmt.Errorf("map key type %s is not a string, an integer or a TextUnmarshaler", t.Key())
			}
		}
		return jsonSafe(t.Elem(), visiting)
	case reflect.Struct:
		for f := range t.Fields() {
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			if err := jsonSafe(f.Type, visiting); err != nil {
				return fmt.Errorf("field %s: %w", f.Name, err)
			}
		}
	}
	return nil
}
