// Command artifacts is a test pipeline that moves an artifact between two
// modules: "make" uploads a directory (an executable, a data file of
// ARTIFACT_SIZE bytes, an empty directory) and "check" downloads and
// verifies it. The store comes from --artifact-store, or, with
// ARTIFACT_GATE=DIR, is a directory store whose uploads stop halfway until
// the file DIR/release-up exists, and whose downloads until
// DIR/release-down exists, so that a test can watch transfers in progress.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/modpipe/modpipe"
	"github.com/modpipe/modpipe/artifact"
)

func main() {
	size, _ := strconv.Atoi(os.Getenv("ARTIFACT_SIZE"))
	data := bytes.Repeat([]byte("modpipe artifact data\n"), max(size, 1)/22+1)[:max(size, 1)]
	mk := modpipe.New("make", func(c *modpipe.Context) (modpipe.Artifact, error) {
		dir, err := os.MkdirTemp(".", "artifacts-make-") // Upload takes paths inside the working directory
		if err != nil {
			return modpipe.Artifact{}, err
		}
		defer os.RemoveAll(dir)
		for name, content := range map[string][]byte{"bin/tool": []byte("#!/bin/sh\necho tool\n"), "data/big.bin": data} {
			p := filepath.Join(dir, "out", filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return modpipe.Artifact{}, err
			}
			if err := os.WriteFile(p, content, 0o755); err != nil {
				return modpipe.Artifact{}, err
			}
		}
		if err := os.Chmod(filepath.Join(dir, "out", "data", "big.bin"), 0o644); err != nil {
			return modpipe.Artifact{}, err
		}
		if err := os.MkdirAll(filepath.Join(dir, "out", "empty"), 0o755); err != nil {
			return modpipe.Artifact{}, err
		}
		return c.Upload("bundle", filepath.Join(dir, "out"))
	})
	check := modpipe.Task("check", func(c *modpipe.Context) error {
		a, err := modpipe.Result(c, mk)
		if err != nil {
			return err
		}
		dst, err := os.MkdirTemp("", "artifacts-check-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dst)
		if err := c.Download(a, dst); err != nil {
			return err
		}
		tool, err := os.Stat(filepath.Join(dst, "bin", "tool"))
		if err != nil || tool.Mode().Perm()&0o100 == 0 {
			return fmt.Errorf("bin/tool is missing or not executable: %v %v", tool, err)
		}
		got, err := os.ReadFile(filepath.Join(dst, "data", "big.bin"))
		if err != nil || !bytes.Equal(got, data) {
			return fmt.Errorf("data/big.bin differs (%d bytes, want %d): %v", len(got), len(data), err)
		}
		if fi, err := os.Stat(filepath.Join(dst, "empty")); err != nil || !fi.IsDir() {
			return fmt.Errorf("the empty directory is missing: %v", err)
		}
		c.Logger().Info("artifact verified")
		return nil
	}, modpipe.DependsOn(mk))
	p := modpipe.NewPipeline().Add(mk, check)
	if gate := os.Getenv("ARTIFACT_GATE"); gate != "" {
		p.UseArtifactStore(gatedStore{Store: artifact.NewDirStore(filepath.Join(gate, "store")), dir: gate})
	}
	modpipe.Main(p)
}

// gatedStore stops every Put and Get of more than 1 MiB halfway until the
// file release-up or release-down in dir exists (at most a minute).
type gatedStore struct {
	artifact.Store
	dir string
}

func (g gatedStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if size <= 1<<20 {
		return g.Store.Put(ctx, key, r, size)
	}
	return g.Store.Put(ctx, key, io.MultiReader(io.LimitReader(r, size/2), &waitReader{r: r, release: filepath.Join(g.dir, "release-up"), ctx: ctx}), size)
}

func (g gatedStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	size, err := g.Store.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	rc, err := g.Store.Get(ctx, key)
	if err != nil || size <= 1<<20 {
		return rc, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, size/2), &waitReader{r: rc, release: filepath.Join(g.dir, "release-down"), ctx: ctx}), rc}, nil
}

type waitReader struct {
	r       io.Reader
	release string
	ctx     context.Context
	waited  bool
}

func (w *waitReader) Read(p []byte) (int, error) {
	if !w.waited {
		w.waited = true
		for deadline := time.Now().Add(time.Minute); ; {
			if _, err := os.Stat(w.release); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return 0, errors.New("the test never released the upload")
			}
			select {
			case <-w.ctx.Done():
				return 0, w.ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return w.r.Read(p)
}
