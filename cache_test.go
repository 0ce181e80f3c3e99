package modpipe

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/modpipe/modpipe/artifact"
)

// cachedPipeline is gen → build (cached on src/*.txt) → pkg (cached, no
// files of its own) → report (not cached); lint (cached on lint.cfg) is
// independent. ran counts executions of each body.
type cachedPipeline struct {
	p   *Pipeline
	ran map[string]*atomic.Int32
}

type buildOut struct {
	Files int
	Sum   string
}

func newCachedPipeline(version string) *cachedPipeline {
	cp := &cachedPipeline{ran: map[string]*atomic.Int32{}}
	for _, n := range []string{"gen", "build", "pkg", "report", "lint"} {
		cp.ran[n] = &atomic.Int32{}
	}
	gen := New("gen", func(c *Context) (string, error) { cp.ran["gen"].Add(1); return "v1", nil })
	build := New("build", func(c *Context) (buildOut, error) {
		cp.ran["build"].Add(1)
		m, _ := filepath.Glob("src/*.txt")
		return buildOut{Files: len(m), Sum: "s"}, nil
	}, DependsOn(gen), Cache(InputFiles("src/*.txt"), CacheVersion(version)))
	pkg := New("pkg", func(c *Context) (string, error) {
		cp.ran["pkg"].Add(1)
		b, err := Result(c, build)
		return "pkg of " + b.Sum, err
	}, DependsOn(build), Cache())
	report := Task("report", func(c *Context) error {
		cp.ran["report"].Add(1)
		v, err := Result(c, pkg)
		if err == nil && v != "pkg of s" {
			err = errors.New("restored result is " + v)
		}
		return err
	}, DependsOn(pkg))
	lint := Task("lint", func(c *Context) error { cp.ran["lint"].Add(1); return nil }, Cache(InputFiles("lint.cfg"), InputEnv("LINT_LEVEL")))
	cp.p = NewPipeline().Add(gen, build, pkg, report, lint)
	return cp
}

func (cp *cachedPipeline) counts() map[string]int32 {
	out := map[string]int32{}
	for n, c := range cp.ran {
		out[n] = c.Load()
	}
	return out
}

func cacheWorkdir(t *testing.T) string {
	dir := t.TempDir()
	t.Chdir(dir)
	for name, body := range map[string]string{"src/a.txt": "a", "src/b.txt": "b", "lint.cfg": "strict", "README": "x"} {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readReport(t *testing.T, path string) map[string]map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Modules []map[string]any `json:"modules"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, m := range rep.Modules {
		out[m["name"].(string)] = m
	}
	return out
}

func TestCacheHitsSkipBodiesAndChangesRerunDependents(t *testing.T) {
	cacheWorkdir(t)
	store := "file://" + filepath.ToSlash(filepath.Join(t.TempDir(), "cache"))
	env := map[string]string{"MODPIPE_CACHE": store, "LINT_LEVEL": "high"}

	first := newCachedPipeline("1")
	if code, out, errOut := runMain(t, first.p, env); code != 0 {
		t.Fatalf("cold run exit %d\n%s\n%s", code, out, errOut)
	}
	want := map[string]int32{"gen": 1, "build": 1, "pkg": 1, "report": 1, "lint": 1}
	if got := first.counts(); !equalCounts(got, want) {
		t.Fatalf("cold run executed %v, want %v", got, want)
	}

	second := newCachedPipeline("1")
	report := filepath.Join(t.TempDir(), "r.json")
	code, out, errOut := runMain(t, second.p, env, "--report", report)
	if code != 0 {
		t.Fatalf("warm run exit %d\n%s\n%s", code, out, errOut)
	}
	want = map[string]int32{"gen": 1, "build": 0, "pkg": 0, "report": 1, "lint": 0}
	if got := second.counts(); !equalCounts(got, want) {
		t.Fatalf("warm run executed %v, want %v (cached bodies must not run)", got, want)
	}
	if !strings.Contains(out, "Cache: 3 hits, 0 misses") || !strings.Contains(out, "↺ cached") {
		t.Errorf("summary does not show the hits:\n%s", out)
	}
	rep := readReport(t, report)
	if rep["build"]["status"] != "cached" || rep["build"]["cache"].(map[string]any)["hit"] != true {
		t.Errorf("report for build = %v", rep["build"])
	}

	// Change one input file of build: build and its cached dependent pkg
	// run again (pkg's key covers build's result only if it changed, so
	// give build a result that changes), lint still hits.
	if err := os.WriteFile("src/c.txt", []byte("c"), 0o644); err != nil {
		t.Fatal(err)
	}
	third := newCachedPipeline("1")
	code, out, errOut = runMain(t, third.p, env, "--explain-cache", "--report", report)
	if code != 0 {
		t.Fatalf("third run exit %d\n%s\n%s", code, out, errOut)
	}
	want = map[string]int32{"gen": 1, "build": 1, "pkg": 1, "report": 1, "lint": 0}
	if got := third.counts(); !equalCounts(got, want) {
		t.Fatalf("after changing src/c.txt executed %v, want %v", got, want)
	}
	for _, s := range []string{"build: file added: src/c.txt", "pkg: result of dependency build changed"} {
		if !strings.Contains(out, s) {
			t.Errorf("--explain-cache output lacks %q:\n%s", s, out)
		}
	}
	rep = readReport(t, report)
	if ch := rep["build"]["cache"].(map[string]any)["changes"]; !strings.Contains(asJSON(ch), "file added: src/c.txt") {
		t.Errorf("report explain for build = %v", ch)
	}

	// Bump the version: build misses and says why.
	fourth := newCachedPipeline("2")
	code, out, _ = runMain(t, fourth.p, env, "--explain-cache")
	if code != 0 || fourth.counts()["build"] != 1 || !strings.Contains(out, `cache version bumped ("1" → "2")`) {
		t.Errorf("version bump: exit %d, ran %v\n%s", code, fourth.counts(), out)
	}
	// The environment input: a changed value misses, named but not shown.
	env["LINT_LEVEL"] = "secret-level-value"
	fifth := newCachedPipeline("2")
	code, out, _ = runMain(t, fifth.p, env, "--explain-cache")
	if code != 0 || fifth.counts()["lint"] != 1 || !strings.Contains(out, "environment variable changed: LINT_LEVEL") || strings.Contains(out, "secret-level-value") {
		t.Errorf("env change: exit %d, ran %v\n%s", code, fifth.counts(), out)
	}
}

func asJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func equalCounts(a, b map[string]int32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestCachePullRequestRunsReadButNeverWrite(t *testing.T) {
	cacheWorkdir(t)
	dir := filepath.Join(t.TempDir(), "cache")
	env := map[string]string{"MODPIPE_CACHE": "file://" + filepath.ToSlash(dir), "GITHUB_EVENT_NAME": "pull_request"}
	pr := newCachedPipeline("1")
	if code, out, _ := runMain(t, pr.p, env); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a pull-request run wrote the cache: %v", entries)
	}
	// --cache-mode overrides the default.
	if code, out, _ := runMain(t, newCachedPipeline("1").p, env, "--cache-mode", "readwrite"); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	again := newCachedPipeline("1")
	if code, out, _ := runMain(t, again.p, env); code != 0 || again.counts()["build"] != 0 {
		t.Fatalf("a pull-request run did not read the cache: exit %d, ran %v\n%s", code, again.counts(), out)
	}
	for _, e := range []map[string]string{{"CI_MERGE_REQUEST_IID": "7"}, {"CI_PIPELINE_SOURCE": "merge_request_event"}, {"GITHUB_EVENT_NAME": "pull_request_target"}} {
		if !untrustedEvent(func(k string) string { return e[k] }) {
			t.Errorf("%v is not seen as a pull/merge-request run", e)
		}
	}
	if untrustedEvent(func(k string) string { return map[string]string{"GITHUB_EVENT_NAME": "push"}[k] }) {
		t.Error("a push is seen as a pull-request run")
	}
}

func TestCacheSigningKeyRefusesForeignEntries(t *testing.T) {
	cacheWorkdir(t)
	env := map[string]string{"MODPIPE_CACHE": "file://" + filepath.ToSlash(filepath.Join(t.TempDir(), "cache"))}
	// An attacker without the key writes entries (e.g. from a fork).
	if code, out, _ := runMain(t, newCachedPipeline("1").p, env); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	env["MODPIPE_CACHE_SIGNING_KEY"] = "a-long-enough-signing-key-0123456789"
	signed := newCachedPipeline("1")
	code, out, _ := runMain(t, signed.p, env)
	if code != 0 || signed.counts()["build"] != 1 || signed.counts()["lint"] != 1 {
		t.Fatalf("unsigned entries hit while a key is set: exit %d, ran %v\n%s", code, signed.counts(), out)
	}
	if !strings.Contains(out, "Cache warning: cache entry of build ignored") || !strings.Contains(out, "unsigned") {
		t.Errorf("no warning for the unsigned entry:\n%s", out)
	}
	if strings.Contains(out, env["MODPIPE_CACHE_SIGNING_KEY"]) {
		t.Error("the signing key was printed")
	}
	again := newCachedPipeline("1")
	if code, out, _ := runMain(t, again.p, env); code != 0 || again.counts()["build"] != 0 || strings.Contains(out, "Cache warning") {
		t.Fatalf("signed entries did not hit: exit %d, ran %v\n%s", code, again.counts(), out)
	}
	env["MODPIPE_CACHE_SIGNING_KEY"] = "short"
	if code, _, errOut := runMain(t, newCachedPipeline("1").p, env); code != 2 || !strings.Contains(errOut, "shorter than 16 bytes") {
		t.Errorf("a short signing key: exit %d, %s", code, errOut)
	}
}

// brokenStore fails every call, like an unreachable server.
type brokenStore struct{ artifact.Store }

func (brokenStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return nil, errors.New("dial tcp 10.0.0.1:6379: connection refused")
}

func (brokenStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return errors.New("dial tcp 10.0.0.1:6379: connection refused")
}

func TestCacheStoreFailureWarnsOnceAndRunsWithoutIt(t *testing.T) {
	cacheWorkdir(t)
	cp := newCachedPipeline("1")
	cp.p.UseCache(brokenStore{})
	code, out, errOut := runMain(t, cp.p, nil)
	if code != 0 {
		t.Fatalf("a failing cache store failed the run: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := strings.Count(out, "Cache warning:"); n != 1 || !strings.Contains(out, "connection refused") {
		t.Errorf("want one warning naming the failure, got %d:\n%s", n, out)
	}
	if got := cp.counts(); got["build"] != 1 || got["lint"] != 1 {
		t.Errorf("modules did not run: %v", got)
	}
}

func TestCacheModeOffAndBadMode(t *testing.T) {
	cacheWorkdir(t)
	dir := filepath.Join(t.TempDir(), "cache")
	env := map[string]string{"MODPIPE_CACHE": "file://" + filepath.ToSlash(dir)}
	if code, _, _ := runMain(t, newCachedPipeline("1").p, env, "--cache-mode", "off"); code != 0 {
		t.Fatal("run failed")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("--cache-mode off wrote the cache: %v", entries)
	}
	if code, _, errOut := runMain(t, newCachedPipeline("1").p, env, "--cache-mode", "sometimes"); code != 2 || !strings.Contains(errOut, "readwrite, read, off") {
		t.Errorf("bad mode: exit %d %s", code, errOut)
	}
}

func TestCacheDistributedHitsRunOnTheMaster(t *testing.T) {
	cacheWorkdir(t)
	leaks := goleak.IgnoreCurrent()
	env := map[string]string{"MODPIPE_CACHE": "file://" + filepath.ToSlash(filepath.Join(t.TempDir(), "cache"))}
	build := func(ran *atomic.Int32, where *atomic.Int32) *Pipeline {
		gpu := New("gpu", func(c *Context) (int, error) {
			ran.Add(1)
			where.Store(int32(c.Instance().Index))
			return 7, nil
		}, RequiresCapability("gpu"), Cache(InputFiles("src/*.txt")))
		after := Task("after", func(c *Context) error {
			v, err := Result(c, gpu)
			if err == nil && v != 7 {
				err = errors.New("restored the wrong value")
			}
			return err
		}, DependsOn(gpu))
		p := NewPipeline().Add(gpu, after)
		p.UseDistributed(DistributedOptions{LocalCapabilities: map[int][]string{1: {"gpu"}}})
		return p
	}
	var ran, where atomic.Int32
	where.Store(-1)
	if code, out, errOut := runMain(t, build(&ran, &where), env, "--local-instances", "2"); code != 0 || ran.Load() != 1 || where.Load() != 1 {
		t.Fatalf("cold run: exit %d, ran %d times on instance %d\n%s\n%s", code, ran.Load(), where.Load(), out, errOut)
	}
	ran.Store(0)
	report := filepath.Join(t.TempDir(), "r.json")
	code, out, errOut := runMain(t, build(&ran, &where), env, "--local-instances", "2", "--report", report)
	if code != 0 || ran.Load() != 0 {
		t.Fatalf("warm run: exit %d, body ran %d times\n%s\n%s", code, ran.Load(), out, errOut)
	}
	m := readReport(t, report)["gpu"]
	if m["status"] != "cached" || m["instance"] != float64(0) {
		t.Errorf("the hit did not end cached on the master: %v", m)
	}
	goleak.VerifyNone(t, leaks) // lookups, background stores and their goroutines all ended
}

func TestCacheHitWhoseArtifactIsGoneIsAMiss(t *testing.T) {
	cacheWorkdir(t)
	cacheDir := filepath.Join(t.TempDir(), "cache")
	var built atomic.Int32
	pipeline := func() *Pipeline {
		mk := New("mk", func(c *Context) (Artifact, error) {
			built.Add(1)
			return c.Upload("src", "src")
		}, Cache(InputFiles("src/*.txt")))
		use := Task("use", func(c *Context) error {
			a, err := Result(c, mk)
			if err != nil {
				return err
			}
			return c.Download(a, filepath.Join(t.TempDir(), "out"))
		}, DependsOn(mk))
		return NewPipeline().Add(mk, use)
	}
	env := map[string]string{"MODPIPE_CACHE": "file://" + filepath.ToSlash(cacheDir)}
	if code, out, _ := runMain(t, pipeline(), env); code != 0 || built.Load() != 1 {
		t.Fatalf("cold: exit %d, built %d\n%s", code, built.Load(), out)
	}
	if code, out, _ := runMain(t, pipeline(), env); code != 0 || built.Load() != 1 {
		t.Fatalf("warm: exit %d, built %d (the artifact is in the cache's store)\n%s", code, built.Load(), out)
	}
	// Remove the artifact's blobs (as a store's retention would): the
	// entry is no longer usable, the module runs and the reason is shown.
	blobs := 0
	err := filepath.WalkDir(filepath.Join(cacheDir, "blobs", "sha256"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			blobs++
			return os.Remove(p)
		}
		return err
	})
	if err != nil || blobs == 0 {
		t.Fatalf("no artifact blobs found to remove (%d): %v", blobs, err)
	}
	code, out, _ := runMain(t, pipeline(), env)
	if code != 0 || built.Load() != 2 || !strings.Contains(out, "cache entry not used: an artifact of its result is gone") {
		t.Fatalf("after removing the artifact: exit %d, built %d\n%s", code, built.Load(), out)
	}
}
