package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/internal/redistest"
)

// slowModules run on worker 1 (capabilities docker, windows, macos; one at
// a time), so that while one of them runs the others wait in the queue.
var slowModules = []string{"docker-image", "cross-tests[windows]", "cross-tests[macos]"}

// awaitWorkerLease waits until worker 1 holds one of slowModules and
// returns it.
func (s *scenario) awaitWorkerLease() string {
	s.t.Helper()
	c := s.client()
	key := "modpipe:{" + s.runID + "}:lease"
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, m := range slowModules {
			if raw, err := c.HGet(context.Background(), key, m).Result(); err == nil && strings.Contains(raw, `"holder":1`) {
				return m
			}
		}
	}
	s.t.Fatal("worker 1 never claimed a slow module")
	return ""
}

// TestProcessesCorruptRecordFailsTheRun corrupts, while a run is in
// progress, each key the coordinator reads (a record set to garbage, or the
// key replaced by one of another type): the run fails within a bound, and
// the master's output names the key and says the run's data is corrupt.
func TestProcessesCorruptRecordFailsTheRun(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	retype := func(c *goredis.Client, key string) error {
		return c.Set(ctx, key, "not the right type", 0).Err()
	}
	cases := []struct {
		name string
		// corrupt changes the run's keys; base is "modpipe:{run}:", held
		// the module worker 1 is running. It returns the text the error
		// must show (the key, and field where there is one).
		corrupt func(c *goredis.Client, base, held string) (string, error)
	}{
		{"lease garbage", func(c *goredis.Client, base, held string) (string, error) {
			return base + "lease field " + held, c.HSet(ctx, base+"lease", held, "{garbage").Err()
		}},
		{"lease without token", func(c *goredis.Client, base, held string) (string, error) {
			return base + "lease field " + held, c.HSet(ctx, base+"lease", held, `{"module":"`+held+`","attempt":1,"holder":1,"session":"s","token":"","claimed_ms":1}`).Err()
		}},
		{"lease wrong type", func(c *goredis.Client, base, _ string) (string, error) {
			return base + "lease: holds a string", retype(c, base+"lease")
		}},
		{"instance garbage", func(c *goredis.Client, base, _ string) (string, error) {
			return base + "inst field 1", c.HSet(ctx, base+"inst", "1", `{"caps":"not-a-list"}`).Err()
		}},
		{"instance wrong type", func(c *goredis.Client, base, _ string) (string, error) {
			return base + "inst: holds a string", retype(c, base+"inst")
		}},
		{"heartbeat garbage", func(c *goredis.Client, base, _ string) (string, error) {
			// Instance 9 never beats, so nothing overwrites the garbage.
			return base + "beat field 9", c.HSet(ctx, base+"beat", "9", "soon").Err()
		}},
		{"heartbeat wrong type", func(c *goredis.Client, base, _ string) (string, error) {
			return base + "beat: holds a string", retype(c, base+"beat")
		}},
		{"run state garbage", func(c *goredis.Client, base, _ string) (string, error) {
			return base + "meta field state", c.HSet(ctx, base+"meta", "state", "exploded").Err()
		}},
		{"run failed flag garbage", func(c *goredis.Client, base, _ string) (string, error) {
			return base + "meta field failed", c.HSet(ctx, base+"meta", "failed", "maybe").Err()
		}},
		{"run meta wrong type", func(c *goredis.Client, base, _ string) (string, error) {
			return base + "meta: holds a string", retype(c, base+"meta")
		}},
		{"queued assignment garbage", func(c *goredis.Client, base, _ string) (string, error) {
			members, err := c.HKeys(ctx, base+"asg").Result()
			if err != nil || len(members) == 0 {
				return "", err
			}
			for _, m := range members {
				if err := c.HSet(ctx, base+"asg", m, `{"module":`).Err(); err != nil {
					return "", err
				}
			}
			return base + "asg field ", nil
		}},
		{"enqueue counter garbage", func(c *goredis.Client, base, _ string) (string, error) {
			return base + "seq", c.Set(ctx, base+"seq", "many", 0).Err()
		}},
		{"results wrong type", func(c *goredis.Client, base, _ string) (string, error) {
			return base + "res: holds a string", retype(c, base+"res")
		}},
		{"claim records wrong type", func(c *goredis.Client, base, _ string) (string, error) {
			return base + "ct: holds a string", retype(c, base+"ct")
		}},
		{"queue set wrong type", func(c *goredis.Client, base, _ string) (string, error) {
			return base + "qs: holds a string", retype(c, base+"qs")
		}},
		{"queues wrong type", func(c *goredis.Client, base, _ string) (string, error) {
			rks, err := c.SMembers(ctx, base+"qs").Result()
			for _, rk := range rks {
				err = retype(c, base+"q:"+rk)
			}
			return base + "q:", err
		}},
		{"wake-up lists wrong type", func(c *goredis.Client, base, _ string) (string, error) {
			rks, err := c.SMembers(ctx, base+"qs").Result()
			for _, rk := range rks {
				err = retype(c, base+"w:"+rk)
			}
			return base + "w:", err
		}},
		{"queue count garbage", func(c *goredis.Client, base, _ string) (string, error) {
			// Claims check their list of queues against it.
			return base + "meta field nq", c.HSet(ctx, base+"meta", "nq", "many").Err()
		}},
		{"forged announcement", func(c *goredis.Client, base, _ string) (string, error) {
			// A result announced for a module still queued.
			return "announcement on channel " + base + "events for cross-tests", c.Publish(ctx, base+"events", "r:cross-tests[macos]\n{\"module\":").Err()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newScenario(t, srv, 2, "DEMO_SLOW=docker-image=2s,cross-tests[windows]=2s,cross-tests[macos]=2s")
			master := s.start(0)
			worker := s.start(1, "--capability=docker,windows,macos", "--parallel=1")
			held := s.awaitWorkerLease()
			want, err := tc.corrupt(s.client(), "modpipe:{"+s.runID+"}:", held)
			if err != nil || want == "" {
				t.Fatalf("corrupting the run: %v (nothing to corrupt: %v)", err, want == "")
			}
			start := time.Now()
			code := master.wait(t, 20*time.Second)
			wcode := worker.wait(t, 20*time.Second)
			out := master.out.String()
			if code == 0 || !strings.Contains(out, want) || !strings.Contains(out, "corrupt") || !strings.Contains(out, "start a new run id") {
				t.Errorf("master exited %d after %s; want a failure naming %q and saying the run's data is corrupt:\n%s\n--- worker (exit %d):\n%s",
					code, time.Since(start).Round(time.Millisecond), want, out, wcode, worker.out.String())
			}
			if wcode == 0 {
				t.Errorf("worker exited 0 from a corrupt run:\n%s", worker.out.String())
			}
			if n := strings.Count(out, "listing leases failed"); n > 3 {
				t.Errorf("the master retried a corrupt record %d times", n)
			}
		})
	}
}
