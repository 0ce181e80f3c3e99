package modpipe

import (
	"strings"
	"testing"
	"time"
)

// The job summary says what the cache saved: per cached module and in all,
// as the text summary does.
func TestJobSummaryShowsTimeSavedByTheCache(t *testing.T) {
	s := &Summary{Modules: []ModuleResult{
		{Name: "vet", Status: Cached, Cache: &CacheResult{Hit: true, Saved: 1800 * time.Millisecond}},
		{Name: "build", Status: Cached, Cache: &CacheResult{Hit: true, Saved: 2 * time.Second}},
		{Name: "test", Status: Succeeded, Attempts: 1, Duration: time.Second, Cache: &CacheResult{Stored: true}},
		{Name: "lint", Status: Succeeded, Attempts: 1, Duration: time.Second},
	}}
	var b strings.Builder
	if err := s.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| vet | ", "saved 1.80s |",
		"| build | ", "saved 2.00s |",
		"**Cache:** 2 hits, 1 misses; saved 3.80s.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the job summary lacks %q:\n%s", want, md)
		}
	}
	var text strings.Builder
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "saved 3.80s") {
		t.Errorf("the text summary and the job summary disagree:\n%s", text.String())
	}
	// Without cached modules there is no cache line.
	b.Reset()
	s.Modules = s.Modules[3:]
	if err := s.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "Cache") {
		t.Errorf("a run without cached modules has a cache line:\n%s", b.String())
	}
}
