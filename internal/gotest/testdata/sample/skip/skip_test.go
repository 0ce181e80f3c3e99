package skip

import "testing"

func TestOnlySkips(t *testing.T) { t.Skip("needs a database") }
