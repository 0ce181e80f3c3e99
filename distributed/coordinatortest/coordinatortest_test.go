package coordinatortest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/distributed/coordinatortest"
)

// The suite must be able to fail: these tests run it, in a child process,
// against coordinators with one deliberate bug each, and expect the run to
// fail naming the subtest that catches the bug.

const mutantEnv = "COORDINATORTEST_MUTANT"

// doubleClaimer hands every claimed assignment out a second time.
type doubleClaimer struct {
	*distributed.InMemory
	again *sync.Map
}

func (d doubleClaimer) Claim(ctx context.Context, i int, caps []string) (distributed.Claim, error) {
	cl, err := d.InMemory.Claim(ctx, i, caps)
	if _, done := d.again.LoadOrStore(cl.Assignment.Module, true); err == nil && !done {
		_ = d.InMemory.Enqueue(ctx, cl.Assignment)
	}
	return cl, err
}

// staleAccepter pretends to accept results from stale leases.
type staleAccepter struct{ *distributed.InMemory }

func (s staleAccepter) Publish(ctx context.Context, r distributed.Result) error {
	if err := s.InMemory.Publish(ctx, r); err != nil && !errors.Is(err, distributed.ErrStaleLease) {
		return err
	}
	return nil
}

var mutants = map[string]struct {
	make   func() distributed.Coordinator
	caught string // a subtest that must fail
}{
	"double-claim": {func() distributed.Coordinator { return doubleClaimer{distributed.NewInMemory(), &sync.Map{}} }, "NoDoubleClaimUnderConcurrency"},
	"accept-stale": {func() distributed.Coordinator { return staleAccepter{distributed.NewInMemory()} }, "StaleResultsRejected"},
}

func TestMain(m *testing.M) {
	if name := os.Getenv(mutantEnv); name != "" {
		mu := mutants[name]
		testing.Main(func(string, string) (bool, error) { return true, nil }, []testing.InternalTest{{
			Name: "Mutant",
			F: func(t *testing.T) {
				coordinatortest.Run(t, func(*testing.T) distributed.Coordinator { return mu.make() })
			},
		}}, nil, nil)
	}
	os.Exit(m.Run())
}

func TestSuiteCatchesBrokenCoordinators(t *testing.T) {
	for name, mu := range mutants {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a coordinator with bug %q:\n%s", name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: Mutant/"+mu.caught) {
				t.Errorf("bug %q was not caught by %s:\n%s", name, mu.caught, out)
			}
		})
	}
}

func TestSuitePassesTheInMemoryCoordinator(t *testing.T) {
	coordinatortest.Run(t, func(*testing.T) distributed.Coordinator { return distributed.NewInMemory() })
}
