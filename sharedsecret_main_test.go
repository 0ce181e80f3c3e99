package modpipe

import (
	"errors"
	"strings"
	"testing"
)

// TestMainSharedSecretFromEnvironment: MODPIPE_SHARED_SECRET reaches the
// run (a too-short one is refused with exit 2), and its value is masked
// like a secret.
func TestMainSharedSecretFromEnvironment(t *testing.T) {
	noop := Task("noop", func(*Context) error { return nil })
	code, _, errOut := runMain(t, NewPipeline().Add(noop), map[string]string{"MODPIPE_SHARED_SECRET": "short"}, "--local-instances", "2")
	if code != 2 || !strings.Contains(errOut, "MODPIPE_SHARED_SECRET") || !strings.Contains(errOut, "at least 16") {
		t.Errorf("a 5-byte MODPIPE_SHARED_SECRET: exit %d, stderr %q; want exit 2 saying it is too short", code, errOut)
	}

	const shared = "the-run-shared-secret-42"
	leaky := Task("leaky", func(*Context) error { return errors.New("signed with " + shared) })
	code, out, errOut := runMain(t, NewPipeline().Add(leaky), map[string]string{"MODPIPE_SHARED_SECRET": shared}, "--local-instances", "2")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (leaky fails)\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, shared) || !strings.Contains(out, "signed with ***") {
		t.Errorf("the shared secret is not masked:\n%s\n%s", out, errOut)
	}
}
