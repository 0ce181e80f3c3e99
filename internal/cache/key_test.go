package cache

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tree(t *testing.T) string {
	dir := t.TempDir()
	write(t, dir, "main.go", "package main")
	write(t, dir, "pkg/a/a.go", "package a")
	write(t, dir, "go.sum", "sum")
	write(t, dir, "README.md", "readme")
	return dir
}

func baseSpec() Spec {
	return Spec{
		Module: "build", Platform: "linux/amd64", Version: "1",
		Files:    []string{"**/*.go", "go.sum"},
		Env:      []string{"GOFLAGS"},
		Commands: [][]string{{"go", "env", "GOROOT"}},
		Values:   []Value{{Name: "cfg", Data: []byte(`{"a":1}`)}},
		Deps:     []Value{{Name: "gen", Data: []byte(`"x"`)}},
	}
}

func keyOf(t *testing.T, dir string, s Spec, env map[string]string) (string, Fingerprints) {
	t.Helper()
	h := &Hasher{Dir: dir, Getenv: func(k string) string { return env[k] }}
	k, fp, err := h.Key(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return k, fp
}

func TestEveryInputKindChangesTheKey(t *testing.T) {
	dir := tree(t)
	env := map[string]string{"GOFLAGS": "-mod=mod"}
	base, _ := keyOf(t, dir, baseSpec(), env)
	if again, _ := keyOf(t, dir, baseSpec(), env); again != base {
		t.Fatalf("the same inputs gave two keys: %s and %s", base, again)
	}
	cases := map[string]func(s *Spec, env map[string]string, dir string){
		"module":        func(s *Spec, _ map[string]string, _ string) { s.Module = "build2" },
		"matrix target": func(s *Spec, _ map[string]string, _ string) { s.Target = "race" },
		"platform":      func(s *Spec, _ map[string]string, _ string) { s.Platform = "windows/amd64" },
		"version":       func(s *Spec, _ map[string]string, _ string) { s.Version = "2" },
		"file content":  func(_ *Spec, _ map[string]string, d string) { write(t, d, "pkg/a/a.go", "package a // changed") },
		"file added":    func(_ *Spec, _ map[string]string, d string) { write(t, d, "pkg/b/b.go", "package b") },
		"file removed": func(_ *Spec, _ map[string]string, d string) {
			if err := os.Remove(filepath.Join(d, "main.go")); err != nil {
				t.Fatal(err)
			}
		},
		"env value":    func(_ *Spec, env map[string]string, _ string) { env["GOFLAGS"] = "-race" },
		"env name":     func(s *Spec, _ map[string]string, _ string) { s.Env = []string{"CGO_ENABLED"} },
		"command":      func(s *Spec, _ map[string]string, _ string) { s.Commands = [][]string{{"go", "env", "GOOS"}} },
		"value":        func(s *Spec, _ map[string]string, _ string) { s.Values[0].Data = []byte(`{"a":2}`) },
		"dep result":   func(s *Spec, _ map[string]string, _ string) { s.Deps[0].Data = []byte(`"y"`) },
		"another glob": func(s *Spec, _ map[string]string, _ string) { s.Files = append(s.Files, "*.txt") },
		"extra dep": func(s *Spec, _ map[string]string, _ string) {
			s.Deps = append(s.Deps, Value{Name: "lint", Data: []byte("null")})
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			d := tree(t)
			e := map[string]string{"GOFLAGS": "-mod=mod"}
			before, _ := keyOf(t, d, baseSpec(), e)
			if before != base {
				t.Fatalf("a fresh identical tree gave another key")
			}
			s := baseSpec()
			change(&s, e, d)
			if after, _ := keyOf(t, d, s, e); after == before {
				t.Errorf("changing the %s left the key unchanged", name)
			}
		})
	}
}

func TestGlobOrderAndFilesOutsideGlobsDoNotChangeTheKey(t *testing.T) {
	dir := tree(t)
	s := baseSpec()
	k1, _ := keyOf(t, dir, s, nil)
	s.Files = []string{"go.sum", "**/*.go", "go.sum"}
	if k2, _ := keyOf(t, dir, s, nil); k2 != k1 {
		t.Errorf("reordering (and repeating) the globs changed the key")
	}
	write(t, dir, "README.md", "another readme")
	write(t, dir, "notes/todo.txt", "x")
	if k3, _ := keyOf(t, dir, s, nil); k3 != k1 {
		t.Errorf("changing files outside the globs changed the key")
	}
}

func TestEnvValuesAreNeverKept(t *testing.T) {
	dir := tree(t)
	secret := "s3cr3t-value-that-must-not-leak"
	_, fp := keyOf(t, dir, baseSpec(), map[string]string{"GOFLAGS": secret})
	for k, v := range fp {
		if strings.Contains(k, secret) || strings.Contains(v, secret) {
			t.Fatalf("fingerprint %s=%s holds the environment value", k, v)
		}
	}
	if _, ok := fp["env:GOFLAGS"]; !ok {
		t.Fatalf("no fingerprint for the environment variable: %v", fp)
	}
}

func TestCommandThatCannotStartIsAnError(t *testing.T) {
	h := &Hasher{Dir: t.TempDir()}
	_, _, err := h.Key(context.Background(), Spec{Module: "m", Commands: [][]string{{"modpipe-no-such-program-xyz"}}})
	if err == nil {
		t.Fatal("a missing command gave a key")
	}
}

func TestCommandRunsOncePerHasher(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses sh")
	}
	dir := t.TempDir()
	counter := filepath.Join(dir, "count")
	h := &Hasher{Dir: dir}
	s := Spec{Module: "m", Commands: [][]string{{"sh", "-c", "echo x >> " + counter}}}
	for _, m := range []string{"a", "b", "c"} {
		s.Module = m
		if _, _, err := h.Key(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "x\n" {
		t.Errorf("the command ran %q times' worth, want once", b)
	}
}

// A module may write files a later module's key covers: the hasher of a
// run must not reuse the digest of a file that changed since, even with
// the same size.
func TestHasherSeesFilesChangedDuringTheRun(t *testing.T) {
	dir := tree(t)
	h := &Hasher{Dir: dir}
	s := Spec{Module: "a", Files: []string{"**/*.go"}}
	k1, _, err := h.Key(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "pkg/a/a.go", "package b") // same size, new content
	k2, _, err := h.Key(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if k1 == k2 {
		t.Fatal("the same hasher reused the digest of a file that changed")
	}
	// An old, unchanged file is hashed once per run.
	old := time.Now().Add(-time.Hour)
	p := filepath.Join(dir, "main.go")
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Key(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.files.Load(p); !ok {
		t.Fatal("an old file's digest was not remembered")
	}
}

func TestEnvDigestsAreKeyedBySecret(t *testing.T) {
	dir := tree(t)
	env := func(string) string { return "prod" }
	s := Spec{Module: "m", Env: []string{"DEPLOY_ENV"}}
	_, plain, _ := (&Hasher{Dir: dir, Getenv: env}).Key(context.Background(), s)
	_, keyed, _ := (&Hasher{Dir: dir, Getenv: env, Secret: []byte("0123456789abcdef")}).Key(context.Background(), s)
	_, other, _ := (&Hasher{Dir: dir, Getenv: env, Secret: []byte("fedcba9876543210")}).Key(context.Background(), s)
	if plain["env:DEPLOY_ENV"] == keyed["env:DEPLOY_ENV"] || keyed["env:DEPLOY_ENV"] == other["env:DEPLOY_ENV"] {
		t.Fatalf("env digests do not depend on the secret: %s %s %s", plain["env:DEPLOY_ENV"], keyed["env:DEPLOY_ENV"], other["env:DEPLOY_ENV"])
	}
	// Without the secret, a guess cannot be tested against a keyed digest.
	if guess := (&Hasher{}).envDigest("DEPLOY_ENV", true, "prod"); guess == keyed["env:DEPLOY_ENV"] {
		t.Fatal("a keyed digest equals the unkeyed one")
	}
}
