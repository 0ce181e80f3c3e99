package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// child is one process this command started (an instance or an asynq
// server): itself, re-executed with a hidden subcommand.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// lines receives the child's stdout, line by line.
	lines  chan string
	output *syncBuffer // stderr and stdout, for error messages
	done   chan struct{}
	err    error
}

var live = struct {
	sync.Mutex
	m map[*child]bool
}{m: map[*child]bool{}}

// spawn starts this program again with args.
func spawn(name string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c := &child{name: name, lines: make(chan string, 1<<16), output: &syncBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(self, args...)
	c.cmd.Stderr = c.output
	setPdeathsig(c.cmd)
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	// The child treats the end of its stdin as "stop" (asynq servers, the
	// idle master), and as a sign that this process is gone.
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	live.Lock()
	live.m[c] = true
	live.Unlock()
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "T ") {
				fmt.Fprintln(c.output, line)
			}
			select {
			case c.lines <- line:
			default: // nobody reads this kind of line; do not block the child
			}
		}
	}()
	go func() {
		<-read
		c.err = c.cmd.Wait()
		live.Lock()
		delete(live.m, c)
		live.Unlock()
		close(c.done)
	}()
	return c, nil
}

// closeStdin tells the child to stop.
func (c *child) closeStdin() { _ = c.stdin.Close() }

// wait waits up to limit for the child to exit and returns its error.
func (c *child) wait(limit time.Duration) error {
	select {
	case <-c.done:
		if c.err != nil {
			return fmt.Errorf("%s: %w\n%s", c.name, c.err, tail(c.output.String(), 3000))
		}
		return nil
	case <-time.After(limit):
		c.kill()
		return fmt.Errorf("%s still running after %s; killed\n%s", c.name, limit, tail(c.output.String(), 3000))
	}
}

// kill kills the child and waits for it (bounded).
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

// cpu is the child's user+system CPU time (after it exited).
func (c *child) cpu() time.Duration {
	if c.cmd.ProcessState == nil {
		return 0
	}
	return c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime()
}

// killAll kills every child still running, one by one.
func killAll() {
	live.Lock()
	var all []*child
	for c := range live.m {
		all = append(all, c)
	}
	live.Unlock()
	for _, c := range all {
		c.kill()
	}
}

// waitAll waits for every child up to a shared deadline; on the first
// failure it kills the others.
func waitAll(cs []*child, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, c := range cs {
		if err := c.wait(max(time.Until(deadline), time.Millisecond)); err != nil {
			for _, o := range cs {
				o.kill()
			}
			var others []string
			for _, o := range cs {
				if o != c {
					others = append(others, fmt.Sprintf("--- %s:\n%s", o.name, tail(o.output.String(), 1500)))
				}
			}
			return fmt.Errorf("%w\n%s", err, strings.Join(others, "\n"))
		}
	}
	return nil
}

// awaitLine waits up to limit for a stdout line with the given prefix.
func (c *child) awaitLine(prefix string, limit time.Duration) (string, error) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case l := <-c.lines:
			if strings.HasPrefix(l, prefix) {
				return l, nil
			}
		case <-c.done:
			return "", fmt.Errorf("%s exited before printing %q: %v\n%s", c.name, prefix, c.err, tail(c.output.String(), 3000))
		case <-timer.C:
			return "", fmt.Errorf("%s did not print %q within %s\n%s", c.name, prefix, limit, tail(c.output.String(), 3000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
