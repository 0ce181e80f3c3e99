package transfer_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modpipe/modpipe/artifact"
	modredis "github.com/modpipe/modpipe/distributed/redis"
	"github.com/modpipe/modpipe/internal/redistest"
	"github.com/modpipe/modpipe/internal/transfer"
)

// rssChildEnv, when set in the environment of the test binary, makes it a
// child of BenchmarkPeakRSS instead of running tests (see TestMain).
const rssChildEnv = "MODPIPE_TRANSFER_RSS_CHILD"

// rssJob is what a child moves: Base/out through Upload and Download.
type rssJob struct {
	Store    string // "dir" or "redis"
	RedisURL string
	Base     string // holds out/blob
	Work     string // scratch directory
}

func TestMain(m *testing.M) {
	if job := os.Getenv(rssChildEnv); job != "" {
		if err := rssChild(job); err != nil {
			fmt.Fprintln(os.Stderr, "rss child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// rssChild uploads and downloads a 1 MiB warm-up artifact, reads its peak
// RSS, then moves the job's artifact and prints how much the peak rose,
// in bytes.
func rssChild(raw string) error {
	var job rssJob
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		return err
	}
	ctx := context.Background()
	var s artifact.Store
	switch job.Store {
	case "dir":
		s = artifact.NewDirStore(filepath.Join(job.Work, "store"))
	case "redis":
		rs := modredis.NewArtifactStore(modredis.Options{URL: job.RedisURL, RunID: "rss"}, modredis.WithArtifactBudget(4<<30))
		defer rs.Close()
		s = rs
	default:
		return fmt.Errorf("unknown store %q", job.Store)
	}
	move := func(base, name string) error {
		m, _, err := transfer.Upload(ctx, transfer.Target{Store: s, Name: job.Store}, base, name, []string{"out"})
		if err != nil {
			return err
		}
		_, err = transfer.Download(ctx, transfer.Source{Store: s, Name: job.Store}, m, filepath.Join(job.Work, name))
		return err
	}
	warm := filepath.Join(job.Work, "warm")
	if err := writeRandom(filepath.Join(warm, "out", "blob"), 1<<20); err != nil {
		return err
	}
	if err := move(warm, "warm"); err != nil {
		return err
	}
	runtime.GC()
	before, err := peakRSS()
	if err != nil {
		return err
	}
	if err := move(job.Base, "big"); err != nil {
		return err
	}
	after, err := peakRSS()
	if err != nil {
		return err
	}
	_, err = fmt.Println(after - before)
	return err
}

// BenchmarkPeakRSS moves a 1 GiB artifact through Upload and Download in
// a child process, per store, and reports how much the child's peak RSS
// (VmHWM, Linux) rose over its level after a 1 MiB warm-up transfer, in
// MiB ("dir-rss-MiB", "redis-rss-MiB"; the issue allows 64).
//
//	go test -run X -bench PeakRSS -benchtime 1x ./internal/transfer/
func BenchmarkPeakRSS(b *testing.B) {
	if _, err := peakRSS(); err != nil {
		b.Skipf("peak RSS is read from /proc/self/status (Linux): %v", err)
	}
	base := b.TempDir()
	if err := writeRandom(filepath.Join(base, "out", "blob"), 1<<30); err != nil {
		b.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(filepath.Join(base, "out", "blob"), old, old); err != nil {
		b.Fatal(err)
	}
	srv := redistest.Start(b)
	for b.Loop() {
		for _, store := range []string{"dir", "redis"} {
			raw, err := json.Marshal(rssJob{Store: store, RedisURL: srv.URL(), Base: base, Work: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), rssChildEnv+"="+string(raw))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				b.Fatalf("%s child: %v\n%s", store, err, stderr.String())
			}
			rise, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
			if err != nil {
				b.Fatalf("%s child printed %q: %v", store, out, err)
			}
			b.ReportMetric(float64(rise)/(1<<20), store+"-rss-MiB")
		}
	}
}

func writeRandom(path string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
