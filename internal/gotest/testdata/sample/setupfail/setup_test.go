package setupfail

import (
	"testing"

	"example.com/missing/dependency"
)

func TestNeverRuns(t *testing.T) { dependency.Do() }
