package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// A module that ignores the run's cancellation gets Grace to return; then
// it is abandoned: its result says so, and the executor ends without it.
func TestExecutorAbandonsModuleIgnoringCancellation(t *testing.T) {
	for _, combined := range []bool{true, false} {
		name := map[bool]string{true: "publish-and-claim", false: "separate-trips"}[combined]
		t.Run(name, func(t *testing.T) {
			mem := distributed.NewInMemory()
			var coord distributed.Coordinator = mem
			if !combined {
				coord = &separateTrips{Coordinator: mem, mem: mem}
			}
			register(t, coord, 1, "linux")
			started, stuck := make(chan struct{}), make(chan struct{})
			defer close(stuck) // let the abandoned module end, for goleak
			host := newHost(map[string]func(context.Context) (any, error){
				"stubborn": func(context.Context) (any, error) { close(started); <-stuck; return 1, nil },
				"polite":   func(ctx context.Context) (any, error) { <-ctx.Done(); return nil, ctx.Err() },
			})
			enqueueAll(t, coord, "stubborn", "polite")
			cfg := testConfig(coord, 1)
			cfg.Grace = 50 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			e := StartExecutor(ctx, cfg, host, NewValues(coord), nil)
			<-started
			awaitClaimed(t, coord, host, "polite")
			cancel()
			waitExecutor(t, e)
			for module, want := range map[string]string{"stubborn": "abandoned", "polite": "context canceled"} {
				r, err := coord.AwaitResult(context.Background(), module)
				if err != nil {
					t.Fatalf("no result for %s: %v", module, err)
				}
				if r.Status != distributed.StatusCancelled || r.Error == nil || !strings.Contains(r.Error.Message, want) {
					t.Errorf("%s: %s %+v, want cancelled, saying %q", module, r.Status, r.Error, want)
				}
			}
		})
	}
}
