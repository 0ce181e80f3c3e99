package cache

import (
	"fmt"
	"slices"
	"strings"
)

// Change is one difference between a module's inputs and those of its
// previous entry.
type Change struct {
	// Kind is one of "file-added", "file-removed", "file-changed",
	// "env-changed", "command-changed", "value-changed", "dep-changed",
	// "version-changed", "platform-changed", "globs-changed", "value-added",
	// "value-removed", "no-previous-entry", "entry-gone".
	Kind string `json:"kind"`
	// Name is the file path, variable name, command, value or dependency
	// name; empty for kinds without one.
	Name string `json:"name,omitempty"`
}

// String describes the change for people. Environment values are never
// shown, only the variable's name.
func (c Change) String() string {
	switch c.Kind {
	case "file-added":
		return "file added: " + c.Name
	case "file-removed":
		return "file removed: " + c.Name
	case "file-changed":
		return "file changed: " + c.Name
	case "env-changed":
		return "environment variable changed: " + c.Name
	case "command-changed":
		return "output of `" + c.Name + "` changed"
	case "value-changed":
		return "value changed: " + c.Name
	case "value-added":
		return "input added: " + c.Name
	case "value-removed":
		return "input removed: " + c.Name
	case "dep-changed":
		return "result of dependency " + c.Name + " changed"
	case "version-changed":
		return "cache version bumped (" + c.Name + ")"
	case "platform-changed":
		return "platform changed (" + c.Name + ")"
	case "globs-changed":
		return "file globs changed"
	case "no-previous-entry":
		return "no previous entry for this module"
	case "entry-gone":
		return "inputs unchanged, but the entry is gone (" + c.Name + ")"
	}
	return c.Kind + " " + c.Name
}

// Explain lists what differs between the fingerprints of the previous
// entry (nil when there is none) and now, in a stable order.
func Explain(prev, now Fingerprints) []Change {
	if prev == nil {
		return []Change{{Kind: "no-previous-entry"}}
	}
	var out []Change
	names := make([]string, 0, len(prev)+len(now))
	for k := range prev {
		names = append(names, k)
	}
	for k := range now {
		if _, ok := prev[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		p, inPrev := prev[k]
		n, inNow := now[k]
		if inPrev && inNow && p == n {
			continue
		}
		kind, name, _ := strings.Cut(k, ":")
		switch kind {
		case KindFile:
			switch {
			case !inPrev:
				out = append(out, Change{"file-added", name})
			case !inNow:
				out = append(out, Change{"file-removed", name})
			default:
				out = append(out, Change{"file-changed", name})
			}
		case KindEnv, KindCommand, KindValue, KindDep:
			c := Change{Kind: map[string]string{KindEnv: "env-changed", KindCommand: "command-changed", KindValue: "value-changed", KindDep: "dep-changed"}[kind], Name: name}
			if kind == KindValue && !inPrev {
				c.Kind = "value-added"
			} else if kind == KindValue && !inNow {
				c.Kind = "value-removed"
			}
			out = append(out, c)
		case KindVersion:
			out = append(out, Change{"version-changed", fmt.Sprintf("%q → %q", p, n)})
		case KindPlatform:
			out = append(out, Change{"platform-changed", p + " → " + n})
		case KindGlobs:
			out = append(out, Change{Kind: "globs-changed"})
		case KindModule:
			// The previous entry is the module's own: its name cannot differ.
		}
	}
	return out
}
