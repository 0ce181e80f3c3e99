package redis_test

// Multi-process artifact tests: examples/distributed builds a Go binary on
// its docker worker (build-tool), downloads it on the Windows worker
// (tool-check) and on the master (smoke-test, which runs it), and the
// master publishes it with --artifacts-out.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modpipe/modpipe/internal/redistest"
	"github.com/modpipe/modpipe/internal/s3test"
)

func TestProcessesArtifactBuiltOnAWorkerVerifiedElsewhere(t *testing.T) {
	srv := redistest.Start(t)
	s := newScenario(t, srv, 4)
	published := filepath.Join(t.TempDir(), "published")
	procs := []*proc{s.start(0, "--artifacts-out="+published), s.start(1, "--capability=docker"), s.start(2, "--capability=windows"), s.start(3, "--capability=macos")}
	for _, p := range procs {
		if code := p.wait(t, 90*time.Second); code != 0 {
			t.Fatalf("instance %d exited %d:\n%s\n--- master:\n%s", p.index, code, p.out.String(), procs[0].out.String())
		}
	}
	rep := s.readReport()
	for name, inst := range map[string]int{"build-tool": 1, "tool-check": 2, "smoke-test": 0} {
		if m := rep[name]; m.Status != "succeeded" || m.Instance != inst {
			t.Errorf("%s: %s on instance %d, want succeeded on %d", name, m.Status, m.Instance, inst)
		}
	}
	master := procs[0].out.String()
	for _, want := range []string{"ran the tool built_on=1 instance=0", "verified the tool", "to Redis artifact store at", "Artifacts:"} {
		if !strings.Contains(master, want) {
			t.Errorf("master output lacks %q:\n%s", want, master)
		}
	}
	said, err := exec.Command(filepath.Join(published, "hello-tool", "hello")).Output()
	if err != nil || strings.TrimSpace(string(said)) != "hello from the tool" {
		t.Errorf("published tool said %q, %v", said, err)
	}
	// The bytes went through Redis: the run's artifact keys exist.
	keys, err := s.client().Keys(context.Background(), "modpipe:{"+s.runID+"}:art:m:blobs/sha256/*").Result()
	if err != nil || len(keys) < 2 {
		t.Errorf("artifact blobs in Redis: %v, %v; want the binary's and the manifest's", keys, err)
	}
}

// tamperedRun starts a run whose smoke-test waits 3s before downloading,
// calls tamper once the tool is uploaded and smoke-test holds its lease, and
// checks that the master refuses the blob.
func tamperedRun(t *testing.T, s *scenario, tamper func(), extra ...string) {
	t.Helper()
	master := s.start(0, extra...)
	s.start(1, append([]string{"--capability=docker"}, extra...)...)
	s.start(2, append([]string{"--capability=windows"}, extra...)...)
	s.start(3, append([]string{"--capability=macos"}, extra...)...)
	s.awaitLease("smoke-test")
	tamper()
	if code := master.wait(t, 90*time.Second); code != 1 {
		t.Fatalf("master exited %d, want 1 (tampered blob refused):\n%s", code, master.out.String())
	}
	m := s.readReport()["smoke-test"]
	for _, want := range []string{"artifact hello-tool", "file hello", "does not match", "nothing was kept"} {
		if m.Status != "failed" || !strings.Contains(m.Error, want) {
			t.Errorf("smoke-test: %s, error %q; want it failed saying %q", m.Status, m.Error, want)
		}
	}
}

func TestProcessesTamperedBlobInRedisRefused(t *testing.T) {
	srv := redistest.Start(t)
	s := newScenario(t, srv, 4, "DEMO_SLOW=smoke-test=3s")
	c := s.client()
	tamperedRun(t, s, func() {
		ctx := context.Background()
		// The tool is the blob with the most chunks; flip a byte of its
		// first chunk.
		chunks, err := c.Keys(ctx, "modpipe:{"+s.runID+"}:art:c:*:0").Result()
		if err != nil || len(chunks) == 0 {
			t.Fatalf("no artifact chunks in Redis: %v", err)
		}
		biggest, size := "", int64(-1)
		for _, k := range chunks {
			if n, _ := c.StrLen(ctx, k).Result(); n > size {
				biggest, size = k, n
			}
		}
		if err := c.SetRange(ctx, biggest, 100, "X").Err(); err != nil {
			t.Fatal(err)
		}
	})
	if s.readReport()["smoke-test"].Error != "" && !strings.Contains(s.readReport()["smoke-test"].Error, "Redis artifact store") {
		t.Errorf("the error does not name the store: %s", s.readReport()["smoke-test"].Error)
	}
}

func TestProcessesTamperedBlobInS3Refused(t *testing.T) {
	srv := redistest.Start(t)
	s3srv := s3test.Start(t)
	s := newScenario(t, srv, 4, "DEMO_SLOW=smoke-test=3s",
		"AWS_ENDPOINT_URL="+s3srv.Endpoint, "AWS_ACCESS_KEY_ID="+s3srv.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3srv.SecretKey, "AWS_REGION=us-east-1")
	tamperedRun(t, s, func() {
		// versitygw's posix backend keeps each object as a file: change
		// the biggest blob (the tool) on disk.
		dir := filepath.Join(s3srv.Dir, s3srv.Bucket, "run", "blobs", "sha256")
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("no blobs in S3: %v", err)
		}
		biggest, size := "", int64(-1)
		for _, e := range entries {
			if fi, err := e.Info(); err == nil && fi.Size() > size {
				biggest, size = filepath.Join(dir, e.Name()), fi.Size()
			}
		}
		f, err := os.OpenFile(biggest, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte("X"), 100); err != nil {
			t.Fatal(err)
		}
	}, "--artifact-store=s3://"+s3srv.Bucket+"/run")
	if e := s.readReport()["smoke-test"].Error; !strings.Contains(e, "S3") && !strings.Contains(e, s3srv.Bucket) {
		t.Errorf("the error does not name the store: %s", e)
	}
}
