package redis

import (
	"regexp"
	"strings"
	"sync"
	"testing"
)

// TestIDSourceUnique: ids are unique within a source, even made
// concurrently, and across sources (coordinators); they are hex digits
// (a token must be); and they are a source's fixed random prefix and a
// count (no call to crypto/rand per id).
func TestIDSourceUnique(t *testing.T) {
	var a, b idSource
	const goroutines, each = 4, 2000
	ids := make([][]string, 2*goroutines)
	var wg sync.WaitGroup
	for g := range ids {
		src := &a
		if g%2 == 1 {
			src = &b
		}
		wg.Go(func() {
			for range each {
				ids[g] = append(ids[g], src.next())
			}
		})
	}
	wg.Wait()
	hex := regexp.MustCompile(`^[0-9a-f]+$`)
	seen := map[string]bool{}
	for g, list := range ids {
		prefix := a.prefix
		if g%2 == 1 {
			prefix = b.prefix
		}
		for _, id := range list {
			if seen[id] || !hex.MatchString(id) {
				t.Fatalf("id %q repeated or not hex", id)
			}
			if len(prefix) != 16 || !strings.HasPrefix(id, prefix) {
				t.Fatalf("id %q is not its source's 16-digit prefix %q and a count", id, prefix)
			}
			seen[id] = true
		}
	}
	if a.prefix == b.prefix {
		t.Errorf("two sources share the prefix %q", a.prefix)
	}
	if n := len(seen); n != 2*goroutines*each {
		t.Errorf("%d ids, want %d", n, 2*goroutines*each)
	}
}
