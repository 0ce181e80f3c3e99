package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// blobSuffix ends every blob file's name. '~' is not a key character, so a
// blob file can never collide with a directory made for a longer key ("a"
// is stored as "a~", "a/b" as "a/b~") nor with a temporary file.
const blobSuffix = "~"

// DirStore is a Store in a local directory: one file per key, written to a
// temporary file in the same directory, synced, then renamed over the
// final name (an atomic step on one file system). Get streams the file.
//
// On Unix a Get opened before an overwrite keeps streaming the old value.
// On Windows an overwrite or Delete of a blob that is being read fails
// with an error (the file is in use); the blob stays complete either way.
type DirStore struct {
	dir string
}

var _ Store = (*DirStore)(nil)

// NewDirStore returns a store keeping its blobs under dir, which it
// creates on first Put. Temporary files of interrupted Puts are named
// "*~tmp*" and can be removed by anyone once no Put is running.
func NewDirStore(dir string) *DirStore { return &DirStore{dir: dir} }

// Dir returns the directory the store keeps its blobs in.
func (d *DirStore) Dir() string { return d.dir }

func (d *DirStore) path(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", fmt.Errorf("directory store %s: %w", d.dir, err)
	}
	return filepath.Join(d.dir, filepath.FromSlash(key)) + blobSuffix, nil
}

// Put implements Store.
func (d *DirStore) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	path, err := d.path(key)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("directory store: put %s: %w: negative size %d", key, ErrSizeMismatch, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("directory store: put %s: %w", key, err)
	}
	parent := filepath.Dir(path)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("directory store: put %s: cannot create %s: %w (check that the directory is writable)", key, parent, err)
	}
	tmp, err := os.CreateTemp(parent, filepath.Base(path)+"tmp*")
	if err != nil {
		return fmt.Errorf("directory store: put %s: cannot create a temporary file in %s: %w (check that the directory is writable)", key, parent, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := copyIn(ctx, tmp, r, size); err != nil {
		return fmt.Errorf("directory store: put %s: %w", key, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("directory store: put %s: syncing %s: %w", key, tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("directory store: put %s: closing %s: %w", key, tmp.Name(), err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("directory store: put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("directory store: put %s: committing %s: %w", key, path, err)
	}
	syncDir(parent)
	return nil
}

// syncDir makes a rename durable where the OS supports syncing a
// directory; it is best effort (the rename itself is already atomic).
func syncDir(dir string) {
	if runtime.GOOS == "windows" {
		return
	}
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		_ = f.Close()
	}
}

// Get implements Store.
func (d *DirStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	path, err := d.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("directory store: get %s: %w", key, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, d.describe("get", key, err)
	}
	return &fileReader{ctx: ctx, f: f}, nil
}

// copySlice is how much is copied between two checks of the context.
const copySlice = 8 << 20

// copyIn writes exactly size bytes of r to dst. From a regular file it
// lets the kernel copy (copy_file_range where available), checking the
// context between slices; from anything else it copies through one
// buffer.
func copyIn(ctx context.Context, dst *os.File, r io.Reader, size int64) error {
	src, ok := r.(*os.File)
	if !ok {
		_, err := io.CopyBuffer(onlyWriter{dst}, SizedReader(ctx, r, size), make([]byte, min(size+1, 1<<20)))
		return err
	}
	for left := size; left > 0; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.CopyN(dst, src, min(left, copySlice))
		left -= n
		if err == io.EOF {
			return fmt.Errorf("%w: the reader ended after %d of %d bytes", ErrSizeMismatch, size-left, size)
		}
		if err != nil {
			return err
		}
	}
	// Nothing may follow the announced size.
	_, err := SizedReader(ctx, src, 0).Read(nil)
	if err == io.EOF {
		return nil
	}
	return err
}

// onlyWriter hides a file's ReadFrom, so io.CopyBuffer uses its buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// fileReader streams a blob file; ctx is checked on every Read and
// between slices of WriteTo (which lets the kernel copy into a file).
type fileReader struct {
	ctx context.Context
	f   *os.File
}

func (r *fileReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.f.Read(p)
}

func (r *fileReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := r.ctx.Err(); err != nil {
			return total, err
		}
		n, err := io.CopyN(w, r.f, copySlice)
		total += n
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (r *fileReader) Close() error { return r.f.Close() }

// Stat implements Store.
func (d *DirStore) Stat(ctx context.Context, key string) (int64, error) {
	path, err := d.path(key)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("directory store: stat %s: %w", key, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, d.describe("stat", key, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("directory store: stat %s: %s is not a regular file; remove it", key, path)
	}
	return fi.Size(), nil
}

// Delete implements Store.
func (d *DirStore) Delete(ctx context.Context, key string) error {
	path, err := d.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("directory store: delete %s: %w", key, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("directory store: delete %s: %w", key, err)
	}
	return nil
}

func (d *DirStore) describe(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("directory store %s: %s %s: %w", d.dir, op, key, ErrNotFound)
	}
	return fmt.Errorf("directory store %s: %s %s: %w", d.dir, op, key, err)
}
