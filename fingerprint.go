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
	"strconv"
	"strings"

	"github.com/modpipe/modpipe/distributed"
)

// requirements returns the capabilities an instance needs to run node i:
// RequiresCapability values, the OS of OnOS (any of several) or of a
// matrix target that is an OS, and the master's marker for PinToMaster. A
// matrix target that is not an OS is a parameter and requires nothing.
func (pl *plan) requirements(i int) []string {
	n := &pl.nodes[i]
	osName, targetOS := n.targetOS()
	if !targetOS && len(n.def.oses) == 0 && !n.def.pinToMaster && sortedUnique(n.def.caps) {
		// The common case: the module's own capabilities, already in
		// order. Capped so that a caller's append copies.
		return n.def.caps[:len(n.def.caps):len(n.def.caps)]
	}
	req := slices.Clone(n.def.caps)
	if targetOS {
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

// sortedUnique reports whether s is in strictly increasing order.
func sortedUnique(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
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
	// One line per node, written with appends rather than fmt (this runs
	// for every module on every instance):
	// name|dep/optional,...|requirement,...|result type|notIdempotent|alwaysRun|ignoreFailure
	var line []byte
	var deps []string
	for _, i := range order {
		n := &pl.nodes[i]
		deps = deps[:0]
		for _, d := range pl.graph.Deps[i] {
			deps = append(deps, pl.nodes[d.Node].name+"/"+strconv.FormatBool(d.Optional))
		}
		slices.Sort(deps)
		line = append(line[:0], n.name...)
		line = append(line, '|')
		line = appendJoined(line, deps)
		line = append(line, '|')
		line = appendJoined(line, pl.requirements(i))
		line = append(line, '|')
		line = append(line, n.def.resultType.String()...)
		for _, b := range [...]bool{n.def.notIdempotent, n.def.alwaysRun, n.def.ignoreFailure} {
			line = append(line, '|')
			line = strconv.AppendBool(line, b)
		}
		line = append(line, '\n')
		h.Write(line)
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// appendJoined appends the elements of s separated by commas.
func appendJoined(b []byte, s []string) []byte {
	for k, e := range s {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return b
}

// checkJSON refuses result types that cannot travel between instances.
// Each type is checked once, however many modules return it.
func (pl *plan) checkJSON() error {
	var errs []error
	seen := map[*moduleDef]bool{}
	verdict := map[reflect.Type]error{}
	for _, n := range pl.nodes {
		if seen[n.def] {
			continue
		}
		seen[n.def] = true
		err, ok := verdict[n.def.resultType]
		if !ok {
			err = jsonSafe(n.def.resultType, map[reflect.Type]bool{})
			verdict[n.def.resultType] = err
		}
		if err != nil {
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
