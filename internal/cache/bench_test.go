package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/modpipe/modpipe/artifact"
)

// largeTree writes n files of size bytes of random data.
func largeTree(b *testing.B, n int, size int64) (string, []string) {
	b.Helper()
	dir := b.TempDir()
	var paths []string
	buf := make([]byte, 1<<20)
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("big%d.bin", i))
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		for w := int64(0); w < size; w += int64(len(buf)) {
			_, _ = rand.Read(buf)
			if _, err := f.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	return dir, paths
}

// BenchmarkHashInputs hashes 4 files of 128 MiB (in the page cache after
// the first pass): "sha256" is the baseline (one stream, as before),
// "blake3-file" one file at a time, "inputs" the cache's InputFiles path
// (parallel over files, a fresh Hasher each time so nothing is
// remembered). MB/s is per the bytes of all files.
func BenchmarkHashInputs(b *testing.B) {
	const n, size = 4, 128 << 20
	dir, paths := largeTree(b, n, size)
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(n * size)
		buf := make([]byte, 1<<20)
		for b.Loop() {
			for _, p := range paths {
				f, _ := os.Open(p)
				h := sha256.New()
				_, _ = io.CopyBuffer(h, f, buf)
				f.Close()
			}
		}
	})
	b.Run("blake3-file", func(b *testing.B) {
		b.SetBytes(n * size)
		for b.Loop() {
			for _, p := range paths {
				if _, err := HashFile(context.Background(), p); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("inputs", func(b *testing.B) {
		b.SetBytes(n * size)
		for b.Loop() {
			h := &Hasher{Dir: dir}
			if _, _, err := h.Key(context.Background(), Spec{Module: "m", Files: []string{"*.bin"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDirStoreLookup is one module's lookup in a directory store
// holding 1,000 entries: read, verify (signed), decode.
func BenchmarkDirStoreLookup(b *testing.B) {
	ctx := context.Background()
	c := &Cache{Store: artifact.NewDirStore(b.TempDir()), SigningKey: []byte("benchmark-signing-key-0123456789")}
	var keys []string
	for i := range 1000 {
		k := digestOf(fmt.Sprint(i))
		fp := Fingerprints{"module:": fmt.Sprint(i)}
		for f := range 50 {
			fp[fmt.Sprintf("file:pkg/f%d.go", f)] = digestOf(fmt.Sprint(i, f))
		}
		c.Save(ctx, &Entry{Key: k, Module: fmt.Sprint("m", i), Created: time.Now(), Duration: time.Second, Result: json.RawMessage(`{"ok":true,"n":42}`), Inputs: fp})
		keys = append(keys, k)
	}
	i := 0
	for b.Loop() {
		if c.Lookup(ctx, "m", keys[i%len(keys)]) == nil {
			b.Fatal("miss")
		}
		i++
	}
}

// BenchmarkKeyOfSourceTree is computing one module's key over a tree of
// 2,000 small source files, first time in a run (nothing remembered).
func BenchmarkKeyOfSourceTree(b *testing.B) {
	dir := b.TempDir()
	for i := range 2000 {
		p := filepath.Join(dir, fmt.Sprintf("pkg%d", i/50), fmt.Sprintf("f%d.go", i))
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		_ = os.WriteFile(p, bytes.Repeat([]byte("package x\n"), 200), 0o644)
	}
	for b.Loop() {
		h := &Hasher{Dir: dir}
		if _, _, err := h.Key(context.Background(), Spec{Module: "m", Files: []string{"**/*.go"}}); err != nil {
			b.Fatal(err)
		}
	}
}
