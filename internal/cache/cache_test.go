package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modpipe/modpipe/artifact"
)

type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(m string) { w.mu.Lock(); w.msgs = append(w.msgs, m); w.mu.Unlock() }
func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

func newCache(t *testing.T, mode Mode, key []byte) (*Cache, *warnings) {
	w := &warnings{}
	return &Cache{Store: artifact.NewDirStore(t.TempDir()), Mode: mode, SigningKey: key, Warn: w.add}, w
}

func entryFor(t *testing.T, dir string, s Spec) *Entry {
	k, fp := keyOf(t, dir, s, nil)
	return &Entry{Key: k, Module: s.Module, Created: time.Now(), Duration: 3 * time.Second, Result: json.RawMessage(`{"v":42}`), Inputs: fp}
}

func TestHitMissAndExplain(t *testing.T) {
	ctx := context.Background()
	dir := tree(t)
	c, w := newCache(t, ReadWrite, nil)
	e := entryFor(t, dir, baseSpec())
	if got := c.Lookup(ctx, "build", e.Key); got != nil {
		t.Fatalf("an empty cache hit: %+v", got)
	}
	if ch := Explain(nil, e.Inputs); len(ch) != 1 || ch[0].Kind != "no-previous-entry" {
		t.Fatalf("explain without a previous entry = %v", ch)
	}
	c.Save(ctx, e)
	got := c.Lookup(ctx, "build", e.Key)
	if got == nil || string(got.Result) != `{"v":42}` || got.Duration != 3*time.Second {
		t.Fatalf("lookup after save = %+v", got)
	}
	write(t, dir, "pkg/a/a.go", "package a // edited")
	write(t, dir, "pkg/new.go", "package pkg")
	s := baseSpec()
	s.Version = "2"
	s.Deps[0].Data = []byte(`"other"`)
	k2, fp2 := keyOf(t, dir, s, map[string]string{"GOFLAGS": "-v"})
	if c.Lookup(ctx, "build", k2) != nil {
		t.Fatal("changed inputs hit")
	}
	prev := c.Previous(ctx, "build")
	if prev == nil {
		t.Fatal("no previous entry after a save")
	}
	var got2 []string
	for _, ch := range Explain(prev.Inputs, fp2) {
		got2 = append(got2, ch.String())
	}
	want := []string{
		"result of dependency gen changed",
		"environment variable changed: GOFLAGS",
		"file changed: pkg/a/a.go",
		"file added: pkg/new.go",
		`cache version bumped ("1" → "2")`,
	}
	if strings.Join(got2, "\n") != strings.Join(want, "\n") {
		t.Errorf("explain:\n%s\nwant:\n%s", strings.Join(got2, "\n"), strings.Join(want, "\n"))
	}
	if len(w.all()) != 0 {
		t.Errorf("warnings: %v", w.all())
	}
	if d := LastDurations(ctx, c.Store, nil, []string{"build", "other"}); len(d) != 1 || d["build"] != 3*time.Second {
		t.Errorf("LastDurations = %v", d)
	}
}

func TestReadModeNeverWrites(t *testing.T) {
	ctx := context.Background()
	dir := tree(t)
	rw, _ := newCache(t, ReadWrite, nil)
	ro := &Cache{Store: rw.Store, Mode: Read}
	e := entryFor(t, dir, baseSpec())
	ro.Save(ctx, e)
	if _, err := rw.Store.Stat(ctx, EntryKey(e.Key)); !errors.Is(err, artifact.ErrNotFound) {
		t.Fatalf("read mode wrote an entry (stat: %v)", err)
	}
	rw.Save(ctx, e)
	if ro.Lookup(ctx, "build", e.Key) == nil {
		t.Fatal("read mode did not read an entry")
	}
	off := &Cache{Store: rw.Store, Mode: Off}
	if off.Lookup(ctx, "build", e.Key) != nil {
		t.Fatal("mode off read an entry")
	}
}

func TestSigning(t *testing.T) {
	ctx := context.Background()
	dir := tree(t)
	key := []byte("0123456789abcdef-signing")
	signed, w := newCache(t, ReadWrite, key)
	e := entryFor(t, dir, baseSpec())
	signed.Save(ctx, e)
	if signed.Lookup(ctx, "build", e.Key) == nil {
		t.Fatal("a signed entry did not verify with its key")
	}
	other := &Cache{Store: signed.Store, SigningKey: []byte("another-key-of-16-bytes"), Warn: w.add}
	if other.Lookup(ctx, "build", e.Key) != nil {
		t.Fatal("an entry signed with another key hit")
	}
	if ws := w.all(); len(ws) != 1 || !strings.Contains(ws[0], "HMAC does not match") {
		t.Fatalf("warnings = %v", ws)
	}
	unsignedWriter := &Cache{Store: signed.Store}
	e2 := entryFor(t, dir, Spec{Module: "lint"})
	unsignedWriter.Save(ctx, e2)
	if signed.Lookup(ctx, "lint", e2.Key) != nil {
		t.Fatal("an unsigned entry hit while a signing key is set")
	}
	if ws := w.all(); len(ws) != 2 || !strings.Contains(ws[1], "unsigned") || !strings.Contains(ws[1], "lint") {
		t.Fatalf("warnings = %v", ws)
	}
	// A signed entry whose result was altered fails verification.
	tamper(t, signed.Store, EntryKey(e.Key), `{"v":42}`, `{"v":43}`)
	if signed.Lookup(ctx, "build", e.Key) != nil {
		t.Fatal("a tampered entry hit")
	}
}

func tamper(t *testing.T, s artifact.Store, key, old, new string) {
	t.Helper()
	ctx := context.Background()
	rc, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	nb := bytes.Replace(b, []byte(old), []byte(new), 1)
	if bytes.Equal(nb, b) {
		t.Fatalf("%q not in %s", old, b)
	}
	if err := s.Put(ctx, key, bytes.NewReader(nb), int64(len(nb))); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptEntriesAreMissesWithAWarning(t *testing.T) {
	ctx := context.Background()
	dir := tree(t)
	e := entryFor(t, dir, baseSpec())
	good, err := encode(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := entryFor(t, dir, Spec{Module: "elsewhere"})
	foreign, _ := encode(other, nil)
	cases := map[string][]byte{
		"garbage":          []byte("\x00\x01not json"),
		"truncated":        good[:len(good)/2],
		"empty":            {},
		"wrong format":     bytes.Replace(good, []byte(`"modpipe_cache":1`), []byte(`"modpipe_cache":7`), 1),
		"wrong field type": bytes.Replace(good, []byte(`"duration_ns":3000000000`), []byte(`"duration_ns":"3s"`), 1),
		"another key's":    foreign,
		"code, not data":   []byte(`#!/bin/sh\nrm -rf /`),
	}
	for name, blob := range cases {
		t.Run(name, func(t *testing.T) {
			c, w := newCache(t, ReadWrite, nil)
			if err := c.Store.Put(ctx, EntryKey(e.Key), bytes.NewReader(blob), int64(len(blob))); err != nil {
				t.Fatal(err)
			}
			if got := c.Lookup(ctx, "build", e.Key); got != nil {
				t.Fatalf("a %s entry hit: %+v", name, got)
			}
			if ws := w.all(); len(ws) != 1 || !strings.Contains(ws[0], "cache entry of build ignored") {
				t.Fatalf("warnings = %v", ws)
			}
			if !c.Writes() {
				t.Fatal("a corrupt entry turned the cache off")
			}
		})
	}
}

// failingStore fails every call.
type failingStore struct{ calls int }

func (f *failingStore) Put(context.Context, string, io.Reader, int64) error {
	f.calls++
	return errors.New("connection refused")
}
func (f *failingStore) Get(context.Context, string) (io.ReadCloser, error) {
	f.calls++
	return nil, errors.New("connection refused")
}
func (f *failingStore) Stat(context.Context, string) (int64, error) {
	f.calls++
	return 0, errors.New("connection refused")
}
func (f *failingStore) Delete(context.Context, string) error { return nil }

func TestFailingStoreWarnsOnceAndTurnsTheCacheOff(t *testing.T) {
	ctx := context.Background()
	fs := &failingStore{}
	w := &warnings{}
	c := &Cache{Store: fs, Warn: w.add}
	for i := range 5 {
		if c.Lookup(ctx, "m", digestOf(string(rune('a'+i)))) != nil {
			t.Fatal("a failing store hit")
		}
		c.Save(ctx, &Entry{Key: digestOf("k"), Module: "m", Result: json.RawMessage("1")})
	}
	if fs.calls != 1 {
		t.Errorf("the store was called %d times after failing, want 1", fs.calls)
	}
	if ws := w.all(); len(ws) != 1 || !strings.Contains(ws[0], "without the cache") || !strings.Contains(ws[0], "connection refused") {
		t.Errorf("warnings = %v", ws)
	}
}
