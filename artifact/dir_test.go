package artifact_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/artifact/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDirStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) artifact.Store { return artifact.NewDirStore(t.TempDir()) })
}

// Put from an *os.File takes the kernel-copy path; it must keep the same
// contract as the generic one.
func TestDirStorePutFromFile(t *testing.T) {
	s := artifact.NewDirStore(t.TempDir())
	src := filepath.Join(t.TempDir(), "src")
	data := bytes.Repeat([]byte("abcdefghij"), 1<<20) // 10 MiB: two slices
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	put := func(ctx context.Context, key string, size int64) error {
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return s.Put(ctx, key, f, size)
	}
	ctx := context.Background()
	if err := put(ctx, "exact", int64(len(data))); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(ctx, "exact")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := io.Copy(&got, rc); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("round trip from a file: %d bytes, %v", got.Len(), err)
	}
	rc.Close()
	for _, size := range []int64{int64(len(data)) + 1, int64(len(data)) - 1, 0} {
		if err := put(ctx, "wrong", size); !errors.Is(err, artifact.ErrSizeMismatch) {
			t.Errorf("Put of a %d-byte file announced as %d: %v; want artifact.ErrSizeMismatch", len(data), size, err)
		}
		if _, err := s.Stat(ctx, "wrong"); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("a failed Put from a file left the key: %v", err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := put(cancelled, "ctx", int64(len(data))); !errors.Is(err, context.Canceled) {
		t.Errorf("Put from a file with a cancelled context: %v", err)
	}
	// Get's WriteTo (used by io.Copy into a file) stops when ctx ends.
	gctx, gcancel := context.WithCancel(ctx)
	rc, err = s.Get(gctx, "exact")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	gcancel()
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, rc); !errors.Is(err, context.Canceled) {
		t.Errorf("copying a Get stream into a file after cancel: %v; want context.Canceled", err)
	}
}
