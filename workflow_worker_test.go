package modpipe

import (
	"strings"
	"testing"
)

// A --worker without a capability is quoted as given, not as "".
func TestWorkflowWorkerErrorQuotesTheValueGiven(t *testing.T) {
	for _, v := range []string{",", " , ", ",,"} {
		code, _, errOut := runMain(t, capsPipeline(), nil, "workflow", "github", "--worker", v)
		want := "--worker \"" + v + "\" (worker 1) offers no capability"
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("--worker %q: exit %d, stderr %q; want 2 and %q", v, code, errOut, want)
		}
	}
}
