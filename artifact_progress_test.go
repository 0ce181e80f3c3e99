package modpipe

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/internal/transfer"
)

// halfwayStore calls at when a Put or Get of more than 1 MiB is halfway.
type halfwayStore struct {
	artifact.Store
	at func()
}

func (h halfwayStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if size <= 1<<20 {
		return h.Store.Put(ctx, key, r, size)
	}
	return h.Store.Put(ctx, key, io.MultiReader(io.LimitReader(r, size/2), readerFunc(func(p []byte) (int, error) {
		h.at()
		return 0, io.EOF
	}), r), size)
}

func (h halfwayStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := h.Store.Get(ctx, key)
	if size, serr := h.Store.Stat(ctx, key); err != nil || serr != nil || size <= 1<<20 {
		return rc, err
	}
	size, _ := h.Store.Stat(ctx, key)
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, size/2), readerFunc(func(p []byte) (int, error) {
		h.at()
		return 0, io.EOF
	}), rc), rc}, nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestLongTransfersLogProgress: without a live view, an upload and a
// download that run long (the test moves the reporter's clock 12 s while
// each is halfway) get a progress line in the module's log.
func TestLongTransfersLogProgress(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.MkdirAll("dist", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("dist", "big.bin"), make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ticks := make(chan time.Time)
	t0 := time.Unix(1000, 0)
	later := t0.Add(12 * time.Second)
	var fresh atomic.Bool // the reporter's Now: t0 at its start, later afterwards
	now := func() time.Time {
		if fresh.CompareAndSwap(true, false) {
			return t0
		}
		return later
	}
	store := halfwayStore{Store: artifact.NewDirStore(t.TempDir()), at: func() {
		for range 2 { // the first tick is handled once the reporter takes the second
			select {
			case ticks <- later:
			case <-time.After(20 * time.Second):
				t.Error("no progress reporter takes ticks")
				return
			}
		}
	}}
	build := New("build", func(c *Context) (Artifact, error) {
		fresh.Store(true)
		return c.Upload("big", "dist")
	})
	use := Task("use", func(c *Context) error {
		a, err := Result(c, build)
		if err != nil {
			return err
		}
		fresh.Store(true)
		return c.Download(a, "got")
	}, DependsOn(build))
	p := NewPipeline().Add(build, use).UseArtifactStore(store)
	p.art.progress = transfer.Reporter{Ticks: ticks, Now: now}
	code, stdout, stderr := runMain(t, p, nil)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	for _, want := range []string{
		"uploading artifact big: 3.0 MiB of 4.0 MiB (75%), 256.0 KiB/s",
		// Halfway through the fetch, which writes into the instance's
		// cache and the target at once.
		"downloading artifact big: 2.0 MiB of 4.0 MiB (50%), 170.7 KiB/s",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the output lacks %q:\n%s", want, stdout)
		}
	}
}

// getCountingStore counts Gets.
type getCountingStore struct {
	artifact.Store
	gets atomic.Int64
}

func (g *getCountingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	g.gets.Add(1)
	return g.Store.Get(ctx, key)
}

// TestArtifactBytesMoveOnlyOnDownload: a dependent that reads a result
// holding an artifact gets the manifest only; the store is read when, and
// only when, a module calls Download.
func TestArtifactBytesMoveOnlyOnDownload(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("app", []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	store := &getCountingStore{Store: artifact.NewDirStore(t.TempDir())}
	type built struct{ App Artifact }
	build := New("build", func(c *Context) (built, error) {
		a, err := c.Upload("app", "app")
		return built{App: a}, err
	})
	var getsBeforeDownload int64 = -1
	look := Task("look", func(c *Context) error {
		b, err := Result(c, build)
		if err != nil {
			return err
		}
		if b.App.Bytes() != 6 || len(b.App.Files) != 1 {
			return fmt.Errorf("the manifest says %d files, %d bytes", len(b.App.Files), b.App.Bytes())
		}
		getsBeforeDownload = store.gets.Load()
		return nil
	}, DependsOn(build))
	fetch := Task("fetch", func(c *Context) error {
		b, err := Result(c, build)
		if err != nil {
			return err
		}
		return c.Download(b.App, "got")
	}, DependsOn(build, look))
	code, stdout, stderr := runMain(t, NewPipeline().Add(build, look, fetch).UseArtifactStore(store), nil)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	if getsBeforeDownload != 0 {
		t.Errorf("the store was read %d times before any Download", getsBeforeDownload)
	}
	if store.gets.Load() == 0 {
		t.Error("Download read nothing from the store")
	}
}
