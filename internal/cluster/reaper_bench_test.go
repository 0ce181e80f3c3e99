package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// BenchmarkReap measures one turn of the reaper with many modules queued
// and a live instance able to take them all: its cost should not grow with
// the number of flights (compare flights=100 with flights=10000).
func BenchmarkReap(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("flights=%d", n), func(b *testing.B) {
			t := &testing.T{}
			nodes := make([]NodeInfo, n)
			for i := range nodes {
				nodes[i] = NodeInfo{Name: fmt.Sprintf("m%05d", i), Requires: []string{"linux"}}
			}
			m := newMaster(t, 2, 3, nodes...)
			defer m.d.Close()
			m.d.cfg.Heartbeat, m.d.cfg.LeaseTimeout = time.Hour, time.Hour
			m.join(0, distributed.MasterCapability)
			m.join(1, "linux")
			m.d.refreshInstances(context.Background())
			for _, nd := range nodes {
				m.dispatch(nd.Name)
			}
			for deadline := time.Now().Add(waitFor); ; time.Sleep(time.Millisecond) {
				m.d.pendingMu.Lock()
				pending := len(m.d.pending)
				m.d.pendingMu.Unlock()
				if pending == 0 {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d not queued", pending, n)
				}
			}
			ctx := context.Background()
			m.d.reap(ctx) // the first turn settles waitingFrom
			b.ResetTimer()
			for b.Loop() {
				m.d.reap(ctx)
			}
		})
	}
}
