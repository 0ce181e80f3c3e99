package redis

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/ident"
)

// strictResult and strictAssignment are the reference: encoding/json,
// strict (decodeJSON).
func strictResult(raw string) (wireResult, error) {
	var w wireResult
	return w, decodeJSON("k", raw, &w)
}

func strictAssignment(raw string) (wireAssignment, error) {
	var a wireAssignment
	return a, decodeJSON("k", raw, &a)
}

// writtenResults are results as this package writes them (PublishBatch).
func writtenResults() []string {
	lease := distributed.Lease{Module: "build", Attempt: 2, Holder: 3, Session: "0123456789abcdef01234567", Token: "89abcdef0123456789abcdef.4"}
	rs := []distributed.Result{
		{Module: "build", Lease: lease, Status: distributed.StatusSucceeded, Value: []byte(`{}`), Attempts: 1},
		{Module: "build", Lease: lease, Status: distributed.StatusSucceeded, Value: []byte(`{"path":"bin/app","n":[1,2.5e3,true,null],"s":"a\"b\\u00e9"}`), Attempts: 2, Duration: 12345, QueueWait: 678,
			Log: []byte("line one\nline two: ünïcode\n"), MAC: []byte{1, 2, 3, 250}},
		{Module: "build", Lease: lease, Status: distributed.StatusSucceeded, Value: []byte(`"text"`), Attempts: 1},
		{Module: "build", Lease: lease, Status: distributed.StatusSucceeded, Value: []byte(`12`), Attempts: 1},
		{Module: "build", Lease: lease, Status: distributed.StatusSkipped, Reason: "only on tags", Attempts: 1},
		{Module: "build", Lease: lease, Status: distributed.StatusFailed, Attempts: 3, Error: &distributed.ErrorInfo{Message: "boom", Kind: "error", Instance: 3}},
		{Module: "naïve \"quoted\" <module>", Lease: lease, Status: distributed.StatusSucceeded, Value: []byte(`null`), Attempts: 1},
	}
	var out []string
	for _, r := range rs {
		w := toWireResult(r)
		w.Nonce = ident.Random(12)
		b, err := json.Marshal(w)
		if err != nil {
			panic(err)
		}
		out = append(out, string(b))
	}
	return out
}

func writtenAssignments() []string {
	as := []wireAssignment{
		{Module: "build", Attempt: 1, Requires: []string{"linux", "docker|podman"}, Priority: 3, EnqMS: 1700000000000},
		{Module: "build", Attempt: 2, Requires: []string{}, Priority: -7, MAC: []byte("0123456789abcdef0123456789abcdef")},
		{Module: "build", Attempt: 1, Requires: nil},
		{Module: "é\"x", Attempt: 1, Requires: []string{"a"}},
	}
	var out []string
	for _, a := range as {
		b, _ := json.Marshal(a)
		out = append(out, string(b))
	}
	return out
}

// TestFastWireReadsWhatThisPackageWrites: the common forms take the fast
// path (else it would not save anything) and decode exactly as
// encoding/json does; the rare forms (an error, escapes, null) are left to
// encoding/json.
func TestFastWireReadsWhatThisPackageWrites(t *testing.T) {
	for i, raw := range writtenResults() {
		want, err := strictResult(raw)
		if err != nil {
			t.Fatalf("strict decoder refused %s: %v", raw, err)
		}
		got, ok := fastResult(raw)
		wantFast := i <= 4 // 5: an error; 6: escapes in the module name
		if ok != wantFast {
			t.Errorf("fast path taken %v, want %v, for %s", ok, wantFast, raw)
		}
		if ok && !reflect.DeepEqual(got, want) {
			t.Errorf("fast %+v\nstrict %+v\nfor %s", got, want, raw)
		}
	}
	for i, raw := range writtenAssignments() {
		want, err := strictAssignment(raw)
		if err != nil {
			t.Fatalf("strict decoder refused %s: %v", raw, err)
		}
		got, ok := fastAssignment(raw)
		wantFast := i <= 1 // 2: requires null; 3: escapes
		if ok != wantFast {
			t.Errorf("fast path taken %v, want %v, for %s", ok, wantFast, raw)
		}
		if ok && !reflect.DeepEqual(got, want) {
			t.Errorf("fast %+v\nstrict %+v\nfor %s", got, want, raw)
		}
	}
}

// TestFastWireRefusesWhatStrictRefuses: near misses of a valid record.
func TestFastWireRefusesWhatStrictRefuses(t *testing.T) {
	good := writtenResults()[1]
	bad := []string{
		strings.Replace(good, `"module":"build"`, `"module":"build","module":"x"`, 1), // duplicate key
		strings.Replace(good, `"module"`, `"Module"`, 1),                              // case-folded key
		strings.Replace(good, `"attempts":2`, `"attempts":2.0`, 1),
		strings.Replace(good, `"attempts":2`, `"attempts":02`, 1),
		strings.Replace(good, `"attempts":2`, `"attempts":"2"`, 1),
		strings.Replace(good, `"attempts":2`, `"attempts":99999999999999999999`, 1),
		strings.Replace(good, `"value":{`, `"value":{,`, 1),
		strings.Replace(good, `"nonce"`, `"extra":1,"nonce"`, 1),
		strings.Replace(good, `"log":"`, `"log":"!`, 1), // not base64
		good[:len(good)-1],
		good + " {}",
		"{\"module\":\"\xff\"}",
		`{"module":"a",}`,
	}
	for _, raw := range bad {
		if _, ok := fastResult(raw); ok {
			t.Errorf("fast path accepted %s", raw)
		}
	}
	if _, ok := fastAssignment(`{"module":"m","attempt":1,"requires":["a",]}`); ok {
		t.Error("fast path accepted a trailing comma in requires")
	}
}

// FuzzFastWireMatchesJSON: whatever the fast path accepts, encoding/json
// (strict) accepts too, with the same value.
func FuzzFastWireMatchesJSON(f *testing.F) {
	for _, r := range writtenResults() {
		f.Add(r)
	}
	for _, a := range writtenAssignments() {
		f.Add(a)
	}
	f.Add(`{"value":1}`)
	f.Add(`{"value":[1,{"a":"b"}],"lease":{}}`)
	f.Add(`{"log":""}`)
	f.Fuzz(func(t *testing.T, raw string) {
		if got, ok := fastResult(raw); ok {
			want, err := strictResult(raw)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: fast %+v, strict %+v (%v)", raw, got, want, err)
			}
		}
		if got, ok := fastAssignment(raw); ok {
			want, err := strictAssignment(raw)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: fast %+v, strict %+v (%v)", raw, got, want, err)
			}
		}
	})
}

// BenchmarkDecodeResult compares the fast path with encoding/json on a
// result as a no-op module publishes it (read the ratio, same run).
func BenchmarkDecodeResult(b *testing.B) {
	raw := writtenResults()[0]
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeWireResult("k", "build", raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := strictResult(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
