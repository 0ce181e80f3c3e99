package modpipe_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/modpipe/modpipe"
	"github.com/modpipe/modpipe/distributed"
)

// unconfigured is a coordinator without a backend, like the Redis one
// without a URL in a fork's pull request.
type unconfigured struct{ distributed.Coordinator }

func (unconfigured) BindRun(distributed.RunBinding) error {
	return fmt.Errorf("no URL: %w", distributed.ErrNotConfigured)
}

// Close is what Run calls when the run ends; there is nothing to release.
func (unconfigured) Close() error { return nil }

func TestForkSafeFallback(t *testing.T) {
	var ran int
	a := modpipe.Task("a", func(*modpipe.Context) error { ran++; return nil }, modpipe.RequiresCapability("docker"))
	newP := func(index int, noFallback bool) *modpipe.Pipeline {
		p := modpipe.NewPipeline().Add(a)
		p.Output = io.Discard
		return p.UseDistributed(modpipe.DistributedOptions{InstanceIndex: index, TotalInstances: 3, NoFallback: noFallback}).UseCoordinator(unconfigured{})
	}
	s, err := newP(1, false).Run(context.Background())
	if err != nil || !s.Fallback || s.Role != modpipe.RoleWorker || len(s.Modules) != 0 || s.ExitCode() != 0 || ran != 0 {
		t.Errorf("worker: %v %+v ran=%d", err, s, ran)
	}
	s, err = newP(0, false).Run(context.Background())
	if err != nil || !s.Fallback || s.Failed() || ran != 1 {
		t.Errorf("master: %v %+v ran=%d", err, s, ran)
	}
	_, err = newP(0, true).Run(context.Background())
	if !errors.Is(err, modpipe.ErrBadConfig) || !errors.Is(err, distributed.ErrNotConfigured) {
		t.Errorf("NoFallback: %v", err)
	}
}
