package modpipe

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/distributed"
)

// A malformed --artifact-store or --cache is a usage error at start (exit
// 2, nothing runs), also for --dry-run and for a run whose modules never
// upload or use the cache.
func TestMainRefusesMalformedStoreURLsAtStart(t *testing.T) {
	cases := []struct{ url, want string }{
		{"file:store", "is not a URL"},
		{"file://", "needs a directory"},
		{"ftp://host/dir", `unknown scheme "ftp"`},
		{"s3://AKIA:hunter2@bucket/prefix", "holds credentials"},
		{"s3://bucket/prefix?colour=red", `unknown URL parameter "colour"`},
		{"s3://bucket/prefix?path-style=maybe", "use true or false"},
		{"redis://127.0.0.1:1", "Redis coordinator"},
		{"redis+cluster://127.0.0.1:1,127.0.0.1:2", "Redis coordinator"},
	}
	for _, flagName := range []string{"--artifact-store", "--cache"} {
		for _, c := range cases {
			for _, extra := range [][]string{nil, {"--dry-run"}} {
				var ran atomic.Int32
				p := NewPipeline().Add(Task("a", func(*Context) error { ran.Add(1); return nil }, Cache()))
				args := append([]string{flagName, c.url, "--cache-mode", "off"}, extra...)
				code, out, errOut := runMain(t, p, nil, args...)
				if code != 2 || !strings.Contains(errOut, flagName) || !strings.Contains(errOut, c.want) {
					t.Errorf("%v: exit %d, want 2 with %q on stderr:\n%s%s", args, code, c.want, out, errOut)
				}
				if ran.Load() != 0 {
					t.Errorf("%v: a module ran", args)
				}
				if strings.Contains(errOut, "hunter2") {
					t.Errorf("%v: the password is printed:\n%s", args, errOut)
				}
			}
		}
	}
	// The environment is checked the same way.
	p := NewPipeline().Add(Task("a", func(*Context) error { return nil }))
	code, _, errOut := runMain(t, p, map[string]string{"MODPIPE_ARTIFACT_STORE": "file:store"}, "--dry-run")
	if code != 2 || !strings.Contains(errOut, "is not a URL") {
		t.Errorf("MODPIPE_ARTIFACT_STORE=file:store: exit %d, want 2:\n%s", code, errOut)
	}
}

// Well-formed URLs pass the check; a cache store that cannot be used is a
// warning, never a failure of the run (issue 12).
func TestMainAcceptsWellFormedStoreURLs(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--artifact-store", "file://" + filepath.ToSlash(dir) + "/art"},
		{"--artifact-store", "s3://bucket/prefix?endpoint=http://127.0.0.1:1&region=x&path-style=true"},
		{"--cache", "s3://bucket/prefix?endpoint=http://127.0.0.1:1", "--cache-mode", "off"},
	} {
		p := NewPipeline().Add(Task("a", func(*Context) error { return nil }))
		if code, out, errOut := runMain(t, p, nil, args...); code != 0 {
			t.Errorf("%v: exit %d, want 0:\n%s%s", args, code, out, errOut)
		}
	}
	blocker := filepath.Join(dir, "file")
	if err := writeFileForTest(blocker); err != nil {
		t.Fatal(err)
	}
	var ran atomic.Int32
	p := NewPipeline().Add(Task("a", func(*Context) error { ran.Add(1); return nil }, Cache()))
	code, out, errOut := runMain(t, p, nil, "--cache", "file://"+filepath.ToSlash(blocker)+"/cache")
	if code != 0 || ran.Load() != 1 {
		t.Errorf("a cache directory that cannot be made: exit %d, ran %d; want 0 and 1 (a warning):\n%s%s", code, ran.Load(), out, errOut)
	}
}

func writeFileForTest(path string) error { return os.WriteFile(path, []byte("x"), 0o644) }

// cacheCoordinator is a coordinator that keeps a cache (as the Redis one
// does), recording the URLs it is asked for.
type cacheCoordinator struct {
	distributed.Coordinator
	dir  string
	urls []string
}

func (c *cacheCoordinator) CacheStore(url string) (artifact.Store, error) {
	c.urls = append(c.urls, url)
	return artifact.NewDirStore(c.dir), nil
}

// --help lists redis+cluster:// for both stores, and a redis+cluster://
// --cache is opened through the coordinator like redis:// (it was refused
// as "a Redis cache is opened through the Redis coordinator" even with one).
func TestRedisClusterStoreURLs(t *testing.T) {
	p := NewPipeline().Add(Task("a", func(*Context) error { return nil }))
	_, _, errOut := runMain(t, p, nil, "--help")
	for _, name := range []string{"-artifact-store URL", "-cache URL"} {
		_, after, _ := strings.Cut(errOut, name)
		line, _, _ := strings.Cut(after, "(env")
		if !strings.Contains(line, "redis+cluster://") {
			t.Errorf("--help for %s does not list redis+cluster://:\n%s", name, line)
		}
	}
	for _, url := range []string{"redis://127.0.0.1:1", "redis+cluster://127.0.0.1:1,127.0.0.1:2", "rediss+cluster://127.0.0.1:1"} {
		coord := &cacheCoordinator{Coordinator: distributed.NewInMemory(), dir: t.TempDir()}
		p := NewPipeline().UseCoordinator(coord)
		s, err := p.openCacheURL(url)
		if err != nil || s == nil {
			t.Errorf("--cache %s with a coordinator that keeps a cache: %v", url, err)
			continue
		}
		if len(coord.urls) != 1 || coord.urls[0] != url {
			t.Errorf("--cache %s: the coordinator was asked for %q", url, coord.urls)
		}
	}
}
