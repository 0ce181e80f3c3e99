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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

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

func TestProcessesWorkerKilledMidUpload(t *testing.T) {
	srv := redistest.Start(t)
	const padSize = 128 << 20
	s := newScenario(t, srv, 4, "DEMO_TOOL_PAD="+strconv.Itoa(padSize))
	// The killed worker leaves its build directory behind: keep it out of
	// the source tree, and away from other test processes running in it.
	s.dir = t.TempDir()
	master := s.start(0)
	workers := map[int]*proc{1: s.start(1, "--capability=docker,linux"), 2: s.start(2, "--capability=windows"), 3: s.start(3, "--capability=docker,macos")}
	c := s.client()
	ctx := context.Background()
	chunks := "modpipe:{" + s.runID + "}:art:c:*"
	holder := s.awaitLease("build-tool")
	// Kill the builder as soon as the first chunk of the artifact is in.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if keys, _, _ := c.Scan(ctx, 0, chunks, 1000).Result(); len(keys) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no artifact chunk appeared in Redis:\n%s", workers[holder].out.String())
		}
	}
	victim := workers[holder]
	if victim == nil {
		t.Fatalf("build-tool claimed by instance %d, not a docker worker", holder)
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	victim.wait(t, 10*time.Second)
	// Nothing partial is visible: no committed blob has the padding's size
	// (the killed upload's chunks are referenced by no manifest) and no
	// result of build-tool was published.
	if committed := committedSizes(t, c, s.runID); slices.Contains(committed, padSize) {
		t.Fatalf("the padding blob was committed before the kill (the upload was not interrupted): sizes %v", committed)
	}
	if code := master.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("master exited %d:\n%s", code, master.out.String())
	}
	rep := s.readReport()
	m := rep["build-tool"]
	if m.Status != "succeeded" || m.Instance == holder || m.Dispatches != 2 {
		t.Errorf("build-tool: %+v; want it succeeded on the other docker worker after the kill of %d", m, holder)
	}
	if !strings.Contains(m.LogTail, "uploaded artifact hello-tool: 2 files") {
		t.Errorf("the re-queued build-tool did not upload the artifact:\n%s", m.LogTail)
	}
	if sm := rep["smoke-test"]; sm.Status != "succeeded" {
		t.Errorf("smoke-test: %s %s", sm.Status, sm.Error)
	}
	if committed := committedSizes(t, c, s.runID); !slices.Contains(committed, padSize) {
		t.Errorf("the padding blob is not in the store after the run: sizes %v", committed)
	}
}

// committedSizes lists the sizes of the blobs committed in the run's
// Redis artifact store (manifests "<id> <size> <chunk size>").
func committedSizes(t *testing.T, c *goredis.Client, runID string) []int {
	t.Helper()
	ctx := context.Background()
	keys, err := c.Keys(ctx, "modpipe:{"+runID+"}:art:m:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, k := range keys {
		v, err := c.Get(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(v)
		if len(f) < 2 {
			t.Fatalf("manifest %s = %q", k, v)
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, n)
	}
	return sizes
}
