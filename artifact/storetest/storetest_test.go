package storetest_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/artifact/storetest"
)

// The suite must be able to fail: these tests run it, in a child process,
// against stores with one deliberate bug each, and expect the run to fail
// naming the subtest that catches the bug.

const mutantEnv = "STORETEST_MUTANT"

// base is a correct store the mutants change one thing of (the directory
// store, which passes the suite: artifact.TestDirStoreConformance).
type base struct{ *artifact.DirStore }

// partialWriter writes straight to the final file: readers see a blob
// while it is written, and a failed Put leaves its partial bytes.
type partialWriter struct{ base }

func (p partialWriter) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := artifact.ValidKey(key); err != nil {
		return err
	}
	path := filepath.Join(p.Dir(), filepath.FromSlash(key)) + "~"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, artifact.SizedReader(ctx, r, size))
	return err
}

// unvalidated accepts every key (it stores them under an encoded name).
type unvalidated struct{ base }

func enc(key string) string { return "x/" + hex.EncodeToString([]byte(key)) }

func (u unvalidated) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return u.base.Put(ctx, enc(key), r, size)
}
func (u unvalidated) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return u.base.Get(ctx, enc(key))
}
func (u unvalidated) Stat(ctx context.Context, key string) (int64, error) {
	return u.base.Stat(ctx, enc(key))
}
func (u unvalidated) Delete(ctx context.Context, key string) error {
	return u.base.Delete(ctx, enc(key))
}

// wrongNotFound reports absence with an error of its own.
type wrongNotFound struct{ base }

func hide(err error) error {
	if errors.Is(err, artifact.ErrNotFound) {
		return errors.New("no such blob")
	}
	return err
}

func (w wrongNotFound) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := w.base.Get(ctx, key)
	return rc, hide(err)
}
func (w wrongNotFound) Stat(ctx context.Context, key string) (int64, error) {
	n, err := w.base.Stat(ctx, key)
	return n, hide(err)
}

// getBuffers reads the whole blob into memory before returning it.
type getBuffers struct{ base }

func (g getBuffers) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := g.base.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return artifact.ContextReader(ctx, io.NopCloser(bytes.NewReader(b))), err
}

// putBuffers reads the whole blob into memory before storing it.
type putBuffers struct{ base }

func (p putBuffers) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return p.base.Put(ctx, key, bytes.NewReader(b), int64(len(b)))
}

// ignoresContext never passes the caller's context on.
type ignoresContext struct{ base }

func (i ignoresContext) Put(_ context.Context, key string, r io.Reader, size int64) error {
	return i.base.Put(context.Background(), key, r, size)
}
func (i ignoresContext) Get(_ context.Context, key string) (io.ReadCloser, error) {
	return i.base.Get(context.Background(), key)
}
func (i ignoresContext) Stat(_ context.Context, key string) (int64, error) {
	return i.base.Stat(context.Background(), key)
}

// ignoresSize pads short readers with zeros and cuts long ones.
type ignoresSize struct{ base }

func (i ignoresSize) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	fixed := io.LimitReader(io.MultiReader(r, zeros{}), size)
	return i.base.Put(ctx, key, fixed, size)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

var mutants = map[string]struct {
	make   func(dir string) artifact.Store
	caught string // a subtest that must fail
}{
	"partial-writes":  {func(d string) artifact.Store { return partialWriter{base{artifact.NewDirStore(d)}} }, "FailedPutLeavesNothing"},
	"partial-visible": {func(d string) artifact.Store { return partialWriter{base{artifact.NewDirStore(d)}} }, "PutInProgressIsInvisible"},
	"no-validation":   {func(d string) artifact.Store { return unvalidated{base{artifact.NewDirStore(d)}} }, "InvalidKeysRefused"},
	"wrong-not-found": {func(d string) artifact.Store { return wrongNotFound{base{artifact.NewDirStore(d)}} }, "NotFound"},
	"get-buffers":     {func(d string) artifact.Store { return getBuffers{base{artifact.NewDirStore(d)}} }, "GetStreams"},
	"put-buffers":     {func(d string) artifact.Store { return putBuffers{base{artifact.NewDirStore(d)}} }, "PutStreams"},
	"ignores-context": {func(d string) artifact.Store { return ignoresContext{base{artifact.NewDirStore(d)}} }, "ContextCancellation"},
	"ignores-size":    {func(d string) artifact.Store { return ignoresSize{base{artifact.NewDirStore(d)}} }, "SizeMismatchLeavesNothing"},
}

func TestMain(m *testing.M) {
	if name := os.Getenv(mutantEnv); name != "" {
		mu, ok := mutants[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown mutant %q\n", name)
			os.Exit(2)
		}
		testing.Main(regexp.MatchString, []testing.InternalTest{{
			Name: "Mutant",
			F: func(t *testing.T) {
				storetest.Run(t, func(t *testing.T) artifact.Store { return mu.make(t.TempDir()) })
			},
		}}, nil, nil)
	}
	os.Exit(m.Run())
}

func TestSuiteCatchesBrokenStores(t *testing.T) {
	for name, mu := range mutants {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.v", "-test.run", "^Mutant$/^"+mu.caught+"$")
			cmd.Env = append(os.Environ(), mutantEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store with bug %q:\n%s", name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: Mutant/"+mu.caught) {
				t.Errorf("bug %q was not caught by %s:\n%s", name, mu.caught, out)
			}
		})
	}
}
