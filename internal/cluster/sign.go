package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"

	"github.com/modpipe/modpipe/distributed"
)

// ErrNotSigned is wrapped by the errors of messages that do not carry a
// valid MAC under the run's shared secret.
var ErrNotSigned = errors.New("not signed with the run's shared secret")

// Signer authenticates the messages of a run whose instances share a
// secret (DistributedOptions.SharedSecret): registrations, assignments and
// results carry an HMAC-SHA256 over their content, bound to the run id and,
// for results, to the lease they were published under. A nil *Signer is a
// run without a shared secret: Sign* do nothing and Verify* accept all.
//
// The MAC input is a canonical encoding: a domain string naming the message
// kind, then every field as an 8-byte big-endian length followed by its
// bytes (integers as 8-byte big-endian values), so that no two messages
// encode alike.
type Signer struct {
	key   []byte
	runID string
	// states holds *macState keyed with key: every module's assignment
	// and result is signed or verified, and a fresh HMAC costs several
	// allocations and two SHA-256 blocks of key setup.
	states sync.Pool
}

// NewSigner returns the signer of run runID, or nil when secret is empty.
func NewSigner(secret, runID string) *Signer {
	if secret == "" {
		return nil
	}
	return &Signer{key: []byte(secret), runID: runID}
}

// Domains separate the message kinds, so that a MAC of one kind can never
// pass as another's.
const (
	domainRegistration = "modpipe/v1/registration"
	domainAssignment   = "modpipe/v1/assignment"
	domainResult       = "modpipe/v1/result"
)

// macState computes one MAC: it gathers length-prefixed fields in buf,
// then feeds them into h, an HMAC under the signer's key. It is pooled
// by its signer (Signer.states).
type macState struct {
	s   *Signer
	h   hash.Hash
	buf []byte
	out [sha256.Size]byte // the MAC
}

// bigField is the size from which a field goes to the HMAC directly
// rather than through buf: a log or value is not copied, nor kept in a
// pooled buffer.
const bigField = 512

func (s *Signer) begin(domain string) *macState {
	w, _ := s.states.Get().(*macState)
	if w == nil {
		w = &macState{s: s, h: hmac.New(sha256.New, s.key), buf: make([]byte, 0, bigField)}
	}
	w.str(domain)
	w.str(s.runID)
	return w
}

func (w *macState) int(n int64) { w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(n)) }

func (w *macState) bytes(p []byte) {
	w.int(int64(len(p)))
	if len(p) < bigField {
		w.buf = append(w.buf, p...)
		return
	}
	w.flush()
	_, _ = w.h.Write(p)
}

func (w *macState) str(s string) {
	w.int(int64(len(s)))
	if len(s) < bigField {
		w.buf = append(w.buf, s...)
		return
	}
	w.flush()
	_, _ = w.h.Write([]byte(s))
}

// strs encodes a list; capabilities and requirements travel lower-case.
func (w *macState) strs(l []string) {
	w.int(int64(len(l)))
	for _, s := range l {
		w.str(strings.ToLower(s))
	}
}

func (w *macState) flush() {
	_, _ = w.h.Write(w.buf)
	w.buf = w.buf[:0]
}

// sum returns the MAC, in w.out: valid until w is released.
func (w *macState) sum() []byte {
	w.flush()
	return w.h.Sum(w.out[:0])
}

// release resets w and returns it to its signer's pool.
func (w *macState) release() {
	w.h.Reset()
	w.buf = w.buf[:0]
	w.s.states.Put(w)
}

// mac is the MAC of the message w encoded, in a new slice, for signing.
func (w *macState) mac() []byte {
	mac := slices.Clone(w.sum())
	w.release()
	return mac
}

// matches reports whether mac is the MAC of the message w encoded.
func (w *macState) matches(mac []byte) bool {
	ok := hmac.Equal(mac, w.sum())
	w.release()
	return ok
}

// registrationMAC covers what InstanceInfo returns of a registration: the
// master verifies it when routing.
func (s *Signer) registrationMAC(instance, total int, caps []string, fingerprint, session string) *macState {
	w := s.begin(domainRegistration)
	w.int(int64(instance))
	w.int(int64(total))
	w.strs(caps)
	w.str(fingerprint)
	w.str(session)
	return w
}

func (s *Signer) assignmentMAC(a *distributed.Assignment) *macState {
	w := s.begin(domainAssignment)
	w.str(a.Module)
	w.int(int64(a.Attempt))
	w.strs(a.Requires)
	w.int(a.Priority)
	return w
}

func (s *Signer) resultMAC(r *distributed.Result) *macState {
	w := s.begin(domainResult)
	w.str(r.Module)
	w.str(r.Lease.Module)
	w.int(int64(r.Lease.Attempt))
	w.int(int64(r.Lease.Holder))
	w.str(r.Lease.Session)
	w.str(r.Lease.Token)
	w.str(string(r.Status))
	w.bytes(r.Value)
	if r.Error == nil {
		w.int(0)
	} else {
		w.int(1)
		w.str(r.Error.Message)
		w.str(r.Error.Kind)
		w.int(int64(r.Error.Instance))
	}
	w.str(r.Reason)
	w.int(int64(r.Attempts))
	w.int(int64(r.Duration))
	w.int(int64(r.QueueWait))
	w.bytes(r.Log)
	return w
}

// SignRegistration sets r.MAC.
func (s *Signer) SignRegistration(r *distributed.Registration) {
	if s != nil {
		r.MAC = s.registrationMAC(r.Instance, r.Total, r.Capabilities, r.Fingerprint, r.Session).mac()
	}
}

// SignAssignment sets a.MAC.
func (s *Signer) SignAssignment(a *distributed.Assignment) {
	if s != nil {
		a.MAC = s.assignmentMAC(a).mac()
	}
}

// SignResult sets r.MAC. Sign last: any later change breaks it.
func (s *Signer) SignResult(r *distributed.Result) {
	if s != nil {
		r.MAC = s.resultMAC(r).mac()
	}
}

// why says how a MAC failed.
func why(mac []byte) string {
	if len(mac) == 0 {
		return "it carries no MAC"
	}
	return "its MAC does not match"
}

const notSignedHint = "it was written by an instance without the same MODPIPE_SHARED_SECRET (give every instance of the run the same secret) " +
	"or by someone else with write access to the run's coordinator"

// VerifyInstance checks the MAC of a registered instance.
func (s *Signer) VerifyInstance(in distributed.InstanceInfo) error {
	if s == nil || s.registrationMAC(in.Instance, in.Total, in.Capabilities, in.Fingerprint, in.Session).matches(in.MAC) {
		return nil
	}
	return fmt.Errorf("registration of instance %d (session %s) is %w (%s); %s; the instance gets no work from the master",
		in.Instance, in.Session, ErrNotSigned, why(in.MAC), notSignedHint)
}

// VerifyAssignment checks the MAC of an assignment claimed by instance.
// Without a shared secret, a signed assignment is refused too: the run's
// master signs its work, so this instance lacks the secret, and whatever it
// published would be refused anyway — better not to run the module at all.
func (s *Signer) VerifyAssignment(a distributed.Assignment, instance int) error {
	if s == nil && len(a.MAC) > 0 {
		return fmt.Errorf("assignment of module %s (attempt %d) is signed: the run's master has a shared secret but instance %d has none; "+
			"set the same MODPIPE_SHARED_SECRET on every instance; instance %d refused to run it", a.Module, a.Attempt, instance, instance)
	}
	if s == nil || s.assignmentMAC(&a).matches(a.MAC) {
		return nil
	}
	return fmt.Errorf("assignment of module %s (attempt %d) claimed by instance %d is %w (%s); %s; instance %d refused to run it",
		a.Module, a.Attempt, instance, ErrNotSigned, why(a.MAC), notSignedHint, instance)
}

// VerifyResult checks the MAC of a result awaited for module, and that it
// is a result for that module.
func (s *Signer) VerifyResult(r distributed.Result, module string) error {
	if r.Module != module || r.Lease.Module != module {
		return fmt.Errorf("result awaited for module %s names module %s (lease of %s) from instance %d; %w: the run's coordinator data is corrupt or forged; the result is refused",
			module, r.Module, r.Lease.Module, r.Lease.Holder, distributed.ErrInvalid)
	}
	if s == nil || s.resultMAC(&r).matches(r.MAC) {
		return nil
	}
	return fmt.Errorf("result for module %s from instance %d is %w (%s); %s; the result is refused",
		module, r.Lease.Holder, ErrNotSigned, why(r.MAC), notSignedHint)
}

// assignment is node i's (signed) assignment for attempt.
func (d *Dispatcher) assignment(i, attempt int) distributed.Assignment {
	n := d.nodes[i]
	a := distributed.Assignment{Module: n.Name, Attempt: attempt, Requires: n.Requires, Priority: d.queuePriority(i)}
	d.cfg.Signer.SignAssignment(&a)
	return a
}

// signedInstances drops the instances whose registration does not verify:
// the master neither routes to them nor counts them as registered. Each
// refused registration is logged once.
func (d *Dispatcher) signedInstances(ins []distributed.InstanceInfo) []distributed.InstanceInfo {
	if d.cfg.Signer == nil {
		return ins
	}
	out := ins[:0:0]
	for _, in := range ins {
		err := d.cfg.Signer.VerifyInstance(in)
		if err == nil {
			out = append(out, in)
			continue
		}
		key := fmt.Sprintf("%d/%s", in.Instance, in.Session)
		d.mu.Lock()
		if d.refused == nil {
			d.refused = map[string]error{}
		}
		_, seen := d.refused[key]
		first := !seen
		d.refused[key] = err
		d.mu.Unlock()
		if first {
			d.cfg.Log.Error("refused an instance", "instance", in.Instance, "err", err)
		}
	}
	return out
}

// refusedLocked describes the refused instances, for unroutable errors.
func (d *Dispatcher) refusedLocked() []string {
	out := make([]string, 0, len(d.refused))
	for _, err := range d.refused {
		out = append(out, err.Error())
	}
	slices.Sort(out)
	return out
}
