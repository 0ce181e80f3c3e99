package artifact_test

import (
	"testing"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/artifact/storetest"
)

func TestDirStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) artifact.Store { return artifact.NewDirStore(t.TempDir()) })
}
