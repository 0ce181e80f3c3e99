package distributed_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/distributed/coordinatortest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestInMemoryConformance(t *testing.T) {
	coordinatortest.Run(t, func(*testing.T) distributed.Coordinator { return distributed.NewInMemory() })
}
