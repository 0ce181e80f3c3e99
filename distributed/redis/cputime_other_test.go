//go:build !unix

package redis

import "time"

// processCPU is not measured here: benchmarks leave out their CPU metric.
func processCPU() (time.Duration, bool) { return 0, false }
