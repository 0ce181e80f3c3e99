package redis_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe"
	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/distributed/redis"
	"github.com/modpipe/modpipe/internal/redistest"
)

// monitor is `redis-cli monitor` running against a server: every command
// the server receives, as redis-cli prints it.
type monitor struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	grew  chan struct{} // signalled on each new line
	done  chan struct{}
}

func startMonitor(t *testing.T, srv *redistest.Server) *monitor {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli is not installed (it comes with redis-server): %v", err)
	}
	m := &monitor{cmd: exec.Command("redis-cli", "-p", strconv.Itoa(srv.Port), "monitor"), grew: make(chan struct{}, 1), done: make(chan struct{})}
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("starting redis-cli monitor: %v", err)
	}
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			m.mu.Lock()
			m.lines = append(m.lines, sc.Text())
			m.mu.Unlock()
			select {
			case m.grew <- struct{}{}:
			default:
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() {
		_ = m.cmd.Process.Kill()
		<-m.done
		_ = m.cmd.Wait()
	})
	m.await(t, func(l string) bool { return l == "OK" }) // MONITOR is on
	return m
}

// await waits until a line satisfies ok.
func (m *monitor) await(t *testing.T, ok func(string) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	seen := 0
	for {
		m.mu.Lock()
		lines := m.lines[seen:]
		seen = len(m.lines)
		m.mu.Unlock()
		for _, l := range lines {
			if ok(l) {
				return
			}
		}
		select {
		case <-m.grew:
		case <-m.done:
			t.Fatalf("redis-cli monitor ended early:\n%s", m.text())
		case <-deadline:
			t.Fatalf("redis-cli monitor never showed the awaited line:\n%s", m.text())
		}
	}
}

func (m *monitor) text() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.lines, "\n")
}

// flush makes sure every command sent so far is in the stream: MONITOR
// shows commands in order, so once a marker sent now appears, all earlier
// ones have.
func (m *monitor) flush(t *testing.T, srv *redistest.Server) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer c.Close()
	marker := "monitor-flush-" + newRunID()
	if err := c.Echo(context.Background(), marker).Err(); err != nil {
		t.Fatal(err)
	}
	m.await(t, func(l string) bool { return strings.Contains(l, marker) })
}

// forms are the ways text can appear in the MONITOR stream: as is, and
// base64-encoded inside a []byte JSON field (a result's log), at each of
// the three alignments.
func forms(secret string) []string {
	out := []string{secret}
	for skip := range 3 {
		s := secret[skip:]
		s = s[:len(s)/3*3]
		out = append(out, base64.StdEncoding.EncodeToString([]byte(s)))
	}
	return out
}

// TestSecretsNeverSentToRedis runs a master and a worker over a real Redis
// while `redis-cli monitor` records every command: a module on the worker
// registers a secret and puts it in its log, a command's arguments and
// output and its error. Neither that secret nor the run's shared secret
// appears in the stream; the masked error does.
func TestSecretsNeverSentToRedis(t *testing.T) {
	const secret = "s3cr3t-value"
	const shared = "shared-secret-0123456789"
	srv := redistest.Start(t)
	mon := startMonitor(t, srv)

	onWorker := modpipe.RequiresCapability("worker-only")
	produce := modpipe.New("produce", func(c *modpipe.Context) (string, error) {
		c.Secret(secret)
		c.Logf("logged in with %s", secret)
		if _, err := c.Command("sh", "-c", "echo token="+secret, secret).Run(); err != nil {
			return "", err
		}
		return "value-for-consume", nil
	}, onWorker)
	leak := modpipe.Task("leak", func(c *modpipe.Context) error {
		c.Secret(secret)
		return fmt.Errorf("login with %s refused", secret)
	}, onWorker)
	got := make(chan string, 1)
	consume := modpipe.Task("consume", func(c *modpipe.Context) error {
		v, err := modpipe.Result(c, produce)
		got <- v
		return err
	}, modpipe.DependsOn(produce), modpipe.PinToMaster())

	master := runPair(t, srv, newRunID(), shared, produce, leak, consume)
	if master.s == nil {
		t.Fatalf("the master has no summary: %v", master.err)
	}
	// The signed results crossed Redis intact.
	for name, want := range map[string]modpipe.Status{"produce": modpipe.Succeeded, "leak": modpipe.Failed, "consume": modpipe.Succeeded} {
		m, _ := master.s.Module(name)
		if m.Status != want {
			t.Errorf("%s: %s (%s), want %s", name, m.Status, m.Error, want)
		}
	}
	select {
	case v := <-got:
		if v != "value-for-consume" {
			t.Errorf("consume read %q", v)
		}
	default:
		t.Error("consume did not run")
	}

	mon.flush(t, srv)
	stream := mon.text()
	for _, s := range []string{secret, shared} {
		for _, f := range forms(s) {
			if strings.Contains(stream, f) {
				t.Errorf("%q (as %q) was sent to Redis:\n%s", s, f, linesWith(stream, f))
			}
		}
	}
	if !strings.Contains(stream, "login with *** refused") {
		t.Errorf("the masked error is not in the MONITOR stream, so the test does not see the traffic:\n%s", linesWith(stream, `"HSET"`))
	}
}

// linesWith returns the first lines of stream containing s, shortened.
func linesWith(stream, s string) string {
	var out []string
	for _, l := range strings.Split(stream, "\n") {
		if strings.Contains(l, s) && len(out) < 3 {
			out = append(out, l[:min(len(l), 400)])
		}
	}
	return strings.Join(out, "\n")
}

type outcome struct {
	s   *modpipe.Summary
	err error
}

// runPair runs mods as a master and a worker offering "worker-only" in this
// process, each with its own Redis coordinator, and returns the master's
// outcome once both have finished.
func runPair(t *testing.T, srv *redistest.Server, runID, shared string, mods ...modpipe.AnyModule) outcome {
	t.Helper()
	results := make([]chan outcome, 2)
	for i := range results {
		results[i] = make(chan outcome, 1)
		coord := redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: runID})
		t.Cleanup(func() { _ = coord.Close() })
		p := modpipe.NewPipeline().Add(mods...)
		p.Output, p.ContinueOnFailure, p.Grace = io.Discard, true, time.Second
		var caps []string
		if i == 1 {
			caps = []string{"worker-only"}
		}
		p.UseDistributed(modpipe.DistributedOptions{
			InstanceIndex: i, TotalInstances: 2, Capabilities: caps, SharedSecret: shared,
			HeartbeatInterval: 100 * time.Millisecond, LeaseTimeout: 2 * time.Second,
			CapabilityTimeout: 20 * time.Second, MasterTimeout: 20 * time.Second, Parallelism: 2,
		}).UseCoordinator(coord)
		go func() {
			s, err := p.Run(context.Background())
			results[i] <- outcome{s, err}
		}()
	}
	var master outcome
	for i, ch := range results {
		select {
		case o := <-ch:
			if i == 0 {
				master = o
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("instance %d did not finish", i)
		}
	}
	if master.s == nil {
		t.Fatalf("the master has no summary: %v", master.err)
	}
	return master
}

// TestForgedResultRefusedOverRedis: with a shared secret, a result that
// someone with access to the run's Redis (but not the secret) publishes
// under the lease of a running module is refused by the master.
func TestForgedResultRefusedOverRedis(t *testing.T) {
	srv := redistest.Start(t)
	runID := newRunID()
	forged := make(chan struct{})
	victim := modpipe.New("victim", func(c *modpipe.Context) (string, error) {
		select {
		case <-forged:
		case <-c.Done():
			return "", c.Err()
		}
		return "genuine", nil
	}, modpipe.RequiresCapability("worker-only"))
	read := make(chan string, 1)
	reader := modpipe.Task("reader", func(c *modpipe.Context) error {
		v, err := modpipe.Result(c, victim)
		if err == nil {
			read <- v
		}
		return err
	}, modpipe.DependsOn(victim), modpipe.PinToMaster())

	// The forger: a coordinator of the same run, without the secret.
	forger := redis.NewCoordinator(redis.Options{URL: srv.URL(), RunID: runID})
	t.Cleanup(func() { _ = forger.Close() })
	forgery := make(chan error, 1)
	go func() {
		defer close(forged)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for {
			leases, err := forger.Leases(ctx)
			if err != nil {
				forgery <- fmt.Errorf("listing leases: %w", err)
				return
			}
			for _, l := range leases {
				if l.Module == "victim" {
					forgery <- forger.Publish(ctx, distributed.Result{Module: "victim", Lease: l, Status: distributed.StatusSucceeded, Value: []byte(`"forged"`)})
					return
				}
			}
			select {
			case <-ctx.Done():
				forgery <- errors.New("victim was never claimed")
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	master := runPair(t, srv, runID, "shared-secret-0123456789", victim, reader)
	if err := <-forgery; err != nil {
		t.Fatalf("the forgery did not happen, so the test proves nothing: %v", err)
	}
	m, _ := master.s.Module("victim")
	if m.Status != modpipe.Failed || !strings.Contains(m.Error, "result for module victim from instance 1 is not signed with the run's shared secret") {
		t.Errorf("victim: %s with error %q; want failed, refusing the unsigned result", m.Status, m.Error)
	}
	select {
	case v := <-read:
		t.Errorf("reader read %q: a forged result reached a dependent", v)
	default:
	}
}
