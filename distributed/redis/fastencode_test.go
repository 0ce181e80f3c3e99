package redis

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/modpipe/modpipe/distributed"
)

// encodeCases are records as this package writes them, common forms
// first (plain: the fast path takes them), then forms it hands to
// json.Marshal.
func encodeCases() (as []wireAssignment, asPlain int, ws []wireResult, wsPlain int) {
	as = []wireAssignment{
		{Module: "build", Attempt: 1, Requires: []string{"linux", "docker|podman"}, Priority: 3},
		{Module: "build", Attempt: 2, Requires: []string{}, Priority: -7, EnqMS: 1700000000000, MAC: []byte("0123456789abcdef0123456789abcdef")},
		{Module: "m", Attempt: 1 << 40, Requires: nil, Priority: -1 << 63, MAC: []byte{}},
		{Module: "é\"x", Attempt: 1, Requires: []string{"a"}},
		{Module: "a<b>&c", Attempt: 1, Requires: []string{"x"}},
		{Module: "b", Attempt: 1, Requires: []string{"tab\there", "\u2028"}},
		{Module: "bad \xff utf-8", Attempt: 1},
	}
	lease := wireLease{Module: "build", Attempt: 2, Holder: 3, Session: "0123456789abcdef01234567", Token: "89abcdef0123456789abcdef.4"}
	ws = []wireResult{
		{Module: "build", Lease: lease, Status: distributed.StatusSucceeded, Value: json.RawMessage(`{}`), Attempts: 1, Nonce: "n1"},
		{Module: "build", Lease: lease, Status: distributed.StatusSucceeded, Value: json.RawMessage(`{"a":[1,2.5e3,true,null],"s":"x\"y"}`), Attempts: 2,
			DurationNS: 12345, WaitNS: -678, Log: []byte("line one\nline two\n"), Nonce: "n2", MAC: []byte{1, 2, 3, 250}},
		{Module: "build", Lease: lease, Status: distributed.StatusSkipped, Reason: "only on tags", Attempts: 1, Log: []byte{}, Nonce: "n3"},
		{Module: "build", Lease: wireLease{}, Status: distributed.StatusSucceeded, Value: json.RawMessage(`12`), Nonce: ""},
		{Module: "build", Lease: lease, Status: distributed.StatusFailed, Attempts: 3, Error: &distributed.ErrorInfo{Message: "boom", Kind: "error", Instance: 3}},
		{Module: "naïve", Lease: lease, Status: distributed.StatusSucceeded, Value: json.RawMessage(`null`)},
		{Module: "build", Lease: lease, Status: distributed.StatusSucceeded, Value: json.RawMessage("{ \"a\" :\n1 }")},
		{Module: "build", Lease: lease, Status: distributed.StatusSucceeded, Value: json.RawMessage(`"<b>"`)},
		{Module: "build", Lease: lease, Status: distributed.StatusSucceeded, Value: json.RawMessage(`"é"`)},
		{Module: "build", Lease: lease, Status: distributed.StatusSkipped, Reason: "a \"quoted\" reason"},
		{Module: "build", Lease: lease, Status: distributed.StatusSucceeded, Value: json.RawMessage(`{`)}, // json.Marshal fails
		{Module: "build", Lease: lease, Status: distributed.StatusSucceeded, Value: json.RawMessage(`{}x`)},
	}
	return as, 3, ws, 4
}

// TestFastEncodeWritesWhatJSONWrites: the encoders append byte for byte
// what json.Marshal writes (and fail where it fails), and the common forms
// take the fast path: in a buffer large enough, no allocation (a result's
// value is checked with json.Valid: fewer than json.Marshal), where
// json.Marshal allocates its output.
func TestFastEncodeWritesWhatJSONWrites(t *testing.T) {
	as, asPlain, ws, wsPlain := encodeCases()
	buf := make([]byte, 0, 4096)
	for i, a := range as {
		want, _ := json.Marshal(a)
		if got := appendAssignment([]byte("x"), &a); !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Errorf("assignment %d:\n got %s\nwant x%s", i, got, want)
		}
		if allocs := testing.AllocsPerRun(10, func() { appendAssignment(buf[:0], &a) }); i < asPlain && allocs != 0 {
			t.Errorf("assignment %d: %v allocations, want none (the fast path): %s", i, allocs, want)
		}
	}
	for i, w := range ws {
		want, wantErr := json.Marshal(w)
		if wantErr == nil {
			want = append([]byte("x"), want...)
		} else {
			want = []byte("x")
		}
		got, err := appendResult([]byte("x"), &w)
		if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) {
			t.Errorf("result %d:\n got %s (%v)\nwant %s (%v)", i, got, err, want, wantErr)
		}
		// json.Valid may allocate under the race detector (which drops
		// items from sync.Pools): compared with json.Marshal, not zero.
		allocs := testing.AllocsPerRun(10, func() { _, _ = appendResult(buf[:0], &w) })
		marshal := testing.AllocsPerRun(10, func() { _, _ = json.Marshal(&w) })
		if i < wsPlain && allocs >= marshal {
			t.Errorf("result %d: %v allocations, json.Marshal %v; want fewer (the fast path): %s", i, allocs, marshal, want)
		}
	}
}

// FuzzFastEncodeMatchesJSON: whatever the strings and values, the
// encoders write what json.Marshal writes.
func FuzzFastEncodeMatchesJSON(f *testing.F) {
	as, _, ws, _ := encodeCases()
	for i, a := range as {
		w := ws[i%len(ws)]
		f.Add(a.Module, a.Attempt, "linux", "docker|podman", a.Priority, a.EnqMS, a.MAC,
			w.Lease.Session, w.Lease.Token, string(w.Status), []byte(w.Value), w.Reason, w.Log, w.Nonce)
	}
	f.Fuzz(func(t *testing.T, module string, attempt int, req1, req2 string, prio, n int64, mac []byte,
		session, token, status string, value []byte, reason string, log []byte, nonce string) {
		a := wireAssignment{Module: module, Attempt: attempt, Requires: []string{req1, req2}, Priority: prio, EnqMS: n, MAC: mac}
		if req1 == "" {
			a.Requires = nil
		}
		want, _ := json.Marshal(a)
		if got := appendAssignment(nil, &a); !bytes.Equal(got, want) {
			t.Fatalf("assignment %+v:\n got %s\nwant %s", a, got, want)
		}
		w := wireResult{Module: module, Status: distributed.Status(status), Value: value, Reason: reason, Attempts: attempt,
			DurationNS: prio, WaitNS: n, Log: log, Nonce: nonce, MAC: mac,
			Lease: wireLease{Module: req1, Attempt: attempt, Holder: int(n), Session: session, Token: token, ClaimedMS: prio}}
		want, wantErr := json.Marshal(w)
		got, err := appendResult(nil, &w)
		if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) {
			t.Fatalf("result %+v:\n got %s (%v)\nwant %s (%v)", w, got, err, want, wantErr)
		}
	})
}
