package subtests

import "testing"

func TestTable(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   int
	}{{"zero", 0}, {"one", 1}, {"two", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in == 1 {
				t.Errorf("in=%d is odd", tc.in)
			}
		})
	}
}

func TestNested(t *testing.T) {
	t.Run("outer", func(t *testing.T) {
		t.Run("inner", func(t *testing.T) {
			t.Fatal("deep failure")
		})
	})
}

func TestParallel(t *testing.T) {
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if name == "b" {
				t.Error("b failed in parallel")
			}
		})
	}
}
