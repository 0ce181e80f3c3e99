package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"golang.org/x/sync/errgroup"
	"lukechampine.com/blake3"
)

// FileDigest is one input file: its slash-separated path relative to the
// hasher's directory and the BLAKE3 digest of its content.
type FileDigest struct {
	Path   string
	Digest [32]byte
}

// bufPool holds the streaming buffers of file hashing: a file is never
// read into memory whole.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// HashFile returns the BLAKE3 digest of the file at path, read in 1 MiB
// pieces.
func HashFile(ctx context.Context, path string) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, fmt.Errorf("hashing cache input: %w", err)
	}
	defer f.Close()
	h := blake3.New(32, nil)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		if err := ctx.Err(); err != nil {
			return sum, fmt.Errorf("hashing cache input %s: %w", path, err)
		}
		n, rerr := f.Read(buf)
		h.Write(buf[:n])
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return sum, fmt.Errorf("hashing cache input: reading %s: %w", path, rerr)
		}
	}
	h.Sum(sum[:0])
	return sum, nil
}

// expandGlobs returns the regular files under dir matching any of the
// globs ("**" crosses directories), as sorted slash-separated paths
// relative to dir, without duplicates. The order of the globs does not
// matter.
func expandGlobs(dir string, globs []string) ([]string, error) {
	fsys := os.DirFS(dir)
	seen := map[string]bool{}
	var out []string
	for _, g := range globs {
		g = filepath.ToSlash(g)
		if !doublestar.ValidatePattern(g) {
			return nil, fmt.Errorf("cache input glob %q is not a valid pattern (see github.com/bmatcuk/doublestar for the syntax)", g)
		}
		matches, err := doublestar.Glob(fsys, g, doublestar.WithFilesOnly(), doublestar.WithFailOnIOErrors())
		if err != nil {
			return nil, fmt.Errorf("expanding cache input glob %q in %s: %w", g, dir, err)
		}
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// memoEntry is a file's digest as of its size and modification time.
type memoEntry struct {
	size   int64
	mtime  time.Time
	digest [32]byte
}

// recent is how close to now a modification time must be for the file's
// digest not to be reused: a file rewritten within the file system's
// timestamp granularity could keep its size and time.
const recent = 2 * time.Second

// hashFiles hashes paths (relative to dir) in parallel, one goroutine per
// CPU, each streaming its file. The result is in the order of paths. A
// digest in memo is reused only while the file keeps its size and
// modification time (and was not modified in the last two seconds): a
// module may write files that a later module's key covers.
func hashFiles(ctx context.Context, dir string, paths []string, memo *sync.Map) ([]FileDigest, error) {
	out := make([]FileDigest, len(paths))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, p := range paths {
		out[i].Path = p
		full := filepath.Join(dir, filepath.FromSlash(p))
		g.Go(func() error {
			fi, err := os.Stat(full)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed since the glob: hashed as empty
				}
				return fmt.Errorf("hashing cache input: %w", err)
			}
			if memo != nil {
				if m, ok := memo.Load(full); ok {
					e := m.(memoEntry)
					if e.size == fi.Size() && e.mtime.Equal(fi.ModTime()) && time.Since(fi.ModTime()) > recent {
						out[i].Digest = e.digest
						return nil
					}
				}
			}
			d, err := HashFile(gctx, full)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					// Removed between the glob and the read: hash it as
					// absent rather than failing the run.
					return nil
				}
				return err
			}
			out[i].Digest = d
			if memo != nil {
				memo.Store(full, memoEntry{size: fi.Size(), mtime: fi.ModTime(), digest: d})
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
