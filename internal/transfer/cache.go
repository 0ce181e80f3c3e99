package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sync/singleflight"

	"github.com/modpipe/modpipe/artifact"
)

// Cache keeps verified blobs of one instance in a directory, by digest, so
// that each blob is fetched from the store once per instance: concurrent
// requests for one blob share a single fetch.
type Cache struct {
	dir   string
	store artifact.Store
	name  string
	group singleflight.Group
	// joined, when set (tests), is called once an Open has started or
	// joined the fetch of its blob.
	joined func()
}

// leaderCancelled is the error of a fetch that failed once the context of
// the Open leading it had ended: the other Opens sharing it fetch again.
type leaderCancelled struct{ err error }

func (e *leaderCancelled) Error() string { return e.err.Error() }
func (e *leaderCancelled) Unwrap() error { return e.err }

// NewCache returns a cache in dir (created on first use) in front of store,
// which name describes in messages.
func NewCache(dir string, store artifact.Store, name string) *Cache {
	return &Cache{dir: dir, store: store, name: name}
}

// Open returns the blob with the given digest and size, fetching and
// verifying it first if the cache does not hold it, and the bytes fetched
// (0 when the cache had it). progress, when set, counts the fetch (its
// first pass; see Progress).
//
// When into is not nil and this call fetches the blob, the fetched bytes
// are written to into as well as to the cache, hashed once for both (a
// first download on an instance costs one SHA-256 pass, not two), and the
// returned reader is nil: into holds the verified blob. Otherwise the
// caller reads the cached blob from the returned reader.
func (c *Cache) Open(ctx context.Context, digest string, size int64, progress *Progress, into io.Writer) (io.ReadCloser, int64, error) {
	if _, err := artifact.DigestKey(digest); err != nil {
		return nil, 0, err
	}
	final := filepath.Join(c.dir, digest)
	if f, err := os.Open(final); err == nil {
		progress.addFirst(size)
		return f, 0, nil
	}
	led := false
	var tee *teeWriter
	fetch := func() (any, error) {
		led = true
		if _, err := os.Stat(final); err == nil {
			return int64(0), nil
		}
		if into != nil {
			tee = &teeWriter{also: into}
		}
		err := c.fetch(ctx, digest, size, final, progress, tee)
		if err != nil && ctx.Err() != nil {
			err = &leaderCancelled{err: err}
		}
		return size, err
	}
	var res singleflight.Result
	for {
		ch := c.group.DoChan(digest, fetch)
		if c.joined != nil {
			c.joined()
		}
		res = <-ch
		// The module that led the fetch was cancelled (it timed out, or
		// the run is stopping): that is not this download's failure.
		// Fetch again; this call may lead now.
		var lc *leaderCancelled
		if !led && ctx.Err() == nil && errors.As(res.Err, &lc) {
			continue
		}
		break
	}
	if res.Err != nil {
		return nil, 0, res.Err
	}
	moved := res.Val.(int64)
	if led && tee != nil && moved > 0 {
		if tee.alsoErr != nil {
			return nil, moved, tee.alsoErr
		}
		return nil, moved, nil // into holds it, verified
	}
	if !led || moved == 0 {
		progress.addFirst(size) // fetched by another caller, or before
	}
	if !led {
		moved = 0 // the caller that fetched it counts it (singleflight's
		// "shared" is true for that caller too)
	}
	f, err := os.Open(final)
	if err != nil {
		return nil, moved, fmt.Errorf("opening the cached blob: %w", err)
	}
	return f, moved, nil
}

// teeWriter writes to the cache file (main) and, while that works, to also;
// a failure to write also does not fail the cache's fetch, which other
// downloads may be waiting for.
type teeWriter struct {
	main, also io.Writer
	alsoErr    error
}

func (t *teeWriter) Write(p []byte) (int, error) {
	n, err := t.main.Write(p)
	if err != nil {
		return n, err
	}
	if t.alsoErr == nil {
		_, t.alsoErr = t.also.Write(p)
	}
	return n, nil
}

func (c *Cache) fetch(ctx context.Context, digest string, size int64, final string, progress *Progress, tee *teeWriter) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("artifact cache: %w", err)
	}
	r, err := openBlob(ctx, c.store, digest)
	if err != nil {
		return err
	}
	defer r.Close()
	tmp, err := os.CreateTemp(c.dir, "fetch-*.tmp")
	if err != nil {
		return fmt.Errorf("artifact cache: %w", err)
	}
	var w io.Writer = tmp
	counted := progress.counting(r, (*Progress).addFirst)
	if tee != nil {
		tee.main = tmp
		w = tee
		counted = progress.counting(r, (*Progress).addFirst, (*Progress).addSecond)
	}
	err = copyVerified(ctx, w, counted, digest, size, c.name)
	err = errors.Join(err, tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
