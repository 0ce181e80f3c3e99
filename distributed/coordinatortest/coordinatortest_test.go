package coordinatortest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/distributed/coordinatortest"
)

// The suite must be able to fail: these tests run it, in a child process,
// against coordinators with one deliberate bug each, and expect the run to
// fail naming the subtest that catches the bug. (The suite passing the
// in-memory coordinator itself is checked once, by TestInMemoryConformance
// in package distributed.)

const mutantEnv = "COORDINATORTEST_MUTANT"

// doubleClaimer hands every claimed assignment out a second time, to the
// next claimer.
type doubleClaimer struct {
	*distributed.InMemory
	mu    *sync.Mutex
	again *[]distributed.Claim
}

func (d doubleClaimer) Claim(ctx context.Context, i int, caps []string) (distributed.Claim, error) {
	d.mu.Lock()
	if n := len(*d.again); n > 0 {
		cl := (*d.again)[n-1]
		*d.again = (*d.again)[:n-1]
		d.mu.Unlock()
		return cl, nil
	}
	d.mu.Unlock()
	cl, err := d.InMemory.Claim(ctx, i, caps)
	if err == nil {
		d.mu.Lock()
		*d.again = append(*d.again, cl)
		d.mu.Unlock()
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

// firstFingerprint lets the first registration fix the run's fingerprint,
// as modpipe once did: a stray worker that starts first refuses the master.
type firstFingerprint struct {
	*distributed.InMemory
	mu    *sync.Mutex
	first *string
}

func (f firstFingerprint) Register(ctx context.Context, r distributed.Registration) error {
	f.mu.Lock()
	if *f.first == "" {
		*f.first = r.Fingerprint
	}
	first := *f.first
	f.mu.Unlock()
	if r.Fingerprint != first {
		return fmt.Errorf("%w: %s is not the first registration's %s", distributed.ErrFingerprintMismatch, r.Fingerprint, first)
	}
	return f.InMemory.Register(ctx, r)
}

// refusedBeats lets workers the master refused keep beating.
type refusedBeats struct{ *distributed.InMemory }

func (r refusedBeats) Heartbeat(ctx context.Context, i int) (distributed.Pulse, error) {
	p, err := r.InMemory.Heartbeat(ctx, i)
	if errors.Is(err, distributed.ErrFingerprintMismatch) {
		s, err := r.InMemory.State(ctx)
		return distributed.Pulse{MasterRegistered: true, State: s}, err
	}
	return p, err
}

// indexStealer pretends to accept a second live registration of an index.
type indexStealer struct{ *distributed.InMemory }

func (s indexStealer) Register(ctx context.Context, r distributed.Registration) error {
	if err := s.InMemory.Register(ctx, r); !errors.Is(err, distributed.ErrIndexTaken) {
		return err
	}
	return nil
}

// lostClaimer revives a lost instance on every claim, so that a cut-off
// instance takes work back.
type lostClaimer struct{ *distributed.InMemory }

func (l lostClaimer) Claim(ctx context.Context, i int, caps []string) (distributed.Claim, error) {
	_, _ = l.InMemory.Heartbeat(ctx, i)
	return l.InMemory.Claim(ctx, i, caps)
}

func (l lostClaimer) ClaimBatch(ctx context.Context, i int, caps []string, limit int) ([]distributed.Claim, error) {
	_, _ = l.InMemory.Heartbeat(ctx, i)
	return l.InMemory.ClaimBatch(ctx, i, caps, limit)
}

// anyoneClaims lets instances that never registered claim, registering them
// on the fly.
type anyoneClaims struct{ *distributed.InMemory }

func (a anyoneClaims) Claim(ctx context.Context, i int, caps []string) (distributed.Claim, error) {
	if _, err := a.InMemory.Heartbeat(ctx, i); errors.Is(err, distributed.ErrNotRegistered) && !errors.Is(err, distributed.ErrFingerprintMismatch) {
		_ = a.InMemory.Register(ctx, distributed.Registration{Instance: i, Total: 4, Fingerprint: "fp-1", Session: "auto", LeaseTimeout: time.Hour})
	}
	return a.InMemory.Claim(ctx, i, caps)
}

// reclaimAnyway re-queues the next attempt even when the lease is over.
type reclaimAnyway struct{ *distributed.InMemory }

func (r reclaimAnyway) Reclaim(ctx context.Context, l distributed.Lease, next *distributed.Assignment) error {
	err := r.InMemory.Reclaim(ctx, l, next)
	if errors.Is(err, distributed.ErrStaleLease) && next != nil {
		return r.InMemory.Enqueue(ctx, *next)
	}
	return err
}

// duplicateRefuser gives duplicate enqueues another meaning: an error.
type duplicateRefuser struct {
	*distributed.InMemory
	seen *sync.Map
}

func (d duplicateRefuser) Enqueue(ctx context.Context, a distributed.Assignment) error {
	if _, dup := d.seen.LoadOrStore(fmt.Sprint(a.Module, "#", a.Attempt), true); dup {
		return fmt.Errorf("%s attempt %d is already enqueued", a.Module, a.Attempt)
	}
	return d.InMemory.Enqueue(ctx, a)
}

// cancelEndsAwaits ends AwaitResult when the run is cancelled.
type cancelEndsAwaits struct{ *distributed.InMemory }

func (c cancelEndsAwaits) AwaitResult(ctx context.Context, module string) (distributed.Result, error) {
	if s, err := c.InMemory.State(ctx); err == nil && s.Cancelled {
		return distributed.Result{}, fmt.Errorf("%w: cancelled", distributed.ErrRunEnded)
	}
	return c.InMemory.AwaitResult(ctx, module)
}

// lastVerdict reports the last Complete's outcome instead of the first's.
type lastVerdict struct {
	*distributed.InMemory
	mu     *sync.Mutex
	failed *bool
}

func (l lastVerdict) Complete(ctx context.Context, failed bool) error {
	l.mu.Lock()
	*l.failed = failed
	l.mu.Unlock()
	return l.InMemory.Complete(ctx, failed)
}

func (l lastVerdict) AwaitState(ctx context.Context, known distributed.RunState) (distributed.RunState, error) {
	s, err := l.InMemory.AwaitState(ctx, known)
	if s.Completed {
		l.mu.Lock()
		s.Failed = *l.failed
		l.mu.Unlock()
	}
	return s, err
}

// frozenAges reports every heartbeat and lease as fresh.
type frozenAges struct{ *distributed.InMemory }

func (f frozenAges) Instances(ctx context.Context) ([]distributed.InstanceInfo, error) {
	ins, err := f.InMemory.Instances(ctx)
	for i := range ins {
		ins[i].Age = 0
	}
	return ins, err
}

func (f frozenAges) Leases(ctx context.Context) ([]distributed.Lease, error) {
	ls, err := f.InMemory.Leases(ctx)
	for i := range ls {
		ls[i].Age = 0
	}
	return ls, err
}

var mutants = map[string]struct {
	make   func() distributed.Coordinator
	caught string // a subtest that must fail
}{
	"double-claim": {func() distributed.Coordinator {
		return doubleClaimer{distributed.NewInMemory(), &sync.Mutex{}, new([]distributed.Claim)}
	}, "NoDoubleClaimUnderConcurrency"},
	"accept-stale": {func() distributed.Coordinator { return staleAccepter{distributed.NewInMemory()} }, "StaleResultsRejected"},
	"first-fingerprint-wins": {func() distributed.Coordinator {
		return firstFingerprint{distributed.NewInMemory(), &sync.Mutex{}, new(string)}
	}, "MasterFingerprintIsTheRuns"},
	"refused-worker-beats":  {func() distributed.Coordinator { return refusedBeats{distributed.NewInMemory()} }, "MasterFingerprintIsTheRuns"},
	"live-index-taken-over": {func() distributed.Coordinator { return indexStealer{distributed.NewInMemory()} }, "IndexTakenWhileAlive"},
	"lost-instance-claims":  {func() distributed.Coordinator { return lostClaimer{distributed.NewInMemory()} }, "ClaimsNeedALiveRegistration"},
	"unregistered-claims":   {func() distributed.Coordinator { return anyoneClaims{distributed.NewInMemory()} }, "ClaimsNeedALiveRegistration"},
	"reclaim-after-publish": {func() distributed.Coordinator { return reclaimAnyway{distributed.NewInMemory()} }, "ReclaimAfterPublishIsStale"},
	"duplicate-enqueue-error": {func() distributed.Coordinator {
		return duplicateRefuser{distributed.NewInMemory(), &sync.Map{}}
	}, "DuplicateEnqueueIgnored"},
	"cancel-ends-awaits": {func() distributed.Coordinator { return cancelEndsAwaits{distributed.NewInMemory()} }, "AwaitResultOutlastsCancel"},
	"last-verdict-wins": {func() distributed.Coordinator {
		return lastVerdict{distributed.NewInMemory(), &sync.Mutex{}, new(bool)}
	}, "CompleteKeepsFirstVerdict"},
	"frozen-ages": {func() distributed.Coordinator { return frozenAges{distributed.NewInMemory()} }, "Heartbeats"},
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
