package redis_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/artifact/storetest"
	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/distributed/coordinatortest"
	"github.com/modpipe/modpipe/distributed/redis"
	"github.com/modpipe/modpipe/internal/redistest"
)

// runIDOn returns a fresh run id whose keys live on node (every key of a
// run shares the hash tag {run id}, so they all have its slot).
func runIDOn(t *testing.T, cl *redistest.Cluster, node int) string {
	t.Helper()
	for range 200 {
		id := newRunID()
		if cl.Owner(t, "modpipe:{"+id+"}:meta") == cl.Nodes[node] {
			return id
		}
	}
	t.Fatalf("no run id among 200 lands on node %d", node)
	return ""
}

// spread places the runs of a conformance suite on the nodes of a cluster
// in turn, and checks afterwards where their keys are.
type spread struct {
	cl     *redistest.Cluster
	mu     sync.Mutex
	n      int
	byNode map[int][]string
}

func newSpread(cl *redistest.Cluster) *spread { return &spread{cl: cl, byNode: map[int][]string{}} }

// next returns a fresh run id whose keys live on the next node.
func (s *spread) next(t *testing.T) string {
	s.mu.Lock()
	node := s.n % len(s.cl.Nodes)
	s.n++
	s.mu.Unlock()
	id := runIDOn(t, s.cl, node)
	s.mu.Lock()
	s.byNode[node] = append(s.byNode[node], id)
	s.mu.Unlock()
	return id
}

// check fails unless every node holds keys "modpipe:{<run id>}:<kind>..."
// (kind "" for every key of a run) of the runs placed on it, and none of
// runs placed elsewhere: the cluster, not one node, was exercised, and a
// run's keys sit on its node only.
func (s *spread) check(t *testing.T, kind string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, srv := range s.cl.Nodes {
		c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
		keys, err := c.Keys(ctx, "modpipe:*"+kind+"*").Result()
		c.Close()
		if err != nil {
			t.Fatalf("listing the keys of node %d: %v", i, err)
		}
		if len(keys) == 0 {
			t.Errorf("node %d holds no %q key, though runs %v were placed on it", i, kind, s.byNode[i])
		}
		for _, k := range keys {
			if !slices.ContainsFunc(s.byNode[i], func(id string) bool { return strings.HasPrefix(k, "modpipe:{"+id+"}:"+kind) }) {
				t.Errorf("node %d holds key %s of a run placed elsewhere", i, k)
			}
		}
	}
}

// TestClusterConformance runs the conformance suite on a real 3-master
// Redis Cluster, with the suite's runs spread over all three nodes, and
// checks that each node then holds keys of runs (so the cluster, not one
// node, was exercised) and that a run's keys sit on one node only.
func TestClusterConformance(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	runs := newSpread(cl)
	coordinatortest.Run(t, func(t *testing.T) distributed.Coordinator {
		return redis.NewCoordinator(redis.Options{URL: cl.URL(), RunID: runs.next(t)})
	})
	runs.check(t, "")
}

// TestClusterProcessesRouting is the routing scenario (a master and three
// workers, separate processes) on a 3-master Redis Cluster, reached
// through a redis+cluster:// URL naming one node only, for a run whose
// keys live on another: the client must learn the cluster's layout. The
// example's artifact (a binary built on one worker and run on another)
// travels through the Redis artifact store on the cluster.
func TestClusterProcessesRouting(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	// The example's artifact goes through the coordinator's own store,
	// on the cluster too.
	s := newScenario(t, cl.Nodes[0], 4)
	s.runID = runIDOn(t, cl, 2)
	s.srv = cl.Nodes[2]
	s.url = "redis+cluster://" + cl.Nodes[0].Addr()
	if err := routingRunOf(s); err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: cl.Nodes[2].Addr()})
	defer c.Close()
	keys, err := c.Keys(context.Background(), "modpipe:{"+s.runID+"}:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("the run's keys are not on node 2 after the run: %v %v", keys, err)
	}
	if !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "modpipe:{"+s.runID+"}:art:m:") }) {
		t.Errorf("no artifact manifest of the run on node 2: the example's artifact did not go through the Redis store; keys: %v", keys)
	}
}

// TestClusterArtifactStoreConformance runs the artifact store's
// conformance suite on a real 3-master Redis Cluster, reached through a
// redis+cluster:// URL naming one node, with the stores' runs spread over
// all three nodes (small chunks, so blobs span several chunk keys), and
// checks that every node then holds artifact keys of the runs placed on
// it, and only of those.
func TestClusterArtifactStoreConformance(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	runs := newSpread(cl)
	storetest.Run(t, func(t *testing.T) artifact.Store {
		s := redis.NewArtifactStore(redis.Options{URL: "redis+cluster://" + cl.Nodes[0].Addr(), RunID: runs.next(t)}, redis.WithArtifactChunkSize(64<<10))
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
	runs.check(t, "art:")
}
