package transfer_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/artifact"
	modredis "github.com/modpipe/modpipe/distributed/redis"
	"github.com/modpipe/modpipe/internal/redistest"
	"github.com/modpipe/modpipe/internal/transfer"
)

// apiBenchSize is the artifact BenchmarkAPIvsFloor moves: one file of
// random bytes.
const apiBenchSize = 256 << 20

// floor is the plainest way to move the same bytes to and from one kind of
// store, without hashing, manifest or verification.
type floor struct {
	up    func(ctx context.Context, src string) error
	down  func(ctx context.Context, dst string) error
	clean func(ctx context.Context) error
}

// BenchmarkAPIvsFloor moves a 256 MiB file through transfer.Upload and
// transfer.Download (no cache) and through the floor of the same store in
// the same iteration, and reports MB/s of each direction and the ratios
// API/floor ("up-ratio", "down-ratio"; the issue asks for >= 0.70; and
// "cached-down-ratio", a download through the instance's cache, as runs
// with a shared store do), plus
// "sha256-MB/s", one SHA-256 pass over the same bytes, the speed limit of
// any verified transfer on a CPU without SHA instructions. Stores: the
// directory store (floor: a plain file copy, synced, as the store syncs
// its blobs) and the Redis store on a real redis-server (floor: go-redis
// SET and GET of the same 1 MiB chunks).
//
//	go test -run X -bench APIvsFloor -benchtime 3x ./internal/transfer/
func BenchmarkAPIvsFloor(b *testing.B) {
	base := b.TempDir()
	src := filepath.Join(base, "out", "blob")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, apiBenchSize); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	// A build output is uploaded once its build finished, not within the
	// 2 s in which Upload re-hashes a file it cannot trust mtime for.
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(src, old, old); err != nil {
		b.Fatal(err)
	}

	b.Run("dir", func(b *testing.B) {
		tmp := b.TempDir()
		floorFile := filepath.Join(tmp, "floor.bin")
		fl := floor{
			up: func(_ context.Context, src string) error {
				return copyFile(src, floorFile, true)
			},
			down: func(_ context.Context, dst string) error {
				return copyFile(floorFile, dst, false)
			},
			clean: func(context.Context) error { return os.Remove(floorFile) },
		}
		n := 0
		run(b, base, src, fl, func() artifact.Store {
			n++
			return artifact.NewDirStore(filepath.Join(tmp, fmt.Sprintf("store-%d", n)))
		})
	})

	b.Run("redis", func(b *testing.B) {
		srv := redistest.Start(b)
		opts, err := goredis.ParseURL(srv.URL())
		if err != nil {
			b.Fatal(err)
		}
		rc := goredis.NewClient(opts)
		defer rc.Close()
		const chunk = 1 << 20
		key := func(i int) string { return fmt.Sprintf("floor:%d", i) }
		fl := floor{
			up: func(ctx context.Context, src string) error {
				f, err := os.Open(src)
				if err != nil {
					return err
				}
				defer f.Close()
				buf := make([]byte, chunk)
				for i := 0; i*chunk < apiBenchSize; i++ {
					if _, err := io.ReadFull(f, buf); err != nil {
						return err
					}
					if err := rc.Set(ctx, key(i), buf, time.Hour).Err(); err != nil {
						return err
					}
				}
				return nil
			},
			down: func(ctx context.Context, dst string) error {
				out, err := os.Create(dst)
				if err != nil {
					return err
				}
				for i := 0; i*chunk < apiBenchSize; i++ {
					v, err := rc.Get(ctx, key(i)).Bytes()
					if err != nil {
						out.Close()
						return err
					}
					if _, err := out.Write(v); err != nil {
						out.Close()
						return err
					}
				}
				return out.Close()
			},
			clean: func(ctx context.Context) error {
				for i := 0; i*chunk < apiBenchSize; i++ {
					if err := rc.Del(ctx, key(i)).Err(); err != nil {
						return err
					}
				}
				return nil
			},
		}
		var stores []*modredis.ArtifactStore
		defer func() {
			for _, s := range stores {
				s.Close()
			}
		}()
		run(b, base, src, fl, func() artifact.Store {
			s := modredis.NewArtifactStore(modredis.Options{URL: srv.URL(), RunID: fmt.Sprintf("bench-%d", len(stores))})
			stores = append(stores, s)
			return s
		})
	})
}

// run times, in every iteration, the floor's upload and download, then
// Upload and Download into a fresh store (so nothing is deduplicated), and
// a SHA-256 pass over the file; it deletes what it stored before the next
// iteration.
func run(b *testing.B, base, src string, fl floor, fresh func() artifact.Store) {
	ctx := context.Background()
	var floorUp, floorDown, apiUp, apiDown, apiCached, hashing time.Duration
	timed := func(d *time.Duration, f func() error) {
		b.Helper()
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		*d += time.Since(start)
	}
	out := b.TempDir()
	for b.Loop() {
		timed(&floorUp, func() error { return fl.up(ctx, src) })
		timed(&floorDown, func() error { return fl.down(ctx, filepath.Join(out, "floor")) })
		if err := fl.clean(ctx); err != nil {
			b.Fatal(err)
		}
		s := fresh()
		var m *transfer.Manifest
		timed(&apiUp, func() (err error) {
			m, _, err = transfer.Upload(ctx, transfer.Target{Store: s, Name: "bench"}, base, "a", []string{"out"})
			return err
		})
		dst := filepath.Join(out, "api")
		timed(&apiDown, func() error {
			_, err := transfer.Download(ctx, transfer.Source{Store: s, Name: "bench"}, m, dst)
			return err
		})
		// As a run downloads from a shared store: through the
		// instance's cache (fetched, verified and kept; then written).
		cached := filepath.Join(out, "cached")
		timed(&apiCached, func() error {
			_, err := transfer.Download(ctx, transfer.Source{Store: s, Name: "bench", Cache: transfer.NewCache(filepath.Join(out, "cache"), s, "bench")}, m, cached)
			return err
		})
		if err := os.RemoveAll(cached); err != nil {
			b.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(out, "cache")); err != nil {
			b.Fatal(err)
		}
		timed(&hashing, func() error {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.CopyBuffer(sha256.New(), f, make([]byte, 1<<20))
			return err
		})
		for _, f := range m.Files {
			key, err := artifact.DigestKey(f.SHA256)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Delete(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.RemoveAll(dst); err != nil {
			b.Fatal(err)
		}
	}
	rate := func(d time.Duration) float64 { return float64(apiBenchSize) * float64(b.N) / 1e6 / d.Seconds() }
	b.ReportMetric(rate(floorUp), "floor-up-MB/s")
	b.ReportMetric(rate(apiUp), "up-MB/s")
	b.ReportMetric(floorUp.Seconds()/apiUp.Seconds(), "up-ratio")
	b.ReportMetric(rate(floorDown), "floor-down-MB/s")
	b.ReportMetric(rate(apiDown), "down-MB/s")
	b.ReportMetric(floorDown.Seconds()/apiDown.Seconds(), "down-ratio")
	b.ReportMetric(floorDown.Seconds()/apiCached.Seconds(), "cached-down-ratio")
	b.ReportMetric(rate(hashing), "sha256-MB/s")
}

// copyFile copies src to a new file dst, synced when sync is set.
func copyFile(src, dst string, sync bool) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if sync {
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}
