package transfer

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/modpipe/modpipe/artifact"
)

// benchSize is the artifact the benchmarks move: one file of random bytes.
const benchSize = 256 << 20

func benchFile(b *testing.B) string {
	b.Helper()
	base := b.TempDir()
	f, err := os.Create(filepath.Join(base, "blob"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, benchSize); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	// A build output is uploaded once its build finished, not within the
	// 2 s (racyWindow) in which Upload re-hashes a file while sending it.
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(filepath.Join(base, "blob"), old, old); err != nil {
		b.Fatal(err)
	}
	return base
}

// BenchmarkRawPutGet is the floor: the directory store's own Put and Get of
// the same file into a file, no hashing, manifest or verification.
func BenchmarkRawPutGet(b *testing.B) {
	base := benchFile(b)
	ctx := context.Background()
	b.SetBytes(benchSize)
	for b.Loop() {
		s := artifact.NewDirStore(b.TempDir())
		f, err := os.Open(filepath.Join(base, "blob"))
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Put(ctx, "k", f, benchSize); err != nil {
			b.Fatal(err)
		}
		f.Close()
		r, err := s.Get(ctx, "k")
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(filepath.Join(b.TempDir(), "out"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(out, r); err != nil {
			b.Fatal(err)
		}
		r.Close()
		out.Close()
	}
}

// BenchmarkUploadDownload moves the same file through Upload and Download
// (hashing, dedupe check, manifest, verified download into a temporary
// name, rename) on the same kind of store.
func BenchmarkUploadDownload(b *testing.B) {
	for _, cached := range []bool{false, true} {
		name := "direct"
		if cached {
			name = "through-cache"
		}
		b.Run(name, func(b *testing.B) {
			base := benchFile(b)
			ctx := context.Background()
			b.SetBytes(benchSize)
			for b.Loop() {
				s := artifact.NewDirStore(b.TempDir())
				m, _, err := Upload(ctx, Target{Store: s, Name: "bench"}, base, "a", []string{"blob"})
				if err != nil {
					b.Fatal(err)
				}
				src := Source{Store: s, Name: "bench"}
				if cached {
					src.Cache = NewCache(b.TempDir(), s, "bench")
				}
				if _, err := Download(ctx, src, m, b.TempDir()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUploadFresh uploads the same file to a directory store once
// with an old modification time (hashed once, then sent) and once just
// written (hashed, then hashed again while sent: see racyWindow), and
// reports MB/s of each and their ratio, from the same run.
//
//	go test -run X -bench UploadFresh -benchtime 3x ./internal/transfer/
func BenchmarkUploadFresh(b *testing.B) {
	base := benchFile(b)
	ctx := context.Background()
	var settled, fresh time.Duration
	for b.Loop() {
		for _, isFresh := range []bool{false, true} {
			mtime := time.Now().Add(-time.Minute)
			if isFresh {
				mtime = time.Now()
			}
			if err := os.Chtimes(filepath.Join(base, "blob"), mtime, mtime); err != nil {
				b.Fatal(err)
			}
			s := artifact.NewDirStore(b.TempDir())
			start := time.Now()
			if _, _, err := Upload(ctx, Target{Store: s, Name: "bench"}, base, "a", []string{"blob"}); err != nil {
				b.Fatal(err)
			}
			if isFresh {
				fresh += time.Since(start)
			} else {
				settled += time.Since(start)
			}
		}
	}
	rate := func(d time.Duration) float64 { return float64(benchSize) * float64(b.N) / 1e6 / d.Seconds() }
	b.ReportMetric(rate(settled), "settled-MB/s")
	b.ReportMetric(rate(fresh), "fresh-MB/s")
	b.ReportMetric(settled.Seconds()/fresh.Seconds(), "fresh/settled")
}
