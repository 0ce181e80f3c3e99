package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/internal/ident"
)

// Stats describe one transfer.
type Stats struct {
	Files int
	Bytes int64 // bytes of the artifact's files
	Moved int64 // bytes sent to or fetched from the store (0: all there already)
	Time  time.Duration
}

// Target is where artifacts are uploaded.
type Target struct {
	Store artifact.Store
	// Name describes the store in messages (never with a password).
	Name string
	// Origin is set for a store only this instance can read (see
	// Manifest.Origin).
	Origin string
	// Progress, when set, counts the bytes as they move.
	Progress *Progress
}

// Upload stores the files that patterns name (files, directories, globs;
// slash- or native-separated, relative to base) as artifact name, and
// returns its manifest. A pattern that is absolute, leaves base ("..") or
// follows a symlink out of base is refused; a blob the store has already
// is not sent again.
func Upload(ctx context.Context, t Target, base, name string, patterns []string) (*Manifest, Stats, error) {
	start := time.Now()
	var st Stats
	if err := ValidName(name); err != nil {
		return nil, st, err
	}
	fail := func(err error) (*Manifest, Stats, error) {
		return nil, st, fmt.Errorf("uploading artifact %s to %s: %w", name, t.Name, err)
	}
	if len(patterns) == 0 {
		return fail(errors.New("no paths given; pass files, directories or globs relative to the working directory"))
	}
	root, err := os.OpenRoot(base)
	if err != nil {
		return fail(err)
	}
	defer root.Close()
	c := &collector{root: root, fsys: root.FS(), seen: map[string]bool{}}
	for _, p := range patterns {
		if err := c.pattern(p); err != nil {
			return fail(err)
		}
	}
	t.Progress.setTotal(c.bytes)
	m := &Manifest{Version: Version, Name: name, Origin: t.Origin, Files: c.files, Dirs: c.dirs}
	if m.Files == nil {
		m.Files = []File{}
	}
	if len(m.Files)+len(m.Dirs) == 0 {
		return fail(errors.New("the paths hold no files or directories"))
	}
	src := make([]string, len(m.Files))
	for i, f := range m.Files {
		src[i] = f.Path
	}
	relativeToCommonRoot(m)
	var moved atomic.Int64
	var sameBlob singleflight.Group // files of equal content, hashed at once, are sent once
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelFiles())
	for i := range m.Files {
		g.Go(func() error {
			sent, err := uploadFile(gctx, t, &sameBlob, root, src[i], &m.Files[i])
			moved.Add(sent)
			if err != nil {
				return fmt.Errorf("file %s: %w", m.Files[i].Path, err)
			}
			return nil
		})
	}
	err = g.Wait()
	st.Moved = moved.Load()
	if err != nil {
		return fail(err)
	}
	if err := m.Validate(); err != nil {
		return fail(err)
	}
	blob, err := json.Marshal(Manifest{Version: m.Version, Name: m.Name, Files: m.Files, Dirs: m.Dirs})
	if err != nil {
		return fail(err)
	}
	sum := sha256.Sum256(blob)
	m.Digest = hex.EncodeToString(sum[:])
	if _, err := putIfAbsent(ctx, t.Store, m.Digest, int64(len(blob)), func() (io.Reader, func() error, error) {
		return bytes.NewReader(blob), func() error { return nil }, nil
	}); err != nil {
		return fail(fmt.Errorf("manifest: %w", err))
	}
	st.Files, st.Bytes, st.Time = len(m.Files), m.Bytes(), time.Since(start)
	return m, st, nil
}

// relativeToCommonRoot makes the manifest's paths relative to the deepest
// directory holding all of them (as actions/upload-artifact does): a
// directory "build/out" uploads as its content, a file "dist/app" as "app".
func relativeToCommonRoot(m *Manifest) {
	var parents []string
	for _, f := range m.Files {
		parents = append(parents, path.Dir(f.Path))
	}
	for _, d := range m.Dirs {
		parents = append(parents, path.Dir(d))
	}
	common := parents[0]
	for _, p := range parents[1:] {
		for common != "." && p != common && !strings.HasPrefix(p, common+"/") {
			common = path.Dir(common)
		}
	}
	if common == "." {
		return
	}
	for i := range m.Files {
		m.Files[i].Path = strings.TrimPrefix(m.Files[i].Path, common+"/")
	}
	for i := range m.Dirs {
		m.Dirs[i] = strings.TrimPrefix(m.Dirs[i], common+"/")
	}
}

// collector gathers the files and empty directories patterns name.
type collector struct {
	root  *os.Root
	fsys  fs.FS
	seen  map[string]bool
	files []File
	dirs  []string
	bytes int64 // the files' sizes when collected
}

func (c *collector) pattern(p string) error {
	if p == "" {
		return errors.New("an empty path")
	}
	if filepath.IsAbs(p) || filepath.VolumeName(p) != "" || strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) {
		return fmt.Errorf("path %q is absolute; pass paths relative to the working directory", p)
	}
	clean := path.Clean(filepath.ToSlash(p))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("path %q leaves the working directory", p)
	}
	if !strings.ContainsAny(clean, "*?[") {
		return c.add(clean)
	}
	matches, err := fs.Glob(c.fsys, clean)
	if err != nil {
		return fmt.Errorf("pattern %q: %w", p, err)
	}
	if len(matches) == 0 {
		return fmt.Errorf("pattern %q matches nothing", p)
	}
	for _, m := range matches {
		if err := c.add(m); err != nil {
			return err
		}
	}
	return nil
}

// add adds the file or directory at slash path p, following symlinks that
// stay inside the root (os.Root refuses the others).
func (c *collector) add(p string) error {
	if p != "." {
		if err := ValidPath(p); err != nil {
			return err
		}
	}
	native := filepath.FromSlash(p)
	fi, err := c.root.Lstat(native)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if fi, err = c.root.Stat(native); err != nil {
			return fmt.Errorf("%s is a symlink that cannot be followed inside the working directory (it escapes it or is broken): %w", p, err)
		}
	}
	switch {
	case fi.IsDir():
		entries, err := fs.ReadDir(c.fsys, p)
		if err != nil {
			return err
		}
		if len(entries) == 0 && p != "." && !c.seen[p] {
			c.seen[p] = true
			c.dirs = append(c.dirs, p)
		}
		for _, e := range entries {
			if err := c.add(path.Join(p, e.Name())); err != nil {
				return err
			}
		}
		return nil
	case fi.Mode().IsRegular():
		if !c.seen[p] {
			c.seen[p] = true
			c.files = append(c.files, File{Path: p, Mode: uint32(fi.Mode().Perm())})
			c.bytes += fi.Size()
		}
		return nil
	default:
		return fmt.Errorf("%s is not a regular file or directory (%s)", p, fi.Mode().Type())
	}
}

// parallelFiles is how many files of one artifact are hashed and moved at
// once: SHA-256 is the slowest step and one file's hash runs on one core.
func parallelFiles() int { return min(runtime.GOMAXPROCS(0), 4) }

// bufSize is the buffer of every copy and hash loop: large enough that
// system calls and channel hand-offs cost nothing next to SHA-256.
const bufSize = 1 << 20

// racyWindow is how recent a file's modification time may be for the
// size+mtime check to be trusted: file systems keep mtime in ticks (a few
// milliseconds on Linux, 2 s on FAT), so a write in the same tick as the
// hashing can leave size and mtime unchanged. Git calls such files "racily
// clean" and re-reads them; so does uploadFile.
const racyWindow = 2 * time.Second

// uploadFile hashes f's file, then sends it unless the store has its blob.
//
// A file that changes while it is uploaded is refused (Put fails and
// commits nothing). The digest needs a full read before the upload (it is
// the key, and content the store has is not sent again), so a second
// SHA-256 pass over the bytes being sent would double the cost of the
// slowest step. Instead the bytes are streamed as they are and, before the
// store sees the end of the stream, the open file's size and modification
// time are compared with the ones read before hashing: any write changes
// the mtime. Only for a file modified within racyWindow of the hashing,
// where a write could land in the same mtime tick, is the stream hashed
// again (verifyingReader). Downloads verify every byte in any case.
func uploadFile(ctx context.Context, t Target, sameBlob *singleflight.Group, root *os.Root, src string, f *File) (int64, error) {
	native := filepath.FromSlash(src)
	hashStart := time.Now()
	file, err := root.Open(native)
	if err != nil {
		return 0, err
	}
	defer file.Close()
	before, err := file.Stat()
	if err != nil {
		return 0, fmt.Errorf("reading: %w", err)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(onlyWriter{h}, t.Progress.counting(file, (*Progress).addFirst), make([]byte, bufSize))
	if err != nil {
		return 0, fmt.Errorf("reading: %w", err)
	}
	digest := hex.EncodeToString(h.Sum(nil))
	f.SHA256, f.Size = digest, n
	racy := !before.ModTime().Before(hashStart.Add(-racyWindow))
	led := false
	v, err, _ := sameBlob.Do(digest, func() (any, error) {
		led = true
		sent, err := putIfAbsent(ctx, t.Store, digest, n, func() (io.Reader, func() error, error) {
			if _, err := file.Seek(0, io.SeekStart); err != nil {
				return nil, nil, err
			}
			if racy {
				v := newVerifyingReader(onlyReader{file}, digest)
				return t.Progress.counting(v, (*Progress).addSecond), v.stop, nil
			}
			return t.Progress.counting(&unchangedReader{f: file, before: before}, (*Progress).addSecond), func() error { return nil }, nil
		})
		if err == nil && sent == 0 {
			t.Progress.addSecond(n) // the store had it
		}
		return sent, err
	})
	if !led {
		if err == nil {
			t.Progress.addSecond(n) // another file of this content sent it
		}
		return 0, err // the file that sent the blob counts it
	}
	return v.(int64), err
}

// errChanged is the error of an upload whose file changed meanwhile.
var errChanged = errors.New("the file changed while it was uploaded; upload it again once nothing writes to it")

// unchangedReader streams a file; at the end it returns errChanged
// instead of io.EOF when the file's size or modification time differs
// from before, so that the store's Put fails and commits nothing.
type unchangedReader struct {
	f      *os.File
	before fs.FileInfo
}

func (u *unchangedReader) Read(p []byte) (int, error) {
	n, err := u.f.Read(p)
	if err == io.EOF {
		now, serr := u.f.Stat()
		if serr != nil {
			return n, fmt.Errorf("checking that the file did not change: %w", serr)
		}
		if now.Size() != u.before.Size() || !now.ModTime().Equal(u.before.ModTime()) {
			return n, errChanged
		}
	}
	return n, err
}

// onlyWriter and onlyReader hide ReadFrom and WriteTo so that
// io.CopyBuffer uses its (large) buffer.
type onlyWriter struct{ io.Writer }

type onlyReader struct{ io.Reader }

// putIfAbsent stores a blob unless the store has it already, and returns
// the bytes sent.
func putIfAbsent(ctx context.Context, s artifact.Store, digest string, size int64, open func() (io.Reader, func() error, error)) (int64, error) {
	key, err := artifact.DigestKey(digest)
	if err != nil {
		return 0, err
	}
	got, err := s.Stat(ctx, key)
	if err == nil && got == size {
		return 0, nil
	}
	if err != nil && !errors.Is(err, artifact.ErrNotFound) {
		return 0, err
	}
	r, closeFn, err := open()
	if err != nil {
		return 0, err
	}
	defer closeFn()
	if err := s.Put(ctx, key, r, size); err != nil {
		return 0, err
	}
	return size, nil
}

// verifyingReader hashes what it yields; at the end it returns an error
// instead of io.EOF when the content is not the one hashed before (the
// file changed meanwhile), so that the store's Put fails and commits
// nothing. The hashing runs on a goroutine of its own over a copy of each
// chunk, so that it overlaps the store's sending; stop ends it.
type verifyingReader struct {
	r          io.Reader
	want       string
	h          hash.Hash
	full, free chan []byte
	hashed     chan struct{}
	// mu orders Read against stop: a store may read after its Put
	// returned (net/http can read a request body on a goroutine of its own
	// after the round trip failed); such a read gets errStopped.
	mu      sync.Mutex
	stopped bool
	end     error // what reads return once stopped: io.EOF, errChanged or errStopped
}

// errStopped is what a verifyingReader returns when read after its upload
// ended.
var errStopped = errors.New("read after the upload ended")

func newVerifyingReader(r io.Reader, want string) *verifyingReader {
	const buffers = 3
	v := &verifyingReader{r: r, want: want, h: sha256.New(), full: make(chan []byte, buffers), free: make(chan []byte, buffers), hashed: make(chan struct{})}
	for range buffers {
		v.free <- make([]byte, bufSize)
	}
	go func() {
		defer close(v.hashed)
		for b := range v.full {
			v.h.Write(b)
			v.free <- b[:cap(b)]
		}
	}()
	return v
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopped {
		return 0, v.end
	}
	n, err := v.r.Read(p)
	for off := 0; off < n; {
		buf := <-v.free
		k := copy(buf, p[off:n])
		v.full <- buf[:k]
		off += k
	}
	if err == io.EOF {
		v.stopLocked()
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			v.end = errChanged
			return n, errChanged
		}
		v.end = io.EOF
	}
	return n, err
}

// stop ends the hashing goroutine; Read must not be called afterwards.
func (v *verifyingReader) stop() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stopLocked()
	return nil
}

func (v *verifyingReader) stopLocked() {
	if !v.stopped {
		v.stopped, v.end = true, errStopped
		close(v.full)
		<-v.hashed
	}
}

// Source is where artifacts are downloaded from.
type Source struct {
	Store artifact.Store
	Name  string // describes the store in messages
	// Cache, when set, keeps verified blobs on this instance so that each
	// is fetched once; nil streams from the store each time.
	Cache *Cache
	// Progress, when set, counts the bytes as they move.
	Progress *Progress
}

// Download writes the artifact m describes into dir (created if needed).
// m is untrusted: it is validated completely first; every file is written
// under a temporary name, verified (size and SHA-256), given its mode and
// only then renamed to its final name. Nothing is written outside dir:
// paths are opened through os.Root, which refuses "..", absolute paths and
// symlinks (already in dir) that lead out of it.
func Download(ctx context.Context, src Source, m *Manifest, dir string) (Stats, error) {
	start := time.Now()
	var st Stats
	if err := m.Validate(); err != nil {
		return st, fmt.Errorf("downloading an artifact from %s: refused: %w", src.Name, err)
	}
	fail := func(err error) (Stats, error) {
		return st, fmt.Errorf("downloading artifact %s from %s into %s: %w", m.Name, src.Name, dir, err)
	}
	src.Progress.setTotal(m.Bytes())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fail(err)
	}
	defer root.Close()
	for _, d := range m.Dirs {
		if err := root.MkdirAll(filepath.FromSlash(d), 0o755); err != nil {
			return fail(fmt.Errorf("directory %s: %w", d, err))
		}
	}
	var moved atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelFiles())
	for _, f := range m.Files {
		g.Go(func() error {
			n, err := downloadFile(gctx, src, root, f)
			moved.Add(n)
			if err != nil {
				return fmt.Errorf("file %s: %w", f.Path, err)
			}
			return nil
		})
	}
	err = g.Wait()
	st.Moved = moved.Load()
	if err != nil {
		return fail(err)
	}
	st.Files, st.Bytes, st.Time = len(m.Files), m.Bytes(), time.Since(start)
	return st, nil
}

func downloadFile(ctx context.Context, src Source, root *os.Root, f File) (moved int64, err error) {
	native := filepath.FromSlash(f.Path)
	if parent := filepath.Dir(native); parent != "." {
		if err := root.MkdirAll(parent, 0o755); err != nil {
			return 0, err
		}
	}
	tmp := filepath.Join(filepath.Dir(native), ".modpipe-"+ident.Random(8)+".tmp")
	out, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	committed := false
	defer func() {
		if !committed {
			out.Close()
			_ = root.Remove(tmp)
		}
	}()
	var rc io.ReadCloser
	var r io.Reader
	if src.Cache != nil {
		// A blob this call fetches is written to out as it is cached.
		rc, moved, err = src.Cache.Open(ctx, f.SHA256, f.Size, src.Progress, out)
		if rc != nil {
			r = src.Progress.counting(rc, (*Progress).addSecond)
		}
	} else {
		// One pass: what is fetched is written.
		rc, err = openBlob(ctx, src.Store, f.SHA256)
		moved = f.Size
		r = src.Progress.counting(rc, (*Progress).addFirst, (*Progress).addSecond)
	}
	if err != nil {
		return moved, err
	}
	if rc != nil {
		defer rc.Close()
		if err := copyVerified(ctx, out, r, f.SHA256, f.Size, src.Name); err != nil {
			return moved, err
		}
	}
	if err := out.Close(); err != nil {
		return moved, err
	}
	if err := root.Chmod(tmp, fs.FileMode(f.Mode)); err != nil {
		return moved, err
	}
	if err := root.Rename(tmp, native); err != nil {
		return moved, err
	}
	committed = true
	return moved, nil
}

func openBlob(ctx context.Context, s artifact.Store, digest string) (io.ReadCloser, error) {
	key, err := artifact.DigestKey(digest)
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, key)
}

// ErrDigestMismatch is wrapped by errors for content that does not match
// the digest its manifest gives.
var ErrDigestMismatch = errors.New("content does not match its SHA-256")

// copyVerified copies r to w, checking that r yields exactly size bytes
// whose SHA-256 is digest. SHA-256 is the slowest step, so it runs on a
// goroutine of its own, over the chunk just written while the next one is
// read and written: the copy takes about as long as the hashing alone.
// The caller commits w only when copyVerified returns nil.
func copyVerified(ctx context.Context, w io.Writer, r io.Reader, digest string, size int64, storeName string) error {
	const buffers = 3
	full := make(chan []byte, buffers)
	free := make(chan []byte, buffers)
	for range buffers {
		free <- make([]byte, bufSize)
	}
	h := sha256.New()
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for b := range full {
			h.Write(b)
			free <- b[:cap(b)]
		}
	}()
	src := artifact.ContextReader(ctx, io.NopCloser(io.LimitReader(r, size+1)))
	var n int64
	var err error
	for err == nil {
		buf := <-free
		var k int
		k, err = io.ReadFull(src, buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				err = werr
				break
			}
			n += int64(k)
			full <- buf[:k]
		}
	}
	close(full)
	<-hashed
	if err != io.EOF && err != io.ErrUnexpectedEOF {
		return err
	}
	if n != size {
		return fmt.Errorf("%w: the blob in %s has %d bytes, the manifest says %d (truncated or tampered with; nothing was kept)", ErrDigestMismatch, storeName, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("%w: the blob in %s has SHA-256 %s, the manifest says %s (tampered with or damaged; nothing was kept)", ErrDigestMismatch, storeName, got, digest)
	}
	return nil
}
