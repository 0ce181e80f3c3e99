package modpipe_test

import (
	"fmt"
	"strings"

	"github.com/modpipe/modpipe"
)

// A previous run's report orders the next run: the 30 s race run starts
// before a chain of short modules. Main does this with --durations FILE
// (or reads the --report file before overwriting it).
func ExampleDurationsFromReport() {
	previous := `{"schema": "modpipe.report/v1", "modules": [
		{"name": "vet", "status": "succeeded", "attempts": 1, "duration_ms": 2000},
		{"name": "race", "status": "succeeded", "attempts": 1, "duration_ms": 30000},
		{"name": "flaky", "status": "failed", "attempts": 1, "duration_ms": 10}]}`
	durations, err := modpipe.DurationsFromReport(strings.NewReader(previous))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(durations["vet"], durations["race"], len(durations))

	p := modpipe.NewPipeline().UseDurations(durations)
	_ = p // p.Add(...); modpipe.Main(p)
	// Output: 2s 30s 2
}
