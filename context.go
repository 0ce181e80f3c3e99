package modpipe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/modpipe/modpipe/internal/logbuf"
)

// Context is passed to a module's function. It is a context.Context that is
// cancelled when the module times out or the run is cancelled, and it gives
// access to the module's logger, commands, matrix target and instance.
//
// A Context belongs to one attempt of one module; do not keep it after the
// module's function returns.
type Context struct {
	ctx     context.Context
	r       *run
	node    int
	attempt int
	log     *logbuf.Buffer // this execution's log

	// The logger is made on first use; a module may run commands (which
	// log) from several goroutines at once.
	loggerOnce sync.Once
	logger     *slog.Logger

	mu        sync.Mutex
	secretErr error // a value passed to Secret that cannot be masked
}

// Deadline implements context.Context.
func (c *Context) Deadline() (time.Time, bool) { return c.ctx.Deadline() }

// Done implements context.Context.
func (c *Context) Done() <-chan struct{} { return c.ctx.Done() }

// Err implements context.Context.
func (c *Context) Err() error { return c.ctx.Err() }

// Value implements context.Context.
func (c *Context) Value(key any) any { return c.ctx.Value(key) }

// Name returns the name of the running module ("name[target]" for a matrix
// variant).
func (c *Context) Name() string { return c.r.nodes[c.node].name }

// Attempt returns the number of the current attempt, starting at 1.
func (c *Context) Attempt() int { return c.attempt }

// MatrixTarget returns the target of a MatrixTarget variant ("linux",
// "windows", ...), or "" for a module without MatrixTarget.
func (c *Context) MatrixTarget() string { return c.r.nodes[c.node].target }

// Logger returns the module's logger; it is safe to use from several
// goroutines of the module at once. Its lines are buffered and printed
// together, as the module's group, when the module ends; registered secrets
// are masked.
func (c *Context) Logger() *slog.Logger {
	c.loggerOnce.Do(func() { c.logger = slog.New(logbuf.NewHandler(c.log, c.r.level)) })
	return c.logger
}

// Logf writes a formatted line at info level to the module's log.
func (c *Context) Logf(format string, args ...any) {
	c.Logger().Info(fmt.Sprintf(format, args...))
}

// Secret registers values to be masked as *** in every log line, error and
// report of the run from now on, such as a token the module obtained. In a
// distributed run the instance running the module masks them in its log,
// error and skip reason before publishing its result, so neither the master
// nor the coordinator sees them; the module's result value is not masked.
//
// Empty values are ignored (an unset variable has nothing to hide). A value
// of 1 or 2 bytes cannot be masked without mangling all output, so it is
// refused: the module fails, when its function returns, with an error
// saying so. Pass the whole credential, not a fragment of it.
func (c *Context) Secret(values ...string) {
	for _, v := range values {
		if err := checkSecret(v); err != nil {
			c.mu.Lock()
			c.secretErr = errors.Join(c.secretErr, fmt.Errorf("c.Secret: %w", err))
			c.mu.Unlock()
		}
	}
	c.r.secrets.Add(values...)
}

// minSecretLen is the shortest secret that can be masked; internal/secret
// ignores shorter ones, so they are refused before they get there.
const minSecretLen = 3

// checkSecret refuses a value too short to be masked.
func checkSecret(v string) error {
	if v != "" && len(v) < minSecretLen {
		return fmt.Errorf("a secret of %d bytes is too short to be masked (masking it would replace those characters everywhere in the output, and it would be printed in clear otherwise); secrets must be at least %d bytes: register the whole credential, not a fragment", len(v), minSecretLen)
	}
	return nil
}

func (c *Context) secretError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.secretErr
}

// Instance describes the instance executing the module.
func (c *Context) Instance() Instance { return c.r.instance }

// Role is an instance's part in a run.
type Role string

// Roles.
const (
	// RoleSingle is a run without distributed mode.
	RoleSingle Role = "single"
	// RoleMaster is instance 0 of a distributed run.
	RoleMaster Role = "master"
	// RoleWorker is any other instance of a distributed run.
	RoleWorker Role = "worker"
)

// Instance describes one instance of a run.
type Instance struct {
	// Index is 0 for the master and for single-instance runs.
	Index int
	// Role is the instance's part in the run.
	Role Role
	// Capabilities are the lower-case capabilities the instance offers,
	// its OS included.
	Capabilities []string
}

// HasCapability reports whether the instance offers capability, given in
// lower case like Capabilities (an OS name such as "linux", or a name
// passed to DistributedOptions.Capabilities or --capability).
func (i Instance) HasCapability(capability string) bool {
	return slices.Contains(i.Capabilities, capability)
}

// dependencyNodes returns the nodes that def expanded to among the running
// module's declared dependencies.
func (c *Context) dependencyNodes(def *moduleDef) ([]int, error) {
	var nodes []int
	for _, d := range c.r.nodes[c.node].deps {
		if d.def == def {
			nodes = append(nodes, d.node)
		}
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("module %s read the result of %s, which is not one of its dependencies; add modpipe.DependsOn(%s) to %s",
			c.Name(), def.name, def.name, c.Name())
	}
	return nodes, nil
}

// dependencyNode picks the single node of def to read a result from.
func (c *Context) dependencyNode(def *moduleDef) (int, error) {
	nodes, err := c.dependencyNodes(def)
	if err != nil {
		return 0, err
	}
	if len(def.matrix) == 0 {
		return nodes[0], nil
	}
	target := c.MatrixTarget()
	for _, n := range nodes {
		if c.r.nodes[n].target == target {
			return n, nil
		}
	}
	return 0, fmt.Errorf("module %s read the result of matrix module %s, which has no variant for target %q; use modpipe.MatrixResults",
		c.Name(), def.name, target)
}
