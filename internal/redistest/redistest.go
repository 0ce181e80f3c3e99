// Package redistest starts real redis-server processes on free loopback
// ports for tests, and can stop, pause, kill and restart them to simulate
// outages.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is a redis-server started for one test.
type Server struct {
	t    testing.TB
	Port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

// Option adds redis-server arguments.
type Option []string

// Persistent turns on the append-only file, so a restart keeps the data.
func Persistent() Option { return Option{"--appendonly", "yes", "--appendfsync", "always"} }

// Password requires a password.
func Password(pw string) Option { return Option{"--requirepass", pw} }

// ReplicaOf makes the server a read-only replica of the server at addr
// (host:port).
func ReplicaOf(addr string) Option {
	host, port, _ := net.SplitHostPort(addr)
	return Option{"--replicaof", host, port}
}

// Start starts a server and stops it when the test ends. The test fails if
// redis-server is not installed (scripts/test.sh installs it).
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed: %v (scripts/test.sh installs it from Debian packages)", err)
	}
	s := &Server{t: t, Port: freePort(t), dir: t.TempDir()}
	s.args = []string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.dir, "--save", "", "--appendonly", "no", "--protected-mode", "no"}
	for _, o := range opts {
		s.args = append(s.args, o...)
	}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() }

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command("redis-server", s.args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	s.cmd = cmd
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "Ready to accept connections") {
				ready <- nil
				for sc.Scan() {
				}
				return
			}
		}
		ready <- fmt.Errorf("redis-server exited before it was ready:\n%s", strings.Join(lines, "\n"))
	}()
	select {
	case err := <-ready:
		if err != nil {
			s.t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		s.t.Fatal("redis-server did not become ready in 20s")
	}
}

// Stop shuts the server down (SIGTERM where the OS has it) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	if err := terminate(s.cmd.Process); err != nil {
		_ = s.cmd.Process.Kill() // no graceful stop on this OS
	}
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// Kill kills the server with SIGKILL, losing what was not persisted.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart stops the server and starts it again on the same port (with the
// same data directory, so an append-only file is replayed).
func (s *Server) Restart() {
	s.Stop()
	s.start()
}

// Pause freezes the server until Resume: clients see timeouts. The test
// fails if the server cannot be frozen (see pause for how, per OS).
func (s *Server) Pause() {
	s.t.Helper()
	if err := pause(s.cmd.Process); err != nil {
		s.t.Fatalf("pausing redis-server (pid %d): %v", s.cmd.Process.Pid, err)
	}
}

// Resume continues a paused server. The test fails if it cannot.
func (s *Server) Resume() {
	s.t.Helper()
	if err := resume(s.cmd.Process); err != nil {
		s.t.Fatalf("resuming redis-server (pid %d): %v", s.cmd.Process.Pid, err)
	}
}

// Dir is the server's data directory.
func (s *Server) Dir() string { return s.dir }

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Cluster is a Redis Cluster of redis-server processes started for one
// test, every node a master (no replicas).
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n (at least 3) redis-server processes with cluster
// mode on, joins them with redis-cli --cluster create (slots spread evenly,
// no replicas), and waits until every node reports cluster_state:ok. The
// nodes stop when the test ends. The test fails if the cluster does not
// form within 60s.
func StartCluster(t *testing.T, n int) *Cluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("redistest: a Redis Cluster needs at least 3 masters, not %d", n)
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli is not installed: %v (scripts/test.sh installs it from Debian packages)", err)
	}
	c := &Cluster{}
	addrs := make([]string, n)
	for i := range n {
		dir := t.TempDir()
		s := Start(t, Option{"--cluster-enabled", "yes", "--cluster-config-file", dir + "/nodes.conf", "--cluster-node-timeout", "5000"})
		c.Nodes = append(c.Nodes, s)
		addrs[i] = s.Addr()
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create %s: %v\n%s", strings.Join(addrs, " "), err, out)
	}
	for _, s := range c.Nodes {
		for {
			out, err := exec.CommandContext(ctx, "redis-cli", "-p", strconv.Itoa(s.Port), "cluster", "info").Output()
			if err == nil && strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the cluster node at %s did not report cluster_state:ok within 60s: %v\n%s", s.Addr(), err, out)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return c
}

// URL is the redis+cluster:// URL naming every node.
func (c *Cluster) URL() string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr()
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// Owner returns the node serving the hash slot of key: the one that
// answers a read of it instead of redirecting (MOVED). The test fails if
// no node does.
func (c *Cluster) Owner(t *testing.T, key string) *Server {
	t.Helper()
	for _, s := range c.Nodes {
		out, err := exec.Command("redis-cli", "-p", strconv.Itoa(s.Port), "exists", key).CombinedOutput()
		if err == nil && !strings.Contains(string(out), "MOVED") {
			return s
		}
	}
	t.Fatalf("no node of the cluster serves the slot of key %s", key)
	return nil
}
