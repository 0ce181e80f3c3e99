package redis_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/artifact/storetest"
	"github.com/modpipe/modpipe/distributed/redis"
	"github.com/modpipe/modpipe/internal/redistest"
)

var artRunSeq atomic.Int64

func newArtifactStore(t *testing.T, url string, opts ...redis.ArtifactOption) (*redis.ArtifactStore, string) {
	t.Helper()
	runID := fmt.Sprintf("art-%d", artRunSeq.Add(1))
	s := redis.NewArtifactStore(redis.Options{URL: url, RunID: runID}, opts...)
	t.Cleanup(func() { _ = s.Close() })
	return s, runID
}

func rawClient(t *testing.T, srv *redistest.Server) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestArtifactStoreConformance(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) artifact.Store {
		s, _ := newArtifactStore(t, srv.URL())
		return s
	})
}

func TestArtifactStoreConformanceSmallChunks(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) artifact.Store {
		s, _ := newArtifactStore(t, srv.URL(), redis.WithArtifactChunkSize(100<<10))
		return s
	})
}

func TestArtifactBudget(t *testing.T) {
	srv := redistest.Start(t)
	const budget = 3 << 20
	s, _ := newArtifactStore(t, srv.URL(), redis.WithArtifactBudget(budget))
	ctx := context.Background()
	put := func(key string, size int64) error {
		return s.Put(ctx, key, bytes.NewReader(make([]byte, size)), size)
	}
	used := func(want int64) {
		t.Helper()
		if n, err := s.Used(ctx); err != nil || n != want {
			t.Fatalf("Used = %d, %v; want %d", n, err, want)
		}
	}
	if err := put("a", 2<<20); err != nil {
		t.Fatal(err)
	}
	used(2 << 20)
	err := put("b", 2<<20)
	if !errors.Is(err, artifact.ErrStoreFull) {
		t.Fatalf("Put over budget: %v; want an error wrapping artifact.ErrStoreFull", err)
	}
	for _, want := range []string{fmt.Sprint(budget), "WithArtifactBudget", fmt.Sprint(2 << 20)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("budget error does not mention %q: %v", want, err)
		}
	}
	if _, err := s.Stat(ctx, "b"); !errors.Is(err, artifact.ErrNotFound) {
		t.Fatalf("a refused Put left something: %v", err)
	}
	used(2 << 20)
	// Overwrites release the value they replace (until they commit both
	// count).
	for range 4 {
		if err := put("a", 1<<20); err != nil {
			t.Fatalf("overwrite within budget: %v", err)
		}
		used(1 << 20)
	}
	// A failed Put releases its reservation.
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	used(0)
	boom := errors.New("boom")
	err = s.Put(ctx, "c", io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), errReader{boom}), 2<<20)
	if !errors.Is(err, boom) {
		t.Fatalf("Put with a failing reader: %v", err)
	}
	used(0)
	if err := put("b", 2<<20); err != nil {
		t.Fatalf("Put after space was freed: %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Every key the store writes carries the retention as TTL, and a deleted
// or failed blob leaves no chunk behind.
func TestArtifactKeysExpireAndNothingLeaks(t *testing.T) {
	srv := redistest.Start(t)
	const retention = time.Hour
	s, runID := newArtifactStore(t, srv.URL(), redis.WithArtifactRetention(retention), redis.WithArtifactChunkSize(64<<10))
	c := rawClient(t, srv)
	ctx := context.Background()
	if err := s.Put(ctx, "k", bytes.NewReader(make([]byte, 300<<10)), 300<<10); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	prefix := "modpipe:{" + runID + "}:art:"
	chunks := 0
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			t.Errorf("key %q is outside the run's prefix %q", k, prefix)
		}
		if strings.HasPrefix(k, prefix+"c:") {
			chunks++
		}
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > retention {
			t.Errorf("key %q has TTL %v (%v); want (0, %v]", k, ttl, err, retention)
		}
	}
	if chunks != 5 {
		t.Errorf("%d chunk keys for 300 KiB in 64 KiB chunks; want 5", chunks)
	}
	if err := s.Put(ctx, "k", io.MultiReader(bytes.NewReader(make([]byte, 200<<10)), errReader{errors.New("boom")}), 300<<10); err == nil {
		t.Fatal("Put with a failing reader succeeded")
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	keys, err = c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != prefix+"used" {
		t.Fatalf("after Delete and a failed Put the server holds %v; want only the budget counter", keys)
	}
}

// The store returns exactly the bytes Redis holds (the artifact layer
// verifies digests); a chunk of the wrong length or a missing one is an
// error, never a short or padded stream.
func TestArtifactDamagedChunks(t *testing.T) {
	srv := redistest.Start(t)
	s, runID := newArtifactStore(t, srv.URL(), redis.WithArtifactChunkSize(64<<10))
	c := rawClient(t, srv)
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 10<<10) // 160 KiB: 3 chunks
	if err := s.Put(ctx, "k", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	chunkKeys, err := c.Keys(ctx, "modpipe:{"+runID+"}:art:c:*:1").Result()
	if err != nil || len(chunkKeys) != 1 {
		t.Fatalf("finding chunk 1: %v %v", chunkKeys, err)
	}
	read := func() ([]byte, error) {
		rc, err := s.Get(ctx, "k")
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	if err := c.SetRange(ctx, chunkKeys[0], 5, "TAMPERED").Err(); err != nil {
		t.Fatal(err)
	}
	got, err := read()
	want := bytes.Clone(data)
	copy(want[64<<10+5:], "TAMPERED")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Get of a tampered blob: %d bytes, %v; want exactly the %d bytes Redis holds", len(got), err, len(want))
	}
	if err := c.Set(ctx, chunkKeys[0], "short", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := read(); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("Get with a truncated chunk: %v; want an error saying it is damaged", err)
	}
	if err := c.Del(ctx, chunkKeys[0]).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := read(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Get with a missing chunk: %v; want an error wrapping io.ErrUnexpectedEOF", err)
	}
	if err := c.Set(ctx, "modpipe:{"+runID+"}:art:m:k", "not a manifest", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "k"); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("Stat with a malformed manifest: %v; want an error saying so", err)
	}
}

func TestArtifactStoreErrorsHidePassword(t *testing.T) {
	srv := redistest.Start(t, redistest.Password("right-password"))
	url := "redis://:wrong-password-123@" + srv.Addr()
	s, _ := newArtifactStore(t, url)
	err := s.Put(context.Background(), "k", strings.NewReader("x"), 1)
	if err == nil {
		t.Fatal("Put with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-password-123") {
		t.Fatalf("error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "refused the credentials") {
		t.Errorf("error does not say the credentials were refused: %v", err)
	}
	s2 := redis.NewArtifactStore(redis.Options{RunID: "r"})
	t.Setenv("MODPIPE_REDIS_URL", "")
	t.Setenv("REDIS_URL", "")
	if err := s2.Put(context.Background(), "k", strings.NewReader("x"), 1); err == nil || !strings.Contains(err.Error(), "no Redis URL") {
		t.Fatalf("Put without a URL: %v; want an error saying how to give one", err)
	}
}

// artChildEnv makes this test binary, re-run by
// TestArtifactPutKilledMidUpload, start a Put that stalls after 3 MiB
// (announcing it on stdout) so that the test can SIGKILL it.
const artChildEnv = "MODPIPE_TEST_ARTIFACT_PUT_CHILD"

func init() {
	v := os.Getenv(artChildEnv)
	if v == "" {
		return
	}
	url, runID, _ := strings.Cut(v, "|")
	s := redis.NewArtifactStore(redis.Options{URL: url, RunID: runID}, redis.WithArtifactChunkSize(256<<10))
	r := &stallReader{r: bytes.NewReader(bytes.Repeat([]byte{'x'}, 8<<20)), left: 3 << 20}
	err := s.Put(context.Background(), "killed", r, 8<<20)
	fmt.Println("Put returned instead of stalling:", err)
	os.Exit(1)
}

// stallReader yields left bytes, then says "ready" and sleeps until killed
// (bounded, should the test die first).
type stallReader struct {
	r    io.Reader
	left int
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.left == 0 {
		fmt.Println("ready")
		time.Sleep(5 * time.Minute)
		return 0, errors.New("not killed")
	}
	n, err := s.r.Read(p[:min(len(p), s.left)])
	s.left -= n
	return n, err
}

// A process killed in the middle of a Put leaves nothing visible: its
// chunks are orphans that expire with the run, and the key can be written
// again.
func TestArtifactPutKilledMidUpload(t *testing.T) {
	srv := redistest.Start(t)
	runID := fmt.Sprintf("art-killed-%d", artRunSeq.Add(1))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), artChildEnv+"="+srv.URL()+"|"+runID)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- ""
				return
			}
			ready <- sc.Text()
			return
		}
		ready <- "child exited without output"
	}()
	select {
	case msg := <-ready:
		if msg != "" {
			t.Fatalf("child: %s", msg)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the child did not upload 3 MiB within 2 minutes")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	s := redis.NewArtifactStore(redis.Options{URL: srv.URL(), RunID: runID})
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	if n, err := s.Stat(ctx, "killed"); !errors.Is(err, artifact.ErrNotFound) {
		t.Fatalf("after the uploader was killed, Stat = %d, %v; want artifact.ErrNotFound", n, err)
	}
	c := rawClient(t, srv)
	chunks, err := c.Keys(ctx, "modpipe:{"+runID+"}:art:c:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) < 12 {
		t.Fatalf("%d chunk keys after 3 MiB in 256 KiB chunks; want at least 12 (is the test stalling where it thinks?)", len(chunks))
	}
	for _, k := range chunks {
		if ttl, err := c.PTTL(ctx, k).Result(); err != nil || ttl <= 0 {
			t.Fatalf("orphan chunk %s has TTL %v (%v); it must expire with the run", k, ttl, err)
		}
	}
	data := bytes.Repeat([]byte("y"), 5<<20)
	if err := s.Put(ctx, "killed", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put again after the killed upload: %v", err)
	}
	rc, err := s.Get(ctx, "killed")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after the re-upload: %d bytes, %v; want the %d bytes written", len(got), err, len(data))
	}
}

// Concurrent overwrites of one key (each commit replaces whatever value is
// current when it runs, re-reading it when another writer got in first)
// leave one whole value, its chunks only, and a budget counter equal to
// its size.
func TestArtifactConcurrentOverwritesLeakNothing(t *testing.T) {
	srv := redistest.Start(t)
	s, runID := newArtifactStore(t, srv.URL(), redis.WithArtifactChunkSize(64<<10))
	c := rawClient(t, srv)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8*5)
	for w := range 8 {
		wg.Go(func() {
			for i := range 5 {
				size := int64(64<<10*(1+(w+i)%4) + w)
				if err := s.Put(ctx, "k", bytes.NewReader(bytes.Repeat([]byte{byte(w)}, int(size))), size); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Put: %v", err)
	}
	size, err := s.Stat(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if used, err := s.Used(ctx); err != nil || used != size {
		t.Errorf("Used = %d, %v after the overwrites; want the size of the one value left, %d", used, err, size)
	}
	chunks, err := c.Keys(ctx, "modpipe:{"+runID+"}:art:c:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := int((size + 64<<10 - 1) / (64 << 10)); len(chunks) != want {
		t.Errorf("%d chunk keys left for one value of %d bytes; want %d", len(chunks), size, want)
	}
	rc, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || int64(len(got)) != size || !bytes.Equal(got, bytes.Repeat(got[:1], len(got))) {
		t.Fatalf("the value left: %d bytes, %v; want %d bytes of one writer", len(got), err, size)
	}
}
