package pass

import "testing"

func TestAdd(t *testing.T) {
	if 1+1 != 2 {
		t.Fatal("arithmetic is broken")
	}
	t.Log("a passing test may log")
}

func TestSkipped(t *testing.T) { t.Skip("not today") }
