package modpipe

import (
	"runtime"
	"strings"
)

// knownOS lists the OS names modpipe understands, with their aliases.
var knownOS = map[string]string{
	"linux": "linux", "windows": "windows", "macos": "macos", "darwin": "macos",
	"freebsd": "freebsd",
}

// normalizeOS returns the canonical OS name ("macos" for "darwin") and
// whether the name is known.
func normalizeOS(name string) (string, bool) {
	v, ok := knownOS[strings.ToLower(strings.TrimSpace(name))]
	return v, ok
}

// localOS is the canonical name of the OS this process runs on.
func localOS() string {
	if v, ok := normalizeOS(runtime.GOOS); ok {
		return v
	}
	return runtime.GOOS
}
