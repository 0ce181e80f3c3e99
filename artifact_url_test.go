package modpipe

import (
	"testing"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/distributed"
)

// storerCoordinator is a coordinator whose backend keeps artifacts: it
// records the URL it is asked for and answers with err.
type storerCoordinator struct {
	distributed.Coordinator
	asked []string
	err   error
}

func (s *storerCoordinator) ArtifactStore(url string) (artifact.Store, error) {
	s.asked = append(s.asked, url)
	if s.err != nil {
		return nil, s.err
	}
	return artifact.NewDirStore("unused"), nil
}

// TestArtifactStoreURLRedisCluster: --artifact-store takes the Redis
// Cluster URLs the Redis coordinator and store take, and hands them to the
// coordinator as it does redis:// and rediss://.
func TestArtifactStoreURLRedisCluster(t *testing.T) {
	for _, u := range []string{"redis://h:1", "rediss://h:1", "redis+cluster://h1:1,h2:2", "rediss+cluster://h1:1,h2:2"} {
		c := &storerCoordinator{}
		if _, err := openStoreURL(u, c); err != nil {
			t.Errorf("%s: %v", u, err)
		}
		if len(c.asked) != 1 || c.asked[0] != u {
			t.Errorf("%s: the coordinator was asked for %q", u, c.asked)
		}
	}
}
