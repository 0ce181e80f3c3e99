package artifact_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/artifact/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDirStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) artifact.Store { return artifact.NewDirStore(t.TempDir()) })
}
