package transfer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modpipe/modpipe/artifact"
)

// midwayStore calls at once Put or Get has passed half of a blob larger
// than 1 MiB to the store, then lets the rest through.
type midwayStore struct {
	artifact.Store
	at func()
}

func (m *midwayStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if size <= 1<<20 {
		return m.Store.Put(ctx, key, r, size)
	}
	return m.Store.Put(ctx, key, io.MultiReader(io.LimitReader(r, size/2), &callFirst{r: r, f: m.at}), size)
}

func (m *midwayStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := m.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	size, err := m.Store.Stat(ctx, key)
	if err != nil || size <= 1<<20 {
		return rc, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, size/2), &callFirst{r: rc, f: m.at}), rc}, nil
}

type callFirst struct {
	r      io.Reader
	f      func()
	called bool
}

func (c *callFirst) Read(p []byte) (int, error) {
	if !c.called {
		c.called = true
		c.f()
	}
	return c.r.Read(p)
}

// TestProgressCountsBothPasses: an upload halfway through sending its one
// file has hashed all of it (the first pass) and sent half (the second),
// so it is three quarters done; a first download halfway through fetching
// (written into the cache and the target at once) is half done; both end
// at the artifact's size.
func TestProgressCountsBothPasses(t *testing.T) {
	const size = 4 << 20
	base := t.TempDir()
	write(t, filepath.Join(base, "big.bin"), string(bytes.Repeat([]byte{7}, size)), 0o644)
	write(t, filepath.Join(base, "small.txt"), "small", 0o644)
	ms := &midwayStore{Store: artifact.NewDirStore(t.TempDir())}
	var midDone, midTotal int64
	up := &Progress{}
	ms.at = func() { midDone, midTotal = up.Snapshot() }
	m, _, err := Upload(context.Background(), Target{Store: ms, Name: "s", Progress: up}, base, "art", []string{"big.bin", "small.txt"})
	if err != nil {
		t.Fatal(err)
	}
	const all = size + 5
	// The small file may or may not have been handled at that point.
	if midTotal != all || midDone < size*3/4 || midDone > size*3/4+5 {
		t.Errorf("upload halfway: %d of %d done, want about %d of %d", midDone, midTotal, size*3/4, all)
	}
	if done, total := up.Snapshot(); done != all || total != all {
		t.Errorf("upload ended at %d of %d, want %d of %d", done, total, all, all)
	}

	down := &Progress{}
	ms.at = func() { midDone, midTotal = down.Snapshot() }
	src := Source{Store: ms, Name: "s", Cache: NewCache(t.TempDir(), ms, "s"), Progress: down}
	if _, err := Download(context.Background(), src, m, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if midTotal != all || midDone < size/2 || midDone > size/2+5 {
		t.Errorf("download halfway: %d of %d done, want about %d of %d", midDone, midTotal, size/2, all)
	}
	if done, total := down.Snapshot(); done != all || total != all {
		t.Errorf("download ended at %d of %d, want %d of %d", done, total, all, all)
	}

	// Again: the store and the cache have everything; progress still
	// reaches the end (nothing moves, both passes are counted as found).
	again, cached := &Progress{}, &Progress{}
	if _, _, err := Upload(context.Background(), Target{Store: ms, Name: "s", Progress: again}, base, "art", []string{"big.bin", "small.txt"}); err != nil {
		t.Fatal(err)
	}
	src.Progress = cached
	if _, err := Download(context.Background(), src, m, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	for what, p := range map[string]*Progress{"second upload": again, "cached download": cached} {
		if done, total := p.Snapshot(); done != all || total != all {
			t.Errorf("%s ended at %d of %d, want %d of %d", what, done, total, all, all)
		}
	}

	// Without a cache a download is one pass, counted for both.
	direct := &Progress{}
	ms.at = func() { midDone, midTotal = direct.Snapshot() }
	if _, err := Download(context.Background(), Source{Store: ms, Name: "s", Progress: direct}, m, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if midDone < size/2 || midDone > size/2+5 {
		t.Errorf("direct download halfway: %d done, want about %d", midDone, size/2)
	}
}

func TestReportPolicy(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type tick struct {
		sec  int
		done int64
		want bool
	}
	for name, ticks := range map[string][]tick{
		"quiet at first, whatever the progress": {{1, 50, false}, {9, 90, false}},
		"a line per quarter, 10 s apart": {
			{10, 10, false}, {11, 30, true}, {12, 55, false}, {21, 55, true}, {25, 60, false}, {31, 76, true}, {41, 99, false},
		},
		"a line a minute when slow": {{10, 1, false}, {59, 2, false}, {60, 3, true}, {100, 4, false}, {120, 5, true}},
		"no line once done":         {{30, 100, false}, {200, 100, false}},
	} {
		t.Run(name, func(t *testing.T) {
			p := reportPolicy{first: 10 * time.Second, every: time.Minute, start: t0, last: t0}
			for _, k := range ticks {
				if got := p.due(at(k.sec), k.done, 100); got != k.want {
					t.Errorf("at %d s with %d%% done: line %v, want %v", k.sec, k.done, got, k.want)
				}
			}
		})
	}
	if (&reportPolicy{first: time.Second, every: time.Second, start: t0, last: t0}).due(at(5), 0, 0) {
		t.Error("a line for a transfer of unknown size")
	}
}

// TestReportDuringAnUpload: the reporter, on a clock the test moves, logs
// a line while the upload is halfway through sending, with the bytes done,
// the total and the rate; stopping it ends its goroutine.
func TestReportDuringAnUpload(t *testing.T) {
	defer goleak.VerifyNone(t)
	const size = 2 << 20
	base := t.TempDir()
	write(t, filepath.Join(base, "big.bin"), string(bytes.Repeat([]byte{1}, size)), 0o644)
	ticks := make(chan time.Time)
	t0 := time.Unix(1000, 0)
	now := t0
	type line struct{ done, total, rate int64 }
	var lines []line
	p := &Progress{}
	stop := p.Report(Reporter{
		Ticks: ticks,
		Now:   func() time.Time { return now },
		Log:   func(d, tot, r int64) { lines = append(lines, line{d, tot, r}) },
	})
	ms := &midwayStore{Store: artifact.NewDirStore(t.TempDir()), at: func() {
		ticks <- t0.Add(12 * time.Second) // the reporter reads Now when it gets the tick
		ticks <- t0                       // taken once the first tick is handled
	}}
	now = t0.Add(12 * time.Second)
	if _, _, err := Upload(context.Background(), Target{Store: ms, Name: "s", Progress: p}, base, "art", []string{"big.bin"}); err != nil {
		t.Fatal(err)
	}
	stop()
	stop() // a second call does nothing
	if len(lines) != 1 {
		t.Fatalf("lines %v, want one", lines)
	}
	want := line{size * 3 / 4, size, size * 3 / 4 / 12}
	if lines[0] != want {
		t.Errorf("line %+v, want %+v", lines[0], want)
	}
}

func TestProgressNilCountsNothing(t *testing.T) {
	var p *Progress
	p.setTotal(5)
	p.addFirst(5)
	if d, tot := p.Snapshot(); d != 0 || tot != 0 {
		t.Errorf("nil progress: %d of %d", d, tot)
	}
	r := p.counting(bytes.NewReader([]byte("x")), (*Progress).addFirst)
	if _, ok := r.(*bytes.Reader); !ok {
		t.Errorf("nil progress wraps the reader: %T", r)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestCacheWritesAFetchedBlobOnceIntoTheDownload: the call that fetches a
// blob gets it written into its own writer while it is cached (one pass,
// one SHA-256), later calls read it from the cache; a writer that fails
// fails only that call, not the cache.
func TestCacheWritesAFetchedBlobOnceIntoTheDownload(t *testing.T) {
	store, _ := newStore(t)
	m := validManifest(t, store)
	f := m.Files[0]
	cache := NewCache(t.TempDir(), store, "s")
	var into bytes.Buffer
	rc, moved, err := cache.Open(context.Background(), f.SHA256, f.Size, nil, &into)
	if err != nil || rc != nil || moved != f.Size || into.String() != "hello" {
		t.Fatalf("first Open: reader %v, moved %d, into %q, %v; want the blob written into the writer", rc, moved, into.String(), err)
	}
	rc, moved, err = cache.Open(context.Background(), f.SHA256, f.Size, nil, &into)
	if err != nil || rc == nil || moved != 0 {
		t.Fatalf("second Open: reader %v, moved %d, %v; want the cached blob", rc, moved, err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "hello" || store.gets.Load() != 1 {
		t.Errorf("cached %q after %d Gets, want hello after 1", got, store.gets.Load())
	}

	other := NewCache(t.TempDir(), store, "s")
	if _, _, err := other.Open(context.Background(), f.SHA256, f.Size, nil, failingWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("a failing writer: %v", err)
	}
	rc, moved, err = other.Open(context.Background(), f.SHA256, f.Size, nil, nil)
	if err != nil || rc == nil || moved != 0 {
		t.Fatalf("after a failing writer the cache lacks the blob: %v %d %v", rc, moved, err)
	}
	rc.Close()
}

// abandoningStore's Put reads a little and fails, as a store does whose
// connection breaks.
type abandoningStore struct{ artifact.Store }

func (abandoningStore) Put(_ context.Context, _ string, r io.Reader, _ int64) error {
	_, _ = r.Read(make([]byte, 10))
	return errors.New("connection reset")
}

// TestFreshFileUploadThatFailsLeavesNoGoroutine: a file written just now
// is hashed again while it is sent, on a goroutine of its own; a Put that
// gives up midway ends it.
func TestFreshFileUploadThatFailsLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t)
	base := t.TempDir()
	write(t, filepath.Join(base, "fresh.bin"), strings.Repeat("x", 3*bufSize), 0o644)
	_, _, err := Upload(context.Background(), Target{Store: abandoningStore{artifact.NewDirStore(t.TempDir())}, Name: "s"}, base, "a", []string{"fresh.bin"})
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("err = %v, want the store's error", err)
	}
}
