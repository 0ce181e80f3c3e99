package ident

import (
	"regexp"
	"slices"
	"testing"
)

func TestRandom(t *testing.T) {
	hexOf := regexp.MustCompile(`^[0-9a-f]*$`)
	seen := map[string]bool{}
	for _, n := range []int{0, 8, 12, 16, 16, 16} {
		id := Random(n)
		if len(id) != 2*n || !hexOf.MatchString(id) {
			t.Errorf("Random(%d) = %q; want %d hex digits", n, id, 2*n)
		}
		if n > 0 && seen[id] {
			t.Errorf("Random(%d) repeated %q", n, id)
		}
		seen[id] = true
	}
}

func TestLower(t *testing.T) {
	in := []string{"Docker", "linux", "GPU|TPU", ""}
	got := Lower(in)
	if want := []string{"docker", "linux", "gpu|tpu", ""}; !slices.Equal(got, want) {
		t.Errorf("Lower(%q) = %q, want %q", in, got, want)
	}
	if in[0] != "Docker" {
		t.Errorf("Lower changed its argument: %q", in)
	}
	if got := Lower(nil); len(got) != 0 {
		t.Errorf("Lower(nil) = %q, want empty", got)
	}
}
