package fail

import "testing"

func TestPasses(t *testing.T) {}

func TestCompare(t *testing.T) {
	got, want := 3, 4
	if got != want {
		t.Errorf("Sum() = %d, want %d", got, want)
	}
}

func TestMultiline(t *testing.T) {
	t.Log("context before the failure")
	t.Fatalf("first line\nsecond line")
}

func helper(t *testing.T) {
	t.Helper()
	t.Error("reported at the caller")
}

func TestHelper(t *testing.T) { helper(t) }
