package distributed

import "github.com/modpipe/modpipe/artifact"

// ArtifactStorer is implemented by coordinators whose backend can also
// keep the run's artifacts; modpipe then uses it as the default artifact
// store of a distributed run.
type ArtifactStorer interface {
	// ArtifactStore returns a store for the run's artifacts, bound to the
	// run, on the server that url names ("" means the coordinator's own).
	// It is called after BindRun, possibly after Close; the caller closes
	// the store if it implements io.Closer. An error wrapping
	// ErrNotConfigured means the coordinator has no backend (the run fell
	// back to one instance): modpipe then keeps artifacts in a directory.
	ArtifactStore(url string) (artifact.Store, error)
}
