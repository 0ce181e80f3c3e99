package buildfail

import "testing"

func TestNeverBuilds(t *testing.T) {
	var x int = "not an int"
	_ = x
}
