package redis

import (
	"errors"
	"strings"
	"testing"

	"github.com/modpipe/modpipe/distributed"
)

// Asking an unbound coordinator for its artifact store says what to do.
func TestArtifactStoreBeforeARunSaysWhatToDo(t *testing.T) {
	c := NewCoordinator(Options{URL: "redis://127.0.0.1:1"})
	defer c.Close()
	_, err := c.ArtifactStore("")
	if !errors.Is(err, distributed.ErrNotConfigured) {
		t.Fatalf("err = %v, want ErrNotConfigured", err)
	}
	for _, want := range []string{"inside a distributed run", "NewArtifactStore", "RunID"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}
