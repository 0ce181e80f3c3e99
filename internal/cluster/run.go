package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/ident"
)

// ErrInvalidPipeline is wrapped by an instance's error when its pipeline
// differs from the run's (the root package exports it as
// modpipe.ErrInvalidPipeline).
var ErrInvalidPipeline = errors.New("invalid pipeline")

// ErrBadConfig is wrapped by an instance's error when its settings do not
// fit the run: its index is taken, the run is over, or another process took
// its place (the root package exports it as modpipe.ErrBadConfig).
var ErrBadConfig = errors.New("bad configuration")

// Run is one instance's part of a distributed run, as the root package
// prepared it: Join takes it from there.
type Run struct {
	Config
	// RunID and SharedSecret are the run's settings; a coordinator that
	// knows its own run id (set in code) signs with that one.
	RunID        string
	SharedSecret string
	// Fingerprint identifies the pipeline; every instance must agree.
	Fingerprint string
	Host        Host
	Values      *Values
}

// instance is what the master and a worker share while they take part in a
// run: the context module executions run with, which ends when the run is
// cancelled wherever that happened, and the instance's own liveness.
type instance struct {
	cfg       Config
	ctx       context.Context
	cancel    context.CancelCauseFunc
	stopRelay func() bool
	lost      chan error
}

// Member is an instance that joined a run; RunMaster or RunWorker takes
// it from there.
type Member struct {
	cfg    Config
	host   Host
	values *Values
}

// Join registers the instance with the run. Its errors wrap
// ErrInvalidPipeline when the instance runs another pipeline than the
// run's master, and ErrBadConfig when its index is taken or the run ended.
func Join(ctx context.Context, r Run) (*Member, error) {
	cfg := r.Config
	cfg.Session = ident.Random(8) // this process's registration
	cfg.Grace = cmp.Or(cfg.Grace, engine.DefaultGrace)
	if cfg.Instance == 0 {
		cfg.Local = &LocalWork{}
	}
	runID := r.RunID
	if c, ok := cfg.Coord.(interface{ RunID() string }); ok {
		runID = c.RunID() // the coordinator's, which settings in code may have set
	}
	cfg.Signer = NewSigner(r.SharedSecret, runID)
	reg := distributed.Registration{
		Instance: cfg.Instance, Total: cfg.Total, Capabilities: cfg.Caps, Fingerprint: r.Fingerprint, Session: cfg.Session,
		LeaseTimeout: cfg.LeaseTimeout,
	}
	cfg.Signer.SignRegistration(&reg)
	regCtx, cancel := context.WithTimeout(ctx, cfg.LeaseTimeout)
	err := cfg.Coord.Register(regCtx, reg)
	cancel()
	switch {
	case errors.Is(err, distributed.ErrFingerprintMismatch):
		return nil, fmt.Errorf("%w: instance %d runs a different pipeline than the run's master, instance 0 (%w); every instance must run the same program, commit and --total as the master", ErrInvalidPipeline, cfg.Instance, err)
	case errors.Is(err, distributed.ErrIndexTaken), errors.Is(err, distributed.ErrRunEnded):
		return nil, fmt.Errorf("%w: instance %d could not join the run: %w", ErrBadConfig, cfg.Instance, err)
	case err != nil:
		return nil, fmt.Errorf("instance %d could not join the run: %w", cfg.Instance, err)
	}
	return &Member{cfg: cfg, host: r.Host, values: r.Values}, nil
}

// begin starts taking part in the run: cancelling ctx cancels the run for
// every instance. End it with end.
func begin(ctx context.Context, cfg Config) *instance {
	in := &instance{cfg: cfg, lost: make(chan error, 1)}
	in.ctx, in.cancel = context.WithCancelCause(context.Background())
	in.stopRelay = context.AfterFunc(ctx, func() {
		reason := in.mask(fmt.Sprintf("interrupted on instance %d (%v)", cfg.Instance, context.Cause(ctx)))
		cctx, cancel := context.WithTimeout(context.Background(), cfg.Heartbeat)
		defer cancel()
		if err := cfg.Coord.Cancel(cctx, cfg.Instance, reason); err != nil {
			cfg.Log.Error("could not tell the other instances about the cancellation", "err", err)
		}
		in.cancel(errors.New(reason))
	})
	return in
}

// end stops relaying a cancellation and ends module executions.
func (in *instance) end() {
	in.stopRelay()
	in.cancel(errors.New("run ended"))
}

// lose records that the instance is no longer part of the run (called once,
// by its Liveness) and cancels what it runs.
func (in *instance) lose(err error) error {
	err = refused(in.cfg.Instance, err)
	in.lost <- err
	in.cancel(err)
	return err
}

// cancelled is how the run's cancellation by another instance reads here.
func cancelled(s distributed.RunState) error {
	return fmt.Errorf("cancelled by instance %d: %s", s.CancelledBy, s.CancelReason)
}

func (in *instance) mask(s string) string {
	if in.cfg.Mask == nil {
		return s
	}
	return in.cfg.Mask(s)
}

// refused classifies an instance the coordinator no longer accepts: a
// worker the master refused runs another pipeline (ErrInvalidPipeline); an
// instance replaced by another with its index is misconfigured
// (ErrBadConfig). Other errors are returned as they are.
func refused(instance int, err error) error {
	switch {
	case errors.Is(err, distributed.ErrFingerprintMismatch):
		return fmt.Errorf("%w: instance %d was refused when the run's master registered: %w", ErrInvalidPipeline, instance, err)
	case errors.Is(err, distributed.ErrNotRegistered):
		return fmt.Errorf("%w: instance %d no longer belongs to the run: %w", ErrBadConfig, instance, err)
	}
	return err
}
