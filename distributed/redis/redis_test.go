package redis_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/distributed/coordinatortest"
	"github.com/modpipe/modpipe/distributed/redis"
	"github.com/modpipe/modpipe/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var runSeq atomic.Int64

func newRunID() string { return fmt.Sprintf("test-%d", runSeq.Add(1)) }

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	coordinatortest.Run(t, func(t *testing.T) distributed.Coordinator {
		return redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: newRunID()})
	})
}
