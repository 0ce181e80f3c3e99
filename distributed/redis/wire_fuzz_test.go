package redis

// Fuzz tests of every decoder of data read back from Redis: none panics,
// and whatever one accepts survives a round trip through the form this
// package writes. Seeds are added with f.Add; `go test -fuzz` runs them
// longer (scripts/test.sh runs each briefly).

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"

	"github.com/modpipe/modpipe/distributed"
)

func FuzzDecodeLease(f *testing.F) {
	f.Add("build", `{"module":"build","attempt":1,"holder":2,"session":"s1","token":"abc.1","claimed_ms":1700000000000}`)
	f.Add("build", `{"module":"other","attempt":1,"holder":2,"session":"s1","token":"abc.1","claimed_ms":1}`)
	f.Add("m", `{"module":"m","attempt":0,"holder":-1,"token":"","claimed_ms":0}`)
	f.Add("m", `{garbage`)
	f.Add("m", `{"module":"m","attempt":1e99}`)
	f.Add("m", `{"module":"m","attempt":1,"holder":0,"session":"","token":"t","claimed_ms":5,"extra":1}`)
	f.Fuzz(func(t *testing.T, module, raw string) {
		l, err := decodeLease("k", module, raw)
		if err != nil {
			return
		}
		if l.Module != module || l.Attempt < 1 || l.Holder < 0 || l.Token == "" || l.ClaimedMS <= 0 {
			t.Fatalf("accepted an invalid lease %+v for %q", l, module)
		}
		again, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		l2, err := decodeLease("k", module, string(again))
		if err != nil || l2 != l {
			t.Fatalf("round trip: %+v -> %s -> %+v, %v", l, again, l2, err)
		}
	})
}

func FuzzDecodeRegistration(f *testing.F) {
	f.Add("1", `{"caps":["linux","docker"],"session":"s","total":3}`)
	f.Add("01", `{"caps":[],"session":"s","total":1}`)
	f.Add("-1", `{"caps":null,"session":"","total":0}`)
	f.Add("2", `{"caps":"not-a-list"}`)
	f.Add("2", `{"caps":["a,b"],"total":-4}`)
	f.Fuzz(func(t *testing.T, id, raw string) {
		n, reg, err := decodeRegistration("k", id, raw)
		if err != nil {
			return
		}
		if strconv.Itoa(n) != id || n < 0 || reg.Total < 0 {
			t.Fatalf("accepted instance %q (%d) with %+v", id, n, reg)
		}
		again, _ := json.Marshal(reg)
		_, reg2, err := decodeRegistration("k", id, string(again))
		if err != nil || !reflect.DeepEqual(normalCaps(reg), normalCaps(reg2)) {
			t.Fatalf("round trip: %+v -> %s -> %+v, %v", reg, again, reg2, err)
		}
	})
}

func normalCaps(r wireRegistration) wireRegistration {
	if len(r.Caps) == 0 {
		r.Caps = nil
	}
	return r
}

func FuzzDecodeAssignment(f *testing.F) {
	f.Add("build#1", `{"module":"build","attempt":1,"requires":["linux"],"priority":3,"enq_ms":1700000000000}`)
	f.Add("build#2", `{"module":"build","attempt":1,"requires":null,"priority":0,"enq_ms":0}`)
	f.Add("", `{"module":"","attempt":-1}`)
	f.Add("x#1", `{"module":`)
	f.Fuzz(func(t *testing.T, member, raw string) {
		a, _, err := decodeAssignment("k", member, raw)
		if err != nil {
			return
		}
		if err := distributed.ValidateAssignment(a); err != nil {
			t.Fatalf("accepted an invalid assignment %+v: %v", a, err)
		}
		again, _ := json.Marshal(wireAssignment{Module: a.Module, Attempt: a.Attempt, Requires: a.Requires, Priority: a.Priority})
		a2, _, err := decodeAssignment("k", member, string(again))
		if err != nil || !reflect.DeepEqual(a, a2) {
			t.Fatalf("round trip: %+v -> %s -> %+v, %v", a, again, a2, err)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	good := toWireResult(distributed.Result{Module: "m", Status: distributed.StatusSucceeded, Value: []byte(`{"a":1}`), Attempts: 1,
		Lease: distributed.Lease{Module: "m", Attempt: 1, Holder: 1, Session: "s", Token: "t.1"}, Log: []byte("log\n")})
	good.Nonce = "n"
	b, _ := json.Marshal(good)
	f.Add("m", string(b))
	f.Add("m", `{"module":"m","status":"exploded","lease":{"module":"m","token":"t"}}`)
	f.Add("other", string(b))
	f.Add("m", `{"module":"m","status":"failed","lease":{"module":"m","attempt":1,"token":"t"},"error":{"message":"boom"},"attempts":1}`)
	f.Add("m", `{"module":"m","value":[1,2`)
	f.Fuzz(func(t *testing.T, module, raw string) {
		r, err := decodeWireResult("k", module, raw)
		if err != nil {
			return
		}
		if r.Module != module || distributed.ValidateResult(r) != nil {
			t.Fatalf("accepted an invalid result %+v for %q", r, module)
		}
		w := toWireResult(r)
		again, err := json.Marshal(w)
		if err != nil {
			t.Fatalf("an accepted result does not encode: %v", err)
		}
		r2, err := decodeWireResult("k", module, string(again))
		if err != nil {
			t.Fatalf("round trip: %s: %v", again, err)
		}
		if !bytes.Equal(compact(r.Value), compact(r2.Value)) {
			t.Fatalf("value changed: %s -> %s", r.Value, r2.Value)
		}
		r.Value, r2.Value = nil, nil
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip: %+v -> %+v", r, r2)
		}
	})
}

func compact(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}

func FuzzParseState(f *testing.F) {
	f.Add("running", "", "", "", int64(2))
	f.Add("cancelled", "3", "interrupted", "0", int64(4))
	f.Add("completed", "", "", "1", int64(1))
	f.Add("exploded", "x", "", "maybe", int64(-1))
	f.Fuzz(func(t *testing.T, state, by, reason, failed string, registered int64) {
		s, err := parseState("meta", state, by, reason, failed, registered)
		if err != nil {
			return
		}
		if n, err := strconv.Atoi(by); by != "" && (err != nil || n < 0 || n != s.CancelledBy || !s.Cancelled) {
			t.Fatalf("accepted cancelled by %q as %d", by, s.CancelledBy)
		}
		if (failed == "1") != s.Failed {
			t.Fatalf("failed %q read as %v", failed, s.Failed)
		}
		if s.Completed && state != "completed" {
			t.Fatalf("state %q read as completed", state)
		}
	})
}

func FuzzAnnouncement(f *testing.F) {
	f.Add("r:build\n" + `{"module":"build"}`)
	f.Add("r:build")
	f.Add("s")
	f.Add("r:\n\n")
	f.Fuzz(func(t *testing.T, msg string) {
		mod, payload, has, ok := parseAnnouncement(msg)
		if !ok {
			if mod != "" || payload != "" || has {
				t.Fatalf("a state message yielded %q %q %v", mod, payload, has)
			}
			return
		}
		rebuilt := "r:" + mod
		if has {
			rebuilt += "\n" + payload
		}
		if rebuilt != msg {
			t.Fatalf("%q parsed as %q / %q", msg, mod, payload)
		}
		if has {
			// The payload goes through the result decoder: no panic, and
			// what it accepts is a valid result of that module.
			if r, err := decodeWireResult("announcement", mod, payload); err == nil && (r.Module != mod || distributed.ValidateResult(r) != nil) {
				t.Fatalf("accepted %+v", r)
			}
		}
	})
}

func FuzzBeatAndClaimRecord(f *testing.F) {
	f.Add("1700000000000", `["ok",1700000000000,"m#1","{}"]`)
	f.Add("-5", `[]`)
	f.Add("soon", `{"a":1}`)
	f.Fuzz(func(t *testing.T, beat, claim string) {
		if ms, err := decodeBeat("k", beat); err == nil {
			if n, perr := strconv.ParseInt(beat, 10, 64); perr != nil || n != ms || ms <= 0 {
				t.Fatalf("beat %q accepted as %d", beat, ms)
			}
		}
		if err := validateClaimRecord("k", claim); err == nil {
			var v []any
			if json.Unmarshal([]byte(claim), &v) != nil || len(v) == 0 || v[0] != "ok" {
				t.Fatalf("claim record %q accepted", claim)
			}
		}
	})
}

func FuzzClaimReply(f *testing.F) {
	f.Add("m#1", `{"module":"m","attempt":1,"requires":[],"priority":0,"enq_ms":5}`, int64(9))
	f.Add("x#2", `{"module":"m","attempt":1}`, int64(9))
	f.Add("m#1", `{"module":"m","attempt":1,"requires":[],"priority":0,"enq_ms":50}`, int64(-1))
	f.Add("", `[`, int64(0))
	// Found by fuzzing: an empty member used to skip the member check.
	f.Add("", `{"module":"0","Attempt":1}`, int64(9))
	f.Fuzz(func(t *testing.T, member, payload string, now int64) {
		c := &Coordinator{keys: newKeys("modpipe", "fuzz"), dead: make(chan struct{})}
		cls, err := c.parseClaims([]any{"ok", now, member, payload}, 2, "sess", "req")
		if err != nil {
			if c.failed() == nil {
				t.Fatalf("a corrupt claim was not latched: %v", err)
			}
			return
		}
		cl := cls[0]
		if distributed.ValidateAssignment(cl.Assignment) != nil || member != cl.Assignment.Module+"#"+strconv.Itoa(cl.Assignment.Attempt) ||
			cl.Lease != (distributed.Lease{Module: cl.Assignment.Module, Attempt: cl.Assignment.Attempt, Holder: 2, Session: "sess", Token: "req.1"}) || cl.QueueWait < 0 {
			t.Fatalf("accepted an invalid claim %+v", cl)
		}
	})
}

// encodeBatch is what scriptPublish's Lua builds for a batch announcement.
func encodeBatch(as []announcement) string {
	out := "b:"
	for _, a := range as {
		out += strconv.Itoa(len(a.module)) + ":" + a.module
		if a.hasPayload {
			out += strconv.Itoa(len(a.payload)) + ":" + a.payload
		} else {
			out += "-1:"
		}
	}
	return out
}

func FuzzBatchAnnouncement(f *testing.F) {
	f.Add(encodeBatch([]announcement{{module: "build", payload: `{"module":"build"}`, hasPayload: true}, {module: "big"}, {module: "a:b", payload: "3:x", hasPayload: true}}))
	f.Add("b:5:build")
	f.Add("b:-1:-1:")
	f.Add("b:99:x")
	f.Add("r:build")
	f.Fuzz(func(t *testing.T, msg string) {
		as, ok := parseBatch(msg)
		if !ok {
			if len(as) != 0 || len(msg) >= 2 && msg[:2] == "b:" {
				t.Fatalf("%q: not a batch, yet %d announcements", msg, len(as))
			}
			return
		}
		// What was read is exactly a prefix of the message, re-encoded.
		if enc := encodeBatch(as); len(enc) > len(msg) || msg[:len(enc)] != enc {
			t.Fatalf("%q parsed as %+v, which encodes to %q", msg, as, enc)
		}
	})
}

func TestBatchAnnouncementRoundTrip(t *testing.T) {
	want := []announcement{{module: "build", payload: `{"module":"build","x":"1:2"}`, hasPayload: true}, {module: "huge"}, {module: "e", payload: "", hasPayload: true}}
	got, ok := parseBatch(encodeBatch(want))
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v (%v), want %+v", got, ok, want)
	}
	// A truncated batch keeps the entries before the cut.
	msg := encodeBatch(want)
	if got, _ := parseBatch(msg[:len(msg)-3]); len(got) != 2 {
		t.Fatalf("truncated batch read as %+v, want the first two", got)
	}
}
