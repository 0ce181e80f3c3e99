// Package secret masks registered secret values in text before it is shown.
package secret

import (
	"slices"
	"strings"
	"sync"
)

// Mask is the text that replaces a secret.
const Mask = "***"

// minLen is the shortest value masked: masking "1" or "a" would make every
// log unreadable and protects nothing.
const minLen = 3

// Set is a concurrency-safe set of secret values. The zero value is ready.
type Set struct {
	mu       sync.RWMutex
	values   []string
	replacer *strings.Replacer
}

// Add registers values. Values shorter than three bytes are ignored.
func (s *Set) Add(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, v := range values {
		if len(v) < minLen || slices.Contains(s.values, v) {
			continue
		}
		s.values = append(s.values, v)
		changed = true
	}
	if !changed {
		return
	}
	// Longest first, so a secret that contains another is masked whole.
	slices.SortFunc(s.values, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(s.values))
	for _, v := range s.values {
		pairs = append(pairs, v, Mask)
	}
	s.replacer = strings.NewReplacer(pairs...)
}

// String masks every registered secret in text.
func (s *Set) String(text string) string {
	s.mu.RLock()
	r := s.replacer
	s.mu.RUnlock()
	if r == nil {
		return text
	}
	return r.Replace(text)
}
