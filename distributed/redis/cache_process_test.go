package redis_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modpipe/modpipe/internal/redistest"
)

var buildCacheProg = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "modpipe-cacheprog-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "cacheprog")
	out, err := exec.Command("go", "build", "-o", bin, "../../internal/testprog/cacheprog").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// cacheRun runs internal/testprog/cacheprog as a master and two workers
// (docker, windows) over srv, with the cache in the same Redis. It returns
// the outputs of the three instances and the master's report.
func cacheRun(t *testing.T, srv *redistest.Server, dir string, extra ...string) ([]string, map[string]reportModule, []byte) {
	t.Helper()
	bin, err := buildCacheProg()
	if err != nil {
		t.Fatal(err)
	}
	s := &scenario{t: t, bin: bin, srv: srv, url: srv.URL(), runID: newRunID(), total: 3, report: filepath.Join(t.TempDir(), "report.json"), dir: dir}
	cacheFlags := append([]string{"--cache=" + srv.URL() + "?retention=1h"}, extra...)
	procs := []*proc{
		s.start(0, cacheFlags...),
		s.start(1, append([]string{"--capability=docker"}, cacheFlags...)...),
		s.start(2, append([]string{"--capability=windows"}, cacheFlags...)...),
	}
	var outs []string
	for _, p := range procs {
		if code := p.wait(t, 90*time.Second); code != 0 {
			for _, q := range procs {
				t.Logf("--- instance %d:\n%s", q.index, q.out.String())
			}
			t.Fatalf("instance %d exited %d", p.index, code)
		}
		outs = append(outs, p.out.String())
	}
	raw, err := os.ReadFile(s.report)
	if err != nil {
		t.Fatal(err)
	}
	return outs, s.readReport(), raw
}

// ranBodies lists "module@instance" for every body the instances ran.
func ranBodies(outs []string) []string {
	var got []string
	for _, out := range outs {
		for line := range strings.SplitSeq(out, "\n") {
			var mod string
			var inst int
			if n, _ := fmt.Sscanf(strings.TrimSpace(line), "RAN %s on %d", &mod, &inst); n == 2 && strings.HasPrefix(line, "RAN ") {
				got = append(got, fmt.Sprintf("%s@%d", mod, inst))
			}
		}
	}
	return got
}

func TestProcessesCacheSkipsWorkersAndExplainsMisses(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	for name, body := range map[string]string{"src/a.txt": "a", "src/b.txt": "b", "lint.cfg": "strict"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Cold: every cached body runs on the worker that offers its capability.
	outs, rep, _ := cacheRun(t, srv, dir)
	if got := strings.Join(sortedCopy(ranBodies(outs)), " "); got != "compile@1 lint@1 wintest@2" {
		t.Fatalf("cold run ran %q, want compile@1 lint@1 wintest@2\n%s", got, outs[0])
	}

	// Warm: every cached module hits on the master; nothing is dispatched
	// to a worker, and both workers ran nothing. The run usually ends
	// before the workers join: they exit 0 all the same.
	outs, rep, _ = cacheRun(t, srv, dir)
	if got := ranBodies(outs); len(got) != 0 {
		t.Fatalf("warm run ran bodies %v\n%s", got, outs[0])
	}
	for _, name := range []string{"gen", "compile", "wintest", "lint"} {
		if m := rep[name]; m.Status != "cached" || m.Instance != 0 {
			t.Errorf("%s: %s on instance %d, want cached on the master", name, m.Status, m.Instance)
		}
	}
	for i, out := range outs[1:] {
		if !strings.Contains(out, "ran no modules") && !strings.Contains(out, "completed before worker") {
			t.Errorf("worker %d ran modules in the warm run:\n%s", i+1, out)
		}
	}
	if m := rep["publish"]; m.Status != "succeeded" || !strings.Contains(m.LogTail, "publishing tested 2") {
		t.Errorf("publish did not get the restored result: %+v", m)
	}

	// One input file changes: exactly compile and its dependent wintest
	// run again, on their workers; lint hits; the miss names the file.
	if err := os.WriteFile(filepath.Join(dir, "src/b.txt"), []byte("b, edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	outs, rep, raw := cacheRun(t, srv, dir, "--explain-cache")
	if got := strings.Join(sortedCopy(ranBodies(outs)), " "); got != "compile@1" {
		t.Fatalf("after editing src/b.txt ran %q, want compile@1 (wintest's input, compile's result, is unchanged)\n%s", got, outs[0])
	}
	if !strings.Contains(outs[0], "compile: file changed: src/b.txt") {
		t.Errorf("--explain-cache does not name the file:\n%s", outs[0])
	}
	if rep["lint"].Status != "cached" || rep["wintest"].Status != "cached" {
		t.Errorf("lint %s, wintest %s; want both cached", rep["lint"].Status, rep["wintest"].Status)
	}
	var full struct {
		Modules []struct {
			Name  string `json:"name"`
			Cache struct {
				Changes []string `json:"changes"`
			} `json:"cache"`
		} `json:"modules"`
	}
	if err := json.Unmarshal(raw, &full); err != nil {
		t.Fatal(err)
	}
	for _, m := range full.Modules {
		if m.Name == "compile" && strings.Join(m.Cache.Changes, ";") != "file changed: src/b.txt" {
			t.Errorf("report explain for compile = %q", m.Cache.Changes)
		}
	}

	// A new file changes compile's result (the file count): its dependent
	// misses too, and says why.
	if err := os.WriteFile(filepath.Join(dir, "src/c.txt"), []byte("c"), 0o644); err != nil {
		t.Fatal(err)
	}
	outs, _, _ = cacheRun(t, srv, dir, "--explain-cache")
	if got := strings.Join(sortedCopy(ranBodies(outs)), " "); got != "compile@1 wintest@2" {
		t.Fatalf("after adding src/c.txt ran %q, want compile@1 wintest@2\n%s", got, outs[0])
	}
	for _, want := range []string{"compile: file added: src/c.txt", "wintest: result of dependency compile changed"} {
		if !strings.Contains(outs[0], want) {
			t.Errorf("--explain-cache lacks %q:\n%s", want, outs[0])
		}
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
