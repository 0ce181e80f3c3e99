package redis

import (
	"fmt"
	"strings"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/distributed"
)

var _ distributed.ArtifactStorer = (*Coordinator)(nil)

// ArtifactStore implements distributed.ArtifactStorer: an ArtifactStore
// (default budget and chunk size, retention the coordinator's KeyTTL) for
// the coordinator's run on its Redis server, or on the server url names.
func (c *Coordinator) ArtifactStore(url string) (artifact.Store, error) {
	c.mu.Lock()
	raw, base := c.rawURL, c.keys.base
	c.mu.Unlock()
	if raw == "" {
		return nil, fmt.Errorf("redis coordinator: %w: no artifact store before the coordinator is bound to a run; call ArtifactStore from inside a distributed run (a module's code), or open a store of your own with NewArtifactStore(Options{URL: ..., RunID: ...})", distributed.ErrNotConfigured)
	}
	o := c.opts
	o.URL = raw
	if url != "" {
		o.URL = url
	}
	o.RunID = strings.TrimSuffix(strings.TrimPrefix(base, c.opts.KeyPrefix+":{"), "}:")
	s := NewArtifactStore(o)
	if err := s.BindRun(distributed.RunBinding{RunID: o.RunID, URL: o.URL}); err != nil {
		return nil, err
	}
	return s, nil
}

// String describes the store in messages: its server without a password.
func (s *ArtifactStore) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.where == "" {
		return "Redis artifact store"
	}
	return "Redis artifact store at " + s.where
}
