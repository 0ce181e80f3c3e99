package redis_test

// Multi-process tests: the examples/distributed binary runs as a master and
// workers, real processes sharing a real redis-server, killed with SIGKILL
// where the scenario calls for it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/internal/redistest"
)

var buildExample = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "modpipe-dist-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "distributed")
	out, err := exec.Command("go", "build", "-o", bin, "../../examples/distributed").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

type proc struct {
	index int
	cmd   *exec.Cmd
	out   *syncBuffer
	done  chan struct{}
	code  int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// scenario is one distributed run over real processes.
type scenario struct {
	t      *testing.T
	bin    string
	srv    *redistest.Server // where client() inspects the run's keys
	url    string            // the URL the instances use
	runID  string
	total  int
	env    []string
	report string
	// dir, when set, is the instances' working directory (where the
	// example's build-tool makes its build directory).
	dir string
}

func newScenario(t *testing.T, srv *redistest.Server, total int, env ...string) *scenario {
	t.Helper()
	bin, err := buildExample()
	if err != nil {
		t.Fatal(err)
	}
	return &scenario{t: t, bin: bin, srv: srv, url: srv.URL(), runID: newRunID(), total: total, env: env, report: filepath.Join(t.TempDir(), "report.json")}
}

// start launches instance index; extra holds flags and KEY=VALUE env entries.
func (s *scenario) start(index int, extra ...string) *proc {
	args := []string{
		"--instance", strconv.Itoa(index), "--total", strconv.Itoa(s.total),
		"--redis-url", s.url, "--run-id", s.runID,
		"--heartbeat", "100ms", "--lease-timeout", "1s", "--master-timeout", "3s", "--capability-timeout", "20s",
	}
	env := append(os.Environ(), "GITHUB_ACTIONS=", "REDIS_URL=", "MODPIPE_RUN_ID=")
	env = append(env, s.env...)
	for _, e := range extra {
		if strings.HasPrefix(e, "-") {
			args = append(args, e)
		} else {
			env = append(env, e)
		}
	}
	if index == 0 {
		args = append(args, "--report", s.report)
	}
	p := &proc{index: index, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(s.bin, args...)
	p.cmd.Env = env
	p.cmd.Dir = s.dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	s.t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for the process to exit (bounded) and returns its exit code.
func (p *proc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(limit):
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
		t.Fatalf("instance %d still running after %s:\n%s", p.index, limit, p.out.String())
		return -1
	}
}

type reportModule struct {
	Name       string `json:"name"`
	Status     string `json:"status"`
	Instance   int    `json:"instance"`
	Attempts   int    `json:"attempts"`
	Dispatches int    `json:"dispatches"`
	Error      string `json:"error"`
	LogTail    string `json:"log_tail"`
}

func (s *scenario) readReport() map[string]reportModule {
	s.t.Helper()
	data, err := os.ReadFile(s.report)
	if err != nil {
		s.t.Fatalf("no report: %v", err)
	}
	var r struct {
		Modules []reportModule `json:"modules"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		s.t.Fatal(err)
	}
	m := map[string]reportModule{}
	for _, mod := range r.Modules {
		m[mod.Name] = mod
	}
	return m
}

// client opens a plain client to inspect the run's keys.
func (s *scenario) client() *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: s.srv.Addr()})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// awaitLease waits until module is claimed and returns its holder.
func (s *scenario) awaitLease(module string) int {
	s.t.Helper()
	c := s.client()
	key := "modpipe:{" + s.runID + "}:lease"
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		raw, err := c.HGet(context.Background(), key, module).Result()
		if err != nil {
			continue
		}
		var l struct {
			Holder int `json:"holder"`
		}
		if json.Unmarshal([]byte(raw), &l) == nil {
			return l.Holder
		}
	}
	s.t.Fatalf("%s was never claimed", module)
	return -1
}

// awaitInstances waits until n instances have registered.
func (s *scenario) awaitInstances(n int) {
	s.t.Helper()
	c := s.client()
	key := "modpipe:{" + s.runID + "}:inst"
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, _ := c.HLen(context.Background(), key).Result(); int(got) >= n {
			return
		}
	}
	s.t.Fatalf("fewer than %d instances registered", n)
}

// routingRun runs the example as a master and three workers and checks
// where every module ran.
func routingRun(t *testing.T, srv *redistest.Server) error {
	return routingRunOf(newScenario(t, srv, 4))
}

// routingRunOf is routingRun for a scenario of four instances.
func routingRunOf(s *scenario) error {
	t := s.t
	procs := []*proc{s.start(0), s.start(1, "--capability=docker"), s.start(2, "--capability=windows"), s.start(3, "--capability=macos")}
	var problems []string
	for _, p := range procs {
		if code := p.wait(t, 60*time.Second); code != 0 {
			problems = append(problems, fmt.Sprintf("instance %d exited %d:\n%s", p.index, code, p.out.String()))
		}
	}
	if len(problems) > 0 {
		for _, p := range procs {
			problems = append(problems, fmt.Sprintf("--- instance %d output:\n%s", p.index, p.out.String()))
		}
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	rep := s.readReport()
	want := map[string]int{"docker-image": 1, "cross-tests[windows]": 2, "cross-tests[macos]": 3, "publish": 0}
	for name, inst := range want {
		if m := rep[name]; m.Status != "succeeded" || m.Instance != inst {
			problems = append(problems, fmt.Sprintf("%s: %s on instance %d, want succeeded on %d", name, m.Status, m.Instance, inst))
		}
	}
	for name, m := range rep {
		if m.Status != "succeeded" || m.Dispatches != 1 {
			problems = append(problems, fmt.Sprintf("%s: %s after %d dispatches", name, m.Status, m.Dispatches))
		}
	}
	// Each worker's own output shows the modules it ran.
	if !strings.Contains(procs[1].out.String(), "docker-image · succeeded") || !strings.Contains(procs[2].out.String(), "cross-tests[windows]") {
		problems = append(problems, "a worker's output does not show its modules")
	}
	// The master's output holds every module's log, wherever it ran.
	master := procs[0].out.String()
	for _, line := range []string{"running the suite target=windows instance=2", "building image instance=1", "Coordinator:"} {
		if !strings.Contains(master, line) {
			problems = append(problems, fmt.Sprintf("master output lacks %q", line))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s\nmaster output:\n%s", strings.Join(problems, "\n"), master)
	}
	return nil
}

func TestProcessesRouting(t *testing.T) {
	srv := redistest.Start(t)
	if err := routingRun(t, srv); err != nil {
		t.Fatal(err)
	}
}

// TestProcessesRepeatedRuns is the flakiness check: the routing scenario 20
// times in a row, each with its own run id, on one server.
func TestProcessesRepeatedRuns(t *testing.T) {
	srv := redistest.Start(t)
	const runs = 20
	failed := 0
	for i := range runs {
		if err := routingRun(t, srv); err != nil {
			failed++
			t.Errorf("run %d of %d: %v", i+1, runs, err)
		}
	}
	t.Logf("%d of %d consecutive runs failed", failed, runs)
}

func TestProcessesWorkerKilledMidModule(t *testing.T) {
	srv := redistest.Start(t)
	// docker-image takes 2s.
	s := newScenario(t, srv, 4, "DEMO_SLOW=docker-image=2s")
	master := s.start(0)
	// The two docker workers can stand in for each other; instance 2 takes
	// both OS variants, so killing either docker worker leaves a way out.
	workers := map[int]*proc{1: s.start(1, "--capability=docker,linux"), 2: s.start(2, "--capability=windows,macos"), 3: s.start(3, "--capability=docker,linux")}
	holder := s.awaitLease("docker-image")
	victim := workers[holder]
	if victim == nil {
		t.Fatalf("docker-image claimed by instance %d, not a docker worker", holder)
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := master.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("master exited %d:\n%s", code, master.out.String())
	}
	rep := s.readReport()
	m := rep["docker-image"]
	if m.Status != "succeeded" || m.Instance == holder || m.Dispatches != 2 || m.Attempts != 2 {
		t.Errorf("docker-image: %+v; want it succeeded on the other docker worker at attempt 2 (the killed one was %d)", m, holder)
	}
	if !strings.Contains(m.LogTail, "re-queued as attempt 2") {
		t.Errorf("the re-queue is not in docker-image's log:\n%s", m.LogTail)
	}
	lost := fmt.Sprintf("instance %d sent no heartbeat", holder)
	for name, mod := range rep {
		// Other modules the victim held were re-queued too; nothing else.
		if mod.Dispatches != 1 && !strings.Contains(mod.LogTail, lost) {
			t.Errorf("%s was dispatched %d times without losing its instance:\n%s", name, mod.Dispatches, mod.LogTail)
		}
		if mod.Status != "succeeded" {
			t.Errorf("%s: %s", name, mod.Status)
		}
	}
	// Exactly one result per module was accepted: one group per module in
	// the master's output.
	if n := strings.Count(master.out.String(), "✓ docker-image · succeeded"); n != 1 {
		t.Errorf("docker-image reported %d times", n)
	}
}

func TestProcessesMasterKilled(t *testing.T) {
	srv := redistest.Start(t)
	s := newScenario(t, srv, 3, "DEMO_SLOW=compile=60s")
	master := s.start(0)
	w1, w2 := s.start(1, "--capability=docker"), s.start(2)
	s.awaitInstances(3)
	s.awaitLease("compile")
	if err := master.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*proc{w1, w2} {
		// MasterTimeout is 3s: they must give up soon after, never hang.
		if code := w.wait(t, 30*time.Second); code == 0 {
			t.Errorf("worker %d exited 0 after losing its master:\n%s", w.index, w.out.String())
		}
		if !strings.Contains(w.out.String(), "no heartbeat from instance 0") {
			t.Errorf("worker %d does not say why it stopped:\n%s", w.index, w.out.String())
		}
	}
}

func TestProcessesFailingModuleOnWorker(t *testing.T) {
	srv := redistest.Start(t)
	s := newScenario(t, srv, 2, "DEMO_FAIL=docker-image")
	master := s.start(0)
	worker := s.start(1, "--capability=docker,windows,macos")
	if code := master.wait(t, 60*time.Second); code != 1 {
		t.Fatalf("master exited %d, want 1:\n%s", code, master.out.String())
	}
	out := master.out.String()
	for _, want := range []string{"✗ docker-image · failed", "failing on purpose (DEMO_FAIL) instance=1", "docker-image failed on instance 1 (DEMO_FAIL)", "Run FAILED"} {
		if !strings.Contains(out, want) {
			t.Errorf("master output lacks %q:\n%s", want, out)
		}
	}
	if code := worker.wait(t, 30*time.Second); code != 1 {
		t.Errorf("worker exited %d, want 1 (the run failed)", code)
	}
}

func TestProcessesWorkersBeforeMasterAndLateWorker(t *testing.T) {
	srv := redistest.Start(t)
	s := newScenario(t, srv, 4)
	w2, w3 := s.start(2, "--capability=windows"), s.start(3, "--capability=macos")
	s.awaitInstances(2)
	master := s.start(0)
	s.awaitInstances(3)
	// docker-image can only run on instance 1, which joins last.
	w1 := s.start(1, "--capability=docker")
	for _, p := range []*proc{master, w1, w2, w3} {
		if code := p.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("instance %d exited %d:\n%s", p.index, code, p.out.String())
		}
	}
	if m := s.readReport()["docker-image"]; m.Instance != 1 || m.Status != "succeeded" {
		t.Errorf("docker-image: %+v", m)
	}
}

func TestProcessesFingerprintMismatch(t *testing.T) {
	srv := redistest.Start(t)
	s := newScenario(t, srv, 2, "DEMO_SLOW=compile=1s")
	master := s.start(0, "--capability=docker,linux,windows,macos")
	s.awaitInstances(1)
	stranger := s.start(1, "--capability=docker", "DEMO_EXTRA=1")
	if code := stranger.wait(t, 30*time.Second); code != 2 {
		t.Errorf("worker with another pipeline exited %d, want 2:\n%s", code, stranger.out.String())
	}
	if !strings.Contains(stranger.out.String(), "runs a different pipeline") {
		t.Errorf("no clear refusal:\n%s", stranger.out.String())
	}
	if code := master.wait(t, 60*time.Second); code != 0 {
		t.Errorf("master exited %d:\n%s", code, master.out.String())
	}
}

// outageRun runs the example with modules long enough to span an outage,
// lets disrupt act once every instance has registered, and returns the
// processes.
func outageRun(t *testing.T, srv *redistest.Server, disrupt func()) (*scenario, []*proc) {
	s := newScenario(t, srv, 3, "DEMO_SLOW=compile=1500ms,unit-tests=1s,cross-tests[linux]=1s")
	// Long enough leases to ride out a short outage.
	common := []string{"--lease-timeout=8s", "--heartbeat=200ms", "--master-timeout=10s"}
	procs := []*proc{
		s.start(0, append(common, "--capability=macos")...),
		s.start(1, append(common, "--capability=docker,linux")...),
		s.start(2, append(common, "--capability=windows")...),
	}
	s.awaitInstances(3)
	s.awaitLease("compile")
	disrupt()
	return s, procs
}

// expectRodeOut checks that every instance succeeded despite the outage and
// that every module ran exactly once: no work lost, none duplicated.
func expectRodeOut(t *testing.T, s *scenario, procs []*proc, outage string) {
	t.Helper()
	for _, p := range procs {
		if code := p.wait(t, 90*time.Second); code != 0 {
			t.Fatalf("instance %d exited %d after %s:\n%s", p.index, code, outage, p.out.String())
		}
	}
	for name, m := range s.readReport() {
		if m.Status != "succeeded" || m.Dispatches != 1 {
			t.Errorf("%s: %s after %d dispatches (work lost or duplicated by %s)", name, m.Status, m.Dispatches, outage)
		}
	}
}

func TestProcessesRideOutPausedRedis(t *testing.T) {
	srv := redistest.Start(t)
	s, procs := outageRun(t, srv, func() {
		srv.Pause() // SIGSTOP: every command hangs
		time.Sleep(2 * time.Second)
		srv.Resume()
	})
	expectRodeOut(t, s, procs, "a 2s pause")
}

func TestProcessesRideOutRedisRestartWithPersistence(t *testing.T) {
	srv := redistest.Start(t, redistest.Persistent())
	s, procs := outageRun(t, srv, srv.Restart)
	expectRodeOut(t, s, procs, "a restart")
}

func TestProcessesFailClearlyWhenRedisLosesTheRun(t *testing.T) {
	srv := redistest.Start(t) // no persistence: a restart loses everything
	_, procs := outageRun(t, srv, func() {
		srv.Kill()
		srv.Restart()
	})
	for _, p := range procs {
		code := p.wait(t, 90*time.Second)
		if code == 0 {
			t.Errorf("instance %d exited 0 although the run's data was lost:\n%s", p.index, p.out.String())
		}
		if !strings.Contains(p.out.String(), "are gone") {
			t.Errorf("instance %d does not say the run's keys are gone:\n%s", p.index, p.out.String())
		}
	}
}

func TestProcessesForkSafeFallback(t *testing.T) {
	bin, err := buildExample()
	if err != nil {
		t.Fatal(err)
	}
	run := func(index int) (string, int) {
		cmd := exec.Command(bin, "--instance", strconv.Itoa(index), "--total=4")
		// A fork's pull request: no secrets, so no Redis URL.
		cmd.Env = append(os.Environ(), "REDIS_URL=", "MODPIPE_REDIS_URL=", "GITHUB_RUN_ID=99", "GITHUB_ACTIONS=")
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	out, code := run(2)
	if code != 0 || !strings.Contains(out, "worker 2 has nothing to do") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("worker without Redis: exit %d, want 0 and one line:\n%s", code, out)
	}
	out, code = run(0)
	if code != 0 || !strings.Contains(out, "running the whole pipeline on this instance alone") || !strings.Contains(out, "Run succeeded") {
		t.Errorf("master without Redis: exit %d:\n%s", code, out)
	}
}

// TestProcessesOddWorkerFirst: a worker running another pipeline that
// registers before the master must not decide the run's pipeline. The master
// and the matching worker succeed; the odd worker is refused with exit 2 and
// a message naming both fingerprints. CI matrices start jobs in any order,
// so the scenario is repeated, each time with its own run id.
func TestProcessesOddWorkerFirst(t *testing.T) {
	srv := redistest.Start(t)
	for i := range 5 {
		// compile lasts long enough for the odd worker's next heartbeat to
		// find it refused before the run completes.
		s := newScenario(t, srv, 3, "DEMO_SLOW=compile=1500ms")
		odd := s.start(2, "--capability=windows", "DEMO_EXTRA=1")
		s.awaitInstances(1)
		master := s.start(0, "--capability=docker,linux,windows,macos")
		good := s.start(1, "--capability=docker")
		for _, p := range []*proc{master, good} {
			if code := p.wait(t, 60*time.Second); code != 0 {
				t.Fatalf("iteration %d: instance %d exited %d with an odd worker started first:\n%s", i, p.index, code, p.out.String())
			}
		}
		if code := odd.wait(t, 30*time.Second); code != 2 {
			t.Fatalf("iteration %d: odd worker exited %d, want 2:\n%s", i, code, odd.out.String())
		}
		runFP, err := s.client().HGet(context.Background(), "modpipe:{"+s.runID+"}:meta", "fp").Result()
		if err != nil || runFP == "" {
			t.Fatalf("iteration %d: the run's fingerprint is not in Redis: %v", i, err)
		}
		out := odd.out.String()
		m := regexp.MustCompile(`presents pipeline (\S+) but the run's master \(instance 0\) presents (\S+);`).FindStringSubmatch(out)
		if m == nil || m[2] != runFP || m[1] == runFP {
			t.Fatalf("iteration %d: the odd worker's message does not name its fingerprint and the master's %s:\n%s", i, runFP, out)
		}
		for name, mod := range s.readReport() {
			if mod.Status != "succeeded" || mod.Dispatches != 1 {
				t.Errorf("iteration %d: %s: %s after %d dispatches", i, name, mod.Status, mod.Dispatches)
			}
		}
	}
}

// TestProcessesIndexTaken: a second process presenting the index of a live
// instance (a second master, a second worker 1) is refused with exit 2 and
// a message saying the index is taken; the run goes on and every module
// runs once.
func TestProcessesIndexTaken(t *testing.T) {
	srv := redistest.Start(t)
	// compile keeps the run going while the duplicates try to join.
	s := newScenario(t, srv, 2, "DEMO_SLOW=compile=6s")
	master := s.start(0, "--capability=linux,windows,macos")
	w1 := s.start(1, "--capability=docker")
	s.awaitInstances(2)
	s.awaitLease("compile")
	dups := []*proc{s.start(0, "--capability=docker,linux,windows,macos"), s.start(1, "--capability=docker,linux,windows,macos")}
	for index, dup := range dups {
		if code := dup.wait(t, 30*time.Second); code != 2 {
			t.Errorf("second instance %d exited %d, want 2:\n%s", index, code, dup.out.String())
		}
		if out := dup.out.String(); !strings.Contains(out, "index taken") || !strings.Contains(out, "held by a live instance") {
			t.Errorf("second instance %d: no clear refusal:\n%s", index, out)
		}
	}
	for _, p := range []*proc{master, w1} {
		if code := p.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("instance %d exited %d:\n%s", p.index, code, p.out.String())
		}
	}
	for name, m := range s.readReport() {
		if m.Status != "succeeded" || m.Dispatches != 1 || m.Attempts != 1 {
			t.Errorf("%s: %s after %d dispatches, %d attempts (work duplicated?)", name, m.Status, m.Dispatches, m.Attempts)
		}
	}
}

// TestProcessesLostWorkerReplaced: once a worker is declared lost, a new
// process with its index (a re-run job) is accepted, and the work the lost
// one held is re-queued to it exactly as to any other instance.
func TestProcessesLostWorkerReplaced(t *testing.T) {
	srv := redistest.Start(t)
	// Only instance 1 can build the docker image.
	s := newScenario(t, srv, 2, "DEMO_SLOW=docker-image=2s")
	master := s.start(0, "--capability=linux,windows,macos")
	first := s.start(1, "--capability=docker")
	if holder := s.awaitLease("docker-image"); holder != 1 {
		t.Fatalf("docker-image claimed by instance %d, want 1", holder)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The master re-queues attempt 2 once instance 1 is lost.
	c := s.client()
	requeued := false
	for deadline := time.Now().Add(30 * time.Second); !requeued && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		requeued, _ = c.HExists(context.Background(), "modpipe:{"+s.runID+"}:asg", "docker-image#2").Result()
	}
	if !requeued {
		t.Fatalf("docker-image was not re-queued after its holder was killed:\n%s", master.out.String())
	}
	replacement := s.start(1, "--capability=docker")
	for _, p := range []*proc{master, replacement} {
		if code := p.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("instance %d exited %d:\n%s", p.index, code, p.out.String())
		}
	}
	m := s.readReport()["docker-image"]
	if m.Status != "succeeded" || m.Instance != 1 || m.Dispatches != 2 || m.Attempts != 2 {
		t.Errorf("docker-image: %+v; want it succeeded on the replacement instance 1 at attempt 2", m)
	}
}

// TestProcessesTotalMismatch: a worker started with another --total than the
// master's is refused with exit 2 naming both totals, whether it registers
// before the master or after it; the master runs on.
func TestProcessesTotalMismatch(t *testing.T) {
	srv := redistest.Start(t)
	// compile keeps the run going while the late worker starts.
	s := newScenario(t, srv, 3, "DEMO_SLOW=compile=4s")
	early := s.start(1, "--capability=docker", "--total=4")
	s.awaitInstances(1)
	master := s.start(0, "--capability=docker,linux,windows,macos")
	s.awaitLease("compile")
	late := s.start(2, "--capability=windows", "--total=5")
	for _, c := range []struct {
		p     *proc
		total string
	}{{early, "4"}, {late, "5"}} {
		if code := c.p.wait(t, 30*time.Second); code != 2 {
			t.Errorf("instance %d with --total %s exited %d, want 2:\n%s", c.p.index, c.total, code, c.p.out.String())
		}
		want := fmt.Sprintf("expects %s instances (--total) but the", c.total)
		if out := c.p.out.String(); !strings.Contains(out, want) || !strings.Contains(out, "expects 3") {
			t.Errorf("instance %d: the refusal does not name both totals (%s, 3):\n%s", c.p.index, c.total, out)
		}
	}
	if code := master.wait(t, 60*time.Second); code != 0 {
		t.Errorf("master exited %d:\n%s", code, master.out.String())
	}
}
