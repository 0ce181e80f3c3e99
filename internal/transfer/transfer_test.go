package transfer

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modpipe/modpipe/artifact"
)

// countingStore counts Puts, bytes put and Gets of a wrapped store.
type countingStore struct {
	artifact.Store
	puts, putBytes, gets atomic.Int64
	gate                 chan struct{} // when set, Get waits for it
}

func (c *countingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	c.puts.Add(1)
	c.putBytes.Add(size)
	return c.Store.Put(ctx, key, r, size)
}

func (c *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	c.gets.Add(1)
	if c.gate != nil {
		<-c.gate
	}
	return c.Store.Get(ctx, key)
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func newStore(t *testing.T) (*countingStore, string) {
	dir := t.TempDir()
	return &countingStore{Store: artifact.NewDirStore(dir)}, dir
}

func TestUploadDownloadRoundTripKeepsModesAndEmptyDirs(t *testing.T) {
	base := t.TempDir()
	write(t, filepath.Join(base, "dist", "app"), "#!/bin/sh\necho hi\n", 0o755)
	write(t, filepath.Join(base, "dist", "sub", "notes.txt"), "notes", 0o644)
	write(t, filepath.Join(base, "a.log"), "log a", 0o644)
	write(t, filepath.Join(base, "b.log"), "log b", 0o600)
	write(t, filepath.Join(base, "c.txt"), "not matched", 0o644)
	if err := os.MkdirAll(filepath.Join(base, "dist", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	store, _ := newStore(t)
	ctx := context.Background()
	m, st, err := Upload(ctx, Target{Store: store, Name: "test store"}, base, "out", []string{"dist", "*.log"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 4 || len(m.Dirs) != 1 || m.Dirs[0] != "dist/empty" {
		t.Fatalf("files %d dirs %v, want 4 files and dist/empty", st.Files, m.Dirs)
	}
	dst := t.TempDir()
	src := Source{Store: store, Name: "test store", Cache: NewCache(t.TempDir(), store, "test store")}
	if _, err := Download(ctx, src, m, dst); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path, content string
		mode          os.FileMode
	}{{"dist/app", "#!/bin/sh\necho hi\n", 0o755}, {"dist/sub/notes.txt", "notes", 0o644}, {"a.log", "log a", 0o644}, {"b.log", "log b", 0o600}} {
		p := filepath.Join(dst, filepath.FromSlash(f.path))
		b, err := os.ReadFile(p)
		if err != nil || string(b) != f.content {
			t.Errorf("%s: %q, %v; want %q", f.path, b, err, f.content)
		}
		fi, err := os.Stat(p)
		if err == nil && runtime.GOOS != "windows" && fi.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.path, fi.Mode().Perm(), f.mode)
		}
	}
	if fi, err := os.Stat(filepath.Join(dst, "dist", "empty")); err != nil || !fi.IsDir() {
		t.Errorf("empty directory not recreated: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "c.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("c.txt was not asked for but is there: %v", err)
	}
	if m.Digest == "" {
		t.Error("no manifest digest")
	}
}

func TestSecondUploadOfUnchangedContentSendsNothing(t *testing.T) {
	base := t.TempDir()
	write(t, filepath.Join(base, "bin", "tool"), strings.Repeat("x", 100_000), 0o755)
	write(t, filepath.Join(base, "bin", "copy"), strings.Repeat("x", 100_000), 0o755) // same content
	store, _ := newStore(t)
	ctx := context.Background()
	_, st, err := Upload(ctx, Target{Store: store, Name: "s"}, base, "one", []string{"bin"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Moved != 100_000 {
		t.Errorf("first upload sent %d bytes, want 100000 (two files of the same content are one blob)", st.Moved)
	}
	puts := store.puts.Load()
	_, st, err = Upload(ctx, Target{Store: store, Name: "s"}, base, "one", []string{"bin"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Moved != 0 || store.puts.Load() != puts {
		t.Errorf("second upload sent %d bytes in %d Puts, want 0", st.Moved, store.puts.Load()-puts)
	}
}

func TestUploadRefusesEscapes(t *testing.T) {
	parent := t.TempDir()
	base := filepath.Join(parent, "work")
	write(t, filepath.Join(base, "ok.txt"), "ok", 0o644)
	write(t, filepath.Join(parent, "secret.txt"), "secret", 0o644)
	cases := map[string]string{
		"dotdot":   "../secret.txt",
		"dotdot2":  "sub/../../secret.txt",
		"absolute": filepath.Join(parent, "secret.txt"),
	}
	if runtime.GOOS != "windows" {
		if err := os.Symlink(filepath.Join(parent, "secret.txt"), filepath.Join(base, "link")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(parent, filepath.Join(base, "dirlink")); err != nil {
			t.Fatal(err)
		}
		cases["symlink"] = "link"
		cases["symlink-dir"] = "dirlink/secret.txt"
		cases["symlink-in-dir"] = "."
		cases["glob-symlink"] = "li*"
	} else {
		cases["drive"] = `C:\Windows\win.ini`
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			store, dir := newStore(t)
			_, _, err := Upload(context.Background(), Target{Store: store, Name: "s"}, base, "a", []string{p})
			if err == nil {
				t.Fatalf("uploading %q succeeded", p)
			}
			if store.puts.Load() != 0 {
				t.Errorf("%d blobs stored", store.puts.Load())
			}
			if !strings.Contains(err.Error(), "artifact a") {
				t.Errorf("error does not name the artifact: %v", err)
			}
			_ = dir
		})
	}
}

func validManifest(t *testing.T, store artifact.Store) *Manifest {
	t.Helper()
	base := t.TempDir()
	write(t, filepath.Join(base, "f.txt"), "hello", 0o644)
	m, _, err := Upload(context.Background(), Target{Store: store, Name: "s"}, base, "art", []string{"f.txt"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDownloadRefusesEscapingManifests(t *testing.T) {
	store, _ := newStore(t)
	good := validManifest(t, store)
	paths := map[string]string{
		"dotdot":       "../evil",
		"dotdot-deep":  "a/../../evil",
		"absolute":     "/tmp/evil",
		"drive":        "C:/evil",
		"drive-rel":    "c:evil",
		"backslash":    `..\evil`,
		"empty-seg":    "a//b",
		"dot":          "./a",
		"nul":          "a\x00b",
		"trailing":     "a/",
		"colon-stream": "a:stream",
	}
	for name, p := range paths {
		t.Run(name, func(t *testing.T) {
			m := *good
			m.Files = []File{good.Files[0]}
			m.Files[0].Path = p
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			_, err := Download(context.Background(), Source{Store: store, Name: "s"}, &m, dst)
			if err == nil {
				t.Fatalf("manifest path %q accepted", p)
			}
			assertNothingOutside(t, parent, dst)
		})
	}
	t.Run("dir-dotdot", func(t *testing.T) {
		m := *good
		m.Dirs = []string{"../evil"}
		parent := t.TempDir()
		if _, err := Download(context.Background(), Source{Store: store, Name: "s"}, &m, filepath.Join(parent, "dst")); err == nil {
			t.Fatal("directory ../evil accepted")
		}
		assertNothingOutside(t, parent, filepath.Join(parent, "dst"))
	})
	if runtime.GOOS != "windows" {
		t.Run("symlink-in-target", func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			outside := filepath.Join(parent, "outside")
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, filepath.Join(dst, "sub")); err != nil {
				t.Fatal(err)
			}
			m := *good
			m.Files = []File{good.Files[0]}
			m.Files[0].Path = "sub/f.txt"
			if _, err := Download(context.Background(), Source{Store: store, Name: "s"}, &m, dst); err == nil {
				t.Fatal("a file was written through a symlink leading out of the target")
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Fatalf("written outside the target: %v", entries)
			}
		})
	}
}

func assertNothingOutside(t *testing.T, parent, dst string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Join(parent, e.Name()) != dst {
			t.Errorf("%s written outside the target", e.Name())
		}
	}
}

func TestDownloadRefusesTamperedAndTruncatedBlobs(t *testing.T) {
	for _, tc := range []struct{ name, content string }{{"tampered", "HELLO"}, {"truncated", "hel"}, {"longer", "hello!"}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cached := range []bool{false, true} {
				inner, storeDir := newStore(t)
				m := validManifest(t, inner)
				// Overwrite the blob behind the store's back.
				key, _ := artifact.DigestKey(m.Files[0].SHA256)
				if err := os.WriteFile(filepath.Join(storeDir, filepath.FromSlash(key))+"~", []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
				src := Source{Store: inner, Name: "the test store"}
				if cached {
					src.Cache = NewCache(t.TempDir(), inner, "the test store")
				}
				dst := t.TempDir()
				_, err := Download(context.Background(), src, m, dst)
				if !errors.Is(err, ErrDigestMismatch) {
					t.Fatalf("cached=%v: err %v, want ErrDigestMismatch", cached, err)
				}
				for _, want := range []string{"artifact art", "file f.txt", "the test store"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if entries, _ := os.ReadDir(dst); len(entries) != 0 {
					t.Errorf("cached=%v: files left in the target: %v", cached, entries)
				}
				if src.Cache != nil {
					if entries, _ := os.ReadDir(src.Cache.dir); len(entries) != 0 {
						t.Errorf("the cache kept %v", entries)
					}
				}
			}
		})
	}
}

func TestConcurrentDownloadsFetchOnce(t *testing.T) {
	store, _ := newStore(t)
	m := validManifest(t, store)
	store.gate = make(chan struct{})
	cache := NewCache(t.TempDir(), store, "s")
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	var moved atomic.Int64
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := Download(context.Background(), Source{Store: store, Name: "s", Cache: cache}, m, filepath.Join(t.TempDir(), "d", string(rune('a'+i))))
			moved.Add(st.Moved)
			errs <- err
		}()
	}
	// Let the first Get through once it arrived; the others share it or
	// find the blob cached.
	for store.gets.Load() == 0 {
		runtime.Gosched()
	}
	close(store.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if g := store.gets.Load(); g != 1 {
		t.Errorf("%d Gets for one blob downloaded %d times on one instance, want 1", g, n)
	}
	// The download that fetched the blob reports it as moved, once.
	if got, want := moved.Load(), m.Bytes(); got != want {
		t.Errorf("the downloads report %d bytes moved in all, want %d (one fetch)", got, want)
	}
}

func TestValidateRefusesInconsistentManifests(t *testing.T) {
	d := strings.Repeat("a", 64)
	for name, m := range map[string]Manifest{
		"version":    {Version: "v0", Name: "a", Files: []File{}},
		"name-slash": {Version: Version, Name: "a/b", Files: []File{}},
		"name-dots":  {Version: Version, Name: "..", Files: []File{}},
		"duplicate":  {Version: Version, Name: "a", Files: []File{{Path: "x", SHA256: d}, {Path: "X", SHA256: d}}},
		"file-dir":   {Version: Version, Name: "a", Files: []File{{Path: "x", SHA256: d}, {Path: "x/y", SHA256: d}}},
		"dir-file":   {Version: Version, Name: "a", Files: []File{{Path: "x", SHA256: d}}, Dirs: []string{"x"}},
		"bad-digest": {Version: Version, Name: "a", Files: []File{{Path: "x", SHA256: "zz"}}},
		"setuid":     {Version: Version, Name: "a", Files: []File{{Path: "x", SHA256: d, Mode: 0o4755}}},
		"negative":   {Version: Version, Name: "a", Files: []File{{Path: "x", SHA256: d, Size: -1}}},
	} {
		if err := m.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	d := strings.Repeat("0", 64)
	f.Add(`{"modpipe_artifact":"v1","name":"a","files":[{"path":"x/y","size":1,"mode":493,"sha256":"` + d + `"}],"dirs":["e"]}`)
	f.Add(`{"modpipe_artifact":"v1","name":"a","files":[{"path":"../x","size":1,"mode":420,"sha256":"` + d + `"}]}`)
	f.Add(`{"modpipe_artifact":"v1","name":"a","files":[{"path":"C:/x","size":1,"mode":420,"sha256":"` + d + `"}]}`)
	f.Add(`{"modpipe_artifact":"v1","name":"a","files":[],"dirs":["/abs"]}`)
	f.Add(`{"modpipe_artifact":"v1","name":"a","files":null,"extra":1}`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Decode(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, file := range m.Files {
			if !filepath.IsLocal(filepath.FromSlash(file.Path)) || strings.Contains(file.Path, "..") && ValidPath(file.Path) != nil {
				t.Fatalf("accepted path %q", file.Path)
			}
		}
		for _, d := range m.Dirs {
			if !filepath.IsLocal(filepath.FromSlash(d)) {
				t.Fatalf("accepted directory %q", d)
			}
		}
		if ValidName(m.Name) != nil {
			t.Fatalf("accepted name %q", m.Name)
		}
	})
}

func TestManifestPathsAreRelativeToTheCommonRoot(t *testing.T) {
	base := t.TempDir()
	write(t, filepath.Join(base, "build", "out", "bin", "app"), "app", 0o755)
	write(t, filepath.Join(base, "build", "out", "README"), "readme", 0o644)
	write(t, filepath.Join(base, "build", "other", "x"), "x", 0o644)
	store, _ := newStore(t)
	for _, tc := range []struct {
		paths []string
		want  []string
	}{
		{[]string{"build/out"}, []string{"README", "bin/app"}},
		{[]string{"build/out/bin/app"}, []string{"app"}},
		{[]string{"build/out", "build/other"}, []string{"out/README", "out/bin/app", "other/x"}},
		{[]string{"build/*/bin/app", "build/other/x"}, []string{"out/bin/app", "other/x"}},
	} {
		m, _, err := Upload(context.Background(), Target{Store: store, Name: "s"}, base, "a", tc.paths)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range m.Files {
			got = append(got, f.Path)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%v: paths %v, want %v", tc.paths, got, tc.want)
		}
	}
}

// meddlingStore runs meddle once, after the first bytes a Put read, as a
// program writing to the file being uploaded would.
type meddlingStore struct {
	artifact.Store
	meddle func()
}

func (m *meddlingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return m.Store.Put(ctx, key, &meddlingReader{r: r, meddle: m.meddle}, size)
}

type meddlingReader struct {
	r      io.Reader
	meddle func()
	done   bool
}

func (m *meddlingReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if n > 0 && !m.done {
		m.done = true
		m.meddle()
	}
	return n, err
}

func TestUploadRefusesAFileThatChangesDuringUpload(t *testing.T) {
	for _, tc := range []struct {
		name string
		// age is how old the file's mtime is before the upload; restore
		// puts the mtime back after the change, as a writer might.
		age     time.Duration
		restore bool
	}{
		// An old file takes the size+mtime check: the write changes mtime.
		{name: "old file, mtime changes", age: time.Hour},
		// A file modified just now is hashed again while it is sent, so
		// even a change that keeps size and mtime is caught.
		{name: "fresh file, mtime kept", age: 0, restore: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			path := filepath.Join(base, "out", "blob")
			write(t, path, strings.Repeat("a", 3*bufSize+17), 0o644)
			mtime := time.Now().Add(-tc.age)
			if err := os.Chtimes(path, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			store := &meddlingStore{Store: artifact.NewDirStore(dir), meddle: func() {
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := f.WriteAt([]byte("CHANGED"), 2*bufSize); err != nil {
					t.Error(err)
				}
				if err := f.Close(); err != nil {
					t.Error(err)
				}
				if tc.restore {
					if err := os.Chtimes(path, mtime, mtime); err != nil {
						t.Error(err)
					}
				}
			}}
			_, _, err := Upload(context.Background(), Target{Store: store, Name: "s"}, base, "a", []string{"out"})
			if err == nil || !errors.Is(err, errChanged) {
				t.Fatalf("Upload of a file changed meanwhile: err = %v, want one wrapping %q", err, errChanged)
			}
			blobs, err := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
			if err != nil {
				t.Fatal(err)
			}
			if len(blobs) != 0 {
				t.Errorf("the store holds %v after a refused upload, want nothing", blobs)
			}
		})
	}
}
