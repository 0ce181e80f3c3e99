package redis

// keys names every key of one run. All keys share the hash tag {run id},
// so a run lives in one slot, and all carry the run's TTL.
type keys struct {
	base string // "<prefix>:{<run id>}:"
}

func newKeys(prefix, runID string) keys { return keys{base: prefix + ":{" + runID + "}:"} }

func (k keys) meta() string   { return k.base + "meta" }  // hash: fingerprint, state, cancel info
func (k keys) inst() string   { return k.base + "inst" }  // hash: instance -> registration JSON
func (k keys) beat() string   { return k.base + "beat" }  // hash: instance -> last heartbeat (server ms)
func (k keys) seq() string    { return k.base + "seq" }   // counter: enqueue order
func (k keys) queues() string { return k.base + "qs" }    // set: requirement keys that have a queue
func (k keys) asg() string    { return k.base + "asg" }   // hash: module#attempt -> assignment JSON
func (k keys) lease() string  { return k.base + "lease" } // hash: module -> lease JSON
func (k keys) res() string    { return k.base + "res" }   // hash: module -> result JSON
func (k keys) claims() string { return k.base + "ct" }    // hash: claim request id -> claim JSON
func (k keys) refused() string {
	return k.base + "refused" // hash: instance -> {session, reason} of workers the master refused
}
func (k keys) events() string { return k.base + "events" }
func (k keys) ctl(claimID string) string {
	return k.base + "ctl:" + claimID // list: wake-ups for one waiting Claim call
}
func (k keys) claimers() string { return k.base + "claimers" } // set: waiting Claim calls

// all lists the fixed keys (queues and wake lists are found through qs).
func (k keys) all() []string {
	return []string{k.meta(), k.inst(), k.beat(), k.seq(), k.queues(), k.asg(), k.lease(), k.res(), k.claims(), k.refused()}
}
