package redis

import "strconv"

// Every key name of a run is built here, and only here: scripts receive
// every key they touch through KEYS (never by concatenating names in Lua),
// so a run also works on Redis Cluster, where a script may only touch keys
// it declared and all of them must live in one slot.
//
// All keys of a run start with "<prefix>:{<run id>}:": the braces are a
// Redis Cluster hash tag, so every key of a run hashes to the slot of its
// run id, and one node serves the whole run. Different runs spread over the
// cluster.
//
// # Keys that depend on the data: one queue per requirement set
//
// Assignments wait in one sorted set per requirement set (q:<rk>, where rk
// is the canonical requirement key, "a,b|c"), each with a wake-up list
// (w:<rk>) holding one token per queued assignment; idle claimers block
// (BLPOP) on the wake-up lists of the queues they can serve. The set of
// requirement keys is data (qs), so a script cannot be told its keys before
// someone reads qs. The Go side therefore keeps the requirement keys it has
// seen (they only ever grow during a run) and passes their queue and
// wake-up keys in KEYS, with their number in ARGV; the claim and complete
// scripts compare that number with meta's "nq" (the size of qs, kept next to
// the run state so the check costs no extra command) inside the same atomic
// script, and answer {'rks', every requirement key} when the caller's list
// is out of date. The caller then refreshes its list and calls again. So a
// claim never misses a queue that existed when it ran (no race: the check
// and the claim are one script), and a claim that ran before a new queue
// appeared is woken (see below) and claims again with the new keys.
//
// Enqueue needs no such check: it passes the keys of the requirement sets
// it queues to, and adds them to qs.
//
// # Waking waiting claimers
//
// A claimer that found nothing blocks on the wake-up lists it knows plus a
// control list of its own (ctl:<claim id>), which its process pushes to
// when the call's context ends or when the process's subscription (one per
// process, on the run's channel) hears of a new requirement set ("q"), a
// run state change ("s"), or resubscribes (announcements may have been
// missed). The fan-out is in Go, per process, so no script needs to know
// who waits; a claim registers in its process before its first script
// call, so no announcement made after that script can be missed.
type keys struct {
	base string // "<prefix>:{<run id>}:"
}

func newKeys(prefix, runID string) keys { return keys{base: prefix + ":{" + runID + "}:"} }

func (k keys) meta() string   { return k.base + "meta" }  // hash: fingerprint, state, cancel info, nq
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

// queue is the sorted set of assignments needing requirement key rk.
func (k keys) queue(rk string) string { return k.base + "q:" + rk }

// wake is the list of wake-up tokens of queue(rk), one per queued assignment.
func (k keys) wake(rk string) string { return k.base + "w:" + rk }

// ctl is the list that wakes one waiting Claim call.
func (k keys) ctl(claimID string) string { return k.base + "ctl:" + claimID }

// events is the run's pub/sub channel (not a key; named here all the same).
func (k keys) events() string { return k.base + "events" }

// results is the run's pub/sub channel that carries published results
// themselves, and names is the one that only names them; events carries
// the rest (state changes, new queues). A process follows results once it
// queues work (the master: it awaits all it queued), and names once it
// awaits a result it did not queue (a worker reading a dependency's
// value); so a worker that only runs modules hears no result at all.
func (k keys) results() string { return k.base + "results" }

func (k keys) names() string { return k.base + "names" }

// Fixed KEYS of every script, in this order (scripts.go names them).
const nFixed = 10

// all lists the fixed keys, KEYS[1] to KEYS[nFixed] of every script.
func (k keys) all() []string {
	return []string{k.meta(), k.inst(), k.beat(), k.seq(), k.queues(), k.asg(), k.lease(), k.res(), k.claims(), k.refused()}
}

// with returns the fixed keys followed by the queue and wake-up key of
// each requirement key (KEYS[nFixed+2i-1], KEYS[nFixed+2i]) and then
// extra.
func (k keys) with(rks []string, extra ...string) []string {
	out := append(k.all(), make([]string, 0, 2*len(rks)+len(extra))...)
	for _, rk := range rks {
		out = append(out, k.queue(rk), k.wake(rk))
	}
	return append(out, extra...)
}

// artifactKeys names every key of the artifact store (artifacts.go); all
// share the run's hash tag. Chunk keys, like every other key, are built
// here and passed to the scripts in KEYS.
type artifactKeys struct {
	base string // "<prefix>:{<run id>}:art:"
}

func newArtifactKeys(prefix, runID string) artifactKeys {
	return artifactKeys{base: newKeys(prefix, runID).base + "art:"}
}

func (k artifactKeys) used() string               { return k.base + "used" }     // counter: bytes reserved or stored
func (k artifactKeys) manifest(key string) string { return k.base + "m:" + key } // string: "<id> <size> <chunk>"

// chunk is the string holding chunk i of upload id.
func (k artifactKeys) chunk(id string, i int64) string {
	return k.base + "c:" + id + ":" + strconv.FormatInt(i, 10)
}

// chunks lists the keys of chunks [0, n) of upload id.
func (k artifactKeys) chunks(id string, n int64) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = k.chunk(id, i)
	}
	return out
}
