// Command artbench measures modpipe's artifact stores against the floor of
// the same transfer without them, in the same run:
//
//	cd bench && go run ./artbench              # 256 MiB blobs, 1 GiB RSS check
//	cd bench && go run ./artbench -size 32 -rss-size 128   # smoke run
//
// For each store it uploads and downloads a blob (from and to a file on
// disk, as the artifact layer will) and times the floor of each direction:
//
//	dir    a plain file copy (with the same fsync the store does on upload)
//	redis  raw go-redis SET / GET of the same 1 MiB chunks
//	s3     minio-go's own PutObject (from the *os.File) / GetObject
//
// Each figure is the median of -reps runs, store and floor interleaved.
// Then, for each store, a child process moves a -rss-size blob through the
// store, once from a file into a file and once from a plain io.Reader to
// io.Discard, and reports how much its peak RSS (VmHWM) rose over the
// level after a 1 MiB warm-up.
//
// It starts its own redis-server and versitygw on free loopback ports
// (both must be installed; scripts/test.sh installs them).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/artifact/s3"
	"github.com/modpipe/modpipe/distributed/redis"
	"github.com/modpipe/modpipe/internal/s3test"
)

const chunk = 1 << 20

type env struct {
	RedisURL   string `json:"redis_url"`
	S3Endpoint string `json:"s3_endpoint"`
	S3Bucket   string `json:"s3_bucket"`
	S3Access   string `json:"s3_access"`
	S3Secret   string `json:"s3_secret"`
	Dir        string `json:"dir"`
	Src        string `json:"src"`
}

func main() {
	size := flag.Int64("size", 256, "blob size for the throughput runs, MiB")
	rssSize := flag.Int64("rss-size", 1024, "blob size for the peak RSS check, MiB")
	reps := flag.Int("reps", 3, "runs per figure (the median is shown)")
	child := flag.String("child", "", "internal: run the RSS check for one store")
	flag.Parse()
	if *child != "" {
		var e env
		if err := json.Unmarshal([]byte(os.Getenv("ARTBENCH_ENV")), &e); err != nil {
			fail(err)
		}
		fail(rssChild(*child, e, *rssSize<<20))
		return
	}
	fail(run(*size<<20, *rssSize<<20, *reps))
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "artbench:", err)
		os.Exit(1)
	}
}

func run(size, rssSize int64, reps int) error {
	tmp, err := os.MkdirTemp("", "artbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rs, err := startRedis(filepath.Join(tmp, "redis"))
	if err != nil {
		return err
	}
	defer rs.stop()
	gwDir := filepath.Join(tmp, "s3")
	if err := os.Mkdir(gwDir, 0o755); err != nil {
		return err
	}
	gw, err := s3test.Launch(gwDir)
	if err != nil {
		return err
	}
	defer gw.Stop()
	e := env{RedisURL: rs.url, S3Endpoint: gw.Endpoint, S3Bucket: gw.Bucket, S3Access: gw.AccessKey, S3Secret: gw.SecretKey, Dir: filepath.Join(tmp, "dirstore")}

	src := filepath.Join(tmp, "src.bin")
	if err := writeSource(src, size); err != nil {
		return err
	}
	fmt.Printf("artbench: %d MiB blob, median of %d runs, %s\n\n", size>>20, reps, time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("%-6s %-9s %12s %12s %8s\n", "store", "direction", "floor MB/s", "store MB/s", "ratio")
	ctx := context.Background()
	for _, name := range []string{"dir", "redis", "s3"} {
		c, err := newCase(name, e, tmp, size)
		if err != nil {
			return err
		}
		var upF, upS, downF, downS []time.Duration
		for i := range reps {
			key := fmt.Sprintf("bench/blob-%d", i)
			dst := filepath.Join(tmp, "dst.bin")
			floorUp := func() error { return c.floorUp(ctx, i, src, size) }
			storeUp := func() error { return putFile(ctx, c.store, key, src, size) }
			floorDown := func() error { return c.floorDown(ctx, i, fresh(dst), size) }
			storeDown := func() error { return getFile(ctx, c.store, key, fresh(dst)) }
			// Alternate which goes first, so neither always meets a
			// warmer (or busier) system.
			steps := []struct {
				what string
				f    func() error
				into *[]time.Duration
			}{{"floor upload", floorUp, &upF}, {"upload", storeUp, &upS}, {"floor download", floorDown, &downF}, {"download", storeDown, &downS}}
			if i%2 == 1 {
				steps[0], steps[1] = steps[1], steps[0]
				steps[2], steps[3] = steps[3], steps[2]
			}
			for _, st := range steps {
				t, err := timed(st.f)
				if err != nil {
					return fmt.Errorf("%s %s: %w", name, st.what, err)
				}
				*st.into = append(*st.into, t)
			}
			if err := c.store.Delete(ctx, key); err != nil {
				return err
			}
			if err := c.floorClean(ctx, i); err != nil {
				return err
			}
		}
		row := func(dir string, f, s []time.Duration) {
			fm, sm := median(f), median(s)
			fmt.Printf("%-6s %-9s %12.0f %12.0f %7.2fx\n", name, dir, mbps(size, fm), mbps(size, sm), fm.Seconds()/sm.Seconds())
		}
		row("upload", upF, upS)
		row("download", downF, downS)
		c.close()
	}

	fmt.Printf("\npeak RSS rise while moving %d MiB through each store (child process, VmHWM):\n", rssSize>>20)
	if err := os.Remove(src); err != nil {
		return err
	}
	e.Src = filepath.Join(tmp, "rss-src.bin")
	if err := writeSource(e.Src, rssSize); err != nil {
		return err
	}
	raw, _ := json.Marshal(e)
	for _, name := range []string{"dir", "redis", "s3"} {
		for _, from := range []string{"file", "stream"} {
			cmd := exec.Command(os.Args[0], "-child", name+"/"+from, "-rss-size", strconv.FormatInt(rssSize>>20, 10))
			cmd.Env = append(os.Environ(), "ARTBENCH_ENV="+string(raw))
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("rss check of %s from a %s: %w", name, from, err)
			}
			fmt.Printf("%-6s %-6s %s", name, from, out)
		}
	}
	return nil
}

// fresh removes path, so every run writes a new file (rewriting a file
// over its old pages costs differently on some file systems).
func fresh(path string) string {
	_ = os.Remove(path)
	return path
}

func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func mbps(size int64, d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }

// gen yields deterministic incompressible-looking bytes.
type gen struct{ off, size int64 }

func (g *gen) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.size-g.off)]
	x := uint64(g.off)*0x9E3779B97F4A7C15 + 1
	for i := range p {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[i] = byte(x)
	}
	g.off += int64(len(p))
	return len(p), nil
}

func writeSource(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(f, &gen{size: size}, make([]byte, chunk)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func putFile(ctx context.Context, s artifact.Store, key, src string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.Put(ctx, key, f, size)
}

func getFile(ctx context.Context, s artifact.Store, key, dst string) error {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// benchCase is one store and the floor of its transfers.
type benchCase struct {
	store      artifact.Store
	floorUp    func(ctx context.Context, rep int, src string, size int64) error
	floorDown  func(ctx context.Context, rep int, dst string, size int64) error
	floorClean func(ctx context.Context, rep int) error
	close      func()
}

func openStore(name string, e env) (artifact.Store, func(), error) {
	switch name {
	case "dir":
		return artifact.NewDirStore(e.Dir), func() {}, nil
	case "redis":
		s := redis.NewArtifactStore(redis.Options{URL: e.RedisURL, RunID: "artbench"}, redis.WithArtifactBudget(8<<30))
		return s, func() { _ = s.Close() }, nil
	case "s3":
		s, err := s3.NewStore(s3.Options{Endpoint: e.S3Endpoint, Bucket: e.S3Bucket, Prefix: "store", AccessKeyID: e.S3Access, SecretAccessKey: e.S3Secret, Region: "us-east-1", PathStyle: true})
		if err != nil {
			return nil, nil, err
		}
		return s, func() { _ = s.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown store %q", name)
}

func newCase(name string, e env, tmp string, size int64) (*benchCase, error) {
	st, closeStore, err := openStore(name, e)
	if err != nil {
		return nil, err
	}
	c := &benchCase{store: st, close: closeStore}
	switch name {
	case "dir":
		floorFile := func(rep int) string { return filepath.Join(tmp, fmt.Sprintf("floor-%d.bin", rep)) }
		c.floorClean = func(_ context.Context, rep int) error { return os.Remove(floorFile(rep)) }
		c.floorUp = func(_ context.Context, rep int, src string, _ int64) error {
			in, err := os.Open(src)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.Create(floorFile(rep))
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, in); err != nil {
				out.Close()
				return err
			}
			if err := out.Sync(); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		}
		c.floorDown = func(_ context.Context, rep int, dst string, _ int64) error {
			in, err := os.Open(floorFile(rep))
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
			return out.Close()
		}
	case "redis":
		opts, err := goredis.ParseURL(e.RedisURL)
		if err != nil {
			return nil, err
		}
		rc := goredis.NewClient(opts)
		prev := c.close
		c.close = func() { prev(); _ = rc.Close() }
		floorKey := func(rep, i int) string { return fmt.Sprintf("floor:%d:%d", rep, i) }
		c.floorClean = func(ctx context.Context, rep int) error {
			for i := int64(0); i*chunk < size; i++ {
				if err := rc.Del(ctx, floorKey(rep, int(i))).Err(); err != nil {
					return err
				}
			}
			return nil
		}
		c.floorUp = func(ctx context.Context, rep int, src string, size int64) error {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			defer f.Close()
			buf := make([]byte, chunk)
			for i, off := 0, int64(0); off < size; i++ {
				n := min(chunk, size-off)
				if _, err := io.ReadFull(f, buf[:n]); err != nil {
					return err
				}
				if err := rc.Set(ctx, floorKey(rep, i), buf[:n], time.Hour).Err(); err != nil {
					return err
				}
				off += n
			}
			return nil
		}
		c.floorDown = func(ctx context.Context, rep int, dst string, size int64) error {
			out, err := os.Create(dst)
			if err != nil {
				return err
			}
			for i, off := 0, int64(0); off < size; i++ {
				b, err := rc.Get(ctx, floorKey(rep, i)).Bytes()
				if err != nil {
					out.Close()
					return err
				}
				if _, err := out.Write(b); err != nil {
					out.Close()
					return err
				}
				off += int64(len(b))
			}
			return out.Close()
		}
	case "s3":
		mc, err := minio.New(strings.TrimPrefix(e.S3Endpoint, "http://"), &minio.Options{Creds: credentials.NewStaticV4(e.S3Access, e.S3Secret, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
		if err != nil {
			return nil, err
		}
		floorObj := func(rep int) string { return fmt.Sprintf("floor/blob-%d", rep) }
		c.floorClean = func(ctx context.Context, rep int) error {
			return mc.RemoveObject(ctx, e.S3Bucket, floorObj(rep), minio.RemoveObjectOptions{})
		}
		c.floorUp = func(ctx context.Context, rep int, src string, size int64) error {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = mc.PutObject(ctx, e.S3Bucket, floorObj(rep), f, size, minio.PutObjectOptions{PartSize: 16 << 20, ContentType: "application/octet-stream"})
			return err
		}
		c.floorDown = func(ctx context.Context, rep int, dst string, _ int64) error {
			obj, err := mc.GetObject(ctx, e.S3Bucket, floorObj(rep), minio.GetObjectOptions{})
			if err != nil {
				return err
			}
			defer obj.Close()
			out, err := os.Create(dst)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, obj); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		}
	}
	return c, nil
}

// rssChild moves size bytes through one store, from a file into a file
// ("<store>/file") or from a plain io.Reader to io.Discard
// ("<store>/stream"), and prints the rise of the process's peak RSS
// over its level after a warm-up transfer.
func rssChild(what string, e env, size int64) error {
	name, from, _ := strings.Cut(what, "/")
	st, closeStore, err := openStore(name, e)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx := context.Background()
	if err := st.Put(ctx, "rss/warm", &gen{size: 1 << 20}, 1<<20); err != nil {
		return err
	}
	if err := drain(ctx, st, "rss/warm"); err != nil {
		return err
	}
	before, err := peakRSS()
	if err != nil {
		fmt.Printf("n/a (%v)\n", err)
		return nil
	}
	start := time.Now()
	if from == "file" {
		if err := putFile(ctx, st, "rss/big", e.Src, size); err != nil {
			return err
		}
		dst := filepath.Join(filepath.Dir(e.Src), "rss-dst.bin")
		if err := getFile(ctx, st, "rss/big", dst); err != nil {
			return err
		}
		_ = os.Remove(dst)
	} else {
		if err := st.Put(ctx, "rss/big", &gen{size: size}, size); err != nil {
			return err
		}
		if err := drain(ctx, st, "rss/big"); err != nil {
			return err
		}
	}
	took := time.Since(start)
	after, err := peakRSS()
	if err != nil {
		return err
	}
	_ = st.Delete(ctx, "rss/big")
	_ = st.Delete(ctx, "rss/warm")
	fmt.Printf("peak RSS %d MiB before, %d MiB after: +%d MiB (limit 64) for %d MiB up and down in %s\n", before>>20, after>>20, (after-before)>>20, size>>20, took.Round(time.Millisecond))
	return nil
}

func drain(ctx context.Context, st artifact.Store, key string) error {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

// peakRSS reads VmHWM from /proc/self/status (Linux).
func peakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

// redisServer is a redis-server started for the benchmark.
type redisServer struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

func startRedis(dir string) (*redisServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting redis-server (install it: apt-get install redis-server): %w", err)
	}
	s := &redisServer{cmd: cmd, url: fmt.Sprintf("redis://127.0.0.1:%d", port), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	c := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("redis-server did not answer PING within 20s")
		}
		select {
		case <-s.done:
			return nil, errors.New("redis-server exited at start")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return s, nil
}

func (s *redisServer) stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
}
