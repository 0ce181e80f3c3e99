package defaults

import (
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{{0, 5 * time.Second}, {-time.Second, 5 * time.Second}, {time.Millisecond, time.Millisecond}} {
		got := tc.in
		Positive(&got, 5*time.Second)
		if got != tc.want {
			t.Errorf("Positive(%v, 5s) = %v, want %v", tc.in, got, tc.want)
		}
	}
	n := 0
	Positive(&n, 3)
	if n != 3 {
		t.Errorf("Positive(0, 3) = %d, want 3", n)
	}
}
