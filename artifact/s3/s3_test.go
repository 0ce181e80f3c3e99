package s3_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/artifact/s3"
	"github.com/modpipe/modpipe/artifact/storetest"
	"github.com/modpipe/modpipe/internal/s3test"
	"go.uber.org/goleak"
)

func newStore(t *testing.T, srv *s3test.Server, prefix string) *s3.Store {
	t.Helper()
	st, err := s3.NewStore(s3.Options{
		Endpoint: srv.Endpoint, Bucket: srv.Bucket, Prefix: prefix, Region: "us-east-1",
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	storetest.Run(t, func(t *testing.T) artifact.Store { return newStore(t, srv, "run-1") })
}

func TestCredentialsFromEnvironment(t *testing.T) {
	srv := s3test.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.Endpoint)
	st, err := s3.NewStore(s3.Options{Bucket: srv.Bucket, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	if err := st.Put(ctx, "env/k", strings.NewReader("hello"), 5); err != nil {
		t.Fatalf("Put with credentials from the environment: %v", err)
	}
	if n, err := st.Stat(ctx, "env/k"); err != nil || n != 5 {
		t.Fatalf("Stat = %d, %v; want 5", n, err)
	}
}

func TestErrorsNeverShowCredentials(t *testing.T) {
	srv := s3test.Start(t)
	const wrong = "wrong-secret-d0e4f1a2b3c4"
	st, err := s3.NewStore(s3.Options{Endpoint: srv.Endpoint, Bucket: srv.Bucket, AccessKeyID: srv.AccessKey, SecretAccessKey: wrong, SessionToken: "session-token-5f6e7d8c", PathStyle: true, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	err = st.Put(ctx, "k", strings.NewReader("x"), 1)
	if err == nil {
		t.Fatal("Put with a wrong secret succeeded")
	}
	if !strings.Contains(err.Error(), "refused the credentials") {
		t.Errorf("error does not say the credentials were refused: %v", err)
	}
	_, serr := st.Stat(ctx, "k")
	for _, e := range []error{err, serr} {
		if e == nil {
			t.Fatal("an operation with a wrong secret succeeded")
		}
		for _, secret := range []string{wrong, "session-token-5f6e7d8c", srv.SecretKey} {
			if strings.Contains(e.Error(), secret) {
				t.Errorf("error shows a credential: %v", e)
			}
		}
	}

	// An endpoint URL with a password is never shown with it.
	st, err = s3.NewStore(s3.Options{Endpoint: "http://user:hunter2-pass@127.0.0.1:1", Bucket: "bucket", AccessKeyID: "a", SecretAccessKey: "s3cr3t-value"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	_, err = st.Stat(ctx, "k")
	if err == nil || strings.Contains(err.Error(), "hunter2-pass") || strings.Contains(err.Error(), "s3cr3t-value") {
		t.Fatalf("Stat against an unreachable endpoint: %v; want an error without the URL password or the secret", err)
	}
	if !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("error does not say the endpoint is unreachable: %v", err)
	}
	if _, err := s3.NewStore(s3.Options{Endpoint: "ftp://user:hunter2-pass@host", Bucket: "bucket"}); err == nil || strings.Contains(err.Error(), "hunter2-pass") {
		t.Fatalf("NewStore with an ftp endpoint: %v; want an error without the password", err)
	}
}

func TestInvalidBucketRefused(t *testing.T) {
	if _, err := s3.NewStore(s3.Options{Bucket: "b"}); err == nil || !strings.Contains(err.Error(), "bucket") {
		t.Fatalf("NewStore with bucket %q: %v; want an error about the bucket name", "b", err)
	}
	if _, err := s3.NewStore(s3.Options{}); err == nil || !strings.Contains(err.Error(), "no bucket") {
		t.Fatalf("NewStore without a bucket: %v; want an error saying so", err)
	}
}

func TestMissingBucketIsAClearError(t *testing.T) {
	srv := s3test.Start(t)
	st, err := s3.NewStore(s3.Options{Endpoint: srv.Endpoint, Bucket: "no-such-bucket", AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, PathStyle: true, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	err = st.Put(context.Background(), "k", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), "bucket does not exist") {
		t.Fatalf("Put into a missing bucket: %v; want an error saying the bucket does not exist", err)
	}
}

func TestPrefixesAreSeparate(t *testing.T) {
	srv := s3test.Start(t)
	a, b := newStore(t, srv, "run-a"), newStore(t, srv, "run-b")
	ctx := context.Background()
	if err := a.Put(ctx, "k", strings.NewReader("from a"), 6); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "k"); !errors.Is(err, artifact.ErrNotFound) {
		t.Fatalf("a store with another prefix sees the key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(srv.Dir, srv.Bucket, "run-a", "k")); err != nil {
		t.Fatalf("the object is not at <bucket>/<prefix>/<key>: %v", err)
	}
	if _, err := s3.NewStore(s3.Options{Bucket: "bucket", Prefix: "../x"}); !errors.Is(err, artifact.ErrInvalidKey) {
		t.Fatalf("NewStore with prefix ../x: %v; want artifact.ErrInvalidKey", err)
	}
}

// The store does not verify content (the artifact layer checks digests):
// Get returns exactly the bytes the server holds, even when they were
// changed behind the store's back, so that check sees them.
func TestGetReturnsExactlyTheServersBytes(t *testing.T) {
	srv := s3test.Start(t)
	st := newStore(t, srv, "p")
	ctx := context.Background()
	if err := st.Put(ctx, "k", strings.NewReader("original"), 8); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(srv.Dir, srv.Bucket, "p", "k"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err := st.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || string(got) != "tampered" {
		t.Fatalf("Get = %q, %v; want the server's bytes %q", got, err, "tampered")
	}
}

// childEnv makes this test binary, re-run by TestPutKilledMidUpload, start
// a multipart Put that stalls after two parts (announcing it on stdout)
// so that the test can SIGKILL it.
const childEnv = "MODPIPE_TEST_S3_PUT_CHILD"

func init() {
	v := os.Getenv(childEnv)
	if v == "" {
		return
	}
	f := strings.Split(v, "|")
	st, err := s3.NewStore(s3.Options{Endpoint: f[0], Bucket: f[1], AccessKeyID: f[2], SecretAccessKey: f[3], Region: "us-east-1", PathStyle: true, PartSize: 5 << 20})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	r := &stallReader{r: bytes.NewReader(bytes.Repeat([]byte{'x'}, 20<<20)), left: 12 << 20}
	err = st.Put(context.Background(), "killed", r, 20<<20)
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

// A process killed in the middle of a multipart Put leaves no object.
func TestPutKilledMidUpload(t *testing.T) {
	srv := s3test.Start(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join([]string{srv.Endpoint, srv.Bucket, srv.AccessKey, srv.SecretKey}, "|"))
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
		if sc.Scan() {
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
		t.Fatal("the child did not upload 12 MiB within 2 minutes")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	st := newStore(t, srv, "")
	ctx := context.Background()
	if n, err := st.Stat(ctx, "killed"); !errors.Is(err, artifact.ErrNotFound) {
		t.Fatalf("after the uploader was killed, Stat = %d, %v; want artifact.ErrNotFound", n, err)
	}
	if rc, err := st.Get(ctx, "killed"); !errors.Is(err, artifact.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Fatalf("after the uploader was killed, Get: %v; want artifact.ErrNotFound", err)
	}
}

// Put from an *os.File larger than a part uploads parts in parallel
// straight from the file; it keeps the contract of the streamed path.
func TestPutFromFile(t *testing.T) {
	srv := s3test.Start(t)
	st, err := s3.NewStore(s3.Options{Endpoint: srv.Endpoint, Bucket: srv.Bucket, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, Region: "us-east-1", PathStyle: true, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	data := make([]byte, 13<<20+17)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	put := func(ctx context.Context, key string, skip, size int64) error {
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Seek(skip, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		return st.Put(ctx, key, f, size)
	}
	get := func(key string) []byte {
		rc, err := st.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ctx := context.Background()
	if err := put(ctx, "whole", 0, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(get("whole"), data) {
		t.Fatal("the object differs from the file")
	}
	// From the file's current position, as any reader.
	if err := put(ctx, "tail", 1<<20, int64(len(data))-1<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(get("tail"), data[1<<20:]) {
		t.Fatal("the object differs from the file's rest")
	}
	for _, size := range []int64{int64(len(data)) + 1, int64(len(data)) - 1} {
		if err := put(ctx, "wrong", 0, size); !errors.Is(err, artifact.ErrSizeMismatch) {
			t.Errorf("Put of a %d-byte file announced as %d: %v; want artifact.ErrSizeMismatch", len(data), size, err)
		}
		if _, err := st.Stat(ctx, "wrong"); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("a refused Put left an object: %v", err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := put(cctx, "cancelled", 0, int64(len(data))); !errors.Is(err, context.Canceled) {
		t.Errorf("Put from a file with a cancelled context: %v; want context.Canceled", err)
	}
}
