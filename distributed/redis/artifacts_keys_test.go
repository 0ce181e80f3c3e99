package redis

import (
	"context"
	"regexp"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/internal/redistest"
)

// Every redis.call of the artifact store's scripts names its key as
// KEYS[...]: no key is spelled or concatenated inside Lua, so a Redis
// Cluster can route each script by the keys it declared.
func TestArtifactScriptsTouchOnlyDeclaredKeys(t *testing.T) {
	call := regexp.MustCompile(`redis\.call\('([A-Z]+)'\s*(?:,\s*([^,)]+))?`)
	for name, src := range map[string]string{"reserve": artReserveLua, "commit": artCommitLua, "abort": artAbortLua, "delete": artDeleteLua} {
		calls := call.FindAllStringSubmatch(src, -1)
		if len(calls) == 0 {
			t.Fatalf("%s: no redis.call found; the check no longer reads the script", name)
		}
		for _, c := range calls {
			if !regexp.MustCompile(`^KEYS\[[^\]]+\]$`).MatchString(c[2]) {
				t.Errorf("%s: redis.call('%s', %s): the key is not one of KEYS", name, c[1], c[2])
			}
		}
	}
}

// Chunk keys are built in Go, share the run's hash tag, and list every
// chunk of a blob.
func TestArtifactKeysShareTheRunsTag(t *testing.T) {
	k := newArtifactKeys("modpipe", "r1")
	got := append([]string{k.used(), k.manifest("a/b")}, k.chunks("ff", 3)...)
	want := []string{"modpipe:{r1}:art:used", "modpipe:{r1}:art:m:a/b", "modpipe:{r1}:art:c:ff:0", "modpipe:{r1}:art:c:ff:1", "modpipe:{r1}:art:c:ff:2"}
	if len(got) != len(want) {
		t.Fatalf("keys = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("key %d = %q, want %q", i, got[i], want[i])
		}
	}
	if b := (blobInfo{size: 2<<20 + 1, chunk: 1 << 20}); b.chunkCount() != 3 {
		t.Errorf("chunkCount of %d bytes in chunks of %d = %d, want 3", b.size, b.chunk, b.chunkCount())
	}
	if _, err := parseManifest("0123456789abcdef0123456789abcdef 1099511627776 1"); err == nil {
		t.Errorf("a manifest of %d chunks parsed; the limit is %d", int64(1)<<40, maxChunks)
	}
}

// A commit or delete whose caller read a manifest that has changed since
// does nothing and answers -2 (the caller reads it again): it never drops
// chunks of a value it did not see.
func TestArtifactScriptsRefuseAStaleManifest(t *testing.T) {
	srv := redistest.Start(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	k := newArtifactKeys("modpipe", "stale")
	cur := "0123456789abcdef0123456789abcdef 3 1"
	seed := map[string]string{k.manifest("x"): cur, k.chunk("0123456789abcdef0123456789abcdef", 0): "a", k.chunk("ff", 0): "b"}
	for key, v := range seed {
		if err := c.Set(ctx, key, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	res, err := artCommit.Run(ctx, c, []string{k.used(), k.manifest("x"), k.chunk("ff", 0)}, 60000, "ff 1 1", 1, "", 0).Int64()
	if err != nil || res != -2 {
		t.Fatalf("commit over a manifest it did not read: %d, %v; want -2", res, err)
	}
	res, err = artDelete.Run(ctx, c, []string{k.used(), k.manifest("x")}, 60000, "another", 0).Int64()
	if err != nil || res != -2 {
		t.Fatalf("delete of a manifest it did not read: %d, %v; want -2", res, err)
	}
	for key, v := range seed {
		if got, err := c.Get(ctx, key).Result(); err != nil || got != v {
			t.Errorf("%s = %q, %v after refused scripts; want %q unchanged", key, got, err, v)
		}
	}
}
