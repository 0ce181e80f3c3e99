//go:build !unix && !windows

package redistest

import (
	"errors"
	"os"
)

var errUnsupported = errors.New("freezing a process is not supported on this OS (only Unix and Windows)")

func terminate(*os.Process) error { return errUnsupported }
func pause(*os.Process) error     { return errUnsupported }
func resume(*os.Process) error    { return errUnsupported }
