package modpipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/modpipe/modpipe/internal/logbuf"
)

// Cmd is a command to run as part of a module. Create it with
// Context.Command, adjust it with its methods, then call Run.
type Cmd struct {
	c     *Context
	name  string
	args  []string
	dir   string
	env   []string
	stdin io.Reader
	quiet bool
	// stdoutTo, when set, receives the standard output instead of the
	// module's log (GoTest turns test2json events back into readable
	// lines); CommandResult.Stdout is then empty.
	stdoutTo io.Writer
}

// CommandResult is what a finished command produced.
type CommandResult struct {
	// Command is the command line, for messages.
	Command  string
	ExitCode int
	Stdout   string
	Stderr   string
	Duration time.Duration
}

// CommandError is returned by Cmd.Run when the command could not start or
// exited with a non-zero code.
type CommandError struct {
	Command  string
	ExitCode int // -1 when the command did not start or was killed
	// Tail is the last lines of the command's combined output.
	Tail string
	Err  error
}

// Error quotes the command, its exit code (or why it did not run) and the
// tail of its output.
func (e *CommandError) Error() string {
	var b strings.Builder
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, "command %q exited with code %d", e.Command, e.ExitCode)
	} else {
		fmt.Fprintf(&b, "command %q failed: %v", e.Command, e.Err)
	}
	if e.Tail != "" {
		b.WriteString("; last output:\n")
		b.WriteString(e.Tail)
	}
	return b.String()
}

// Unwrap returns the underlying error (an *exec.ExitError, or why the
// command could not start or was stopped).
func (e *CommandError) Unwrap() error { return e.Err }

// commandTailLines is how much output a CommandError quotes.
const commandTailLines = 20

// Command prepares a command that runs with the module's context, and its
// output is written line by line into the module's log.
//
// When the module times out or the run is cancelled, the command is ended
// together with every process it started, gracefully first:
//
//   - Unix (Linux, macOS, BSDs): the command leads its own process group; the
//     group gets SIGTERM, then SIGKILL 3 s later if the command is still
//     running.
//   - Windows: the command is created suspended, put into a job object of its
//     own (which every process it starts joins and cannot leave), and only
//     then resumed, so not even a process it starts at once escapes. Windows
//     has no SIGTERM: the command is also created in a new console process
//     group, which gets CTRL_BREAK_EVENT (Go programs see os.Interrupt); 3 s
//     later, or as soon as the command itself has exited, every process left
//     in the job is terminated. Without a console to send the event to, the
//     job is terminated at once.
//
// A command that exits on its own is not followed further on any OS:
// processes it left running in the background keep running.
func (c *Context) Command(name string, args ...string) *Cmd {
	return &Cmd{c: c, name: name, args: args}
}

// Dir sets the working directory.
func (x *Cmd) Dir(dir string) *Cmd { x.dir = dir; return x }

// Env adds "KEY=value" entries to the environment inherited from this process.
func (x *Cmd) Env(kv ...string) *Cmd { x.env = append(x.env, kv...); return x }

// Stdin sets the command's standard input.
func (x *Cmd) Stdin(r io.Reader) *Cmd { x.stdin = r; return x }

// Quiet captures the output without writing it into the module's log.
func (x *Cmd) Quiet() *Cmd { x.quiet = true; return x }

// String returns the command line.
func (x *Cmd) String() string {
	parts := make([]string, 0, len(x.args)+1)
	for _, a := range append([]string{x.name}, x.args...) {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// Run runs the command to completion. A non-zero exit code is returned as a
// *CommandError quoting the command and the tail of its output; the result
// is returned in every case where the command started.
func (x *Cmd) Run() (*CommandResult, error) {
	line := x.String()
	buf := x.c.log
	x.c.Logger().Info("$ " + line)
	cmd := exec.CommandContext(x.c, x.name, x.args...)
	cmd.Dir = x.dir
	if len(x.env) > 0 {
		cmd.Env = append(os.Environ(), x.env...)
	}
	cmd.Stdin = x.stdin
	stdout := logbuf.NewLineWriter(buf, "│ ", x.quiet)
	stderr := logbuf.NewLineWriter(buf, "│ ", x.quiet)
	combined := &logbuf.Buffer{}
	cmd.Stdout = io.MultiWriter(stdout, combined)
	if x.stdoutTo != nil {
		cmd.Stdout = x.stdoutTo
	}
	cmd.Stderr = io.MultiWriter(stderr, combined)
	tree := newProcTree(cmd)
	start := time.Now()
	err := cmd.Start()
	var setupErr error
	if err == nil {
		if setupErr = tree.started(x.c.Logger()); setupErr != nil {
			// started killed the process; Wait releases it.
			_ = cmd.Wait()
			err = setupErr
		} else {
			err = cmd.Wait()
		}
	}
	tree.stop()
	stdout.Flush()
	stderr.Flush()
	res := &CommandResult{Command: line, ExitCode: -1, Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start)}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	if err == nil {
		return res, nil
	}
	cerr := &CommandError{Command: line, ExitCode: res.ExitCode, Tail: combined.Tail(commandTailLines), Err: err}
	if setupErr != nil {
		cerr.ExitCode = -1 // it never really ran
		return nil, cerr
	}
	if ctxErr := context.Cause(x.c); ctxErr != nil {
		cerr.ExitCode = -1
		cerr.Err = fmt.Errorf("killed: %w", errors.Join(ctxErr, err))
	}
	if cmd.ProcessState == nil {
		return nil, cerr
	}
	return res, cerr
}
