//go:build race

package cluster

// raceEnabled: the race detector makes sync.Pool drop items at random.
const raceEnabled = true
