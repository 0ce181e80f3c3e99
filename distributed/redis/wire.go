package redis

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// errMalformed marks data read back from Redis that this package did not
// write (edited by hand, another version, corruption).
var errMalformed = errors.New("malformed data in Redis")

// malformed reports a corrupt record; where names the key (and field) or
// the reply it was read from.
func malformed(where string, err error) error {
	return fmt.Errorf("%w: %w: %s: %v; the run's keys were changed by something other than modpipe; start a new run id", distributed.ErrCorrupt, errMalformed, where, err)
}

// The JSON forms stored in Redis. Field names are short and stable.

type wireRegistration struct {
	Caps        []string `json:"caps"`
	Session     string   `json:"session"`
	Total       int      `json:"total"`
	Fingerprint string   `json:"fp"`
	LeaseMS     int64    `json:"lease_ms"` // the instance's LeaseTimeout; 0: never lost by age
	// MAC authenticates the registration (DistributedOptions.SharedSecret);
	// stored and returned verbatim.
	MAC []byte `json:"mac,omitempty"`
}

type wireAssignment struct {
	Module   string   `json:"module"`
	Attempt  int      `json:"attempt"`
	Requires []string `json:"requires"`
	Priority int64    `json:"priority"`
	MAC      []byte   `json:"mac,omitempty"`
	// EnqMS comes last: the enqueue script appends it (the caller sends
	// the JSON without its final "0}").
	EnqMS int64 `json:"enq_ms"`
}

type wireLease struct {
	Module    string `json:"module"`
	Attempt   int    `json:"attempt"`
	Holder    int    `json:"holder"`
	Session   string `json:"session"`
	Token     string `json:"token"`
	ClaimedMS int64  `json:"claimed_ms"`
}

func (l wireLease) lease(nowMS int64) distributed.Lease {
	return distributed.Lease{Module: l.Module, Attempt: l.Attempt, Holder: l.Holder, Session: l.Session, Token: l.Token,
		Age: time.Duration(max(0, nowMS-l.ClaimedMS)) * time.Millisecond}
}

type wireResult struct {
	Module     string                 `json:"module"`
	Lease      wireLease              `json:"lease"`
	Status     distributed.Status     `json:"status"`
	Value      json.RawMessage        `json:"value,omitempty"`
	Error      *distributed.ErrorInfo `json:"error,omitempty"`
	Reason     string                 `json:"reason,omitempty"`
	Attempts   int                    `json:"attempts"`
	DurationNS int64                  `json:"duration_ns"`
	WaitNS     int64                  `json:"wait_ns"`
	Log        []byte                 `json:"log,omitempty"`
	Nonce      string                 `json:"nonce"` // tells a retried publish from a duplicate
	MAC        []byte                 `json:"mac,omitempty"`
}

func toWireResult(r distributed.Result) wireResult {
	return wireResult{
		Module: r.Module, Status: r.Status, Value: r.Value, Error: r.Error, Reason: r.Reason, Attempts: r.Attempts,
		DurationNS: int64(r.Duration), WaitNS: int64(r.QueueWait), Log: r.Log, MAC: r.MAC,
		Lease: wireLease{Module: r.Lease.Module, Attempt: r.Lease.Attempt, Holder: r.Lease.Holder, Session: r.Lease.Session, Token: r.Lease.Token},
	}
}

func (w wireResult) result() (distributed.Result, error) {
	r := distributed.Result{
		Module: w.Module, Status: w.Status, Value: []byte(w.Value), Error: w.Error, Reason: w.Reason, Attempts: w.Attempts,
		Duration: time.Duration(w.DurationNS), QueueWait: time.Duration(w.WaitNS), Log: w.Log, MAC: w.MAC,
		Lease: distributed.Lease{Module: w.Lease.Module, Attempt: w.Lease.Attempt, Holder: w.Lease.Holder, Session: w.Lease.Session, Token: w.Lease.Token},
	}
	if err := distributed.ValidateResult(r); err != nil {
		return r, err
	}
	return r, nil
}

// decodeJSON decodes one stored entry strictly.
func decodeJSON(where string, raw string, v any) error {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed(where, err)
	}
	return nil
}

// reqKey is the canonical name of a requirement set: its queue's key.
func reqKey(reqs []string) (string, error) {
	for _, r := range reqs {
		if strings.Contains(r, ",") {
			return "", fmt.Errorf("%w: capability %q contains a comma", distributed.ErrInvalid, r)
		}
	}
	sorted := slices.Clone(reqs)
	for i := range sorted {
		alts := strings.Split(sorted[i], "|")
		slices.Sort(alts)
		sorted[i] = strings.Join(alts, "|")
	}
	slices.Sort(sorted)
	return strings.Join(sorted, ","), nil
}

// asInt64 reads a number from a script reply.
func asInt64(where string, v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, malformed(where, err)
		}
		return n, nil
	}
	return 0, malformed(where, fmt.Errorf("unexpected %T", v))
}

func asString(where string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", malformed(where, fmt.Errorf("unexpected %T", v))
	}
	return s, nil
}

// pairs reads a flattened HGETALL reply.
func pairs(where string, v any) (map[string]string, error) {
	arr, ok := v.([]any)
	if !ok || len(arr)%2 != 0 {
		return nil, malformed(where, fmt.Errorf("unexpected reply %T", v))
	}
	m := make(map[string]string, len(arr)/2)
	for i := 0; i < len(arr); i += 2 {
		k, err1 := asString(where, arr[i])
		val, err2 := asString(where, arr[i+1])
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		m[k] = val
	}
	return m, nil
}
